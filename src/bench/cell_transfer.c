/* cell_transfer.c - a finished cell as one byte image and back (see cell_transfer.h). */
#include "bench/cell_transfer.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define QB_CELL_IMAGE_MAGIC 0x51424331u /* "QBC1" */

typedef struct {
    uint32_t magic;
    uint32_t record_bytes, run_bytes, summary_bytes, origin_bytes; /* sizeof of each struct in the sender */
} image_header;

typedef struct {
    char *p;        /* NULL: only count */
    size_t at;
} writer;

static void put(writer *w, const void *src, size_t n) {
    if (w->p && n) memcpy(w->p + w->at, src, n);
    w->at += n;
}

/* An owned array: its element count (-1 for NULL), then its bytes. */
static void put_array(writer *w, const void *a, int64_t count, size_t elem) {
    int64_t n = a ? count : -1;
    put(w, &n, sizeof n);
    if (a && count > 0) put(w, a, (size_t)count * elem);
}

static int64_t steps_of(const qb_run_record *run) { return run->n_gen > 1 ? run->n_gen - 1 : 1; }

static void write_image(writer *w, const qb_cell_origin *from, const qb_rank_summary *ranks, const qb_cell_record *c) {
    image_header h = {QB_CELL_IMAGE_MAGIC, sizeof *c, sizeof(qb_run_record), sizeof *ranks, sizeof *from};
    put(w, &h, sizeof h);
    put(w, from, sizeof *from);
    if (from->n_ranks > 0) put(w, ranks, sizeof *ranks * (size_t)from->n_ranks);
    put(w, c, sizeof *c);
    put_array(w, c->peak_mem_rank, c->n_ranks, sizeof *c->peak_mem_rank);
    for (int i = 0; c->runs && i < c->n_runs; i++) {
        const qb_run_record *run = &c->runs[i];
        put(w, run, sizeof *run);
        put_array(w, run->step_s, steps_of(run), sizeof *run->step_s);
        put_array(w, run->tokens, run->n_gen, sizeof *run->tokens);
    }
}

int qb_cell_pack(const qb_cell_origin *from, const qb_rank_summary *ranks, const qb_cell_record *c, void **image,
                 size_t *bytes) {
    writer count = {NULL, 0};
    write_image(&count, from, ranks, c);
    writer w = {malloc(count.at ? count.at : 1), 0};
    if (!w.p) return qb_errorf("out of memory packing a cell of %zu bytes for rank 0", count.at);
    write_image(&w, from, ranks, c);
    *image = w.p;
    *bytes = w.at;
    return 0;
}

typedef struct {
    const char *p;
    size_t at, size;
} reader;

static int take(reader *r, void *dst, size_t n) {
    if (n > r->size - r->at)
        return qb_errorf("a cell image from a group leader ends early (%zu of %zu bytes)", r->at, r->size);
    if (n) memcpy(dst, r->p + r->at, n);
    r->at += n;
    return 0;
}

/* An owned array written by put_array: NULL, or malloc'ed with the count the receiver expects. */
static int take_array(reader *r, void **a, int64_t expected, size_t elem) {
    int64_t n = 0;
    *a = NULL;
    QB_TRY(take(r, &n, sizeof n));
    if (n < 0) return 0;
    if (n != expected) return qb_errorf("a cell image from a group leader holds %lld elements where %lld belong",
                                        (long long)n, (long long)expected);
    if ((uint64_t)n > (r->size - r->at) / elem) return qb_errorf("a cell image from a group leader ends early");
    *a = malloc(n ? (size_t)n * elem : 1);
    if (!*a) return qb_errorf("out of memory receiving a cell");
    return take(r, *a, (size_t)n * elem);
}

int qb_cell_unpack(const void *image, size_t bytes, qb_cell_origin *from, qb_rank_summary **ranks,
                   qb_cell_record *c) {
    reader r = {image, 0, bytes};
    image_header h;
    memset(c, 0, sizeof *c);
    *ranks = NULL;
    QB_TRY(take(&r, &h, sizeof h));
    if (h.magic != QB_CELL_IMAGE_MAGIC || h.record_bytes != sizeof *c || h.run_bytes != sizeof(qb_run_record) ||
        h.summary_bytes != sizeof **ranks || h.origin_bytes != sizeof *from)
        return qb_errorf("a cell image from a group leader was made by another build (record %u bytes here %zu)",
                         h.record_bytes, sizeof *c);
    QB_TRY(take(&r, from, sizeof *from));
    if (from->n_ranks < 0 || (size_t)from->n_ranks > (r.size - r.at) / sizeof **ranks)
        return qb_errorf("a cell image from a group leader names %d ranks", (int)from->n_ranks);
    if (from->n_ranks > 0) {
        *ranks = malloc(sizeof **ranks * (size_t)from->n_ranks);
        if (!*ranks) return qb_errorf("out of memory receiving a cell");
        if (take(&r, *ranks, sizeof **ranks * (size_t)from->n_ranks) != 0) goto fail;
    }
    if (take(&r, c, sizeof *c) != 0) goto fail;
    /* the sender's pointers mean nothing here: rebuilt below */
    c->peak_mem_rank = NULL;
    qb_run_record *runs = c->runs;
    int n_runs = c->n_runs;
    c->runs = NULL;
    c->n_runs = 0;
    if (n_runs < 0 || c->n_ranks < 0 || (size_t)n_runs > (r.size - r.at) / sizeof *runs) {
        qb_errorf("a cell image from a group leader holds %d runs", n_runs);
        goto fail;
    }
    if (take_array(&r, (void **)&c->peak_mem_rank, c->n_ranks, sizeof *c->peak_mem_rank) != 0) goto fail;
    if (runs && n_runs > 0) {
        c->runs = calloc((size_t)n_runs, sizeof *c->runs);
        if (!c->runs) { qb_errorf("out of memory receiving a cell"); goto fail; }
        for (int i = 0; i < n_runs; i++) {
            qb_run_record *run = &c->runs[i];
            if (take(&r, run, sizeof *run) != 0) goto fail;
            run->step_s = NULL;
            run->tokens = NULL;
            c->n_runs = i + 1;
            if (run->n_gen < 0) {
                qb_errorf("a cell image from a group leader holds a run of %d tokens", run->n_gen);
                goto fail;
            }
            if (take_array(&r, (void **)&run->step_s, steps_of(run), sizeof *run->step_s) != 0 ||
                take_array(&r, (void **)&run->tokens, run->n_gen, sizeof *run->tokens) != 0)
                goto fail;
        }
    }
    if (r.at != r.size) {
        qb_errorf("a cell image from a group leader has %zu bytes too many", r.size - r.at);
        goto fail;
    }
    return 0;
fail:
    qb_cell_free(c);
    free(*ranks);
    *ranks = NULL;
    return -1;
}

/* fuzz_results.c - libFuzzer target: reading a results file image (qb_results_read_image) on arbitrary bytes.
 *
 * Any input must give a clean -1 with a one-line message, or records whose every run's tokens and step
 * latencies can be read (AddressSanitizer watches each access) and whose counts are consistent. The reader
 * parses first in a forked child (libhdf5 1.10 itself crashes on some damaged files: the child's death is
 * the one-line error), then in this process, instrumented, for what the child accepted. Seeds: files
 * written by qb_results_write (make_results_seeds). Build and run: tests/run_fuzz.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_file.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1); /* exactly size bytes: one byte past the end is caught */
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    static qb_results_meta meta;
    qb_cell_record *cells = NULL;
    int n = 0;
    if (qb_results_read_image(copy, size, "fuzz.h5", 5, &meta, &cells, &n) != 0) {
        const char *msg = qb_last_error();
        if (msg[0] == '\0' || strchr(msg, '\n')) abort(); /* failures must say why, in one line */
        free(copy);
        return 0;
    }
    volatile int64_t sink = 0;
    if (n < 0 || (n > 0 && !cells)) abort();
    for (int i = 0; i < n; i++) {
        const qb_cell_record *c = &cells[i];
        if (c->n_runs < 0 || (c->n_runs > 0 && !c->runs) || c->n_ranks < 0 || c->n_ranks > QB_MAX_RANKS) abort();
        for (int k = 0; c->peak_mem_rank && k < c->n_ranks; k++) sink += (int64_t)c->peak_mem_rank[k];
        for (int j = 0; j < c->n_runs; j++) {
            const qb_run_record *r = &c->runs[j];
            if (r->n_gen < 0) abort();
            for (int t = 0; t < r->n_gen; t++) sink += r->tokens[t];
            for (int t = 0; t + 1 < r->n_gen; t++) sink += (int64_t)(r->step_s[t] != 0);
        }
        sink += (int64_t)strlen(c->model) + (int64_t)strlen(c->reason) + (int64_t)strlen(c->checks);
    }
    (void)sink;
    for (int i = 0; i < n; i++) qb_cell_free(&cells[i]);
    free(cells);
    free(copy);
    return 0;
}

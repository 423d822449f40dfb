/* table.c - markdown table of result cells (see table.h). The columns are one list (columns[] below): a column of
 * the stdout table is one entry there, with the function giving its text. */
#include "results/table.h"

#include <string.h>

#include "io/printable.h"

#define QB_TABLE_TEXT_MAX 2048

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Copy text into out made harmless for a markdown row: newlines and tabs as spaces, '|' as "\\|", every other
 * control or bidi character escaped by io/printable.h. */
static void table_safe(char *out, size_t size, const char *raw) {
    char spaced[QB_TABLE_TEXT_MAX], text[QB_TABLE_TEXT_MAX];
    snprintf(spaced, sizeof spaced, "%s", raw);
    for (char *p = spaced; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    qb_printable(spaced, text, sizeof text);
    size_t o = 0;
    for (const char *p = text; *p && o + 2 < size; p++) {
        if (*p == '|') out[o++] = '\\';
        out[o++] = *p;
    }
    out[o] = '\0';
}

typedef void (*column_text)(const qb_cell_record *c, char *out, size_t size);

/* A string member made safe, in at most twice its size (what the table always allowed it). */
#define SAFE_MEMBER(out, size, member) \
    table_safe(out, (size) < sizeof(member) * 2 ? (size) : sizeof(member) * 2, member)
static void model_text(const qb_cell_record *c, char *out, size_t size) { SAFE_MEMBER(out, size, c->model); }
static void quant_text(const qb_cell_record *c, char *out, size_t size) { SAFE_MEMBER(out, size, c->quant); }
static void backend_text(const qb_cell_record *c, char *out, size_t size) { SAFE_MEMBER(out, size, c->backend); }
static void tp_text(const qb_cell_record *c, char *out, size_t size) { snprintf(out, size, "%d", c->tp_size); }
static void context_text(const qb_cell_record *c, char *out, size_t size) { snprintf(out, size, "%d", c->context_len); }
static void gen_text(const qb_cell_record *c, char *out, size_t size) { snprintf(out, size, "%d", c->gen_len); }
static void speed_text(const qb_cell_record *c, char *out, size_t size) {
    snprintf(out, size, "%.2f ± %.2f", c->speed.mean, c->speed.stddev);
}
static void ttft_text(const qb_cell_record *c, char *out, size_t size) {
    snprintf(out, size, "%.4f ± %.4f", c->ttft_s.mean, c->ttft_s.stddev);
}
static void tpot_ms_text(const qb_cell_record *c, char *out, size_t size) {
    snprintf(out, size, "%.3f ± %.3f", c->tpot_s.mean * 1e3, c->tpot_s.stddev * 1e3);
}
static void decode_text(const qb_cell_record *c, char *out, size_t size) {
    snprintf(out, size, "%.2f ± %.2f", c->decode_tok_per_s.mean, c->decode_tok_per_s.stddev);
}
static void mem_gib_text(const qb_cell_record *c, char *out, size_t size) {
    snprintf(out, size, "%.2f", c->peak_mem_total / GIB);
}

typedef struct {
    const char *header;
    int width;       /* in terminal columns */
    int right;       /* right-aligned (a number); the separator row marks it with ':' unless no_colon */
    int no_colon;
    int measured;    /* "-" unless the cell is VALID */
    int extra_bytes; /* bytes of its text beyond the columns they take ("±" is two bytes, one column) */
    column_text text;
} table_column;

/* Every column but the last (status: the cell's status, and its reason or its NOISY / THROTTLED marks). */
static const table_column columns[] = {
    {"model", 20, 0, 0, 0, 0, model_text},
    {"quant", 6, 0, 0, 0, 0, quant_text},
    {"backend", 7, 0, 0, 0, 0, backend_text},
    {"tp", 2, 1, 1, 0, 0, tp_text},
    {"context", 7, 1, 0, 0, 0, context_text},
    {"gen", 5, 1, 0, 0, 0, gen_text},
    {"speed tok/s", 18, 1, 0, 1, 1, speed_text},
    {"ttft s", 17, 1, 0, 1, 1, ttft_text},
    {"tpot ms", 15, 1, 0, 1, 1, tpot_ms_text},
    {"decode tok/s", 18, 1, 0, 1, 1, decode_text},
    {"mem GiB", 7, 1, 0, 1, 0, mem_gib_text},
};
#define N_COLUMNS ((int)(sizeof columns / sizeof *columns))

void qb_table_print_header(FILE *f) {
    fprintf(f, "# speed: generated tokens / wall time of the whole generation (prefill included); ttft: time to first "
               "token; tpot: time per output token after the first; decode: tokens/s after the first token\n");
    fprintf(f, "# mean ± sample stddev over the timed repetitions (warm-up excluded); mem: peak device memory summed "
               "over the ranks of the cell\n");
    for (int k = 0; k < N_COLUMNS; k++)
        fprintf(f, "| %*s ", columns[k].right ? columns[k].width : -columns[k].width, columns[k].header);
    fprintf(f, "| %s |\n", "status");
    for (int k = 0; k < N_COLUMNS; k++) {
        int colon = columns[k].right && !columns[k].no_colon;
        fputs("| ", f);
        for (int i = 0; i < columns[k].width - colon; i++) fputc('-', f);
        fputs(colon ? ": " : " ", f);
    }
    fprintf(f, "| %s |\n", "------");
}

void qb_table_print_row(FILE *f, const qb_cell_record *c) {
    char text[sizeof c->reason * 2];
    int valid = c->status == QB_CELL_VALID;
    for (int k = 0; k < N_COLUMNS; k++) {
        const table_column *col = &columns[k];
        int width = col->width;
        if (col->measured && !valid) {
            snprintf(text, sizeof text, "-");
        } else {
            col->text(c, text, sizeof text);
            width += col->extra_bytes; /* pad by hand so the columns line up in a terminal */
        }
        fprintf(f, "| %*s ", col->right ? width : -width, text);
    }
    if (!valid) {
        table_safe(text, sizeof text, c->reason);
        fprintf(f, "| %s%s%s |\n", qb_cell_status_name(c->status), text[0] ? ": " : "", text);
    } else {
        fprintf(f, "| %s%s%s |\n", qb_cell_status_name(c->status), c->noisy ? " NOISY" : "",
                c->throttled == 1 ? " THROTTLED" : "");
    }
}

void qb_table_print(FILE *f, const qb_cell_record *cells, int n_cells) {
    qb_table_print_header(f);
    for (int i = 0; i < n_cells; i++) qb_table_print_row(f, &cells[i]);
}

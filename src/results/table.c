/* table.c - markdown table of result cells (see table.h). */
#include "results/table.h"

#include <string.h>

#include "io/printable.h"

#define QB_TABLE_TEXT_MAX 2048

#define GIB (1024.0 * 1024.0 * 1024.0)

void qb_table_print_header(FILE *f) {
    fprintf(f, "# speed: generated tokens / wall time of the whole generation (prefill included); ttft: time to first "
               "token; tpot: time per output token after the first; decode: tokens/s after the first token\n");
    fprintf(f, "# mean ± sample stddev over the timed repetitions (warm-up excluded); mem: peak device memory summed "
               "over the ranks of the cell\n");
    fprintf(f, "| %-20s | %-6s | %-7s | %2s | %7s | %5s | %18s | %17s | %15s | %18s | %7s | %s |\n", "model", "quant",
            "backend", "tp", "context", "gen", "speed tok/s", "ttft s", "tpot ms", "decode tok/s", "mem GiB",
            "status");
    fprintf(f, "| %.20s | %.6s | %.7s | %.2s | %.6s: | %.4s: | %.17s: | %.16s: | %.14s: | %.17s: | %.6s: | %s |\n",
            "--------------------", "------", "-------", "--", "-------", "-----", "------------------",
            "-----------------", "---------------", "------------------", "-------", "------");
}

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

void qb_table_print_row(FILE *f, const qb_cell_record *c) {
    char model[sizeof c->model * 2], quant[sizeof c->quant * 2], backend[sizeof c->backend * 2];
    table_safe(model, sizeof model, c->model);
    table_safe(quant, sizeof quant, c->quant);
    table_safe(backend, sizeof backend, c->backend);
    fprintf(f, "| %-20s | %-6s | %-7s | %2d | %7d | %5d | ", model, quant, backend, c->tp_size, c->context_len,
            c->gen_len);
    if (c->status != QB_CELL_VALID) {
        char reason[sizeof c->reason * 2];
        table_safe(reason, sizeof reason, c->reason);
        fprintf(f, "%18s | %17s | %15s | %18s | %7s | %s%s%s |\n", "-", "-", "-", "-", "-",
                qb_cell_status_name(c->status), reason[0] ? ": " : "", reason);
        return;
    }
    char speed[48], ttft[48], tpot[48], decode[48];
    snprintf(speed, sizeof speed, "%.2f ± %.2f", c->speed.mean, c->speed.stddev);
    snprintf(ttft, sizeof ttft, "%.4f ± %.4f", c->ttft_s.mean, c->ttft_s.stddev);
    snprintf(tpot, sizeof tpot, "%.3f ± %.3f", c->tpot_s.mean * 1e3, c->tpot_s.stddev * 1e3);
    snprintf(decode, sizeof decode, "%.2f ± %.2f", c->decode_tok_per_s.mean, c->decode_tok_per_s.stddev);
    /* '±' is two bytes but one column: pad by hand so the columns line up in a terminal */
    fprintf(f, "%*s | %*s | %*s | %*s | %7.2f | %s%s%s |\n", 19, speed, 18, ttft, 16, tpot, 19, decode,
            c->peak_mem_total / GIB, qb_cell_status_name(c->status), c->noisy ? " NOISY" : "",
            c->throttled == 1 ? " THROTTLED" : "");
}

void qb_table_print(FILE *f, const qb_cell_record *cells, int n_cells) {
    qb_table_print_header(f);
    for (int i = 0; i < n_cells; i++) qb_table_print_row(f, &cells[i]);
}

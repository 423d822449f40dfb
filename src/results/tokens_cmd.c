/* tokens_cmd.c - print a results file's generated tokens (see tokens_cmd.h). */
#include "results/tokens_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/printable.h"
#include "results/results_file.h"
#include "util/error.h"

int qb_tokens_command(int argc, char **argv) {
    const char *path = NULL;
    long only = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cell") && i + 1 < argc) {
            char *end;
            only = strtol(argv[++i], &end, 10);
            if (*end || only < 0) {
                fprintf(stderr, "qwenbench tokens: error: --cell: '%s' is not a cell index\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            fprintf(stderr, "qwenbench tokens: error: unexpected argument '%s' (usage: qwenbench tokens FILE.h5 [--cell N])\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "qwenbench tokens: error: no results file given (usage: qwenbench tokens FILE.h5 [--cell N])\n");
        return 2;
    }
    static qb_results_meta meta;
    qb_cell_record *cells = NULL;
    int n = 0;
    if (qb_results_read(path, &meta, &cells, &n) != 0) {
        qb_error_make_printable();
        fprintf(stderr, "qwenbench tokens: error: %s\n", qb_last_error());
        return 1;
    }
    int status = 0;
    if (only >= n) {
        fprintf(stderr, "qwenbench tokens: error: --cell %ld: %s has %d cells\n", only, path, n);
        status = 2;
    }
    for (int i = 0; i < n && status == 0; i++) {
        if (only >= 0 && i != only) continue;
        const qb_cell_record *c = &cells[i];
        char model[sizeof c->model * 4], quant[sizeof c->quant * 4], rule[sizeof c->prompt_rule * 4];
        qb_printable(c->model, model, sizeof model); /* the file may be old or foreign: escape (io/printable.h) */
        qb_printable(c->quant, quant, sizeof quant);
        qb_printable(c->prompt_rule, rule, sizeof rule);
        printf("# cell %d: %s %s input %d, prompt %s seed %llu, status %s\n", i, model, quant, c->context_len, rule,
               (unsigned long long)c->seed, qb_cell_status_name(c->status));
        for (int r = 0; r < c->n_runs; r++) {
            printf("run %d:", c->runs[r].repetition);
            for (int t = 0; t < c->runs[r].n_gen; t++) printf(" %d", (int)c->runs[r].tokens[t]);
            printf("\n");
        }
    }
    for (int i = 0; i < n; i++) qb_cell_free(&cells[i]);
    free(cells);
    return status;
}

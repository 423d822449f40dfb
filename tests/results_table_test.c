/* results_table_test.c - the markdown table: shape, numbers of VALID cells, status and reason of the others.
 *
 * Prints the sample cells (results_sample.h) to a memory stream and checks: every line starts with '#' or
 * '|'; every table line has the same number of '|' as the header (a '|' inside a reason is escaped); a
 * VALID row shows the speed as "mean ± std" with 2 decimals; other rows show their status and reason and
 * no number in the measured columns. Prints the table so the log shows what was checked.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/table.h"
#include "results_sample.h"

static int g_failures;

static void fail(const char *what, const char *line) {
    if (g_failures++ < 10) fprintf(stderr, "FAIL: %s\n  line: %.300s\n", what, line);
}

static int count_unescaped_bars(const char *line) {
    int n = 0;
    for (const char *p = line; *p; p++)
        if (*p == '|' && (p == line || p[-1] != '\\')) n++;
    return n;
}

int main(void) {
    enum { N = 6 };
    qb_cell_record *cells = qb_sample_cells(N, 0);
    snprintf(cells[3].reason, sizeof cells[3].reason, "tokens differ | at step 2\nsecond line");
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return 1;
    qb_table_print(f, cells, N);
    fclose(f);
    fputs(text, stdout);

    char expect_speed[64];
    snprintf(expect_speed, sizeof expect_speed, "%.2f ± %.2f", cells[0].speed.mean, cells[0].speed.stddev);
    int bars = -1, row = -2; /* the first two table lines are the header and the separator */
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        if (line[0] != '|') {
            fail("a line that is neither a comment ('#') nor a table row", line);
            continue;
        }
        int n = count_unescaped_bars(line);
        if (bars < 0) bars = n;
        else if (n != bars) fail("a row with a different number of columns than the header", line);
        if (row >= 0 && row < N) {
            const qb_cell_record *c = &cells[row];
            if (!strstr(line, qb_cell_status_name(c->status))) fail("row lacks its status", line);
            if (c->status == QB_CELL_VALID) {
                if (row == 0 && !strstr(line, expect_speed)) fail("VALID row lacks its speed as mean ± std", line);
            } else {
                /* measured columns are the 7th to the 11th between bars: each must be "-" */
                int col = 0;
                for (const char *p = line + 1; *p; p++) {
                    if (*p == '|' && p[-1] != '\\') col++;
                    else if (col >= 6 && col <= 10 && isdigit((unsigned char)*p))
                        fail("a number in a measured column of a non-VALID row", line);
                }
                if (c->reason[0] && !strstr(line, row == 3 ? "tokens differ \\| at step 2 second line"
                                                                             : c->reason))
                    fail("non-VALID row lacks its (escaped, one-line) reason", line);
            }
        }
        row++;
    }
    if (row != N) {
        char what[64];
        snprintf(what, sizeof what, "%d table rows, want %d", row, N);
        fail(what, "");
    }
    free(text);
    qb_sample_free(cells, N);
    printf("%s\n", g_failures ? "results_table_test: FAILED" : "results_table_test: all checks passed");
    return g_failures ? 1 : 0;
}

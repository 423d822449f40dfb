/* flag_suggest.c - the closest known flag to a mistyped one (see flag_suggest.h). */
#include "cli/flag_suggest.h"

#include <string.h>

#define MAX_NAME 63

static int min3(int a, int b, int c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

int qb_flag_edit_distance(const char *a, size_t la, const char *b, size_t lb) {
    if (la > MAX_NAME || lb > MAX_NAME) return MAX_NAME + 1;
    int d[MAX_NAME + 1][MAX_NAME + 1];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    return d[la][lb];
}

const char *qb_flag_suggest(const char *typed, size_t len, const char *const *candidates, int n) {
    int limit = (int)len / 3 > 2 ? (int)len / 3 : 2;
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        int dist = qb_flag_edit_distance(typed, len, candidates[i], strlen(candidates[i]));
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    return best;
}

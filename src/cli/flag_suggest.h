/* flag_suggest.h - "did you mean --model?": the known flag name closest to a mistyped one.
 *
 * Closeness is the optimal-string-alignment edit distance (insertions, deletions, substitutions and swaps of two
 * neighbouring characters each cost 1), so '--modle' is one edit from '--model'. A name farther than a third of
 * its length (at least 2 edits allowed) suggests nothing: a guess that far off misleads more than it helps.
 */
#ifndef QB_CLI_FLAG_SUGGEST_H
#define QB_CLI_FLAG_SUGGEST_H

#include <stddef.h>

/* Edit distance between a[0..la) and b[0..lb) (names longer than 63 characters count as 64 edits away). */
int qb_flag_edit_distance(const char *a, size_t la, const char *b, size_t lb);

/* The candidate closest to typed[0..len) within the limit above, or NULL (ties: the first in the list). */
const char *qb_flag_suggest(const char *typed, size_t len, const char *const *candidates, int n);

#endif

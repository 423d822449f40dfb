/* printable.h - the one escaper for untrusted text (tensor names, dtype strings, shard paths, model names
 * taken from directory names, the JSON parser's excerpt of a hostile file) before it reaches a terminal, a
 * one-line message or the results file.
 *
 * Escaped: C0 controls and DEL (\n, \r, \t, \xNN), backslash itself is kept as is; C1 controls
 * (U+0080..U+009F) and invisible format characters that can reorder or hide text (U+00AD, U+061C,
 * U+180E, U+200B..U+200F, U+2028..U+202E, U+2060..U+206F, U+FEFF, U+FFF9..U+FFFB) become \u{XXXX}; bytes
 * that are not valid UTF-8 become \xNN. Everything else (printable ASCII, other UTF-8) is copied.
 * The parsers' public entry points call qb_error_make_printable() on every failure. */
#ifndef QB_IO_PRINTABLE_H
#define QB_IO_PRINTABLE_H

#include <stdbool.h>
#include <stddef.h>

/* Copy s into buf (cap bytes) with the characters above escaped; truncated at a character boundary when
 * buf is too small; returns buf. */
const char *qb_printable(const char *s, char *buf, size_t cap);
/* True when qb_printable would change nothing (s has no character that needs escaping). */
bool qb_is_printable(const char *s);
/* Rewrite the recorded error message (qb_last_error) with the characters above escaped; returns -1. */
int qb_error_make_printable(void);

#endif

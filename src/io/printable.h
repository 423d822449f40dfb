/* printable.h - keep error messages one line when they quote untrusted text (tensor names, dtype strings,
 * shard paths, the JSON parser's excerpt of a hostile file): control characters become \n, \t, \xNN.
 * The parsers' public entry points call qb_error_make_printable() on every failure. */
#ifndef QB_IO_PRINTABLE_H
#define QB_IO_PRINTABLE_H

#include <stddef.h>

/* Copy s into buf (cap bytes) with control characters escaped; returns buf. */
const char *qb_printable(const char *s, char *buf, size_t cap);
/* Rewrite the recorded error message (qb_last_error) with control characters escaped; returns -1. */
int qb_error_make_printable(void);

#endif

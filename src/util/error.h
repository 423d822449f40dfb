/* error.h - one error path for the whole program.
 *
 * Fallible functions return 0 on success and -1 on failure, after recording a one-line message with
 * qb_errorf(). The caller either passes -1 up, or prints qb_last_error() and stops. The message names the
 * file, tensor, field or flag at fault ("config.json: num_key_value_heads: must divide num_attention_heads
 * (28 % 5 != 0)"). The buffer is thread-local, so worker threads do not clobber each other's message.
 */
#ifndef QB_UTIL_ERROR_H
#define QB_UTIL_ERROR_H

#include <stddef.h>

#define QB_ERROR_MAX 1024

#if defined(__GNUC__)
#define QB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QB_PRINTF(a, b)
#endif

/* Record a message (replacing the previous one) and return -1. */
int qb_errorf(const char *fmt, ...) QB_PRINTF(1, 2);
/* Prefix the recorded message with more context ("loading /m/model.safetensors: <old message>"); returns -1. */
int qb_error_prefix(const char *fmt, ...) QB_PRINTF(1, 2);
/* The last recorded message ("" if none). */
const char *qb_last_error(void);
void qb_error_clear(void);

/* Propagate: if (expr) fails, return -1 (the message is already recorded). */
#define QB_TRY(expr) do { if ((expr) != 0) return -1; } while (0)

#endif

/* small_file.h - read a whole small regular file (config.json, an index) with a size bound. */
#ifndef QB_IO_SMALL_FILE_H
#define QB_IO_SMALL_FILE_H

#include <stddef.h>

/* Read the regular file at path (at most max_bytes) into a malloc'd, NUL-terminated buffer; *len = its size.
 * Refuses directories, devices and FIFOs. 0 ok, -1 with "PATH: why". */
int qb_read_small_file(const char *path, size_t max_bytes, char **buf, size_t *len);
/* The same from an open descriptor (closed here in every case); origin names the file in messages. */
int qb_read_small_fd(int fd, const char *origin, size_t max_bytes, char **buf, size_t *len);

#endif

/* model_dir.h - the one containment rule for every file read from a model directory (config.json,
 * quantize_config.json, model.safetensors.index.json, model.safetensors and the shards).
 *
 * A file is named by a path relative to the directory: not empty, not absolute, no ".." component. It is
 * resolved (realpath: every symlink followed) and must then lie beneath the directory's own resolved path;
 * files elsewhere are never opened. One exception, the Hugging Face cache layout: when the directory is
 * <cache>/models--<name>/snapshots/<rev> and <cache>/models--<name>/blobs is a real directory (not a
 * symlink), a file may resolve to a regular file directly inside that blobs directory (the snapshot's
 * links ../../blobs/<hash>). The resolved path is opened with O_NOFOLLOW | O_NONBLOCK (a FIFO or device
 * never blocks), must be a regular file (fstat), and where /proc is mounted the opened descriptor's own path
 * is checked again, so a directory swapped for a symlink between the check and the open is refused too.
 */
#ifndef QB_IO_MODEL_DIR_H
#define QB_IO_MODEL_DIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

typedef struct {
    char shown[PATH_MAX];  /* the directory as given, for messages */
    char real[PATH_MAX];   /* its resolved path */
    char blobs[PATH_MAX];  /* the Hugging Face cache's blobs directory when the layout applies, else "" */
    char cache_note[160];  /* why the cache exception does not apply although this looks like a snapshot, or "" */
} qb_model_dir;

/* Resolve dir (which must be a directory) and work out the allowed roots. 0 ok, -1 with a message. */
int qb_model_dir_init(const char *dir, qb_model_dir *out);
/* Whether the directory has an entry rel (a file, a link - even a dangling one - or anything else). */
bool qb_model_dir_has(const qb_model_dir *d, const char *rel);
/* Open the regular file rel under the rule above; *fd is the descriptor (O_RDONLY, O_CLOEXEC). `what`
 * names the file's role in messages ("shard", "config"). 0 ok, -1 "DIR/REL: why". */
int qb_model_dir_open(const qb_model_dir *d, const char *rel, const char *what, int *fd);
/* Read a whole small file under the rule above (see io/small_file.h). */
int qb_model_dir_read_small(const qb_model_dir *d, const char *rel, const char *what, size_t max_bytes, char **buf,
                            size_t *len);

#endif

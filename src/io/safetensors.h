/* safetensors.h - a validating reader of one .safetensors file (memory-mapped, or parsed from a buffer).
 *
 * Format (formats.md): u64 little-endian header length N, N bytes of JSON object
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data buffer.
 * Everything is checked before a tensor is handed out: header bounds, JSON syntax (duplicate keys refused),
 * known dtypes, shapes, byte counts = numel x dtype size without overflow, offsets contiguous from 0 with
 * no gap or overlap, the buffer exactly covering the rest of the file, and bounded work for huge headers.
 * After a successful open every tensor's bytes lie inside the file; nothing downstream re-checks bounds.
 * Tensor data is not necessarily aligned: copy it with memcpy, never cast to a typed pointer.
 */
#ifndef QB_IO_SAFETENSORS_H
#define QB_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define QB_ST_MAX_HEADER 100000000u /* bytes, as the reference reader */
#define QB_ST_MAX_TENSORS 131072    /* per file; a 72B model has ~1000 tensors in all */
#define QB_ST_MAX_DIMS 8

typedef enum {
    QB_ST_BOOL = 0, QB_ST_U8, QB_ST_I8, QB_ST_I16, QB_ST_U16, QB_ST_F16, QB_ST_BF16, QB_ST_I32, QB_ST_U32,
    QB_ST_F32, QB_ST_F64, QB_ST_I64, QB_ST_U64, QB_ST_C64,
    QB_ST_F8_E5M2, QB_ST_F8_E4M3, QB_ST_F8_E8M0, QB_ST_F4, QB_ST_F6_E2M3, QB_ST_F6_E3M2,
    QB_ST_DTYPE_COUNT
} qb_st_dtype;

typedef struct {
    char *name;
    qb_st_dtype dtype;
    int ndim;
    uint64_t shape[QB_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end; /* byte range in the data buffer (end exclusive) */
} qb_st_tensor;

typedef struct {
    char origin[1024];           /* file path (or the caller's name for a buffer), for messages */
    const uint8_t *data;         /* start of the data buffer */
    uint64_t data_size;
    qb_st_tensor *tensors;       /* sorted by name */
    size_t n_tensors;
    char **meta_keys, **meta_values; /* __metadata__, in file order */
    size_t n_meta;
    void *map;                   /* mmap of the file (NULL when parsed from a caller's buffer) */
    size_t map_len;
} qb_st_file;

/* Open and validate a file; its data stays mapped until qb_st_close. 0 ok, -1 "PATH: ...". */
int qb_st_open(const char *path, qb_st_file *out);
/* The same, naming the file `origin` in messages (e.g. the path as the user gave it, not its realpath). */
int qb_st_open_named(const char *path, const char *origin, qb_st_file *out);
/* The same from an open descriptor of a regular file (closed here in every case). */
int qb_st_open_fd(int fd, const char *origin, qb_st_file *out);
/* Validate a whole file image held in memory (the buffer must outlive *out). origin names it. */
int qb_st_parse(const void *buf, size_t len, const char *origin, qb_st_file *out);
void qb_st_close(qb_st_file *f);

/* Lookup by name (binary search); NULL if absent. */
const qb_st_tensor *qb_st_find(const qb_st_file *f, const char *name);
/* The tensor's bytes (unaligned). */
static inline const uint8_t *qb_st_bytes(const qb_st_file *f, const qb_st_tensor *t) { return f->data + t->begin; }
/* __metadata__ value or NULL. */
const char *qb_st_metadata(const qb_st_file *f, const char *key);

const char *qb_st_dtype_name(qb_st_dtype d);
int qb_st_dtype_parse(const char *s, qb_st_dtype *out); /* -1 (no message) on unknown */
int qb_st_dtype_bits(qb_st_dtype d);
/* "[384, 128]" */
void qb_st_shape_str(const qb_st_tensor *t, char *buf, size_t cap);

#endif

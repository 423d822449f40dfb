/* safetensors_write.h - write a .safetensors file from a list of tensors (tests, export-weights).
 *
 * Tensors are laid out in the order given, contiguous from offset 0; the header is padded with spaces to a
 * multiple of 8 bytes (as the reference writer does). The file is written to PATH.tmp and renamed over PATH.
 */
#ifndef QB_IO_SAFETENSORS_WRITE_H
#define QB_IO_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

typedef struct {
    const char *name;
    qb_st_dtype dtype;
    int ndim;
    uint64_t shape[QB_ST_MAX_DIMS];
    const void *data; /* numel x dtype size bytes, little-endian */
} qb_st_write_tensor;

/* metadata: n_meta pairs of (key, value) strings, or NULL. 0 ok, -1 "PATH: ...". */
int qb_st_write(const char *path, const qb_st_write_tensor *tensors, size_t n, const char *const *meta_keys,
                const char *const *meta_values, size_t n_meta);

#endif

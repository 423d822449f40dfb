/* checkpoint.h - a Hugging Face model directory's tensors: model.safetensors, or
 * model.safetensors.index.json plus its shards, validated as a whole, read by slices.
 *
 * Every file (the index, model.safetensors, the shards) is opened under the directory's one containment
 * rule (io/model_dir.h: relative, no "..", resolved beneath the directory, regular files only; the Hugging
 * Face cache exception is there). Opening checks the index (every shard exists and is a valid safetensors
 * file; every mapped tensor is in its shard; no tensor is in two shards or missing from the index).
 *
 * Readers take the full shape the caller expects (from the config) and refuse any other shape or an
 * unsupported dtype with "FILE: TENSOR: shape [384, 128] but config says [4864, 896]". Matrices come out as
 * bf16 bits (exact for BF16 sources; F32 and F16 rounded to nearest even), vectors as float (exact for
 * BF16/F16/F32). Every read marks the tensor used, so unused (extra) tensors can be reported.
 */
#ifndef QB_IO_CHECKPOINT_H
#define QB_IO_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

#define QB_CK_MAX_SHARDS 4096
#define QB_CK_MAX_INDEX_BYTES (64u * 1024 * 1024)

typedef struct {
    const char *name;          /* owned by the shard's qb_st_file */
    const qb_st_file *file;
    const qb_st_tensor *tensor;
    bool used;
} qb_ck_entry;

typedef struct {
    char dir[4096];            /* the directory as given */
    qb_st_file *files;         /* shards (one for model.safetensors) */
    size_t n_files;
    qb_ck_entry *entries;      /* every tensor of the model, sorted by name */
    size_t n_entries;
} qb_checkpoint;

/* Open and validate dir. 0 ok, -1 with a one-line message naming the file and tensor at fault. */
int qb_checkpoint_open(const char *dir, qb_checkpoint *out);
void qb_checkpoint_close(qb_checkpoint *ck);

/* Lookup by name; NULL if the model has no such tensor. */
qb_ck_entry *qb_checkpoint_find(qb_checkpoint *ck, const char *name);

/* Block [row0, row0+n_rows) x [col0, col0+n_cols) of the 2-D tensor `name`, which must have shape
 * [rows, cols], as bf16 bits into dst[n_rows][n_cols]. */
int qb_checkpoint_read_bf16(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols, uint64_t row0,
                            uint64_t n_rows, uint64_t col0, uint64_t n_cols, uint16_t *dst);
/* Row range (all columns) and column range (all rows) of a 2-D tensor of shape [rows, cols]. */
int qb_checkpoint_read_rows_bf16(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols,
                                 uint64_t row0, uint64_t n_rows, uint16_t *dst);
int qb_checkpoint_read_cols_bf16(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols,
                                 uint64_t col0, uint64_t n_cols, uint16_t *dst);
/* Range [start, start+n) of the 1-D tensor `name` of shape [len], as float. */
int qb_checkpoint_read_vec_f32(qb_checkpoint *ck, const char *name, uint64_t len, uint64_t start, uint64_t n,
                               float *dst);

/* Number of tensors never read; the first min(count, cap) names go to names[]. */
size_t qb_checkpoint_unused(const qb_checkpoint *ck, const char **names, size_t cap);

#endif

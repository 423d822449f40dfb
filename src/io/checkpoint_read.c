/* checkpoint_read.c - read slices of validated checkpoint tensors with dtype conversion (see checkpoint.h).
 *
 * Bounds: the tensor's bytes are inside its file (checked at open), its shape is checked equal to the
 * caller's expected shape here, and the requested block is checked inside that shape, so every access below
 * is in bounds. Source data may be unaligned: values are copied with memcpy.
 */
#include "io/checkpoint.h"

#include <math.h>
#include <string.h>

#include "engine/quant_pack.h" /* qb_f16_to_float */
#include "engine/random_init.h"
#include "io/printable.h"
#include "util/error.h"

static float load_float(const uint8_t *p, qb_st_dtype dt) {
    if (dt == QB_ST_BF16) {
        uint16_t b;
        memcpy(&b, p, 2);
        return qb_bf16_to_float(b);
    }
    if (dt == QB_ST_F16) {
        uint16_t h;
        memcpy(&h, p, 2);
        return qb_f16_to_float(h);
    }
    float f;
    memcpy(&f, p, 4);
    return f;
}

static void shape_text(const uint64_t *dims, int n, char *buf, size_t cap) {
    qb_st_tensor t;
    memset(&t, 0, sizeof t);
    t.ndim = n;
    for (int i = 0; i < n; i++) t.shape[i] = dims[i];
    qb_st_shape_str(&t, buf, cap);
}

/* Find `name`, check dtype is BF16/F16/F32 and the shape is exactly dims[n]. */
static int lookup(qb_checkpoint *ck, const char *name, const uint64_t *dims, int n, qb_ck_entry **out) {
    qb_ck_entry *e = qb_checkpoint_find(ck, name);
    if (!e) return qb_errorf("%s: tensor \"%s\" is missing from the checkpoint", ck->dir, name);
    const qb_st_tensor *t = e->tensor;
    if (t->dtype != QB_ST_BF16 && t->dtype != QB_ST_F16 && t->dtype != QB_ST_F32)
        return qb_errorf("%s: %s: dtype %s is not supported (BF16, F16 or F32)", e->file->origin, name,
                         qb_st_dtype_name(t->dtype));
    bool same = t->ndim == n;
    for (int i = 0; same && i < n; i++) same = t->shape[i] == dims[i];
    if (!same) {
        char got[128], want[128];
        qb_st_shape_str(t, got, sizeof got);
        shape_text(dims, n, want, sizeof want);
        return qb_errorf("%s: %s: shape %s but config says %s", e->file->origin, name, got, want);
    }
    e->used = true;
    *out = e;
    return 0;
}

static int read_bf16_impl(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols, uint64_t row0,
                            uint64_t n_rows, uint64_t col0, uint64_t n_cols, uint16_t *dst) {
    uint64_t dims[2] = {rows, cols};
    qb_ck_entry *e;
    QB_TRY(lookup(ck, name, dims, 2, &e));
    if (row0 > rows || n_rows > rows - row0 || col0 > cols || n_cols > cols - col0)
        return qb_errorf("%s: %s: block rows [%llu, +%llu) cols [%llu, +%llu) is outside [%llu, %llu]",
                         e->file->origin, name, (unsigned long long)row0, (unsigned long long)n_rows,
                         (unsigned long long)col0, (unsigned long long)n_cols, (unsigned long long)rows,
                         (unsigned long long)cols);
    const qb_st_tensor *t = e->tensor;
    const uint8_t *src = qb_st_bytes(e->file, t);
    size_t esize = (size_t)qb_st_dtype_bits(t->dtype) / 8;
    for (uint64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = src + ((row0 + r) * cols + col0) * esize;
        uint16_t *out = dst + r * n_cols;
        if (t->dtype == QB_ST_BF16) {
            memcpy(out, row, n_cols * 2); /* exact bits */
        } else {
            for (uint64_t c = 0; c < n_cols; c++) out[c] = qb_float_to_bf16(load_float(row + c * esize, t->dtype));
        }
    }
    return 0;
}

int qb_checkpoint_read_rows_bf16(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols,
                                 uint64_t row0, uint64_t n_rows, uint16_t *dst) {
    return qb_checkpoint_read_bf16(ck, name, rows, cols, row0, n_rows, 0, cols, dst);
}

int qb_checkpoint_read_cols_bf16(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols,
                                 uint64_t col0, uint64_t n_cols, uint16_t *dst) {
    return qb_checkpoint_read_bf16(ck, name, rows, cols, 0, rows, col0, n_cols, dst);
}

static int read_vec_impl(qb_checkpoint *ck, const char *name, uint64_t len, uint64_t start, uint64_t n,
                               float *dst) {
    qb_ck_entry *e;
    QB_TRY(lookup(ck, name, &len, 1, &e));
    if (start > len || n > len - start)
        return qb_errorf("%s: %s: range [%llu, +%llu) is outside [%llu]", e->file->origin, name,
                         (unsigned long long)start, (unsigned long long)n, (unsigned long long)len);
    const qb_st_tensor *t = e->tensor;
    size_t esize = (size_t)qb_st_dtype_bits(t->dtype) / 8;
    const uint8_t *src = qb_st_bytes(e->file, t) + start * esize;
    for (uint64_t i = 0; i < n; i++) {
        dst[i] = load_float(src + i * esize, t->dtype);
        if (!isfinite(dst[i]))
            return qb_errorf("%s: %s: element %llu is not finite", e->file->origin, name, (unsigned long long)(start + i));
    }
    return 0;
}

int qb_checkpoint_read_bf16(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols, uint64_t row0,
                            uint64_t n_rows, uint64_t col0, uint64_t n_cols, uint16_t *dst) {
    if (read_bf16_impl(ck, name, rows, cols, row0, n_rows, col0, n_cols, dst) != 0) return qb_error_make_printable();
    return 0;
}

int qb_checkpoint_read_vec_f32(qb_checkpoint *ck, const char *name, uint64_t len, uint64_t start, uint64_t n,
                               float *dst) {
    if (read_vec_impl(ck, name, len, start, n, dst) != 0) return qb_error_make_printable();
    return 0;
}

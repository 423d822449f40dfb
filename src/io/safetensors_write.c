/* safetensors_write.c - the safetensors writer (see safetensors_write.h). */
#include "io/safetensors_write.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int tensor_bytes(const qb_st_write_tensor *t, uint64_t *bytes) {
    uint64_t numel = 1, bits;
    if (t->ndim < 0 || t->ndim > QB_ST_MAX_DIMS) return qb_errorf("%s: ndim %d out of range", t->name, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(numel, t->shape[i], &numel)) return qb_errorf("%s: shape overflows", t->name);
    int b = qb_st_dtype_bits(t->dtype);
    if (b == 0 || __builtin_mul_overflow(numel, (uint64_t)b, &bits) || bits % 8 != 0)
        return qb_errorf("%s: bad dtype or size", t->name);
    *bytes = bits / 8;
    return 0;
}

/* The header JSON (unpadded) as a malloc'd string. */
static char *build_header(const qb_st_write_tensor *tensors, size_t n, const char *const *mk, const char *const *mv,
                          size_t n_meta, const char *path) {
    json_t *root = json_object();
    if (!root) return NULL;
    if (n_meta > 0) {
        json_t *meta = json_object();
        for (size_t i = 0; meta && i < n_meta; i++) json_object_set_new(meta, mk[i], json_string(mv[i]));
        if (!meta || json_object_set_new(root, "__metadata__", meta) != 0) goto fail;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const qb_st_write_tensor *t = &tensors[i];
        uint64_t bytes;
        if (tensor_bytes(t, &bytes) != 0) goto fail_msg;
        json_t *shape = json_array();
        for (int d = 0; shape && d < t->ndim; d++) json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", qb_st_dtype_name(t->dtype), "shape", shape,
                                  "data_offsets", (json_int_t)offset, (json_int_t)(offset + bytes));
        if (!entry || json_object_set_new(root, t->name, entry) != 0) goto fail;
        offset += bytes;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!s) qb_errorf("%s: cannot encode the header", path);
    return s;
fail:
    qb_errorf("%s: cannot build the header (duplicate or invalid name?)", path);
fail_msg:
    json_decref(root);
    return NULL;
}

int qb_st_write(const char *path, const qb_st_write_tensor *tensors, size_t n, const char *const *meta_keys,
                const char *const *meta_values, size_t n_meta) {
    char *header = build_header(tensors, n, meta_keys, meta_values, n_meta, path);
    if (!header) return -1;
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(header);
        return qb_errorf("%s: path too long", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(header);
        return qb_errorf("%s: cannot create: %s", tmp, strerror(errno));
    }
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len_le, 1, 8, fp) == 8 && fwrite(header, 1, hlen, fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    free(header);
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t bytes = 0;
        tensor_bytes(&tensors[i], &bytes);
        if (bytes > 0) ok = fwrite(tensors[i].data, 1, (size_t)bytes, fp) == bytes;
    }
    if (fclose(fp) != 0) ok = 0;
    if (!ok) {
        remove(tmp);
        return qb_errorf("%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return qb_errorf("%s: rename from %s failed: %s", path, tmp, strerror(e));
    }
    return 0;
}

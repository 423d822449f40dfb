/* safetensors.c - the validating safetensors reader (see safetensors.h for what is checked).
 *
 * The header is parsed by jansson (duplicate keys refused, UTF-8 checked), after a linear pre-scan that
 * bounds the number of objects and JSON values, so a header of millions of tiny entries is refused in time
 * and memory proportional to its bytes, before any allocation per entry.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/printable.h"
#include "util/error.h"

static const struct {
    const char *name;
    int bits;
} k_dtypes[QB_ST_DTYPE_COUNT] = {
    [QB_ST_BOOL] = {"BOOL", 8},       [QB_ST_U8] = {"U8", 8},           [QB_ST_I8] = {"I8", 8},
    [QB_ST_I16] = {"I16", 16},        [QB_ST_U16] = {"U16", 16},        [QB_ST_F16] = {"F16", 16},
    [QB_ST_BF16] = {"BF16", 16},      [QB_ST_I32] = {"I32", 32},        [QB_ST_U32] = {"U32", 32},
    [QB_ST_F32] = {"F32", 32},        [QB_ST_F64] = {"F64", 64},        [QB_ST_I64] = {"I64", 64},
    [QB_ST_U64] = {"U64", 64},        [QB_ST_C64] = {"C64", 64},        [QB_ST_F8_E5M2] = {"F8_E5M2", 8},
    [QB_ST_F8_E4M3] = {"F8_E4M3", 8}, [QB_ST_F8_E8M0] = {"F8_E8M0", 8}, [QB_ST_F4] = {"F4", 4},
    [QB_ST_F6_E2M3] = {"F6_E2M3", 6}, [QB_ST_F6_E3M2] = {"F6_E3M2", 6},
};

const char *qb_st_dtype_name(qb_st_dtype d) {
    return (int)d >= 0 && d < QB_ST_DTYPE_COUNT ? k_dtypes[d].name : "?";
}

int qb_st_dtype_bits(qb_st_dtype d) { return (int)d >= 0 && d < QB_ST_DTYPE_COUNT ? k_dtypes[d].bits : 0; }

int qb_st_dtype_parse(const char *s, qb_st_dtype *out) {
    for (int i = 0; i < QB_ST_DTYPE_COUNT; i++) {
        if (strcmp(s, k_dtypes[i].name) == 0) {
            *out = (qb_st_dtype)i;
            return 0;
        }
    }
    return -1;
}

void qb_st_shape_str(const qb_st_tensor *t, char *buf, size_t cap) {
    size_t used = 0;
    int w = snprintf(buf, cap, "[");
    if (w > 0) used = (size_t)w;
    for (int i = 0; i < t->ndim && used < cap; i++) {
        w = snprintf(buf + used, cap - used, "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
        if (w > 0) used += (size_t)w;
    }
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const qb_st_tensor *)a)->name, ((const qb_st_tensor *)b)->name);
}

static int cmp_offsets(const void *a, const void *b) {
    const qb_st_tensor *x = *(const qb_st_tensor *const *)a, *y = *(const qb_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Bound the work jansson will do: count objects and JSON values outside strings. */
static int prescan(const char *h, size_t n, const char *origin) {
    size_t objects = 0, values = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (in_str) {
            if (ch == '\\') i++;
            else if (ch == '"') in_str = false;
            continue;
        }
        if (ch == '"') in_str = true;
        else if (ch == '{') objects++;
        else if (ch == ',' || ch == '[' || ch == ':') values++;
    }
    if (objects > (size_t)QB_ST_MAX_TENSORS + 2)
        return qb_errorf("%s: header has %zu objects, more than the limit of %d tensors", origin, objects,
                         QB_ST_MAX_TENSORS);
    if (values > (size_t)QB_ST_MAX_TENSORS * 24)
        return qb_errorf("%s: header has %zu JSON values, more than the limit %d", origin, values,
                         QB_ST_MAX_TENSORS * 24);
    return 0;
}

static int parse_u64_array(const json_t *arr, const char *origin, const char *name, const char *field,
                           uint64_t *vals, size_t max, size_t *count) {
    if (!json_is_array(arr)) return qb_errorf("%s: tensor \"%.200s\": %s must be an array", origin, name, field);
    size_t n = json_array_size(arr);
    if (n > max)
        return qb_errorf("%s: tensor \"%.200s\": %s has %zu entries (at most %zu)", origin, name, field, n, max);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return qb_errorf("%s: tensor \"%.200s\": %s[%zu] must be a non-negative integer", origin, name, field, i);
        vals[i] = (uint64_t)json_integer_value(v);
    }
    *count = n;
    return 0;
}

static int parse_entry(const char *key, const json_t *v, const char *origin, qb_st_tensor *t) {
    if (!json_is_object(v)) return qb_errorf("%s: tensor \"%.200s\": entry must be an object", origin, key);
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
                 *off = json_object_get(v, "data_offsets");
    if (!dt || !sh || !off)
        return qb_errorf("%s: tensor \"%.200s\": missing %s", origin, key, !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (!json_is_string(dt)) return qb_errorf("%s: tensor \"%.200s\": dtype must be a string", origin, key);
    if (qb_st_dtype_parse(json_string_value(dt), &t->dtype) != 0)
        return qb_errorf("%s: tensor \"%.200s\": unknown dtype \"%.40s\"", origin, key, json_string_value(dt));
    size_t nd = 0, no = 0;
    QB_TRY(parse_u64_array(sh, origin, key, "shape", t->shape, QB_ST_MAX_DIMS, &nd));
    t->ndim = (int)nd;
    uint64_t offs[2];
    QB_TRY(parse_u64_array(off, origin, key, "data_offsets", offs, 2, &no));
    if (no != 2) return qb_errorf("%s: tensor \"%.200s\": data_offsets must be [begin, end]", origin, key);
    t->begin = offs[0];
    t->end = offs[1];
    if (t->end < t->begin)
        return qb_errorf("%s: tensor \"%.200s\": data_offsets end %llu is before begin %llu", origin, key,
                         (unsigned long long)t->end, (unsigned long long)t->begin);
    uint64_t numel = 1, bits;
    for (int i = 0; i < t->ndim; i++) {
        if (__builtin_mul_overflow(numel, t->shape[i], &numel))
            return qb_errorf("%s: tensor \"%.200s\": shape product overflows", origin, key);
    }
    if (__builtin_mul_overflow(numel, (uint64_t)k_dtypes[t->dtype].bits, &bits))
        return qb_errorf("%s: tensor \"%.200s\": byte size (shape x dtype size) overflows", origin, key);
    if (bits % 8 != 0)
        return qb_errorf("%s: tensor \"%.200s\": %llu %s values are not a whole number of bytes", origin, key,
                         (unsigned long long)numel, k_dtypes[t->dtype].name);
    t->numel = numel;
    if (t->end - t->begin != bits / 8)
        return qb_errorf("%s: tensor \"%.200s\": data_offsets span %llu bytes but shape x dtype is %llu bytes",
                         origin, key, (unsigned long long)(t->end - t->begin), (unsigned long long)(bits / 8));
    return 0;
}

static int parse_metadata(const json_t *m, const char *origin, qb_st_file *f) {
    if (!json_is_object(m)) return qb_errorf("%s: __metadata__ must be an object of strings", origin);
    size_t n = json_object_size(m);
    f->meta_keys = calloc(n + 1, sizeof(char *));
    f->meta_values = calloc(n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return qb_errorf("%s: out of memory", origin);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v))
            return qb_errorf("%s: __metadata__: value of \"%.100s\" must be a string", origin, k);
        f->meta_keys[f->n_meta] = strdup(k);
        f->meta_values[f->n_meta] = strdup(json_string_value(v));
        if (!f->meta_keys[f->n_meta] || !f->meta_values[f->n_meta]) return qb_errorf("%s: out of memory", origin);
        f->n_meta++;
    }
    return 0;
}

/* Offsets sorted must tile [0, data_size) exactly. */
static int check_layout(qb_st_file *f) {
    if (f->n_tensors == 0) {
        if (f->data_size != 0)
            return qb_errorf("%s: %llu trailing bytes after the header of a file without tensors", f->origin,
                             (unsigned long long)f->data_size);
        return 0;
    }
    qb_st_tensor **order = malloc(f->n_tensors * sizeof *order);
    if (!order) return qb_errorf("%s: out of memory", f->origin);
    for (size_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, cmp_offsets);
    uint64_t expect = 0;
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && rc == 0; i++) {
        const qb_st_tensor *t = order[i];
        if (t->begin > expect)
            rc = qb_errorf("%s: tensor \"%.200s\": data_offsets begin %llu leaves a gap (previous data ends at %llu)",
                           f->origin, t->name, (unsigned long long)t->begin, (unsigned long long)expect);
        else if (t->begin < expect)
            rc = qb_errorf("%s: tensor \"%.200s\": data_offsets begin %llu overlaps the previous tensor (ends at %llu)",
                           f->origin, t->name, (unsigned long long)t->begin, (unsigned long long)expect);
        else if (t->end > f->data_size)
            rc = qb_errorf("%s: tensor \"%.200s\": data_offsets end %llu runs past the end of the file "
                           "(data buffer is %llu bytes)", f->origin, t->name, (unsigned long long)t->end,
                           (unsigned long long)f->data_size);
        expect = t->end;
    }
    free(order);
    if (rc == 0 && expect != f->data_size)
        rc = qb_errorf("%s: %llu trailing bytes after the last tensor (data buffer %llu bytes, tensors cover %llu)",
                       f->origin, (unsigned long long)(f->data_size - expect), (unsigned long long)f->data_size,
                       (unsigned long long)expect);
    return rc;
}

static int parse_header(const char *h, size_t n, qb_st_file *f) {
    QB_TRY(prescan(h, n, f->origin));
    json_error_t jerr;
    json_t *root = json_loadb(h, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return qb_errorf("%s: header is not valid JSON (byte %d): %s", f->origin, jerr.position, jerr.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = qb_errorf("%s: header must be a JSON object", f->origin);
        goto done;
    }
    size_t count = json_object_size(root);
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = qb_errorf("%s: out of memory for %zu tensors", f->origin, count);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(v, f->origin, f);
        } else {
            qb_st_tensor *t = &f->tensors[f->n_tensors];
            rc = parse_entry(key, v, f->origin, t);
            if (rc == 0) {
                t->name = strdup(key);
                if (!t->name) rc = qb_errorf("%s: out of memory", f->origin);
                else f->n_tensors++;
            }
        }
        if (rc != 0) goto done;
    }
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_name);
    for (size_t i = 1; i < f->n_tensors; i++) {
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            rc = qb_errorf("%s: tensor \"%.200s\" appears twice", f->origin, f->tensors[i].name);
            goto done;
        }
    }
    rc = check_layout(f);
done:
    json_decref(root);
    return rc;
}

static int parse_impl(const void *buf, size_t len, const char *origin, qb_st_file *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->origin, sizeof out->origin, "%s", origin);
    const uint8_t *b = buf;
    if (len < 8) return qb_errorf("%s: file is %zu bytes, shorter than the 8-byte header length", origin, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
    if (n > QB_ST_MAX_HEADER)
        return qb_errorf("%s: header length (the first 8 bytes) is above the limit %u: not a safetensors file", origin,
                         QB_ST_MAX_HEADER); /* the value itself is not shown: it would echo 8 bytes of any file */
    if (n > len - 8)
        return qb_errorf("%s: header length (the first 8 bytes) runs past the end of the file (%zu bytes)", origin,
                         len);
    out->data = b + 8 + n;
    out->data_size = len - 8 - n;
    if (parse_header((const char *)b + 8, (size_t)n, out) != 0) {
        qb_st_close(out);
        return -1;
    }
    return 0;
}

int qb_st_open(const char *path, qb_st_file *out) { return qb_st_open_named(path, path, out); }

static int open_fd_impl(int fd, const char *origin, qb_st_file *out);

static int open_named_impl(const char *path, const char *origin, qb_st_file *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return qb_errorf("%s: cannot open: %s", origin, strerror(errno));
    return open_fd_impl(fd, origin, out);
}

static int open_fd_impl(int fd, const char *origin, qb_st_file *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qb_errorf("%s: cannot stat: %s", origin, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qb_errorf("%s: not a regular file", origin);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return qb_errorf("%s: file is %zu bytes, shorter than the 8-byte header length", origin, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return qb_errorf("%s: mmap of %zu bytes failed: %s", origin, size, strerror(e));
    if (qb_st_parse(map, size, origin, out) != 0) {
        munmap(map, size);
        return -1;
    }
    out->map = map;
    out->map_len = size;
    return 0;
}

void qb_st_close(qb_st_file *f) {
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    if (f->map) munmap(f->map, f->map_len);
    memset(f, 0, sizeof *f);
}

const qb_st_tensor *qb_st_find(const qb_st_file *f, const char *name) {
    if (f->n_tensors == 0) return NULL;
    qb_st_tensor key;
    key.name = (char *)name;
    return bsearch(&key, f->tensors, f->n_tensors, sizeof key, cmp_name);
}

const char *qb_st_metadata(const qb_st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

int qb_st_parse(const void *buf, size_t len, const char *origin, qb_st_file *out) {
    if (parse_impl(buf, len, origin, out) != 0) return qb_error_make_printable();
    return 0;
}

int qb_st_open_named(const char *path, const char *origin, qb_st_file *out) {
    if (open_named_impl(path, origin, out) != 0) return qb_error_make_printable();
    return 0;
}

int qb_st_open_fd(int fd, const char *origin, qb_st_file *out) {
    if (open_fd_impl(fd, origin, out) != 0) return qb_error_make_printable();
    return 0;
}

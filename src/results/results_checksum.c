/* results_checksum.c - the content checksum of a results file (see results_schema.h).
 *
 * HDF5's newest file format checksums the metadata (superblock, object headers, B-trees, heaps) but not the
 * data of a dataset, so a flipped byte inside /runs or /generated_tokens would read back as a different
 * number without any error. The writer stores this CRC-64/XZ of the whole content as the root attribute
 * content_crc64; the reader recomputes it from what it read and refuses a file that does not match.
 * The bytes fed are a fixed serialization (little-endian numbers, strings as length + bytes up to their
 * first NUL, fields in schema order), so the value does not depend on padding or on HDF5's type layout.
 */
#include <stdint.h>
#include <string.h>

#include "results/results_schema.h"

typedef struct {
    uint64_t table[256];
    uint64_t crc;
} crc64;

static void crc64_init(crc64 *c) {
    const uint64_t poly = 0xC96C5795D7870F42ull; /* ECMA-182, reflected (CRC-64/XZ) */
    for (unsigned i = 0; i < 256; i++) {
        uint64_t v = i;
        for (int k = 0; k < 8; k++) v = v & 1 ? (v >> 1) ^ poly : v >> 1;
        c->table[i] = v;
    }
    c->crc = ~0ull;
}

static void feed_bytes(crc64 *c, const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t crc = c->crc;
    for (size_t i = 0; i < n; i++) crc = c->table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    c->crc = crc;
}

static void feed_u64(crc64 *c, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    feed_bytes(c, b, sizeof b);
}

static void feed_u32(crc64 *c, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    feed_bytes(c, b, sizeof b);
}

static void feed_f64(crc64 *c, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    feed_u64(c, bits);
}

/* A string of at most max bytes (a fixed-size field may lack its NUL). */
static void feed_string(crc64 *c, const char *s, size_t max) {
    size_t n = s ? strnlen(s, max) : 0;
    feed_u64(c, n);
    feed_bytes(c, s, n);
}

/* present (NULL: all): the fields the file has; an optional field added after a file was written is not fed,
 * so the file's checksum, made without it, still matches. */
static void feed_table(crc64 *c, const qb_table_schema *t, const void *rows, int64_t n, const unsigned char *present) {
    feed_u64(c, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        const char *row = (const char *)rows + (size_t)i * t->row_size;
        for (int k = 0; k < t->n_fields; k++) {
            const qb_field *f = &t->fields[k];
            if (present && !present[k]) continue;
            const char *at = row + f->offset;
            int32_t i32;
            uint64_t u64;
            double f64;
            switch (f->kind) {
            case QB_FIELD_STRING: feed_string(c, at, f->size); break;
            case QB_FIELD_I32: memcpy(&i32, at, sizeof i32); feed_u32(c, (uint32_t)i32); break;
            case QB_FIELD_I64:
            case QB_FIELD_U64: memcpy(&u64, at, sizeof u64); feed_u64(c, u64); break;
            case QB_FIELD_F64: memcpy(&f64, at, sizeof f64); feed_f64(c, f64); break;
            }
        }
    }
}

uint64_t qb_results_checksum(int schema_version, double copy_bandwidth_gbps, const char *const *meta_values,
                             const qb_results_tables *t) {
    crc64 c;
    crc64_init(&c);
    feed_u32(&c, (uint32_t)schema_version);
    feed_f64(&c, copy_bandwidth_gbps);
    for (int i = 0; i < qb_n_meta_strings; i++) feed_string(&c, meta_values[i], SIZE_MAX);
    feed_table(&c, &qb_cells_schema, t->cells, t->n_cells, t->fields_known ? t->cell_fields_present : NULL);
    feed_table(&c, &qb_runs_schema, t->runs, t->n_runs, t->fields_known ? t->run_fields_present : NULL);
    feed_table(&c, &qb_rank_memory_schema, t->memory, t->n_memory, NULL);
    feed_u64(&c, (uint64_t)t->n_steps);
    for (int64_t i = 0; i < t->n_steps; i++) feed_f64(&c, t->steps[i]);
    feed_u64(&c, (uint64_t)t->n_tokens);
    for (int64_t i = 0; i < t->n_tokens; i++) feed_u32(&c, (uint32_t)t->tokens[i]);
    return ~c.crc;
}

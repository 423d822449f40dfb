/* results_columns_test.c - the column list (src/results/cell_columns.h) against the /cells HDF5 compound.
 *
 * A mistake in the list or in what is made from it fails here, before any file is written:
 *   - the shipped fields (the layout of schema version 1 with its later optional fields, frozen below) are all
 *     still there, in the same order, with the same HDF5 class and size and the same optional flag; a new column
 *     may come anywhere, and only as an optional one;
 *   - names are unique; row offsets rise, do not overlap and stay inside the row; the in-memory compound type has
 *     exactly the table's members at the table's offsets and sizes, and packed (the file's type) it lays the
 *     fields out one after another in table order (what readers of older files and analysis/ see);
 *   - every value taken from the record lies inside qb_cell_record, no two columns share record bytes (except the
 *     GiB column, which reads the bytes column), and a record copied into a row and back keeps every column;
 *   - an OPT_NA column missing from a file, or any of them in a file without energy_source, reads as not
 *     measured (NaN, -1, "unavailable: not recorded"); a status that is no name is refused.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_schema.h"

static int g_failures;

static void fail(const char *what, const char *field) {
    if (g_failures++ < 20) fprintf(stderr, "FAIL: %s: %s\n", field, what);
}

/* The /cells fields as shipped: name, kind (S string, i int32, l int64, u uint64, d float64), string bytes,
 * optional. Append-only knowledge: a field listed here must stay as it is. */
typedef struct {
    const char *name;
    char kind;
    size_t size;
    int optional;
} shipped_field;

static const shipped_field shipped[] = {
    {"model", 'S', 128, 0}, {"quant", 'S', 16, 0}, {"backend", 'S', 16, 0}, {"context_len", 'i', 0, 0},
    {"gen_len", 'i', 0, 0}, {"tp_size", 'i', 0, 0}, {"n_ranks", 'i', 0, 0}, {"repetitions", 'i', 0, 0},
    {"warmup", 'i', 0, 0}, {"seed", 'u', 0, 0}, {"prompt_rule", 'S', 64, 0}, {"rope_scaling", 'S', 32, 1},
    {"engine_options", 'S', 256, 1}, {"engine_choices", 'S', 512, 1}, {"status", 'S', 16, 0},
    {"reason", 'S', 512, 0}, {"speed_mean", 'd', 0, 0}, {"speed_std", 'd', 0, 0}, {"speed_min", 'd', 0, 0},
    {"speed_max", 'd', 0, 0}, {"ttft_s_mean", 'd', 0, 0}, {"ttft_s_std", 'd', 0, 0}, {"ttft_s_min", 'd', 0, 0},
    {"ttft_s_max", 'd', 0, 0}, {"tpot_s_mean", 'd', 0, 0}, {"tpot_s_std", 'd', 0, 0}, {"tpot_s_min", 'd', 0, 0},
    {"tpot_s_max", 'd', 0, 0}, {"decode_tok_per_s_mean", 'd', 0, 0}, {"decode_tok_per_s_std", 'd', 0, 0},
    {"decode_tok_per_s_min", 'd', 0, 0}, {"decode_tok_per_s_max", 'd', 0, 0}, {"warmup_total_s", 'd', 0, 0},
    {"speed_cv", 'd', 0, 1}, {"noisy", 'i', 0, 1}, {"implied_bandwidth_gbps", 'd', 0, 1},
    {"copy_bandwidth_gbps", 'd', 0, 1}, {"checks", 'S', 512, 1}, {"peak_mem_total_bytes", 'd', 0, 0},
    {"peak_mem_total_gib", 'd', 0, 0}, {"weights_bytes_rank0", 'd', 0, 0}, {"kv_bytes_rank0", 'd', 0, 0},
    {"energy_source", 'S', 96, 1}, {"energy_j", 'd', 0, 1}, {"joules_per_token", 'd', 0, 1},
    {"power_mean_w", 'd', 0, 1}, {"power_peak_w", 'd', 0, 1}, {"sm_clock_mhz", 'd', 0, 1},
    {"mem_clock_mhz", 'd', 0, 1}, {"temperature_max_c", 'd', 0, 1}, {"throttled", 'i', 0, 1},
    {"throttle_reasons", 'l', 0, 1}, {"n_runs", 'i', 0, 0}, {"first_run", 'l', 0, 0},
};

static size_t field_bytes(const qb_field *f) {
    return f->kind == QB_FIELD_STRING ? f->size : f->kind == QB_FIELD_I32 ? 4 : 8;
}

static char kind_letter(qb_field_kind k) {
    return k == QB_FIELD_STRING ? 'S'
           : k == QB_FIELD_I32  ? 'i'
           : k == QB_FIELD_I64  ? 'l'
           : k == QB_FIELD_U64  ? 'u'
                                : 'd';
}

static int is_shipped(const char *name) {
    for (size_t s = 0; s < sizeof shipped / sizeof *shipped; s++)
        if (!strcmp(shipped[s].name, name)) return 1;
    return 0;
}

static void check_shipped(const qb_table_schema *t) {
    int at = 0;
    for (size_t s = 0; s < sizeof shipped / sizeof *shipped; s++) {
        while (at < t->n_fields && strcmp(t->fields[at].name, shipped[s].name) != 0) {
            if (is_shipped(t->fields[at].name)) {
                fail("a shipped field out of its order (the file order may not change)", t->fields[at].name);
                return;
            }
            if (!t->fields[at].optional) fail("a column added after version 1 must be optional (OPT or OPT_NA)",
                                              t->fields[at].name);
            at++;
        }
        if (at == t->n_fields) {
            fail("shipped field missing, or moved before an earlier one", shipped[s].name);
            return;
        }
        const qb_field *f = &t->fields[at++];
        if (kind_letter(f->kind) != shipped[s].kind) fail("kind differs from the shipped one", f->name);
        if (f->kind == QB_FIELD_STRING && f->size != shipped[s].size) fail("string size differs", f->name);
        if (f->optional != shipped[s].optional) fail("optional flag differs from the shipped one", f->name);
    }
    for (; at < t->n_fields; at++)
        if (!t->fields[at].optional) fail("a column added after version 1 must be optional", t->fields[at].name);
}

static void check_row_layout(const qb_table_schema *t) {
    size_t end = 0;
    for (int k = 0; k < t->n_fields; k++) {
        const qb_field *f = &t->fields[k];
        for (int j = 0; j < k; j++)
            if (!strcmp(t->fields[j].name, f->name)) fail("name used twice", f->name);
        if (f->offset < end) fail("row offset overlaps the previous field or goes back", f->name);
        end = f->offset + field_bytes(f);
        if (end > t->row_size) fail("field ends past the row", f->name);
        if (f->kind == QB_FIELD_STRING && (f->size < 2 || f->size > 65536)) fail("string size out of range", f->name);
    }
}

static void check_hdf5_types(const qb_table_schema *t) {
    hid_t memory = qb_schema_memory_type(t);
    if (memory < 0) {
        fail("building the memory compound type failed", t->name);
        return;
    }
    if (H5Tget_nmembers(memory) != t->n_fields) fail("memory type has another number of members", t->name);
    if (H5Tget_size(memory) != t->row_size) fail("memory type size is not the row size", t->name);
    hid_t packed = H5Tcopy(memory);
    if (packed < 0 || H5Tpack(packed) < 0) fail("packing the type failed", t->name);
    size_t file_offset = 0;
    for (int k = 0; k < t->n_fields; k++) {
        const qb_field *f = &t->fields[k];
        int index = H5Tget_member_index(memory, f->name);
        if (index < 0) {
            fail("not a member of the memory type", f->name);
            continue;
        }
        hid_t member = H5Tget_member_type(memory, (unsigned)index);
        H5T_class_t want = f->kind == QB_FIELD_STRING ? H5T_STRING : f->kind == QB_FIELD_F64 ? H5T_FLOAT : H5T_INTEGER;
        if (H5Tget_member_offset(memory, (unsigned)index) != f->offset) fail("member offset is not the row's", f->name);
        if (H5Tget_class(member) != want) fail("member class differs from the field kind", f->name);
        if (H5Tget_size(member) != field_bytes(f)) fail("member size differs from the field's", f->name);
        if (f->kind == QB_FIELD_U64 && H5Tget_sign(member) != H5T_SGN_NONE) fail("uint64 member is signed", f->name);
        if ((f->kind == QB_FIELD_I32 || f->kind == QB_FIELD_I64) && H5Tget_sign(member) != H5T_SGN_2)
            fail("integer member is unsigned", f->name);
        H5Tclose(member);
        int packed_index = packed < 0 ? -1 : H5Tget_member_index(packed, f->name);
        if (packed_index < 0 || H5Tget_member_offset(packed, (unsigned)packed_index) != file_offset)
            fail("in the file type, not right after the previous field (file order is table order)", f->name);
        file_offset += field_bytes(f);
    }
    if (packed >= 0 && H5Tget_size(packed) != file_offset) fail("file type has bytes besides the fields", t->name);
    if (packed >= 0) H5Tclose(packed);
    H5Tclose(memory);
}

static void check_record_offsets(const qb_table_schema *t) {
    for (int k = 0; k < t->n_fields; k++) {
        const qb_field *f = &t->fields[k];
        if (f->source == QB_SOURCE_NONE) continue;
        size_t size = f->source == QB_SOURCE_STATUS_NAME ? sizeof(qb_cell_status) : field_bytes(f);
        if (f->record_offset + size > sizeof(qb_cell_record)) fail("record offset past the record", f->name);
        if (f->source == QB_SOURCE_GIB) continue;
        for (int j = 0; j < k; j++) {
            const qb_field *g = &t->fields[j];
            if (g->source == QB_SOURCE_NONE || g->source == QB_SOURCE_GIB) continue;
            size_t gsize = g->source == QB_SOURCE_STATUS_NAME ? sizeof(qb_cell_status) : field_bytes(g);
            if (f->record_offset < g->record_offset + gsize && g->record_offset < f->record_offset + size)
                fail("shares record bytes with another column", f->name);
        }
    }
}

/* Every column set to a value of its own, copied into a row and back. */
static void check_round_trip(const qb_table_schema *t) {
    static qb_cell_record c, back;
    static qb_cell_row row;
    memset(&c, 0, sizeof c);
    for (int k = 0; k < t->n_fields; k++) {
        const qb_field *f = &t->fields[k];
        char *at = (char *)&c + f->record_offset;
        if (f->source != QB_SOURCE_MEMBER) continue;
        if (f->kind == QB_FIELD_STRING) snprintf(at, f->size, "v-%s", f->name);
        else if (f->kind == QB_FIELD_I32) *(int32_t *)at = 1000 + k;
        else if (f->kind == QB_FIELD_F64) *(double *)at = 0.5 + k;
        else *(int64_t *)at = ((int64_t)1 << 40) + k;
    }
    c.status = QB_CELL_DOES_NOT_FIT;
    c.peak_mem_total = 3.0 * 1024 * 1024 * 1024;
    qb_cell_to_row(&c, 77, &row);
    if (strcmp(row.status, "DOES_NOT_FIT") != 0) fail("status not written as its name", "status");
    if (row.peak_mem_total_gib != 3.0 || row.peak_mem_total_bytes != c.peak_mem_total)
        fail("bytes or GiB column wrong", "peak_mem_total_gib");
    if (row.first_run != 77) fail("first_run is not the writer's count", "first_run");
    if (strcmp(row.model, "v-model") != 0 || row.n_runs != c.n_runs || row.throttle_reasons != c.throttle_reasons ||
        row.speed_std != c.speed.stddev)
        fail("row values differ from the record's", "row");
    memset(&back, 0, sizeof back);
    if (qb_cell_from_row(&row, NULL, &back) != 0) fail("a known status refused", "status");
    for (int k = 0; k < t->n_fields; k++) {
        const qb_field *f = &t->fields[k];
        size_t size = f->source == QB_SOURCE_STATUS_NAME ? sizeof(qb_cell_status) : field_bytes(f);
        if (f->source != QB_SOURCE_MEMBER && f->source != QB_SOURCE_STATUS_NAME) continue;
        if (memcmp((char *)&c + f->record_offset, (char *)&back + f->record_offset, size) != 0)
            fail("value changed on the way into a row and back", f->name);
    }

    /* not measured: a file without one OPT_NA field, then one without energy_source */
    unsigned char present[QB_TABLE_FIELDS_MAX];
    int tried = 0;
    for (int k = 0; k < t->n_fields; k++) {
        const qb_field *f = &t->fields[k];
        if (!f->not_measured || f->kind == QB_FIELD_STRING) continue;
        memset(present, 1, sizeof present);
        present[k] = 0;
        memset(&back, 0, sizeof back);
        qb_cell_from_row(&row, present, &back);
        const char *at = (const char *)&back + f->record_offset;
        int ok = f->kind == QB_FIELD_F64 ? isnan(*(const double *)at)
                 : f->kind == QB_FIELD_I32 ? *(const int32_t *)at == -1 : *(const int64_t *)at == -1;
        if (!ok) fail("missing from the file, but not read as not measured", f->name);
        tried++;
    }
    if (!tried) fail("no OPT_NA number column to try", "energy_j");
    row.energy_source[0] = '\0';
    memset(&back, 0, sizeof back);
    qb_cell_from_row(&row, NULL, &back);
    if (strcmp(back.energy_source, "unavailable: not recorded") != 0 || !isnan(back.joules_per_token) ||
        back.throttled != -1 || back.throttle_reasons != -1)
        fail("a file without energy_source must read as not measured", "energy_source");
    if (back.speed_cv != c.speed_cv) fail("an OPT column changed by the energy rule", "speed_cv");
    snprintf(row.status, sizeof row.status, "MAYBE");
    if (qb_cell_from_row(&row, NULL, &back) == 0) fail("an unknown status accepted", "status");
}

int main(void) {
    const qb_table_schema *t = &qb_cells_schema;
    check_shipped(t);
    check_row_layout(t);
    check_hdf5_types(t);
    check_record_offsets(t);
    check_round_trip(t);
    printf("%s: %d fields, row %zu bytes, record %zu bytes: %s\n", t->name, t->n_fields, t->row_size,
           sizeof(qb_cell_record), g_failures ? "FAILED" : "consistent");
    return g_failures ? 1 : 0;
}

/* cell_columns.c - the /cells table of the results file made from the column list (cell_columns.h): its fields
 * (qb_cells_schema: names, row offsets, HDF5 kinds, where each value is in the record) and the copy of a record
 * into a row and back (see results_schema.h). Nothing here names a column, except the rule for files written
 * before the energy columns existed.
 */
#include "results/results_schema.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* FLAGS of cell_columns.h: optional in older files, and whether "not measured" has a value of its own. */
#define OPTIONAL_REQ 0
#define OPTIONAL_OPT 1
#define OPTIONAL_OPT_NA 1
#define NOT_MEASURED_REQ 0
#define NOT_MEASURED_OPT 0
#define NOT_MEASURED_OPT_NA 1

#define ROW(m) offsetof(qb_cell_row, m)
#define REC(m) offsetof(qb_cell_record, m)
#define FIELD(name, row_offset, kind, size, flags, source, record_offset) \
    {name, row_offset, kind, size, OPTIONAL_##flags, NOT_MEASURED_##flags, source, record_offset},

#define FIELD_STR(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_STRING, arg, flags, QB_SOURCE_MEMBER, REC(m))
#define FIELD_I32(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_I32, 0, flags, QB_SOURCE_MEMBER, REC(m))
#define FIELD_I64(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_I64, 0, flags, QB_SOURCE_MEMBER, REC(m))
#define FIELD_U64(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_U64, 0, flags, QB_SOURCE_MEMBER, REC(m))
#define FIELD_F64(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_F64, 0, flags, QB_SOURCE_MEMBER, REC(m))
#define FIELD_STATS(m, arg, flags)                                                          \
    FIELD(#m "_mean", ROW(m##_mean), QB_FIELD_F64, 0, flags, QB_SOURCE_MEMBER, REC(m.mean))  \
    FIELD(#m "_std", ROW(m##_std), QB_FIELD_F64, 0, flags, QB_SOURCE_MEMBER, REC(m.stddev)) \
    FIELD(#m "_min", ROW(m##_min), QB_FIELD_F64, 0, flags, QB_SOURCE_MEMBER, REC(m.min))    \
    FIELD(#m "_max", ROW(m##_max), QB_FIELD_F64, 0, flags, QB_SOURCE_MEMBER, REC(m.max))
#define FIELD_STATUS(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_STRING, arg, flags, QB_SOURCE_STATUS_NAME, REC(m))
#define FIELD_F64_OF(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_F64, 0, flags, QB_SOURCE_MEMBER, REC(arg))
#define FIELD_GIB_OF(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_F64, 0, flags, QB_SOURCE_GIB, REC(arg))
#define FIELD_RUN_ROW(m, arg, flags) FIELD(#m, ROW(m), QB_FIELD_I64, 0, flags, QB_SOURCE_NONE, 0)
#define CELL_FIELD(kind, m, arg, flags) FIELD_##kind(m, arg, flags)

static const qb_field cell_fields[] = {QB_CELL_COLUMNS(CELL_FIELD)};

const qb_table_schema qb_cells_schema = {"/cells", cell_fields, (int)(sizeof cell_fields / sizeof *cell_fields),
                                         sizeof(qb_cell_row)};
_Static_assert(sizeof cell_fields / sizeof *cell_fields <= QB_TABLE_FIELDS_MAX, "raise QB_TABLE_FIELDS_MAX");

/* A record member copied as it is has the size of its field (both come from the same line of the list). */
#define SAME_SIZE(m) _Static_assert(sizeof(((qb_cell_record *)0)->m) == sizeof(((qb_cell_row *)0)->m), #m);
#define CHECK_STR(m, arg, flags) SAME_SIZE(m)
#define CHECK_I32(m, arg, flags) SAME_SIZE(m)
#define CHECK_I64(m, arg, flags) SAME_SIZE(m)
#define CHECK_U64(m, arg, flags) SAME_SIZE(m)
#define CHECK_F64(m, arg, flags) SAME_SIZE(m)
#define CHECK_STATS(m, arg, flags) _Static_assert(sizeof(((qb_cell_record *)0)->m.mean) == sizeof(double), #m);
#define CHECK_STATUS(m, arg, flags)
#define CHECK_F64_OF(m, arg, flags) _Static_assert(sizeof(((qb_cell_record *)0)->arg) == sizeof(double), #m);
#define CHECK_GIB_OF(m, arg, flags) _Static_assert(sizeof(((qb_cell_record *)0)->arg) == sizeof(double), #m);
#define CHECK_RUN_ROW(m, arg, flags)
#define CHECK_FIELD(kind, m, arg, flags) CHECK_##kind(m, arg, flags)
QB_CELL_COLUMNS(CHECK_FIELD)

static size_t number_size(qb_field_kind kind) { return kind == QB_FIELD_I32 ? sizeof(int32_t) : sizeof(int64_t); }

/* At most size - 1 bytes of src (a record's string may fill its member without a NUL), the rest zeros. */
static void copy_string(char *dst, size_t size, const char *src) {
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    memset(dst + n, 0, size - n);
}

void qb_cell_to_row(const qb_cell_record *c, int64_t first_run, qb_cell_row *row) {
    memset(row, 0, sizeof *row);
    for (int k = 0; k < qb_cells_schema.n_fields; k++) {
        const qb_field *f = &cell_fields[k];
        const char *from = (const char *)c + f->record_offset;
        char *to = (char *)row + f->offset;
        switch (f->source) {
        case QB_SOURCE_MEMBER:
            if (f->kind == QB_FIELD_STRING) copy_string(to, f->size, from);
            else memcpy(to, from, number_size(f->kind));
            break;
        case QB_SOURCE_STATUS_NAME: {
            qb_cell_status status;
            memcpy(&status, from, sizeof status);
            copy_string(to, f->size, qb_cell_status_name(status));
            break;
        }
        case QB_SOURCE_GIB: {
            double v;
            memcpy(&v, from, sizeof v);
            v /= 1024.0 * 1024.0 * 1024.0;
            memcpy(to, &v, sizeof v);
            break;
        }
        case QB_SOURCE_NONE: break;
        }
    }
    row->first_run = first_run;
}

static int status_from_name(const char *name, qb_cell_status *out) {
    for (int s = QB_CELL_VALID; s <= QB_CELL_FAILED; s++)
        if (strcmp(name, qb_cell_status_name((qb_cell_status)s)) == 0) {
            *out = (qb_cell_status)s;
            return 0;
        }
    return -1;
}

/* An OPT_NA column's "not measured": NaN, -1, or the string below. */
static void set_not_measured(const qb_field *f, char *to) {
    static const char text[] = "unavailable: not recorded";
    double nan_value = NAN;
    if (f->kind == QB_FIELD_STRING) copy_string(to, f->size, text);
    else if (f->kind == QB_FIELD_F64) memcpy(to, &nan_value, sizeof nan_value);
    else memset(to, 0xff, number_size(f->kind)); /* -1 */
}

int qb_cell_from_row(const qb_cell_row *row, const unsigned char *present, qb_cell_record *c) {
    /* A file from before the energy columns (no energy_source) did not measure any OPT_NA column. */
    int before_energy = row->energy_source[0] == '\0';
    int status = 0;
    for (int k = 0; k < qb_cells_schema.n_fields; k++) {
        const qb_field *f = &cell_fields[k];
        const char *from = (const char *)row + f->offset;
        char *to = (char *)c + f->record_offset;
        if (f->source == QB_SOURCE_NONE || f->source == QB_SOURCE_GIB) continue; /* not read back */
        if (f->not_measured && (before_energy || (present && !present[k]))) {
            set_not_measured(f, to);
        } else if (f->source == QB_SOURCE_STATUS_NAME) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(f->size < sizeof name ? f->size : sizeof name) - 1, from);
            qb_cell_status s = QB_CELL_FAILED;
            if (status_from_name(name, &s) != 0) status = -1;
            memcpy(to, &s, sizeof s);
        } else if (f->kind == QB_FIELD_STRING) {
            copy_string(to, f->size, from);
        } else {
            memcpy(to, from, number_size(f->kind));
        }
    }
    return status;
}

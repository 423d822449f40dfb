/* cell_writers.c - cells as md, csv, json or jsonl, driven by the /cells field table of the column list
 * (cell_columns.h; see cell_writers.h). */
#include "results/cell_writers.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/printable.h"
#include "results/results_schema.h"
#include "results/table.h"
#include "util/error.h"

static const char *const format_names[] = {"md", "csv", "json", "jsonl"};

int qb_output_format_parse(const char *name, qb_output_format *out) {
    for (int i = 0; i < (int)(sizeof format_names / sizeof *format_names); i++)
        if (!strcmp(name, format_names[i])) {
            *out = (qb_output_format)i;
            return 0;
        }
    char shown[256];
    return qb_errorf("unknown output format '%s' (" QB_OUTPUT_FORMATS ")", qb_printable(name, shown, sizeof shown));
}

const char *qb_output_format_name(qb_output_format format) {
    return format >= QB_OUTPUT_MD && format <= QB_OUTPUT_JSONL ? format_names[format] : "md";
}

/* The shortest "%.Ng" that reads back as the same double, with ".0" added to an integral value so that a
 * float column never looks like an integer one. Non-finite: "nan", "inf", "-inf". */
static void format_double(double v, char *out, size_t cap) {
    if (!isfinite(v)) {
        snprintf(out, cap, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, cap, "%.*g", digits, v);
        if (strtod(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".e")) strncat(out, ".0", cap - strlen(out) - 1);
}

/* A field's text: numbers formatted, strings made printable (io/printable.h); *is_string says which. */
static void field_text(const qb_field *field, const void *row, char *out, size_t cap, int *is_string) {
    const char *at = (const char *)row + field->offset;
    *is_string = field->kind == QB_FIELD_STRING;
    switch (field->kind) {
    case QB_FIELD_STRING: {
        char text[1024]; /* the longest string field is 512 bytes: copy it NUL-terminated */
        size_t n = field->size < sizeof text ? field->size : sizeof text;
        snprintf(text, sizeof text, "%.*s", (int)(n - 1), at);
        qb_printable(text, out, cap);
        break;
    }
    case QB_FIELD_I32: { int32_t v; memcpy(&v, at, sizeof v); snprintf(out, cap, "%d", (int)v); break; }
    case QB_FIELD_I64: { int64_t v; memcpy(&v, at, sizeof v); snprintf(out, cap, "%lld", (long long)v); break; }
    case QB_FIELD_U64: { uint64_t v; memcpy(&v, at, sizeof v); snprintf(out, cap, "%llu", (unsigned long long)v); break; }
    case QB_FIELD_F64: { double v; memcpy(&v, at, sizeof v); format_double(v, out, cap); break; }
    }
}

/* RFC 4180: a field holding a comma, quote, CR or LF, or starting or ending with a blank, is quoted, with
 * quotes doubled. */
static void write_csv_text(FILE *f, const char *s) {
    size_t n = strlen(s);
    int quote = strpbrk(s, ",\"\r\n") != NULL || (n > 0 && (s[0] == ' ' || s[n - 1] == ' '));
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p); /* none left after qb_printable; kept safe */
        else fputc(*p, f);
    }
    fputc('"', f);
}

#define QB_FIELD_TEXT_MAX 4096 /* a 512-byte string escaped 4 bytes per byte, with room */

static void write_csv(FILE *f, const qb_table_schema *t, const qb_cell_row *rows, int n) {
    for (int k = 0; k < t->n_fields; k++) fprintf(f, "%s%s", k ? "," : "", t->fields[k].name);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < t->n_fields; k++) {
            char text[QB_FIELD_TEXT_MAX];
            int is_string;
            field_text(&t->fields[k], &rows[i], text, sizeof text, &is_string);
            if (k) fputc(',', f);
            if (is_string) write_csv_text(f, text);
            else fputs(text, f);
        }
        fputc('\n', f);
    }
}

static void write_json_object(FILE *f, const qb_table_schema *t, const qb_cell_row *row) {
    fputc('{', f);
    for (int k = 0; k < t->n_fields; k++) {
        char text[QB_FIELD_TEXT_MAX];
        int is_string;
        field_text(&t->fields[k], row, text, sizeof text, &is_string);
        if (k) fputs(", ", f);
        write_json_string(f, t->fields[k].name);
        fputs(": ", f);
        if (is_string) write_json_string(f, text);
        else if (t->fields[k].kind == QB_FIELD_F64 && (text[0] == 'n' || strstr(text, "inf"))) fputs("null", f);
        else fputs(text, f);
    }
    fputc('}', f);
}

int qb_cells_write(FILE *f, qb_output_format format, const qb_cell_record *cells, int n_cells) {
    if (format == QB_OUTPUT_MD) {
        qb_table_print(f, cells, n_cells);
    } else {
        qb_cell_row *rows = NULL;
        QB_TRY(qb_results_cell_rows(qb_output_format_name(format), cells, n_cells, &rows));
        const qb_table_schema *t = &qb_cells_schema;
        if (format == QB_OUTPUT_CSV) write_csv(f, t, rows, n_cells);
        if (format == QB_OUTPUT_JSON) fputc('[', f);
        for (int i = 0; format != QB_OUTPUT_CSV && i < n_cells; i++) {
            if (format == QB_OUTPUT_JSON) fputs(i ? ",\n" : "\n", f);
            write_json_object(f, t, &rows[i]);
            if (format == QB_OUTPUT_JSONL) fputc('\n', f);
        }
        if (format == QB_OUTPUT_JSON) fputs(n_cells ? "\n]\n" : "]\n", f);
        free(rows);
    }
    if (fflush(f) != 0 || ferror(f)) return qb_errorf("writing the cells as %s: %s", qb_output_format_name(format),
                                                      strerror(errno ? errno : EIO));
    return 0;
}

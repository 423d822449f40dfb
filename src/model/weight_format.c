/* weight_format.c - the table of weight formats and its accessors (see weight_format.h). Adding a format's
 * host side starts with one row here. */
#include "model/weight_format.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

static const qb_weight_format_info k_formats[QB_QUANT_COUNT] = {
    {QB_QUANT_BF16, "bf16", "BF16", NULL, 16, 0, QB_PACK_DENSE, 1, false, false, false, 0,
     1, {"weight"}, "gemv (kernels/gemv.cuh, gemm.cuh; CPU engine/cpu_ops.c)"},
    {QB_QUANT_GPTQ_INT8, "gptq-int8", "GPTQ-Int8", "gptq", 8, 128, QB_PACK_GPTQ, 4, true, true, true, 2,
     4, {"qweight", "qzeros", "scales", "g_idx"}, "gemv-quant (kernels/gemv_quant*.cuh; CPU engine/cpu_quant_ops.c)"},
    {QB_QUANT_GPTQ_INT4, "gptq-int4", "GPTQ-Int4", "gptq", 4, 128, QB_PACK_GPTQ, 8, true, true, true, 2,
     4, {"qweight", "qzeros", "scales", "g_idx"}, "gemv-quant (kernels/gemv_quant*.cuh; CPU engine/cpu_quant_ops.c)"},
    {QB_QUANT_AWQ, "awq", "AWQ", "awq", 4, 128, QB_PACK_AWQ, 8, false, false, false, 2,
     3, {"qweight", "qzeros", "scales"}, "gemv-quant (kernels/gemv_quant*.cuh; CPU engine/cpu_quant_ops.c)"},
};

const qb_weight_format_info *qb_format_info(qb_quant q) {
    if ((int)q < 0 || q >= QB_QUANT_COUNT) return NULL;
    return &k_formats[q];
}

const char *qb_quant_name(qb_quant q) {
    const qb_weight_format_info *f = qb_format_info(q);
    return f ? f->name : "unknown";
}

const char *qb_quant_name_list(void) {
    static char list[256];
    if (!list[0]) {
        size_t used = 0;
        for (int i = 0; i < QB_QUANT_COUNT; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", k_formats[i].name);
    }
    return list;
}

int qb_quant_parse(const char *s, qb_quant *out) {
    for (int i = 0; i < QB_QUANT_COUNT; i++) {
        if (s && strcmp(s, k_formats[i].name) == 0) {
            *out = (qb_quant)i;
            return 0;
        }
    }
    return qb_errorf("unknown quantization \"%.60s\" (%s)", s ? s : "", qb_quant_name_list());
}

int qb_quant_from_checkpoint(const char *quant_method, int bits, qb_quant *out) {
    for (int i = 0; i < QB_QUANT_COUNT; i++) {
        const qb_weight_format_info *f = &k_formats[i];
        if (f->quant_method && quant_method && strcasecmp(f->quant_method, quant_method) == 0 && f->bits == bits) {
            *out = f->id;
            return 0;
        }
    }
    return -1;
}

const char *qb_quant_bits_list(const char *quant_method) {
    /* messages name the method as the checkpoint spells it; the list is every bits value of that method, ascending */
    static char list[64];
    int bits[QB_QUANT_COUNT], n = 0;
    for (int i = 0; i < QB_QUANT_COUNT; i++) {
        const qb_weight_format_info *f = &k_formats[i];
        if (!f->quant_method || !quant_method || strcasecmp(f->quant_method, quant_method) != 0) continue;
        int at = n++;
        while (at > 0 && bits[at - 1] > f->bits) bits[at] = bits[at - 1], at--;
        bits[at] = f->bits;
    }
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", i ? " or " : "", bits[i]);
    if (n == 1) snprintf(list + used, sizeof list - used, " only");
    return list;
}

const qb_weight_format_info *qb_format_find(qb_packing packing, int bits) {
    for (int i = 0; i < QB_QUANT_COUNT; i++)
        if (k_formats[i].packing == packing && k_formats[i].bits == bits) return &k_formats[i];
    return NULL;
}

bool qb_format_supported(qb_packing packing, int bits) { return qb_format_find(packing, bits) != NULL; }

qb_format_counts qb_format_checkpoint_counts(qb_quant q, size_t k, size_t n, size_t g) {
    const qb_weight_format_info *f = qb_format_info(q);
    qb_format_counts c;
    memset(&c, 0, sizeof c);
    if (!f || f->packing == QB_PACK_DENSE) {
        c.weight = k * n;
        return c;
    }
    size_t pf = (size_t)f->values_per_word;
    c.qweight = k * n / pf;
    c.qzeros = k / g * n / pf;
    c.scales = k / g * n;
    c.g_idx = f->has_g_idx ? k : 0;
    return c;
}

size_t qb_format_host_linear_bytes(qb_quant q, size_t k, size_t n, size_t g) {
    const qb_weight_format_info *f = qb_format_info(q);
    qb_format_counts c = qb_format_checkpoint_counts(q, k, n, g);
    size_t scale_bytes = f ? (size_t)f->scale_bytes : 0;
    return c.weight * 2 + (c.qweight + c.qzeros + c.g_idx) * 4 + c.scales * scale_bytes;
}

size_t qb_engine_qweight_bytes(int bits, size_t n, size_t k) { return n * (k * (size_t)bits / 32) * 4; }

size_t qb_engine_sz_bytes(size_t n, size_t k, size_t g) { return n * (k / g) * QB_ENGINE_GROUP_BYTES; }

double qb_format_engine_bytes_per_weight(qb_quant q, int g) {
    const qb_weight_format_info *f = qb_format_info(q);
    if (!f || f->packing == QB_PACK_DENSE) return 2.0;
    const double group = g > 0 ? g : f->default_group_size;
    return f->bits / 8.0 + QB_ENGINE_GROUP_BYTES / group;
}

/* engine_options.c - the table of engine options, parsing of values and lists, combinations (see
 * engine_options.h). The rules that resolve "auto" live with the engine (src/cuda/cuda_choices.c). */
#include "engine/engine_options.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"

const qb_engine_option_desc qb_engine_option_table[QB_EOPT_COUNT] = {
    [QB_EOPT_ALLREDUCE] = {"allreduce", "allreduce", {"auto", "nccl", "ipc-oneshot", NULL},
                           "tensor-parallel all-reduce; auto: the own one-shot kernel over CUDA IPC within a node, "
                           "NCCL across nodes"},
    [QB_EOPT_TP_EXCHANGE] = {"tp-exchange", "tp_exchange", {"auto", "on", "off", NULL},
                             "tensor-parallel decode without all-reduce kernels (row-parallel GEMVs push partial "
                             "sums into every GPU, the next GEMV sums them); auto: tiled 4-bit weights, and bf16 "
                             "except at TP2 above hidden size 4096"},
    [QB_EOPT_ALLREDUCE_NORM] = {"allreduce-norm", "allreduce_norm",
                                {"auto", "fused", "two-step", NULL},
                                "where the exchange is off: all-reduce + add + RMSNorm in one kernel (fused) or "
                                "two; auto: one kernel up to hidden size 2048"},
    [QB_EOPT_DECODE_FUSION] = {"decode-fusion", "decode_fusion", {"auto", "epilogues", "none", NULL},
                               "decode kernels; auto: norms in the GEMV prologues and RoPE / SiLU / residual in "
                               "their epilogues where the shapes allow; epilogues: the epilogue fusions only; none: "
                               "one kernel per operation (4-bit weights keep the row layout)"},
    [QB_EOPT_QUANT_LAYOUT] = {"quant-layout", "quant_layout", {"auto", "rows", "tiled", NULL},
                              "packed linears; auto: 4 bits tiled for the fused GEMVs where every shape allows, 8 "
                              "bits in rows for the unfused GEMVs; rows: the repacked row layout; tiled: the tiled "
                              "layout and the fused GEMVs at 4 and 8 bits (refused where a shape does not tile)"},
    [QB_EOPT_ATTN_PREFILL] = {"attn-prefill", "attn_prefill", {"auto", "fa2", "wg", "wgp", NULL},
                              "prefill attention kernel; auto: Hopper wg at head_dim 64 and wgp at 128, else fa2 "
                              "(wg is refused at head_dim 128)"},
    [QB_EOPT_PDL] = {"pdl", "pdl", {"auto", "on", "off", NULL},
                     "programmatic dependent launch (CUDA); auto: on"},
};

void qb_engine_option_lists_default(qb_engine_option_lists *l) {
    memset(l, 0, sizeof *l);
    for (int i = 0; i < QB_EOPT_COUNT; i++) l->n[i] = 1; /* the one value "auto" (index 0) */
}

int qb_engine_option_by_flag(const char *flag) {
    for (int i = 0; i < QB_EOPT_COUNT; i++)
        if (strcmp(qb_engine_option_table[i].flag, flag) == 0) return i;
    return -1;
}

int qb_engine_option_by_sweep_key(const char *key) {
    for (int i = 0; i < QB_EOPT_COUNT; i++)
        if (strcmp(qb_engine_option_table[i].sweep_key, key) == 0) return i;
    return -1;
}

const char *qb_engine_option_value_name(int id, int value) {
    if (id < 0 || id >= QB_EOPT_COUNT || value < 0 || value >= QB_EOPT_MAX_VALUES) return "?";
    const char *v = qb_engine_option_table[id].values[value];
    return v ? v : "?";
}

void qb_engine_option_allowed(int id, const char *sep, char *out, size_t cap) {
    size_t k = 0;
    out[0] = '\0';
    for (int j = 0; j < QB_EOPT_MAX_VALUES && qb_engine_option_table[id].values[j] && k < cap; j++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", j ? sep : "", qb_engine_option_table[id].values[j]);
}

int qb_engine_option_parse_value(int id, const char *value, const char *where, int *out) {
    for (int j = 0; j < QB_EOPT_MAX_VALUES && qb_engine_option_table[id].values[j]; j++)
        if (strcmp(qb_engine_option_table[id].values[j], value) == 0) {
            *out = j;
            return 0;
        }
    char allowed[256];
    qb_engine_option_allowed(id, ", ", allowed, sizeof allowed);
    return qb_errorf("%s: unknown value '%.64s' (%s)", where, value, allowed);
}

int qb_engine_option_parse_list(int id, const char *list, const char *where, qb_engine_option_lists *lists) {
    int n = 0, vals[QB_EOPT_MAX_VALUES];
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        if (len == 0) return qb_errorf("%s: empty item in '%.64s'", where, list);
        if (len >= sizeof item) return qb_errorf("%s: unknown value '%.64s'", where, p);
        memcpy(item, p, len);
        item[len] = '\0';
        int v = 0;
        QB_TRY(qb_engine_option_parse_value(id, item, where, &v));
        for (int k = 0; k < n; k++)
            if (vals[k] == v) return qb_errorf("%s: '%s' listed twice", where, item);
        vals[n++] = v; /* distinct values of at most QB_EOPT_MAX_VALUES: no overflow */
        if (!comma) break;
        p = comma + 1;
    }
    lists->n[id] = n;
    memcpy(lists->v[id], vals, sizeof vals[0] * (size_t)n);
    return 0;
}

int qb_engine_option_combinations(const qb_engine_option_lists *l) {
    int n = 1;
    for (int i = 0; i < QB_EOPT_COUNT; i++) n *= l->n[i] > 0 ? l->n[i] : 1;
    return n;
}

void qb_engine_option_combination(const qb_engine_option_lists *l, int i, qb_engine_options *out) {
    for (int id = QB_EOPT_COUNT - 1; id >= 0; id--) { /* the last option varies fastest */
        int n = l->n[id] > 0 ? l->n[id] : 1;
        out->v[id] = l->n[id] > 0 ? l->v[id][i % n] : QB_EOPT_AUTO;
        i /= n;
    }
}

void qb_engine_options_format(const qb_engine_options *o, char *out, size_t cap) {
    size_t k = 0;
    out[0] = '\0';
    for (int i = 0; i < QB_EOPT_COUNT && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s=%s", i ? ";" : "", qb_engine_option_table[i].sweep_key,
                              qb_engine_option_value_name(i, o->v[i]));
}

int qb_engine_options_equal(const qb_engine_options *a, const qb_engine_options *b) {
    return memcmp(a->v, b->v, sizeof a->v) == 0;
}

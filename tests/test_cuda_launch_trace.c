/* test_cuda_launch_trace.c - the CUDA engine's forward pass as the ordered list of its kernel launches, compared
 * with the golden traces in tests/golden/launch_trace/ (recorded from the code before the decode plan of issue 19):
 * a refactoring of src/cuda/cuda_forward.c must launch the same kernels in the same order with the same arguments.
 *
 * No GPU: cuda_memory.c, cuda_choices.c and cuda_forward.c run on host memory with the recording stand-ins of
 * cuda_layout_standins.c, which write every launch's arguments as text, each pointer named by the engine buffer
 * holding it plus the byte offset (so the trace does not depend on addresses). For each engine (fixture model x
 * format bf16 / gptq-int4 / gptq-int8 / awq x TP1 or either rank of TP2 with a stand-in NCCL context and
 * exchange x prefill chunk rows) every combination of the engine options that act on the forward pass is
 * resolved by the choice functions as at engine creation (cc 9, a Hopper GPU); a combination the engine refuses
 * is recorded with its error line, the others run a prefill (with the head), and two decode steps at two
 * attention split sizes. Identical traces (of the prefill, of the decode steps) are written once and each
 * combination names the two it gave and a third: the engine_choices string the cell records
 * (qb_cuda_choices_describe).
 *
 * Usage: test_cuda_launch_trace <fixtures dir> <golden dir> [--update]   (--update rewrites the golden files)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/model_config.h"
#include "cuda/cuda_engine.h"
#include "comm/cuda/nccl_comm.h"
#include "engine/engine_options.h"
#include "engine/shard_plan.h"
#include "util/error.h"

#include "cuda_layout_standins.h"

#define MAX_TRACES 64

static int g_failures, g_update;
static const char *g_golden_dir;

/* Every buffer of the engine by name (the weights of each layer as L<l>.<name>). */
static void name_buffers(qb_cuda_engine *e) {
    trace_clear();
    for (int r = 0; r < 3; r++) trace_span(e->region[r], e->region_bytes[r]);
    trace_name("embed", e->embed, 0);
    trace_name("lm_head", e->lm_head, 0);
    trace_name("final_norm", e->final_norm, 0);
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        char n[64];
#define NAME(field)                                                                                                   \
    do {                                                                                                              \
        snprintf(n, sizeof n, "L%d.%s", l, #field);                                                                   \
        trace_name(n, L->field, 0);                                                                                   \
    } while (0)
        NAME(w_qkv); NAME(b_qkv); NAME(w_o); NAME(w_gate_up); NAME(w_down); NAME(norm_in); NAME(norm_post);
        NAME(q_qkv.qweight); NAME(q_qkv.sz); NAME(q_o.qweight); NAME(q_o.sz); NAME(q_gate_up.qweight);
        NAME(q_gate_up.sz); NAME(q_down.qweight); NAME(q_down.sz);
#undef NAME
    }
    trace_name("k_cache", e->k_cache, 0);
    trace_name("v_cache", e->v_cache, 0);
    trace_name("resid", e->resid, 0);
    trace_name("resid_alt", e->resid_alt, 0);
    trace_name("xn", e->xn, 0);
    trace_name("delta", e->delta, e->nc ? (size_t)e->chunk_rows * e->H * 2 : 0);
    trace_name("big", e->big, 0);
    trace_name("q", e->q, 0);
    trace_name("attn", e->attn, 0);
    trace_name("act", e->act, 0);
    trace_name("logits", e->logits, 0);
    trace_name("part_o", e->part_o, 0);
    trace_name("part_ml", e->part_ml, 0);
    trace_name("cos", e->cos_t, 0);
    trace_name("sin", e->sin_t, 0);
    trace_name("state", e->state, 0);
    trace_name("token", e->token, 0);
    trace_name("tokens", e->tokens, 0);
    trace_name("prompt", e->prompt, 0);
    trace_name("gemm_workspace", e->gemm_workspace, 0);
    trace_name("wdq", e->wdq, 0);
    trace_name("xchg", &e->xchg, sizeof e->xchg);
    trace_name("local_best", e->local_best, sizeof *e->local_best);
    trace_name("argmax_key", e->argmax_key, sizeof *e->argmax_key);
    trace_name("nc", e->nc, 1);
}

/* One engine's trace file: the distinct traces, then each combination of options and the trace it gave. */
typedef struct {
    char *trace[MAX_TRACES];
    int n_traces;
    char *combos;
    size_t combos_len, combos_cap;
} trace_file;

static void add_combo(trace_file *f, const char *line) {
    size_t n = strlen(line);
    if (f->combos_len + n + 2 > f->combos_cap) {
        f->combos_cap = 2 * f->combos_cap + n + 4096;
        f->combos = realloc(f->combos, f->combos_cap);
        if (!f->combos) abort();
    }
    memcpy(f->combos + f->combos_len, line, n);
    f->combos_len += n;
    f->combos[f->combos_len++] = '\n';
    f->combos[f->combos_len] = 0;
}

/* The trace's index in f (added if new), or -1 when full. */
static int trace_index(trace_file *f, const char *text) {
    for (int i = 0; i < f->n_traces; i++)
        if (!strcmp(f->trace[i], text)) return i;
    if (f->n_traces == MAX_TRACES) return -1;
    f->trace[f->n_traces] = strdup(text);
    return f->n_traces++;
}

/* The forward passes of one resolved engine into the trace text. */
static int run_forward(qb_cuda_engine *e, int n_prompt) {
    int32_t prompt[64] = {0};
    for (int i = 0; i < n_prompt && i < 64; i++) prompt[i] = (i * 37 + 5) % e->vocab_full;
    trace_on = 1;
    trace_note("# prefill %d tokens", n_prompt);
    int rc = qb_cuda_prefill(e, prompt, n_prompt);
    if (rc == 0) {
        trace_note("# decode step, chunk 64, len_cap %d", e->max_seq);
        rc = qb_cuda_decode_step(e, 64, e->max_seq);
    }
    if (rc == 0) {
        trace_note("# decode step, chunk 128, len_cap 17");
        rc = qb_cuda_decode_step(e, 128, 17);
    }
    trace_on = 0;
    return rc;
}

/* Resolve the options for this engine as qb_cuda_setup does (tp: the stand-in NCCL context runs impl, the exchange
 * opens for ipc-oneshot); 0, or -1 with the refusal in qb_last_error(). */
static int resolve(qb_cuda_engine *e, int tp, const qb_engine_options *o) {
    e->quant_tiled = e->fusion = e->attn_prefill = e->ar_norm_one_kernel = e->pdl = 0;
    e->xchg_on = 0;
    if (qb_cuda_choices_resolve(e, tp, 9, o) != 0) return -1;
    if (tp > 1) {
        qb_allreduce_impl impl = qb_choose_allreduce(o);
        standin_nccl_impl = impl;
        e->xchg_on = qb_choose_tp_exchange(e, tp, o) && impl == QB_AR_IPC_ONESHOT;
        if (qb_cuda_choices_check_tp(e, tp, impl) != 0) return -1;
    }
    qb_cuda_decode_plan_build(e); /* as qb_cuda_setup, once the weights are in */
    return 0;
}

static int read_file(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (size_t n; buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) return -1;
    buf[len] = 0;
    *out = buf;
    return 0;
}

/* The first line where a and b differ (1-based), with both lines printed. */
static void show_difference(const char *name, const char *want, const char *got) {
    int line = 1;
    const char *a = want, *b = got;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            want = a + 1;
            got = b + 1;
        }
        a++;
        b++;
    }
    int wl = (int)strcspn(want, "\n"), gl = (int)strcspn(got, "\n");
    printf("FAIL %s: line %d differs from the golden trace\n  golden: %.*s\n  now:    %.*s\n", name, line, wl, want, gl,
           got);
}

static void finish_file(const char *name, trace_file *f) {
    size_t len = f->combos_len + 64;
    for (int i = 0; i < f->n_traces; i++) len += strlen(f->trace[i]) + 32;
    char *text = malloc(len), *p = text;
    p += sprintf(p, "%s", f->combos ? f->combos : "");
    for (int i = 0; i < f->n_traces; i++) p += sprintf(p, "\n## trace %d\n%s", i, f->trace[i]);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.txt", g_golden_dir, name);
    if (g_update) {
        FILE *out = fopen(path, "wb");
        if (!out || fwrite(text, 1, strlen(text), out) != strlen(text) || fclose(out) != 0) {
            printf("FAIL %s: cannot write %s\n", name, path);
            g_failures++;
        } else {
            printf("wrote %s (%d distinct traces)\n", path, f->n_traces);
        }
    } else {
        char *want = NULL;
        if (read_file(path, &want) != 0) {
            printf("FAIL %s: no golden trace %s\n", name, path);
            g_failures++;
        } else if (strcmp(want, text) != 0) {
            show_difference(name, want, text);
            g_failures++;
        } else {
            printf("ok %s: %d distinct traces, identical to the golden ones\n", name, f->n_traces);
        }
        free(want);
    }
    free(text);
    for (int i = 0; i < f->n_traces; i++) free(f->trace[i]);
    free(f->combos);
}

/* The options that are not "auto", "key=value;..." ("auto" when none). */
static void format_options(const qb_engine_options *o, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int id = 0; id < QB_EOPT_COUNT; id++)
        if (o->v[id] != QB_EOPT_AUTO && len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", len ? ";" : "", qb_engine_option_table[id].sweep_key,
                                    qb_engine_option_value_name(id, o->v[id]));
    if (!len) snprintf(out, cap, "auto");
}

/* One engine (config c, TP tp rank `rank`, prompt rows max_prompt) over the option combinations of lists. */
static void trace_engine(const char *name, const qb_model_config *c, int tp, int rank, int max_prompt, int max_seq,
                         const qb_engine_option_lists *lists, int f16_tables) {
    qb_shard_plan plan;
    qb_cuda_engine *e = calloc(1, sizeof *e);
    uint16_t *delta = NULL;
    if (!e || qb_shard_plan_make(c, tp, rank, &plan) != 0) {
        printf("FAIL %s: %s\n", name, e ? qb_last_error() : "out of memory");
        g_failures++;
        free(e);
        return;
    }
    qb_cuda_engine_shapes(e, c, &plan, max_seq, max_prompt);
    e->layer = calloc((size_t)e->layers, sizeof *e->layer);
    e->gemm = (qb_gemm *)(uintptr_t)0x20; /* never dereferenced by cuda_forward.c */
    e->gemm_workspace_bytes = 4096;
    if (tp > 1) { /* a stand-in NCCL context, its delta buffer and the TP head's scalars, as qb_cuda_setup makes them */
        e->nc = (struct qb_nccl *)calloc(1, 16);
        delta = calloc((size_t)e->chunk_rows * e->H, 2);
        e->local_best = calloc(1, sizeof *e->local_best);
        e->argmax_key = calloc(1, sizeof *e->argmax_key);
        e->xchg.points = 2 * e->layers;
        e->xchg.rank = rank;
        e->xchg.ranks = tp;
    }
    if (!e->layer || qb_cuda_memory_plan(e) != 0) {
        printf("FAIL %s: %s\n", name, qb_last_error());
        g_failures++;
    } else {
        if (tp > 1) e->delta = delta;
        e->embed_f16 = e->lm_head_f16 = f16_tables;
        name_buffers(e);
        trace_file f;
        memset(&f, 0, sizeof f);
        int combos = qb_engine_option_combinations(lists);
        for (int i = 0; i < combos; i++) {
            qb_engine_options o;
            char opts[512], line[1536];
            qb_engine_option_combination(lists, i, &o);
            format_options(&o, opts, sizeof opts);
            if (resolve(e, tp, &o) != 0) {
                snprintf(line, sizeof line, "%s -> refused: %s", opts, qb_last_error());
                add_combo(&f, line);
                continue;
            }
            name_buffers(e); /* an empty text (the names again: the same buffers) */
            int rc = run_forward(e, max_prompt);
            /* the prefill's part and the decode steps' part, each kept once */
            char *text = strdup(trace_text()), *decode = text ? strstr(text, "# decode step") : NULL;
            int prefill_idx = -1, decode_idx = -1;
            if (rc == 0 && decode) {
                decode_idx = trace_index(&f, decode);
                *decode = 0;
                prefill_idx = trace_index(&f, text);
            }
            free(text);
            char plan[4096]; /* --explain's text: every step named */
            qb_cuda_decode_plan_describe(e, max_prompt, plan, sizeof plan);
            if (!strstr(plan, "decode (one token)") || strchr(plan, '?')) {
                printf("FAIL %s %s: the plan in words: %s\n", name, opts, plan);
                g_failures++;
            } else if (i == 0) { /* all options auto: what --explain prints, for the log */
                printf("# %s, all options auto:\n%s\n", name, plan);
            }
            if (rc != 0) snprintf(line, sizeof line, "%s -> forward failed: %s", opts, qb_last_error());
            else if (prefill_idx < 0 || decode_idx < 0)
                snprintf(line, sizeof line, "%s -> more than %d distinct traces", opts, MAX_TRACES);
            else {
                char choices[600];
                int n = snprintf(choices, sizeof choices, "# engine_choices\n");
                qb_cuda_choices_describe(e, max_prompt, choices + n, sizeof choices - (size_t)n);
                snprintf(line, sizeof line, "%s -> traces %d, %d, %d", opts, prefill_idx, decode_idx,
                         trace_index(&f, choices));
            }
            add_combo(&f, line);
        }
        finish_file(name, &f);
    }
    qb_cuda_memory_free(e);
    free(e->layer);
    free(delta);
    free(e->local_best);
    free(e->argmax_key);
    free(e->nc);
    free(e);
}

/* Option lists: at TP1 what acts on one GPU; at TP2 also the tensor-parallel options. */
static void option_lists(int tp, qb_engine_option_lists *l) {
    qb_engine_option_lists_default(l);
    static const char *const tp1[][2] = {
        {"decode-fusion", "auto,epilogues,none"}, {"quant-layout", "auto,rows,tiled"}, {"attn-prefill", "auto,fa2,wg,wgp"},
        {"pdl", "auto,on,off"}};
    static const char *const tp2[][2] = {
        {"allreduce", "auto,nccl,ipc-oneshot"}, {"tp-exchange", "auto,on,off"}, {"allreduce-norm", "auto,fused,two-step"},
        {"decode-fusion", "auto,epilogues,none"}, {"quant-layout", "auto,rows"}, {"attn-prefill", "auto,fa2"},
        {"pdl", "auto,off"}};
    int n = tp > 1 ? 7 : 4;
    for (int i = 0; i < n; i++) {
        const char *flag = tp > 1 ? tp2[i][0] : tp1[i][0], *list = tp > 1 ? tp2[i][1] : tp1[i][1];
        int id = qb_engine_option_by_flag(flag);
        if (id < 0 || qb_engine_option_parse_list(id, list, "test", l) != 0) {
            printf("FAIL option list %s: %s\n", flag, id < 0 ? "unknown" : qb_last_error());
            g_failures++;
        }
    }
}

/* config: the fixture's config.json, made `format`, with the given overrides (0 keeps the fixture's). */
static int load_config(const char *fixtures, const char *model, qb_quant format, int hidden, int heads,
                       int intermediate, qb_model_config *c) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/config.json", fixtures, model);
    if (qb_model_config_load_file(path, c) != 0 || qb_model_config_apply_quant(c, format, false) != 0) {
        printf("FAIL %s: %s\n", path, qb_last_error());
        g_failures++;
        return -1;
    }
    if (hidden) {
        c->hidden_size = hidden;
        c->num_heads = heads;
        c->head_dim = hidden / heads;
    }
    if (intermediate) c->intermediate_size = intermediate;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--update"))) {
        fprintf(stderr, "usage: test_cuda_launch_trace <fixtures dir> <golden dir> [--update]\n");
        return 2;
    }
    g_golden_dir = argv[2];
    g_update = argc == 4;
    static const qb_quant formats[4] = {QB_QUANT_BF16, QB_QUANT_GPTQ_INT4, QB_QUANT_GPTQ_INT8, QB_QUANT_AWQ};
    static const char *const format_names[4] = {"bf16", "gptq-int4", "gptq-int8", "awq"};
    qb_engine_option_lists tp1, tp2;
    option_lists(1, &tp1);
    option_lists(2, &tp2);
    for (int f = 0; f < 4; f++) {
        qb_model_config c;
        char name[256];
        /* TP1: both fixture shapes (head_dim 64 untied, 128 tied), prefill chunks of 9 rows and of 1 */
        static const char *const models[2] = {"gqa_untied", "tied_hd128"};
        for (int m = 0; m < 2; m++) {
            if (load_config(argv[1], models[m], formats[f], 0, 0, 0, &c) != 0) continue;
            for (int rows = 9; rows >= 1 + 8 * m; rows -= 8) { /* prompt chunks of 1 row: gqa_untied only */
                snprintf(name, sizeof name, "%s_%s_tp1_prompt%d", models[m], format_names[f], rows);
                trace_engine(name, &c, 1, 0, rows, 40, &tp1, 0);
            }
        }
        if (f > 0 && load_config(argv[1], "gqa_untied", formats[f], 0, 0, 0, &c) == 0) { /* checkpoint f16 tables */
            snprintf(name, sizeof name, "gqa_untied_%s_tp1_f16_tables", format_names[f]);
            trace_engine(name, &c, 1, 0, 9, 40, &tp1, 1);
        }
        /* TP2, both ranks (whole quantization groups per rank: intermediate 512) */
        if (load_config(argv[1], "gqa_untied", formats[f], 0, 0, 512, &c) == 0)
            for (int rank = 0; rank < 2; rank++) {
                snprintf(name, sizeof name, "gqa_untied_I512_%s_tp2_rank%d", format_names[f], rank);
                trace_engine(name, &c, 2, rank, 9, 40, &tp2, 0);
            }
    }
    /* bf16 at the hidden sizes where the rules change: 2304 (o_proj / down_proj GEMVs of >= 2112 rows take
     * qb_launch_gemv unfused; the one-kernel all-reduce norm off), 8448 (above 8192: epilogue fusion only; no
     * exchange at TP2) */
    static const int hidden[2] = {2304, 8448};
    for (int h = 0; h < 2; h++) {
        qb_model_config c;
        char name[256];
        if (load_config(argv[1], "gqa_untied", QB_QUANT_BF16, hidden[h], hidden[h] / 128, 512, &c) != 0) continue;
        snprintf(name, sizeof name, "H%d_bf16_tp1", hidden[h]);
        trace_engine(name, &c, 1, 0, 9, 40, &tp1, 0);
        snprintf(name, sizeof name, "H%d_bf16_tp2_rank0", hidden[h]);
        trace_engine(name, &c, 2, 0, 9, 40, &tp2, 0);
    }
    if (g_failures) {
        printf("test_cuda_launch_trace: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_cuda_launch_trace: all traces %s\n", g_update ? "written" : "identical to the golden ones");
    return 0;
}

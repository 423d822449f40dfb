/* cpu_backend.c - the CPU reference engine behind backend.h: one rank's weights, KV cache and workspace in
 * host memory, fp32 activations, tensor parallelism through MPI (qb_dist). Greedy generation with
 * wall-clock timing (CLOCK_MONOTONIC). The forward pass itself is in cpu_forward.c.
 */
#include "engine/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cpu_engine.h"
#include "engine/cpu_threads.h"
#include "engine/rope.h"
#include "engine/vocab_gather.h"
#include "util/error.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cpu_generate(qb_backend *b, const int32_t *prompt, int n_prompt, int n_gen, int32_t *tokens_out,
                        qb_gen_timing *timing) {
    qb_cpu_engine *e = b->impl;
    if (n_prompt < 1 || n_gen < 1)
        return qb_errorf("cpu backend: generate needs a prompt and at least one token (got %d, %d)", n_prompt, n_gen);
    /* the last generated token is never fed back, so the cache needs n_prompt + n_gen - 1 positions */
    if ((long long)n_prompt + n_gen - 1 > e->max_seq_len)
        return qb_errorf("cpu backend: prompt %d + %d generated tokens exceed max_seq_len %d", n_prompt, n_gen,
                         e->max_seq_len);
    double t0 = now_s();
    e->seq_len = 0; /* reset: attention reads only positions below seq_len, so no clearing is needed */
    QB_TRY(qb_cpu_forward(e, prompt, n_prompt));
    QB_TRY(qb_cpu_pick_token(e, &tokens_out[0]));
    double t1 = now_s();
    if (timing) timing->prefill_s = t1 - t0;
    qb_progress_store(timing, 1);
    for (int i = 1; i < n_gen; i++) {
        QB_TRY(qb_cpu_forward(e, &tokens_out[i - 1], 1));
        QB_TRY(qb_cpu_pick_token(e, &tokens_out[i]));
        if (e->test_corrupt_argmax) tokens_out[i] = (tokens_out[i] + 1) % e->cfg.vocab_size;
        double t2 = now_s();
        if (timing && timing->step_s) timing->step_s[i - 1] = t2 - t1;
        qb_progress_store(timing, i + 1);
        t1 = t2;
    }
    return 0;
}

static int cpu_prefill_logits(qb_backend *b, const int32_t *prompt, int n_prompt, float *logits_out) {
    qb_cpu_engine *e = b->impl;
    e->seq_len = 0;
    QB_TRY(qb_cpu_forward(e, prompt, n_prompt));
    return qb_gather_vocab_logits(e->dist, &e->cfg, e->plan.tp_size, e->logits, e->plan.vocab_size, logits_out,
                                  "cpu backend");
}

static void cpu_memory(qb_backend *b, qb_memory_stats *m) {
    qb_cpu_engine *e = b->impl;
    memset(m, 0, sizeof *m);
    m->weights_bytes = e->w.host_bytes;
    m->kv_cache_bytes = e->kv_bytes;
    m->workspace_bytes = e->workspace_bytes;
    m->peak_allocated_bytes = m->weights_bytes + m->kv_cache_bytes + m->workspace_bytes;
}

static void engine_free(qb_cpu_engine *e) {
    if (!e) return;
    qb_weights_free(&e->w);
    free(e->k_cache);
    free(e->v_cache);
    free(e->cos_table);
    free(e->sin_table);
    free(e->hidden);
    free(e->normed);
    free(e->q);
    free(e->attn);
    free(e->proj);
    free(e->gate);
    free(e->up);
    free(e->logits);
    free(e->positions);
    free(e);
}

static void cpu_destroy(qb_backend *b) {
    if (!b) return;
    engine_free(b->impl);
    free(b);
}

/* The CPU engine computes bf16 or f16 embeddings / lm_head and bf16, f16, GPTQ or AWQ linears. */
static int check_formats(const qb_weights *w) {
    if (w->embed_fmt != QB_WFMT_BF16 && w->embed_fmt != QB_WFMT_F16)
        return qb_errorf("cpu backend: embed_tokens must be bf16 or f16");
    if ((w->lm_head.fmt != QB_WFMT_BF16 && w->lm_head.fmt != QB_WFMT_F16) || !w->lm_head.w)
        return qb_errorf("cpu backend: lm_head must be dense bf16 or f16");
    for (int l = 0; l < w->cfg.num_layers; l++) {
        const qb_layer_weights *lw = &w->layers[l];
        const qb_linear *all[] = {&lw->q, &lw->k, &lw->v, &lw->o, &lw->gate, &lw->up, &lw->down};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
            const qb_linear *x = all[i];
            int dense_ok = (x->fmt == QB_WFMT_BF16 || x->fmt == QB_WFMT_F16) && x->w;
            int quant_ok = (x->fmt == QB_WFMT_GPTQ && x->g_idx && qb_format_supported(QB_PACK_GPTQ, x->bits)) ||
                           (x->fmt == QB_WFMT_AWQ && qb_format_supported(QB_PACK_AWQ, x->bits));
            if (!dense_ok && !(quant_ok && x->qweight && x->qzeros && x->scales && x->group_size > 0))
                return qb_errorf("cpu backend: layer %d linear %zu: format %d is not complete or not supported", l, i,
                                 (int)x->fmt);
        }
    }
    return 0;
}

static float *alloc_floats(qb_cpu_engine *e, size_t n, size_t *counter, const char *what) {
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) qb_errorf("cpu backend: out of memory for %s (%zu floats)", what, n);
    else *counter += n * sizeof *p;
    (void)e;
    return p;
}

static int engine_alloc(qb_cpu_engine *e) {
    const qb_model_config *c = &e->cfg;
    const qb_shard_plan *p = &e->plan;
    size_t rows = (size_t)e->max_prompt_len, H = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    size_t kv = (size_t)c->num_layers * e->max_seq_len * p->kv_heads * hd;
    size_t *ws = &e->workspace_bytes;
    if (!(e->k_cache = alloc_floats(e, kv, &e->kv_bytes, "the key cache"))) return -1;
    if (!(e->v_cache = alloc_floats(e, kv, &e->kv_bytes, "the value cache"))) return -1;
    if (!(e->hidden = alloc_floats(e, rows * H, ws, "the residual stream"))) return -1;
    if (!(e->normed = alloc_floats(e, rows * H, ws, "normed activations"))) return -1;
    if (!(e->q = alloc_floats(e, rows * p->q_heads * hd, ws, "queries"))) return -1;
    if (!(e->attn = alloc_floats(e, rows * p->q_heads * hd, ws, "attention output"))) return -1;
    if (!(e->proj = alloc_floats(e, rows * H, ws, "projection output"))) return -1;
    if (!(e->gate = alloc_floats(e, rows * p->inter_size, ws, "gate activations"))) return -1;
    if (!(e->up = alloc_floats(e, rows * p->inter_size, ws, "up activations"))) return -1;
    if (!(e->logits = alloc_floats(e, (size_t)p->vocab_size, ws, "logits"))) return -1;
    if (!(e->positions = calloc(rows, sizeof *e->positions)))
        return qb_errorf("cpu backend: out of memory for positions");
    *ws += rows * sizeof *e->positions;
    QB_TRY(qb_rope_tables(c, e->max_seq_len, &e->cos_table, &e->sin_table));
    *ws += 2 * (size_t)e->max_seq_len * (hd / 2) * sizeof(float);
    return 0;
}

/* The reference engine has one plain-C routine per operation: it takes no engine option. */
static void cpu_choices(qb_backend *b, int context_len, char *out, size_t cap) {
    (void)context_len;
    const qb_cpu_engine *e = b->impl;
    snprintf(out, cap, "engine=cpu-reference;linears=%s;attention=cpu;tp_reduce=%s;threads=%d",
             e->cfg.quant == QB_QUANT_BF16 ? "cpu-bf16" : "cpu-dequant", e->plan.tp_size > 1 ? "mpi" : "none",
             e->threads);
}

/* The reference engine's one loop (cpu_forward.c), for prefill and decode alike. */
static void cpu_explain(qb_backend *b, int context_len, char *out, size_t cap) {
    (void)context_len;
    const qb_cpu_engine *e = b->impl;
    const char *reduce = e->plan.tp_size > 1 ? " -> all-reduce (MPI)" : "";
    snprintf(out, cap,
             "prefill and decode (cpu-reference, fp32, %d threads): embedding -> rmsnorm\n"
             "  each layer: q, k, v %s (+bias) -> rope -> attention -> o_proj%s -> add+rmsnorm -> gate, up %s -> "
             "silu*up -> down_proj%s -> add+rmsnorm (next layer's input norm, or the final norm)\n"
             "  head: lm_head of the last row -> argmax%s",
             e->threads, e->cfg.quant == QB_QUANT_BF16 ? "(bf16 weights)" : "(dequantized)", reduce,
             e->cfg.quant == QB_QUANT_BF16 ? "(bf16 weights)" : "(dequantized)", reduce,
             e->plan.tp_size > 1 ? " over this rank's vocabulary rows, the best over the TP group (MPI)" : "");
}

int qb_cpu_backend_create(const qb_backend_params *p, qb_backend **out) {
    *out = NULL;
    if (!p->cfg || !p->plan || !p->dist) return qb_errorf("cpu backend: cfg, plan and dist are required");
    if (p->max_seq_len < 1 || p->max_prompt_len < 1 || p->max_prompt_len > p->max_seq_len)
        return qb_errorf("cpu backend: max_prompt_len %d and max_seq_len %d must satisfy 1 <= prompt <= seq",
                         p->max_prompt_len, p->max_seq_len);
    if (p->dist->tp_size != p->plan->tp_size || p->dist->tp_rank != p->plan->tp_rank)
        return qb_errorf("cpu backend: shard plan is for rank %d of %d but this process is TP rank %d of %d",
                         p->plan->tp_rank, p->plan->tp_size, p->dist->tp_rank, p->dist->tp_size);
    qb_cpu_engine *e = calloc(1, sizeof *e);
    qb_backend *b = calloc(1, sizeof *b);
    if (!e || !b) {
        free(e);
        free(b);
        return qb_errorf("cpu backend: out of memory");
    }
    e->cfg = *p->cfg;
    e->plan = *p->plan;
    e->dist = p->dist;
    /* 0 = all cores, shared by the ranks on this host so that they do not oversubscribe it */
    int local_ranks = p->dist->local_size > 0 ? p->dist->local_size : 1;
    e->threads = p->threads > 0 ? p->threads : (qb_cpu_count() / local_ranks > 0 ? qb_cpu_count() / local_ranks : 1);
    e->max_seq_len = p->max_seq_len;
    e->max_prompt_len = p->max_prompt_len;
    e->test_corrupt_argmax = p->test_corrupt_argmax;
    b->impl = e;
    int rc = p->checkpoint_dir ? qb_weights_load(p->checkpoint_dir, p->cfg, p->plan, &e->w)
                               : qb_weights_random(p->cfg, p->plan, p->weight_seed, &e->w);
    if (rc == 0) rc = check_formats(&e->w);
    if (rc == 0) rc = engine_alloc(e);
    if (rc != 0) {
        cpu_destroy(b);
        return -1;
    }
    snprintf(b->name, sizeof b->name, "cpu");
    snprintf(b->device_name, sizeof b->device_name, "cpu (%d threads)", e->threads);
    b->device_uuid[0] = '\0';
    b->generate = cpu_generate;
    b->prefill_logits = cpu_prefill_logits;
    b->memory = cpu_memory;
    b->destroy = cpu_destroy;
    b->choices = cpu_choices;
    b->explain = cpu_explain;
    *out = b;
    return 0;
}

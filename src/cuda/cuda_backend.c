/* cuda_backend.c - the CUDA engine behind engine/backend.h: bring-up, memory plan, weights, generate.
 *
 * generate(): prefill (not captured: its shapes change per call), then n_gen - 1 decode steps, each one
 * replay of a captured CUDA graph. The position and the last token live in device memory and the graph's
 * last kernel advances them, so no host synchronisation happens between steps; a CUDA event after each
 * replay gives the per-step times, read once all steps are done. One graph per decode-attention split size
 * (chosen by context length), each captured on first use and kept.
 * The prefill and the decode steps are NVTX ranges "prefill" and "decode" (free without a tool attached), so
 * that a profiler can take the decode kernels alone: ncu --nvtx --nvtx-include "decode/" (tests/device/profile.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nccl.h>
#include <nvtx3/nvToolsExt.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"
#include "comm/cuda/nccl_comm.h"
#include "engine/rope.h"
#include "engine/vocab_gather.h"
#include "gemv_quant_fused.cuh"
#include "util/error.h"

int qb_cuda_available(char *why, size_t cap) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        snprintf(why, cap, "no usable CUDA device: %s", cudaGetErrorString(err));
        return 0;
    }
    if (n == 0) {
        snprintf(why, cap, "no CUDA device visible");
        return 0;
    }
    if (why && cap) why[0] = '\0';
    return 1;
}

static int qb_cuda_upload_rope(qb_cuda_engine *e) {
    float *cos_h = NULL, *sin_h = NULL;
    QB_TRY(qb_rope_tables(&e->cfg, e->max_seq, &cos_h, &sin_h));
    size_t bytes = (size_t)e->max_seq * (e->hd / 2) * sizeof(float);
    cudaError_t a = cudaMemcpy(e->cos_t, cos_h, bytes, cudaMemcpyHostToDevice);
    cudaError_t b = cudaMemcpy(e->sin_t, sin_h, bytes, cudaMemcpyHostToDevice);
    /* pageable copies on the legacy stream may still be in flight, and the engine's non-blocking stream does
     * not wait for that stream: finish them before any kernel reads the tables */
    if (a == cudaSuccess && b == cudaSuccess) a = cudaDeviceSynchronize();
    free(cos_h);
    free(sin_h);
    if (a != cudaSuccess || b != cudaSuccess)
        return qb_errorf("cuda: uploading rope tables: %s", cudaGetErrorString(a != cudaSuccess ? a : b));
    return 0;
}

/* Decode-attention levels: level i has chunk 64 << i and serves contexts up to len_cap. */
static void qb_cuda_levels_init(qb_cuda_engine *e) {
    for (int i = 0; i < QB_CUDA_DECODE_LEVELS; i++) {
        e->levels[i].exec = NULL;
        e->levels[i].chunk = 64 << i;
        e->levels[i].len_cap = 0;
    }
    for (int len = 1; len <= e->max_seq; len++) {
        int chunk = qb_cuda_decode_chunk_for(e, len);
        for (int i = 0; i < QB_CUDA_DECODE_LEVELS; i++)
            if (e->levels[i].chunk == chunk) e->levels[i].len_cap = len;
    }
}

static int qb_cuda_level_graph(qb_cuda_engine *e, int context_len, cudaGraphExec_t *out) {
    int chunk = qb_cuda_decode_chunk_for(e, context_len);
    qb_cuda_graph_level *lv = NULL;
    for (int i = 0; i < QB_CUDA_DECODE_LEVELS; i++)
        if (e->levels[i].chunk == chunk) lv = &e->levels[i];
    if (!lv || lv->len_cap < context_len) return qb_errorf("cuda: no decode level for context %d", context_len);
    if (!lv->exec) {
        cudaGraph_t graph;
        if (e->quant_bits) qb_gemv_quant_fused_prepare(); /* occupancy answers before the capture */
        QB_CUDA_TRY(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
        int rc = qb_cuda_decode_step(e, lv->chunk, lv->len_cap);
        cudaError_t end = cudaStreamEndCapture(e->stream, &graph);
        if (rc != 0) return qb_error_prefix("cuda: capturing the decode step");
        if (end != cudaSuccess) return qb_errorf("cuda: capturing the decode step: %s", cudaGetErrorString(end));
        cudaError_t inst = cudaGraphInstantiate(&lv->exec, graph, 0);
        cudaGraphDestroy(graph);
        if (inst != cudaSuccess) return qb_errorf("cuda: instantiating the decode graph: %s", cudaGetErrorString(inst));
    }
    *out = lv->exec;
    return 0;
}

static int qb_cuda_ensure_events(qb_cuda_engine *e, int n) {
    if (e->n_events >= n) return 0;
    cudaEvent_t *ev = realloc(e->events, (size_t)n * sizeof *ev);
    if (!ev) return qb_errorf("cuda: out of host memory for %d events", n);
    e->events = ev;
    for (int i = e->n_events; i < n; i++) {
        QB_CUDA_TRY(cudaEventCreate(&e->events[i]));
        e->n_events = i + 1;
    }
    return 0;
}

static int qb_cuda_check_prompt(const qb_cuda_engine *e, const int32_t *prompt, int n_prompt, int n_gen) {
    if (n_prompt < 1) return qb_errorf("cuda: empty prompt");
    if ((long)n_prompt + n_gen - 1 > e->max_seq)
        return qb_errorf("cuda: prompt %d + generated %d tokens exceed max_seq_len %d", n_prompt, n_gen, e->max_seq);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= e->vocab_full)
            return qb_errorf("cuda: prompt token %d at %d outside the vocabulary (%d)", prompt[i], i, e->vocab_full);
    return 0;
}

/* Wait for the engine's stream; under tensor parallelism through the NCCL watchdog (a dead or hung peer
 * aborts the communicator and fails the call instead of blocking forever). */
static int qb_cuda_wait(qb_cuda_engine *e, const char *operation) {
    if (e->nc) return qb_nccl_wait(e->nc, e->stream, 0, operation);
    QB_CUDA_TRY(cudaStreamSynchronize(e->stream));
    return 0;
}

/* Steps 1 .. n_gen - 1: one graph replay each, an event after each (the step times); enqueued, not waited for. */
static int qb_cuda_decode_steps(qb_cuda_engine *e, int n_prompt, int n_gen, qb_gen_timing *timing) {
    for (int i = 1; i < n_gen; i++) {
        cudaGraphExec_t g;
        QB_TRY(qb_cuda_level_graph(e, n_prompt + i, &g)); /* query at position n_prompt + i - 1 */
        QB_CUDA_TRY(cudaGraphLaunch(g, e->stream));
        QB_CUDA_TRY(cudaEventRecord(e->events[i + 1], e->stream));
        /* progress (bench/progress.h): steps enqueued, one int store each; the GPU follows within the launch queue */
        qb_progress_store(timing, i + 1);
    }
    return 0;
}

static int qb_cuda_generate(qb_backend *b, const int32_t *prompt, int n_prompt, int n_gen, int32_t *tokens_out,
                            qb_gen_timing *timing) {
    qb_cuda_engine *e = b->impl;
    if (n_gen < 1) return qb_errorf("cuda: n_gen must be >= 1 (got %d)", n_gen);
    qb_pdl_set_enabled(e->pdl); /* this engine's choice, for every launch below (kernels/pdl.cu) */
    QB_TRY(qb_cuda_check_prompt(e, prompt, n_prompt, n_gen));
    /* graphs for every context this call will see, captured before the clock starts */
    for (int len = n_prompt + 1; len <= n_prompt + n_gen - 1; len++) {
        cudaGraphExec_t g;
        QB_TRY(qb_cuda_level_graph(e, len, &g));
    }
    QB_TRY(qb_cuda_ensure_events(e, n_gen + 1));
    QB_CUDA_TRY(cudaEventRecord(e->events[0], e->stream));
    nvtxRangePushA("prefill");
    int rc = qb_cuda_prefill(e, prompt, n_prompt);
    nvtxRangePop();
    QB_TRY(rc);
    QB_CUDA_TRY(cudaEventRecord(e->events[1], e->stream));
    qb_progress_store(timing, 1);
    nvtxRangePushA("decode");
    rc = qb_cuda_decode_steps(e, n_prompt, n_gen, timing);
    nvtxRangePop();
    QB_TRY(rc);
    QB_CUDA_TRY(cudaMemcpyAsync(tokens_out, e->tokens, (size_t)n_gen * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                e->stream));
    QB_TRY(qb_cuda_wait(e, "generate"));
    if (e->test_corrupt_argmax) /* what a broken kernel would report; the harness's checks must catch it */
        for (int i = 1; i < n_gen; i++) tokens_out[i] = (tokens_out[i] + 1) % e->vocab_full;
    if (timing) {
        float ms = 0.f;
        QB_CUDA_TRY(cudaEventElapsedTime(&ms, e->events[0], e->events[1]));
        timing->prefill_s = ms * 1e-3;
        for (int i = 1; i < n_gen && timing->step_s; i++) {
            QB_CUDA_TRY(cudaEventElapsedTime(&ms, e->events[i], e->events[i + 1]));
            timing->step_s[i - 1] = ms * 1e-3;
        }
    }
    return 0;
}

static int qb_cuda_prefill_logits(qb_backend *b, const int32_t *prompt, int n_prompt, float *logits_out) {
    qb_cuda_engine *e = b->impl;
    QB_TRY(qb_cuda_check_prompt(e, prompt, n_prompt, 1));
    QB_TRY(qb_cuda_prefill(e, prompt, n_prompt));
    float *dst = e->nc ? e->logits_host : logits_out;
    QB_CUDA_TRY(cudaMemcpyAsync(dst, e->logits, (size_t)e->vocab_rows * sizeof(float), cudaMemcpyDeviceToHost,
                                e->stream));
    QB_TRY(qb_cuda_wait(e, "prefill logits"));
    if (!e->nc) return 0;
    /* Every rank gets all vocab_size logits: the shards in rank order over the TP group (checks only). */
    return qb_gather_vocab_logits(e->dist, &e->cfg, e->plan.tp_size, e->logits_host, e->vocab_rows, logits_out, "cuda");
}

static void qb_cuda_memory_stats(qb_backend *b, qb_memory_stats *m) {
    qb_cuda_engine *e = b->impl;
    memset(m, 0, sizeof *m);
    m->weights_bytes = e->region_bytes[0];
    m->kv_cache_bytes = e->region_bytes[1];
    m->workspace_bytes = e->region_bytes[2];
    m->peak_allocated_bytes = e->peak_bytes;
    m->device_used_delta_bytes = e->device_delta;
    m->device_total_bytes = e->device_total;
}

static void qb_cuda_choices(qb_backend *b, int context_len, char *out, size_t cap) {
    qb_cuda_choices_describe(b->impl, context_len, out, cap);
}

static void qb_cuda_explain(qb_backend *b, int context_len, char *out, size_t cap) {
    qb_cuda_decode_plan_describe(b->impl, context_len, out, cap);
    size_t len = strlen(out);
    if (len + 1 < cap) {
        int n = snprintf(out + len, cap - len, "\nengine_choices: ");
        if (n > 0 && len + (size_t)n < cap) qb_cuda_choices_describe(b->impl, context_len, out + len + n, cap - len - n);
    }
}

/* Copy bandwidth of the device: a 256 MiB device-to-device copy (5x the L2), bytes read + written per second,
 * median of 9 timed copies after 2 warm-ups. Temporary buffers, outside the engine's plan. 0 on failure. */
static double qb_cuda_copy_bandwidth(qb_backend *b) {
    qb_cuda_engine *e = b->impl;
    const size_t bytes = (size_t)256 << 20;
    void *src = NULL, *dst = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    double result = 0, times[9];
    if (cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) goto done;
    if (cudaMemsetAsync(src, 1, bytes, e->stream) != cudaSuccess) goto done;
    if (cudaEventCreate(&t0) != cudaSuccess || cudaEventCreate(&t1) != cudaSuccess) goto done;
    for (int i = 0; i < 11; i++) {
        cudaEventRecord(t0, e->stream);
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, e->stream);
        cudaEventRecord(t1, e->stream);
        if (cudaEventSynchronize(t1) != cudaSuccess) goto done;
        float ms = 0;
        cudaEventElapsedTime(&ms, t0, t1);
        if (i >= 2) times[i - 2] = ms * 1e-3;
    }
    for (int i = 0; i < 9; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j]; times[j] = times[j - 1]; times[j - 1] = t;
        }
    result = 2.0 * (double)bytes / times[4] / 1e9;
done:
    if (t0) cudaEventDestroy(t0);
    if (t1) cudaEventDestroy(t1);
    if (src) cudaFree(src);
    if (dst) cudaFree(dst);
    return result;
}

static void qb_cuda_versions(qb_backend *b) {
    int drv = 0, rt = 0, nccl = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    snprintf(b->driver_version, sizeof b->driver_version, "%d.%d", drv / 1000, (drv % 1000) / 10);
    snprintf(b->runtime_version, sizeof b->runtime_version, "%d.%d", rt / 1000, (rt % 1000) / 10);
    if (ncclGetVersion(&nccl) == ncclSuccess)
        snprintf(b->nccl_version, sizeof b->nccl_version, "%d.%d.%d", nccl / 10000, (nccl % 10000) / 100, nccl % 100);
}

static void qb_cuda_destroy(qb_backend *b) {
    if (!b) return;
    qb_cuda_engine *e = b->impl;
    if (e) {
        cudaStreamSynchronize(e->stream);
        /* graphs first: captured NCCL work holds the communicator until its graph is gone */
        for (int i = 0; i < QB_CUDA_DECODE_LEVELS; i++)
            if (e->levels[i].exec) cudaGraphExecDestroy(e->levels[i].exec);
        qb_nccl_destroy(e->nc);
        if (e->local_best) cudaFree(e->local_best);
        if (e->argmax_key) cudaFree(e->argmax_key);
        free(e->logits_host);
        for (int i = 0; i < e->n_events; i++) cudaEventDestroy(e->events[i]);
        free(e->events);
        qb_gemm_destroy(e->gemm);
        qb_cuda_memory_free(e);
        if (e->stream) cudaStreamDestroy(e->stream);
        free(e->layer);
        free(e);
    }
    free(b);
}

static int qb_cuda_setup(qb_cuda_engine *e, const qb_backend_params *p, qb_backend *b) {
    const qb_model_config *c = p->cfg;
    if (p->plan->tp_size > 1 && !p->dist)
        return qb_errorf("cuda: tensor parallel (tp_size %d) needs the distributed context", p->plan->tp_size);
    if (c->quant != QB_QUANT_BF16) { /* the quantized kernels' requirements (gemv_quant.cuh) */
        int bits = c->quant_bits, g = c->group_size, nq = p->plan->q_heads * c->head_dim, I = p->plan->inter_size;
        const qb_weight_format_info *f = qb_format_info(c->quant);
        if (!f || f->bits != bits) /* the format table: each row's kernels serve its bits */
            return qb_errorf("cuda: %s with %d bits unsupported (GPTQ 4 or 8, AWQ 4)", qb_quant_name(c->quant), bits);
        if (g <= 0 || g % (128 / bits) || c->hidden_size % g || nq % g || I % g)
            return qb_errorf("cuda: %s group_size %d must be a multiple of %d dividing hidden_size %d, this rank's "
                             "attention width %d and intermediate size %d", qb_quant_name(c->quant), g, 128 / bits,
                             c->hidden_size, nq, I);
    }
    if (c->head_dim != 64 && c->head_dim != 128)
        return qb_errorf("cuda: head_dim %d unsupported (64 or 128)", c->head_dim);
    if (c->hidden_size % 8 || c->intermediate_size % 8)
        return qb_errorf("cuda: hidden_size %d and intermediate_size %d must be multiples of 8", c->hidden_size,
                         c->intermediate_size);
    if (p->max_seq_len < 1) return qb_errorf("cuda: max_seq_len %d must be >= 1", p->max_seq_len);
    int count = 0;
    QB_CUDA_TRY(cudaGetDeviceCount(&count));
    if (count < 1) return qb_errorf("cuda: no CUDA device visible");
    e->device = p->dist ? p->dist->local_rank % count : 0;
    QB_CUDA_TRY(cudaSetDevice(e->device));
    QB_CUDA_TRY(cudaFree(0)); /* create the context before measuring free memory */
    size_t free0 = 0, total = 0;
    QB_CUDA_TRY(cudaMemGetInfo(&free0, &total));
    struct cudaDeviceProp prop;
    QB_CUDA_TRY(cudaGetDeviceProperties(&prop, e->device));
    snprintf(b->device_name, sizeof b->device_name, "%.127s", prop.name);
    const unsigned char *u = (const unsigned char *)prop.uuid.bytes;
    snprintf(b->device_uuid, sizeof b->device_uuid,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
             u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);

    qb_cuda_engine_shapes(e, c, p->plan, p->max_seq_len, p->max_prompt_len);
    QB_TRY(qb_cuda_choices_resolve(e, p->plan->tp_size, prop.major, &p->engine));
    qb_pdl_set_enabled(e->pdl);
    e->test_corrupt_argmax = p->test_corrupt_argmax;
    e->gemm_workspace_bytes = QB_MEMORY_PLAN_GEMM_WORKSPACE_BYTES;
    e->layer = calloc((size_t)e->layers, sizeof *e->layer);
    if (!e->layer) return qb_errorf("cuda: out of host memory");
    QB_CUDA_TRY(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
    e->dist = p->dist;
    if (p->plan->tp_size > 1) { /* NCCL over the TP group: before the memory plan, so its buffers count first */
        QB_TRY(qb_nccl_create(p->dist, qb_choose_allreduce(&p->engine), &e->nc));
        if (qb_choose_tp_exchange(e, p->plan->tp_size, &p->engine)) {
            QB_TRY(qb_nccl_tp_exchange_open(e->nc, e->H, 2 * e->layers, &e->xchg));
            e->xchg_on = e->xchg.points > 0;
        }
        QB_TRY(qb_cuda_choices_check_tp(e, p->plan->tp_size, qb_nccl_impl(e->nc)));
        QB_CUDA_TRY(cudaMalloc((void **)&e->local_best, sizeof *e->local_best));
        QB_CUDA_TRY(cudaMalloc((void **)&e->argmax_key, sizeof *e->argmax_key));
        e->logits_host = malloc(sizeof *e->logits_host * (size_t)e->vocab_rows);
        if (!e->logits_host) return qb_errorf("cuda: out of host memory");
    }
    QB_TRY(qb_cuda_memory_plan(e));
    if (e->nc) { /* the all-reduced o_proj/down_proj output, in the NCCL context's own (registered) memory */
        size_t bytes = qb_memory_plan_bytes(&e->mem, QB_MEM_TP_DELTA);
        QB_TRY(qb_nccl_alloc_bf16(e->nc, bytes / 2, (void **)&e->delta));
        e->peak_bytes += bytes;
    }
    QB_TRY(qb_gemm_create(e->gemm_workspace, e->gemm_workspace_bytes, &e->gemm));
    QB_TRY(qb_cuda_upload_rope(e));
    if (p->checkpoint_dir) {
        qb_weights w;
        memset(&w, 0, sizeof w);
        QB_TRY(qb_weights_load(p->checkpoint_dir, c, p->plan, &w));
        int rc = qb_cuda_weights_upload(e, &w);
        qb_weights_free(&w);
        QB_TRY(rc);
    } else {
        QB_TRY(qb_cuda_weights_random(e, p->weight_seed));
    }
    QB_TRY(qb_cuda_quant_tile_weights(e)); /* packed linears into the fused kernels' tiles (when they apply) */
    qb_cuda_decode_plan_build(e); /* what each decode token runs, from the choices above (cuda_decode_plan.c) */
    qb_cuda_levels_init(e);
    QB_CUDA_TRY(cudaStreamSynchronize(e->stream));
    size_t free1 = 0;
    QB_CUDA_TRY(cudaMemGetInfo(&free1, &total));
    e->device_delta = free0 > free1 ? free0 - free1 : 0;
    return 0;
}

int qb_cuda_backend_create(const qb_backend_params *p, qb_backend **out) {
    *out = NULL;
    qb_backend *b = calloc(1, sizeof *b);
    qb_cuda_engine *e = calloc(1, sizeof *e);
    if (!b || !e) {
        free(b);
        free(e);
        return qb_errorf("cuda: out of host memory");
    }
    snprintf(b->name, sizeof b->name, "cuda");
    b->generate = qb_cuda_generate;
    b->prefill_logits = qb_cuda_prefill_logits;
    b->memory = qb_cuda_memory_stats;
    b->destroy = qb_cuda_destroy;
    b->copy_bandwidth_gbps = qb_cuda_copy_bandwidth;
    b->choices = qb_cuda_choices;
    b->explain = qb_cuda_explain;
    b->impl = e;
    qb_cuda_versions(b);
    if (qb_cuda_setup(e, p, b) != 0) {
        qb_cuda_destroy(b);
        return -1;
    }
    *out = b;
    return 0;
}

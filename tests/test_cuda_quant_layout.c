/* test_cuda_quant_layout.c - the CUDA engine's host side for quantized weights, without a GPU: the memory plan
 * and both weight paths of src/cuda/cuda_memory.c and cuda_weights.c run against host memory (the few CUDA runtime
 * calls they make are replaced below by host versions, and the random quantized fill by a host copy of
 * kernels/random_fill_quant.cu's loops). Checked, for GPTQ-Int4, GPTQ-Int8 and AWQ at TP1 and on both ranks of TP2:
 *   - random weights: each linear's rows in the fused device matrices (q|k|v, gate|up) equal
 *     qb_qmat_from_linear of the CPU engine's random linear (qb_weights_random): ids, slices and row offsets;
 *   - checkpoint path: qb_cuda_weights_upload of those CPU weights gives the same bytes;
 *   - the weights region equals the memory planner's weights up to 256 bytes of alignment per tensor, and the
 *     prefill dequantization scratch exists exactly when a prefill chunk has more than one row.
 * The GPU kernels themselves are checked against the CPU reference by test_cuda_quant / test_cuda_quant_engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/planner.h"
#include "config/model_config.h"
#include "cuda/cuda_engine.h"
#include "engine/quant_pack.h"
#include "engine/quant_repack.h"
#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "random_fill.cuh"
#include "random_fill_quant.cuh"
#include "util/error.h"

static int g_failures;

/* ---- host stand-ins for the CUDA runtime and the fill kernels used by cuda_memory.c / cuda_weights.c ---- */

cudaError_t cudaMalloc(void **p, size_t n) {
    *p = calloc(1, n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    *free_bytes = *total = (size_t)1 << 40;
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
    (void)s;
    memset(p, value, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
    (void)kind;
    (void)s;
    memcpy(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}
const char *cudaGetErrorString(cudaError_t err) {
    (void)err;
    return "host stand-in error";
}
size_t qb_attention_decode_workspace_floats(int hq, int hd, int max_seq) {
    return (size_t)hq * hd * (size_t)((max_seq + 63) / 64);
}
/* dense random fills: not what this test checks (random_fill.cu has its own test) */
int qb_launch_random_fill_bf16(uint16_t *dst, long rows, long cols, long row0, long col0, long full_cols,
                               uint64_t seed, uint64_t tensor_id, cudaStream_t stream) {
    (void)dst; (void)rows; (void)cols; (void)row0; (void)col0; (void)full_cols; (void)seed; (void)tensor_id;
    (void)stream;
    return 0;
}
int qb_launch_random_fill_bias_f32(float *dst, long n, long start, uint64_t seed, uint64_t tensor_id,
                                   cudaStream_t stream) {
    (void)dst; (void)n; (void)start; (void)seed; (void)tensor_id; (void)stream;
    return 0;
}
int qb_launch_random_fill_norm_f32(float *dst, long n, uint64_t seed, uint64_t tensor_id, cudaStream_t stream) {
    (void)dst; (void)n; (void)seed; (void)tensor_id; (void)stream;
    return 0;
}
/* the loops of kernels/random_fill_quant.cu, one iteration per thread there */
int qb_launch_random_fill_qmat(uint32_t *qweight, uint32_t *sz, int n, int k, int bits, int group_size, int awq,
                               long n_full, long row0, long col0, uint64_t seed, uint64_t qweight_id,
                               uint64_t qzeros_id, uint64_t scales_id, cudaStream_t stream) {
    (void)stream;
    if ((bits != 4 && bits != 8) || n <= 0 || k <= 0 || k % group_size || col0 % group_size || row0 < 0 ||
        row0 + n > n_full)
        return qb_errorf("random_fill_qmat (host): unsupported slice N=%d K=%d rows [%ld, +%d) of %ld col0 %ld", n, k,
                         row0, n, n_full, col0);
    int words = k * bits / 32, groups = k / group_size, pf = 32 / bits;
    for (long row = 0; row < n; row++) {
        uint64_t nn = (uint64_t)(row0 + row);
        for (int w = 0; w < words; w++) {
            uint32_t word = 0;
            for (int j = 0; j < pf; j++) {
                uint64_t kk = (uint64_t)(col0 + (long)w * pf + j);
                word |= qb_random_quant_q(seed, qweight_id, kk * (uint64_t)n_full + nn, bits, awq) << (bits * j);
            }
            qweight[row * words + w] = word;
        }
        for (int g = 0; g < groups; g++) {
            uint64_t idx = (uint64_t)(col0 / group_size + g) * (uint64_t)n_full + nn;
            uint32_t zero = qb_random_quant_zero_stored(seed, qzeros_id, idx, bits, awq) + (awq ? 0u : 1u);
            sz[row * groups + g] = (uint32_t)qb_random_quant_scale(seed, scales_id, idx, bits) | zero << 16;
        }
    }
    return 0;
}

/* ---- the checks ---- */

/* Rows [row_off, +m.n) of the fused device matrix d against the repacked host matrix m. */
static int same_rows(const char *what, const qb_cuda_qmat *d, long row_off, const qb_qmat *m) {
    size_t words = (size_t)m->k * m->bits / 32, groups = (size_t)m->k / m->group_size;
    const uint32_t *dq = d->qweight + (size_t)row_off * words, *ds = d->sz + (size_t)row_off * groups;
    for (size_t i = 0; i < (size_t)m->n * words; i++)
        if (dq[i] != m->qweight[i]) {
            printf("FAIL %s: qweight row %zu word %zu: device %08x, expected %08x\n", what, i / words, i % words, dq[i],
                   m->qweight[i]);
            return 0;
        }
    for (size_t i = 0; i < (size_t)m->n * groups; i++)
        if (ds[i] != m->sz[i]) {
            printf("FAIL %s: sz row %zu group %zu: device %08x, expected %08x\n", what, i / groups, i % groups, ds[i],
                   m->sz[i]);
            return 0;
        }
    return 1;
}

/* Every quantized linear of the engine's weights region against the CPU weights w. */
static int check_linears(const char *label, const qb_cuda_engine *e, qb_weights *w) {
    long nq = (long)e->hq * e->hd, nkv = (long)e->hkv * e->hd;
    for (int l = 0; l < e->layers; l++) {
        const qb_cuda_layer *L = &e->layer[l];
        const qb_cuda_qmat *dst[QB_NUM_LINEAR] = {&L->q_qkv, &L->q_qkv, &L->q_qkv, &L->q_o, &L->q_gate_up,
                                                  &L->q_gate_up, &L->q_down};
        const long off[QB_NUM_LINEAR] = {0, nq, nq + nkv, 0, 0, e->I, 0};
        for (int which = 0; which < QB_NUM_LINEAR; which++) {
            qb_qmat m;
            char what[200];
            snprintf(what, sizeof what, "%s layer %d %s", label, l, qb_linear_suffix[which]);
            if (qb_qmat_from_linear(qb_layer_linear(&w->layers[l], which), &m, 1) != 0) {
                printf("FAIL %s: %s\n", what, qb_last_error());
                return 0;
            }
            int ok = same_rows(what, dst[which], off[which], &m);
            qb_qmat_free(&m);
            if (!ok) return 0;
        }
    }
    return 1;
}

static void check_rank(const qb_model_config *c, int tp, int rank, int max_prompt) {
    char label[160];
    snprintf(label, sizeof label, "%s %s tp%d rank %d prompt %d", c->name, qb_quant_name(c->quant), tp, rank,
             max_prompt);
    qb_shard_plan plan;
    qb_weights w;
    memset(&w, 0, sizeof w);
    qb_cuda_engine *e = calloc(1, sizeof *e);
    if (!e || qb_shard_plan_make(c, tp, rank, &plan) != 0) {
        printf("FAIL %s: %s\n", label, e ? qb_last_error() : "out of memory");
        g_failures++;
        free(e);
        return;
    }
    int ok = 1;
    qb_cuda_engine_shapes(e, c, &plan, max_prompt + 8, max_prompt);
    e->layer = calloc((size_t)e->layers, sizeof *e->layer);
    if (!e->layer || qb_cuda_memory_plan(e) != 0 || qb_cuda_weights_random(e, 11) != 0 ||
        qb_weights_random(c, &plan, 11, &w) != 0) {
        printf("FAIL %s: %s\n", label, qb_last_error());
        ok = 0;
    }
    if (ok && !check_linears(label, e, &w)) ok = 0;
    if (ok) { /* the checkpoint path on the same weights */
        memset(e->region[0], 0, e->region_bytes[0]);
        if (qb_cuda_weights_upload(e, &w) != 0) {
            printf("FAIL %s: upload: %s\n", label, qb_last_error());
            ok = 0;
        } else if (!check_linears(label, e, &w)) {
            ok = 0;
        }
    }
    qb_rank_memory pm;
    if (ok && qb_plan_rank_memory(c, tp, max_prompt, 8, &pm) != 0) {
        printf("FAIL %s: planner: %s\n", label, qb_last_error());
        ok = 0;
    }
    size_t slack = 256 * (11 * (size_t)c->num_layers + 3);
    if (ok && (e->region_bytes[0] < pm.weights_bytes || e->region_bytes[0] > pm.weights_bytes + slack)) {
        printf("FAIL %s: weights region %zu bytes, the planner says %zu (+ up to %zu of alignment)\n", label,
               e->region_bytes[0], pm.weights_bytes, slack);
        ok = 0;
    }
    if (ok && (e->wdq != NULL) != (e->chunk_rows > 1)) {
        printf("FAIL %s: dequantization scratch %s with %d prefill rows\n", label, e->wdq ? "present" : "absent",
               e->chunk_rows);
        ok = 0;
    }
    if (ok) printf("ok %s: weights region %zu bytes (planner %zu)\n", label, e->region_bytes[0], pm.weights_bytes);
    else g_failures++;
    qb_weights_free(&w);
    qb_cuda_memory_free(e);
    free(e->layer);
    free(e);
}

static void check_config(const char *path, const char *name, int intermediate, qb_quant q, int tp) {
    qb_model_config c;
    if (qb_model_config_load_file(path, &c) != 0 || qb_model_config_apply_quant(&c, q, false) != 0) {
        printf("FAIL %s: %s\n", path, qb_last_error());
        g_failures++;
        return;
    }
    if (intermediate) c.intermediate_size = intermediate; /* whole groups per rank at TP2 */
    snprintf(c.name, sizeof c.name, "%s", name);
    for (int rank = 0; rank < tp; rank++) {
        check_rank(&c, tp, rank, 1);
        check_rank(&c, tp, rank, 9);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_cuda_quant_layout <fixtures dir>\n");
        return 2;
    }
    char gqa[4200], tied[4200];
    snprintf(gqa, sizeof gqa, "%s/gqa_untied/config.json", argv[1]);
    snprintf(tied, sizeof tied, "%s/tied_hd128/config.json", argv[1]);
    static const qb_quant formats[3] = {QB_QUANT_GPTQ_INT4, QB_QUANT_GPTQ_INT8, QB_QUANT_AWQ};
    for (int i = 0; i < 3; i++) {
        check_config(gqa, "gqa_untied", 0, formats[i], 1);
        check_config(gqa, "gqa_untied I512", 512, formats[i], 2);
        check_config(tied, "tied_hd128", 0, formats[i], 1);
    }
    if (g_failures) {
        printf("test_cuda_quant_layout: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_cuda_quant_layout: all cases passed\n");
    return 0;
}

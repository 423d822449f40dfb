/* cuda_quant_tiles.c - the tiled layout of the CUDA engine's packed linears (kernels/linear/quant_tile.cuh): when it
 * applies, and the re-layout of every layer linear once its weights are on the device (random or uploaded, both
 * made in the row layout of engine/quant_repack.h).
 * Why: the fused decode GEMVs read a warp's step as 1 KiB contiguous from the tiled layout instead of 16 pieces of
 * 64 bytes from 16 rows, faster on every timed 7B and 72B-TP2 shape (tests/test_decode_fusion_quant --bench;
 * docs/PERFORMANCE.md, "Measurements behind the rules in the code", "The tiled 4-bit layout").
 * With tiled weights decode always runs the fused kernels (the unfused GEMVs read rows) and prefill dequantizes
 * from tiles. Whether the layout applies is qb_choose_quant_tiled's rule (cuda_choices.c; --quant-layout rows
 * keeps the row layout).
 * The re-layout copies each linear into a scratch and permutes it back: the prefill dequantization scratch when
 * there is one (4 times the packed bytes), else the KV cache region when large enough (zeroed again after), else
 * a temporary allocation, counted in the engine's peak memory.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"
#include "quant_tile.cuh"
#include "util/error.h"

/* The 4 packed linears of a layer: matrix, rows, columns. */
static void qb_layer_qmats(qb_cuda_engine *e, qb_cuda_layer *L, qb_cuda_qmat *m[4], int n[4], int k[4]) {
    int nq = e->hq * e->hd;
    m[0] = &L->q_qkv, n[0] = e->n_qkv, k[0] = e->H;
    m[1] = &L->q_o, n[1] = e->H, k[1] = nq;
    m[2] = &L->q_gate_up, n[2] = 2 * e->I, k[2] = e->H;
    m[3] = &L->q_down, n[3] = e->H, k[3] = e->I;
}

static size_t qb_qmat_bytes(const qb_cuda_engine *e, int n, int k, size_t *sz_off) {
    size_t qw = (size_t)n * k * e->quant_bits / 8;
    *sz_off = (qw + 255) / 256 * 256;
    return *sz_off + (size_t)n * (k / e->group_size) * sizeof(uint32_t);
}

int qb_cuda_quant_tile_weights(qb_cuda_engine *e) {
    if (!e->quant_tiled) return 0;
    size_t need = 0, off;
    qb_cuda_qmat *m[4];
    int n[4], k[4];
    qb_layer_qmats(e, &e->layer[0], m, n, k); /* every layer has the same shapes */
    for (int i = 0; i < 4; i++) {
        size_t b = qb_qmat_bytes(e, n[i], k[i], &off);
        if (b > need) need = b;
    }
    void *scratch = NULL;
    int on_kv = 0, own = 0;
    if (e->wdq && qb_cuda_largest_linear(e) * 2 >= need) { /* bf16 of the largest linear: >= its packed bytes */
        scratch = e->wdq;
    } else if (e->region[1] && e->region_bytes[1] >= need) {
        scratch = e->region[1];
        on_kv = 1;
    } else {
        QB_CUDA_TRY(cudaMalloc(&scratch, need));
        own = 1;
        e->peak_bytes += need; /* held while the weights are in place: part of the peak */
    }
    int rc = 0;
    for (int l = 0; l < e->layers && rc == 0; l++) {
        qb_layer_qmats(e, &e->layer[l], m, n, k);
        for (int i = 0; i < 4 && rc == 0; i++) {
            size_t bytes = qb_qmat_bytes(e, n[i], k[i], &off);
            size_t qw_bytes = (size_t)n[i] * k[i] * e->quant_bits / 8;
            uint32_t *qw_rows = scratch, *sz_rows = (uint32_t *)((char *)scratch + off);
            cudaError_t ce = cudaMemcpyAsync(qw_rows, m[i]->qweight, qw_bytes, cudaMemcpyDeviceToDevice, e->stream);
            if (ce == cudaSuccess)
                ce = cudaMemcpyAsync(sz_rows, m[i]->sz, bytes - off, cudaMemcpyDeviceToDevice, e->stream);
            if (ce != cudaSuccess) {
                rc = qb_errorf("cuda: tiling layer %d linear %d: %s", l, i, cudaGetErrorString(ce));
                break;
            }
            rc = qb_launch_quant_tile(qw_rows, sz_rows, n[i], k[i], e->quant_bits, e->group_size, m[i]->kind, e->hd,
                                      e->I, m[i]->qweight, m[i]->sz, e->stream);
            if (rc) rc = qb_error_prefix("cuda: tiling layer %d linear %d", l, i);
        }
    }
    cudaError_t se = cudaStreamSynchronize(e->stream);
    if (rc == 0 && se != cudaSuccess) rc = qb_errorf("cuda: tiling the packed weights: %s", cudaGetErrorString(se));
    if (on_kv && rc == 0) { /* the KV cache starts as zeros (cuda_memory.c) */
        cudaError_t me = cudaMemsetAsync(e->region[1], 0, e->region_bytes[1], e->stream);
        if (me == cudaSuccess) me = cudaStreamSynchronize(e->stream);
        if (me != cudaSuccess) rc = qb_errorf("cuda: clearing the KV cache after tiling: %s", cudaGetErrorString(me));
    }
    if (own) cudaFree(scratch);
    return rc;
}

/* cuda_weights.c - filling the weights region: random weights made on the device (the values of
 * engine/random_init.h, so they equal the CPU reference's), or a host qb_weights (checkpoint) uploaded.
 * Fused layouts: q|k|v rows stacked into w_qkv (and their biases), gate|up rows into w_gate_up.
 * Tensor-parallel slices are taken by row (column-parallel) or column (row-parallel) offsets into the full
 * tensor, following the shard plan.
 * Quantized models: the layer linears in the repacked layout (engine/quant_repack.h), fused by concatenated
 * rows the same way; random ones made on the device (kernels/weights/random_fill_quant.cuh: the values of
 * qb_linear_random_quant + qb_qmat_from_linear), checkpoint ones repacked on the host and uploaded. Embedding
 * and lm_head stay dense: bf16 for random weights, the checkpoint's dtype (f16 for the releases) otherwise.
 * After a checkpoint upload every dense matrix, bias and norm on the device is checked for NaN / Inf
 * (kernels/weights/nonfinite.cuh), naming the tensor; the host loader checked the same values before the copy.
 */
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"
#include "engine/cpu_threads.h"
#include "engine/quant_repack.h"
#include "engine/random_init.h"
#include "engine/weights_layout.h"
#include "nonfinite.cuh"
#include "random_fill.cuh"
#include "random_fill_quant.cuh"

static uint64_t qb_layer_tensor_id(int layer, const char *suffix) {
    char name[160];
    qb_tensor_name(name, sizeof name, layer, suffix);
    return qb_tensor_id(name);
}

/* id of "model.layers.<layer>.<linear which>.<part>" (names from the family and format tables) */
static uint64_t qb_linear_tensor_id(int layer, int which, const char *part) {
    char name[160];
    qb_linear_tensor_name(name, sizeof name, layer, which, part);
    return qb_tensor_id(name);
}

/* rows [row0, row0 + rows) x all cols of a column-parallel matrix with full_cols = cols */
static int qb_fill_rows(uint16_t *dst, long rows, long cols, long row0, uint64_t seed, uint64_t id, cudaStream_t s) {
    return qb_launch_random_fill_bf16(dst, rows, cols, row0, 0, cols, seed, id, s);
}

/* Where linear `which` of a layer lives in the fused quantized matrices: the matrix and its first row. */
static const qb_cuda_qmat *qb_qmat_place(const qb_cuda_engine *e, const qb_cuda_layer *L, int which, long *row_off) {
    long nq = (long)e->hq * e->hd, nkv = (long)e->hkv * e->hd;
    switch (which) {
    case QB_LIN_Q: *row_off = 0; return &L->q_qkv;
    case QB_LIN_K: *row_off = nq; return &L->q_qkv;
    case QB_LIN_V: *row_off = nq + nkv; return &L->q_qkv;
    case QB_LIN_O: *row_off = 0; return &L->q_o;
    case QB_LIN_GATE: *row_off = 0; return &L->q_gate_up;
    case QB_LIN_UP: *row_off = e->I; return &L->q_gate_up;
    default: *row_off = 0; return &L->q_down;
    }
}

/* Random quantized linear `which` of layer l, this rank's slice, into its rows of the fused matrix. */
static int qb_fill_qlinear(qb_cuda_engine *e, int l, int which, uint64_t seed) {
    qb_slice sl;
    qb_linear_slice(&e->cfg, &e->plan, which, &sl);
    long row_off = 0;
    const qb_cuda_qmat *m = qb_qmat_place(e, &e->layer[l], which, &row_off);
    long k = (long)sl.n_cols, words = k * e->quant_bits / 32, groups = k / e->group_size;
    const qb_weight_format_info *f = qb_format_info(e->cfg.quant);
    uint64_t id[3];
    static const int part[3] = {QB_PART_QWEIGHT, QB_PART_QZEROS, QB_PART_SCALES};
    for (int i = 0; i < 3; i++) id[i] = qb_linear_tensor_id(l, which, f->parts[part[i]]);
    return qb_launch_random_fill_qmat(m->qweight + row_off * words, m->sz + row_off * groups, (int)sl.n_rows, (int)k,
                                      e->quant_bits, e->group_size, e->awq, (long)sl.rows, (long)sl.row0,
                                      (long)sl.col0, seed, id[0], id[1], id[2], e->stream);
}

int qb_cuda_weights_random(qb_cuda_engine *e, uint64_t seed) {
    const qb_shard_plan *p = &e->plan;
    long H = e->H, I = e->I, hd = e->hd;
    long nq = (long)e->hq * hd, nkv = (long)e->hkv * hd;
    long nq_full = (long)e->cfg.num_heads * hd, i_full = e->cfg.intermediate_size;
    cudaStream_t s = e->stream;
    const qb_model_family *fam = qb_model_family_of(&e->cfg);
    const char *W = qb_format_info(QB_QUANT_BF16)->parts[QB_PART_WEIGHT];
    QB_TRY(qb_fill_rows(e->embed, e->vocab_full, H, 0, seed, qb_tensor_id(fam->embed), s));
    if (!e->cfg.tie_word_embeddings)
        QB_TRY(qb_fill_rows(e->lm_head, e->vocab_rows, H, p->vocab_start, seed, qb_tensor_id(fam->lm_head), s));
    QB_TRY(qb_launch_random_fill_norm_f32(e->final_norm, H, seed, qb_tensor_id(fam->final_norm), s));
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        long q0 = (long)p->q_head_start * hd, kv0 = (long)p->kv_head_start * hd;
        if (e->quant_bits) { /* packed linears; biases and norms as for bf16 below */
            for (int which = 0; which < QB_NUM_LINEAR; which++) QB_TRY(qb_fill_qlinear(e, l, which, seed));
            QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv, nq, q0, seed,
                                                  qb_linear_tensor_id(l, QB_LIN_Q, "bias"), s));
            QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv + nq, nkv, kv0, seed,
                                                  qb_linear_tensor_id(l, QB_LIN_K, "bias"), s));
            QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv + nq + nkv, nkv, kv0, seed,
                                                  qb_linear_tensor_id(l, QB_LIN_V, "bias"), s));
            QB_TRY(qb_launch_random_fill_norm_f32(L->norm_in, H, seed,
                                                  qb_layer_tensor_id(l, fam->layer_norms[0]), s));
            QB_TRY(qb_launch_random_fill_norm_f32(L->norm_post, H, seed,
                                                  qb_layer_tensor_id(l, fam->layer_norms[1]), s));
            continue;
        }
        QB_TRY(qb_fill_rows(L->w_qkv, nq, H, q0, seed, qb_linear_tensor_id(l, QB_LIN_Q, W), s));
        QB_TRY(qb_fill_rows(L->w_qkv + nq * H, nkv, H, kv0, seed, qb_linear_tensor_id(l, QB_LIN_K, W), s));
        QB_TRY(qb_fill_rows(L->w_qkv + (nq + nkv) * H, nkv, H, kv0, seed,
                            qb_linear_tensor_id(l, QB_LIN_V, W), s));
        QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv, nq, q0, seed, qb_linear_tensor_id(l, QB_LIN_Q, "bias"), s));
        QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv + nq, nkv, kv0, seed,
                                              qb_linear_tensor_id(l, QB_LIN_K, "bias"), s));
        QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv + nq + nkv, nkv, kv0, seed,
                                              qb_linear_tensor_id(l, QB_LIN_V, "bias"), s));
        QB_TRY(qb_launch_random_fill_bf16(L->w_o, H, nq, 0, q0, nq_full, seed,
                                          qb_linear_tensor_id(l, QB_LIN_O, W), s));
        QB_TRY(qb_fill_rows(L->w_gate_up, I, H, p->inter_start, seed, qb_linear_tensor_id(l, QB_LIN_GATE, W), s));
        QB_TRY(qb_fill_rows(L->w_gate_up + I * H, I, H, p->inter_start, seed,
                            qb_linear_tensor_id(l, QB_LIN_UP, W), s));
        QB_TRY(qb_launch_random_fill_bf16(L->w_down, H, I, 0, p->inter_start, i_full, seed,
                                          qb_linear_tensor_id(l, QB_LIN_DOWN, W), s));
        QB_TRY(qb_launch_random_fill_norm_f32(L->norm_in, H, seed, qb_layer_tensor_id(l, fam->layer_norms[0]), s));
        QB_TRY(qb_launch_random_fill_norm_f32(L->norm_post, H, seed,
                                              qb_layer_tensor_id(l, fam->layer_norms[1]), s));
    }
    QB_CUDA_TRY(cudaStreamSynchronize(s));
    return 0;
}

/* One dense linear of the expected shape into dst: bf16, or f16 where f16_ok (the checkpoint's lm_head). */
static int qb_upload_dense(void *dst, const qb_linear *lin, int rows, int cols, const char *what, int layer,
                           int f16_ok, cudaStream_t s) {
    if (!lin->w || !(lin->fmt == QB_WFMT_BF16 || (f16_ok && lin->fmt == QB_WFMT_F16)))
        return qb_errorf("cuda: layer %d %s: format %d, expected dense bf16%s", layer, what, (int)lin->fmt,
                         f16_ok ? " or f16" : "");
    if (lin->out_features != rows || lin->in_features != cols)
        return qb_errorf("cuda: layer %d %s: shape [%d][%d], expected [%d][%d]", layer, what, lin->out_features,
                         lin->in_features, rows, cols);
    QB_CUDA_TRY(cudaMemcpyAsync(dst, lin->w, (size_t)rows * cols * 2, cudaMemcpyHostToDevice, s));
    return 0;
}

static int qb_upload_linear(void *dst, const qb_linear *lin, int rows, int cols, const char *what, int layer,
                            cudaStream_t s) {
    return qb_upload_dense(dst, lin, rows, cols, what, layer, 0, s);
}

/* One GPTQ / AWQ linear repacked on the host (quant_repack.h) into its rows of the fused device matrix. */
static int qb_upload_qlinear(qb_cuda_engine *e, int l, int which, const qb_linear *lin, int rows, int cols) {
    int want_fmt = e->awq ? QB_WFMT_AWQ : QB_WFMT_GPTQ;
    if ((int)lin->fmt != want_fmt || lin->bits != e->quant_bits || lin->group_size != e->group_size)
        return qb_errorf("cuda: layer %d %s: format %d, %d bits, group %d; the config says %s, %d bits, group %d", l,
                         qb_linear_suffix[which], (int)lin->fmt, lin->bits, lin->group_size, qb_quant_name(e->cfg.quant),
                         e->quant_bits, e->group_size);
    if (lin->out_features != rows || lin->in_features != cols)
        return qb_errorf("cuda: layer %d %s: shape [%d][%d], expected [%d][%d]", l, qb_linear_suffix[which],
                         lin->out_features, lin->in_features, rows, cols);
    qb_qmat m;
    if (qb_qmat_from_linear(lin, &m, qb_cpu_count()) != 0) return qb_error_prefix("cuda: layer %d %s", l,
                                                                                  qb_linear_suffix[which]);
    long row_off = 0;
    const qb_cuda_qmat *dst = qb_qmat_place(e, &e->layer[l], which, &row_off);
    size_t words = (size_t)cols * e->quant_bits / 32, groups = (size_t)cols / e->group_size;
    cudaError_t a = cudaMemcpyAsync(dst->qweight + (size_t)row_off * words, m.qweight, qb_qmat_qweight_bytes(&m),
                                    cudaMemcpyHostToDevice, e->stream);
    cudaError_t b = cudaMemcpyAsync(dst->sz + (size_t)row_off * groups, m.sz, qb_qmat_sz_bytes(&m),
                                    cudaMemcpyHostToDevice, e->stream);
    cudaError_t c = cudaStreamSynchronize(e->stream); /* before the host copy is freed */
    qb_qmat_free(&m);
    cudaError_t err = a != cudaSuccess ? a : b != cudaSuccess ? b : c;
    if (err != cudaSuccess)
        return qb_errorf("cuda: layer %d %s: uploading the repacked weights: %s", l, qb_linear_suffix[which],
                         cudaGetErrorString(err));
    return 0;
}

static int qb_upload_bias(float *dst, const qb_linear *lin, int n, cudaStream_t s) {
    if (lin->bias) QB_CUDA_TRY(cudaMemcpyAsync(dst, lin->bias, (size_t)n * sizeof(float), cudaMemcpyHostToDevice, s));
    else QB_CUDA_TRY(cudaMemsetAsync(dst, 0, (size_t)n * sizeof(float), s));
    return 0;
}

/* The first non-finite element of one device region, or QB_NONFINITE_NONE. */
static int qb_region_first_nonfinite(const void *data, size_t n, int elem_bytes, uint32_t mask,
                                     unsigned long long *d_first, cudaStream_t s, unsigned long long *first) {
    QB_CUDA_TRY(cudaMemsetAsync(d_first, 0xff, sizeof *d_first, s));
    QB_TRY(qb_launch_first_nonfinite(data, n, elem_bytes, mask, d_first, (void *)s));
    QB_CUDA_TRY(cudaMemcpyAsync(first, d_first, sizeof *first, cudaMemcpyDeviceToHost, s));
    QB_CUDA_TRY(cudaStreamSynchronize(s));
    return 0;
}

typedef struct {
    const char *name; /* tensor name, or its suffix in layer `layer` >= 0; NULL: part `name_part` of linear `which` */
    int layer, which;
    const char *name_part;
    const void *data;
    size_t rows, cols;
    int elem_bytes;
    uint32_t mask;
} qb_device_region;

static int qb_check_region(const qb_device_region *r, unsigned long long *d_first, cudaStream_t s) {
    unsigned long long first = QB_NONFINITE_NONE;
    QB_TRY(qb_region_first_nonfinite(r->data, r->rows * r->cols, r->elem_bytes, r->mask, d_first, s, &first));
    if (first == QB_NONFINITE_NONE) return 0;
    char name[160];
    if (!r->name) qb_linear_tensor_name(name, sizeof name, r->layer, r->which, r->name_part);
    else qb_tensor_name(name, sizeof name, r->layer, r->name);
    return qb_errorf("cuda: %s: element [%llu, %llu] of this rank's slice is not finite on the device", name,
                     first / r->cols, first % r->cols);
}

/* One pass over the uploaded dense weights, biases and norms (quantized matrices hold integers; their
 * scales were checked on the host). Costs a few milliseconds. */
static int qb_cuda_weights_check_finite(qb_cuda_engine *e) {
    size_t H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd, nkv = (size_t)e->hkv * e->hd;
    uint32_t embed_mask = e->embed_f16 ? QB_F16_EXP_MASK : QB_BF16_EXP_MASK;
    uint32_t lm_mask = e->lm_head_f16 ? QB_F16_EXP_MASK : QB_BF16_EXP_MASK;
    unsigned long long *d_first = NULL;
    QB_CUDA_TRY(cudaMalloc((void **)&d_first, sizeof *d_first));
    int rc = 0;
    const qb_model_family *fam = qb_model_family_of(&e->cfg);
    const char *W = qb_format_info(QB_QUANT_BF16)->parts[QB_PART_WEIGHT];
    const qb_device_region top[] = {
        {fam->embed, -1, -1, NULL, e->embed, (size_t)e->vocab_full, H, 2, embed_mask},
        {fam->lm_head, -1, -1, NULL, e->cfg.tie_word_embeddings ? NULL : e->lm_head, (size_t)e->vocab_rows, H, 2,
         lm_mask},
        {fam->final_norm, -1, -1, NULL, e->final_norm, 1, H, 4, QB_F32_EXP_MASK},
    };
    for (size_t i = 0; rc == 0 && i < sizeof top / sizeof top[0]; i++)
        if (top[i].data) rc = qb_check_region(&top[i], d_first, e->stream);
    for (int l = 0; rc == 0 && l < e->layers; l++) {
        const qb_cuda_layer *L = &e->layer[l];
        const int dense = !e->quant_bits;
        const qb_device_region regions[] = {
            {NULL, l, QB_LIN_Q, W, dense ? L->w_qkv : NULL, nq, H, 2, QB_BF16_EXP_MASK},
            {NULL, l, QB_LIN_K, W, dense ? L->w_qkv + nq * H : NULL, nkv, H, 2, QB_BF16_EXP_MASK},
            {NULL, l, QB_LIN_V, W, dense ? L->w_qkv + (nq + nkv) * H : NULL, nkv, H, 2, QB_BF16_EXP_MASK},
            {NULL, l, QB_LIN_O, W, dense ? L->w_o : NULL, H, nq, 2, QB_BF16_EXP_MASK},
            {NULL, l, QB_LIN_GATE, W, dense ? L->w_gate_up : NULL, I, H, 2, QB_BF16_EXP_MASK},
            {NULL, l, QB_LIN_UP, W, dense ? L->w_gate_up + I * H : NULL, I, H, 2, QB_BF16_EXP_MASK},
            {NULL, l, QB_LIN_DOWN, W, dense ? L->w_down : NULL, H, I, 2, QB_BF16_EXP_MASK},
            {NULL, l, QB_LIN_Q, "bias", L->b_qkv, 1, nq, 4, QB_F32_EXP_MASK},
            {NULL, l, QB_LIN_K, "bias", L->b_qkv + nq, 1, nkv, 4, QB_F32_EXP_MASK},
            {NULL, l, QB_LIN_V, "bias", L->b_qkv + nq + nkv, 1, nkv, 4, QB_F32_EXP_MASK},
            {fam->layer_norms[0], l, -1, NULL, L->norm_in, 1, H, 4, QB_F32_EXP_MASK},
            {fam->layer_norms[1], l, -1, NULL, L->norm_post, 1, H, 4, QB_F32_EXP_MASK},
        };
        for (size_t i = 0; rc == 0 && i < sizeof regions / sizeof regions[0]; i++)
            if (regions[i].data) rc = qb_check_region(&regions[i], d_first, e->stream);
    }
    cudaFree(d_first);
    return rc;
}

int qb_cuda_weights_upload(qb_cuda_engine *e, const qb_weights *w) {
    cudaStream_t s = e->stream;
    size_t H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd, nkv = (size_t)e->hkv * e->hd;
    if ((w->embed_fmt != QB_WFMT_BF16 && w->embed_fmt != QB_WFMT_F16) || !w->embed)
        return qb_errorf("cuda: %s: format %d, expected bf16 or f16", qb_model_family_of(&e->cfg)->embed,
                         (int)w->embed_fmt);
    e->embed_f16 = w->embed_fmt == QB_WFMT_F16;
    QB_CUDA_TRY(cudaMemcpyAsync(e->embed, w->embed, (size_t)e->vocab_full * H * 2, cudaMemcpyHostToDevice, s));
    e->lm_head_f16 = e->embed_f16; /* tied: the embedding's rows */
    if (!e->cfg.tie_word_embeddings) {
        QB_TRY(qb_upload_dense(e->lm_head, &w->lm_head, e->vocab_rows, e->H, "lm_head", -1, 1, s));
        e->lm_head_f16 = w->lm_head.fmt == QB_WFMT_F16;
    }
    QB_CUDA_TRY(cudaMemcpyAsync(e->final_norm, w->final_norm, H * sizeof(float), cudaMemcpyHostToDevice, s));
    for (int l = 0; l < e->layers; l++) {
        const qb_layer_weights *src = &w->layers[l];
        qb_cuda_layer *L = &e->layer[l];
        if (e->quant_bits) {
            const int rows[QB_NUM_LINEAR] = {(int)nq, (int)nkv, (int)nkv, e->H, e->I, e->I, e->H};
            const int cols[QB_NUM_LINEAR] = {e->H, e->H, e->H, (int)nq, e->H, e->H, e->I};
            const qb_linear *lin[QB_NUM_LINEAR] = {&src->q, &src->k, &src->v, &src->o, &src->gate, &src->up, &src->down};
            for (int which = 0; which < QB_NUM_LINEAR; which++)
                QB_TRY(qb_upload_qlinear(e, l, which, lin[which], rows[which], cols[which]));
        } else {
            QB_TRY(qb_upload_linear(L->w_qkv, &src->q, (int)nq, e->H, "q_proj", l, s));
            QB_TRY(qb_upload_linear(L->w_qkv + nq * H, &src->k, (int)nkv, e->H, "k_proj", l, s));
            QB_TRY(qb_upload_linear(L->w_qkv + (nq + nkv) * H, &src->v, (int)nkv, e->H, "v_proj", l, s));
            QB_TRY(qb_upload_linear(L->w_o, &src->o, e->H, (int)nq, "o_proj", l, s));
            QB_TRY(qb_upload_linear(L->w_gate_up, &src->gate, e->I, e->H, "gate_proj", l, s));
            QB_TRY(qb_upload_linear(L->w_gate_up + I * H, &src->up, e->I, e->H, "up_proj", l, s));
            QB_TRY(qb_upload_linear(L->w_down, &src->down, e->H, e->I, "down_proj", l, s));
        }
        QB_TRY(qb_upload_bias(L->b_qkv, &src->q, (int)nq, s));
        QB_TRY(qb_upload_bias(L->b_qkv + nq, &src->k, (int)nkv, s));
        QB_TRY(qb_upload_bias(L->b_qkv + nq + nkv, &src->v, (int)nkv, s));
        QB_CUDA_TRY(cudaMemcpyAsync(L->norm_in, src->input_norm, H * sizeof(float), cudaMemcpyHostToDevice, s));
        QB_CUDA_TRY(cudaMemcpyAsync(L->norm_post, src->post_attn_norm, H * sizeof(float), cudaMemcpyHostToDevice, s));
    }
    QB_CUDA_TRY(cudaStreamSynchronize(s));
    return qb_cuda_weights_check_finite(e);
}

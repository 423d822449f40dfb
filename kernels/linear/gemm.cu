/* gemm.cu - cuBLASLt bf16 GEMM for prefill (see gemm.cuh).
 * Row-major y = x W^T is, in cuBLAS's column-major terms, Y^T (n x m) = W_c^T (n x k) . X_c (k x m) where
 * W_c is W read column-major (k x n, ld k) and X_c is x read column-major (k x m, ld k).
 */
#include <cublasLt.h>
#include <stdlib.h>

#include "common.cuh"
#include "gemm.cuh"

#define QB_GEMM_CACHE 64

typedef struct {
    int m, n, k;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} qb_gemm_plan;

struct qb_gemm {
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    qb_gemm_plan plans[QB_GEMM_CACHE];
    int n_plans;
};

#define QB_LT_TRY(call, what)                                                                          \
    do {                                                                                               \
        cublasStatus_t st_ = (call);                                                                   \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                              \
            return qb_errorf("gemm: %s failed: %s (%d)", (what), cublasGetStatusString(st_), (int)st_); \
    } while (0)

extern "C" int qb_gemm_create(void *workspace, size_t workspace_bytes, qb_gemm **out) {
    qb_gemm *g = (qb_gemm *)calloc(1, sizeof *g);
    if (!g) return qb_errorf("gemm: out of host memory");
    cublasStatus_t st = cublasLtCreate(&g->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        free(g);
        return qb_errorf("gemm: cublasLtCreate failed: %s", cublasGetStatusString(st));
    }
    g->workspace = workspace;
    g->workspace_bytes = workspace_bytes;
    *out = g;
    return 0;
}

extern "C" void qb_gemm_destroy(qb_gemm *g) {
    if (!g) return;
    for (int i = 0; i < g->n_plans; i++) {
        cublasLtMatrixLayoutDestroy(g->plans[i].a);
        cublasLtMatrixLayoutDestroy(g->plans[i].b);
        cublasLtMatrixLayoutDestroy(g->plans[i].c);
        cublasLtMatmulDescDestroy(g->plans[i].desc);
    }
    cublasLtDestroy(g->lt);
    free(g);
}

static int qb_gemm_plan_make(qb_gemm *g, int m, int n, int k, qb_gemm_plan *p) {
    p->m = m; p->n = n; p->k = k;
    QB_LT_TRY(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    QB_LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
    QB_LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
    QB_LT_TRY(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, k, n, k), "layout W");
    QB_LT_TRY(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, k, m, k), "layout x");
    QB_LT_TRY(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_16BF, n, m, n), "layout y");
    cublasLtMatmulPreference_t pref;
    QB_LT_TRY(cublasLtMatmulPreferenceCreate(&pref), "preference");
    size_t ws = g->workspace_bytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(g->lt, p->desc, p->a, p->b, p->c, p->c, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0)
        return qb_errorf("gemm: no cuBLASLt algorithm for m=%d n=%d k=%d (%s)", m, n, k, cublasGetStatusString(st));
    p->algo = res.algo;
    return 0;
}

extern "C" int qb_gemm_bf16(qb_gemm *g, const uint16_t *x, const uint16_t *w, int m, int n, int k, uint16_t *y,
                            cudaStream_t stream) {
    if (m <= 0 || n <= 0 || k <= 0) return qb_errorf("gemm: bad shape m=%d n=%d k=%d", m, n, k);
    qb_gemm_plan *p = NULL;
    for (int i = 0; i < g->n_plans; i++)
        if (g->plans[i].m == m && g->plans[i].n == n && g->plans[i].k == k) { p = &g->plans[i]; break; }
    qb_gemm_plan tmp;
    if (!p) {
        if (qb_gemm_plan_make(g, m, n, k, &tmp) != 0) return -1;
        if (g->n_plans < QB_GEMM_CACHE) {
            g->plans[g->n_plans] = tmp;
            p = &g->plans[g->n_plans++];
        } else {
            p = &tmp; /* cache full: use once (the descriptors leak only in this rare case) */
        }
    }
    float alpha = 1.f, beta = 0.f;
    QB_LT_TRY(cublasLtMatmul(g->lt, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->c, y, p->c, &p->algo,
                             g->workspace, g->workspace_bytes, stream),
              "cublasLtMatmul");
    return 0;
}

/* allreduce_symmetric.c - lab: NCCL's symmetric-window all-reduce against plain ncclAllReduce (not the product).
 *
 *   mpirun -np 2 -x NCCL_NVLS_ENABLE=0 build/dev/dev_allreduce_symmetric
 * One GPU per rank (ranks of one node take devices in local-rank order). For in-place bf16 sums of 2, 4, 8 and
 * 16 KB (as the engine's decode): a buffer from ncclMemAlloc registered with ncclCommWindowRegister(...,
 * NCCL_WIN_COLL_SYMMETRIC), and a plain cudaMalloc buffer; ITERS back-to-back all-reduces captured into one CUDA
 * graph, latency = median graph replay / ITERS, the slowest rank's. The CPU check: the graph runs once on real
 * inputs (-1/8, 0 or 1/8 by rank and element: every partial sum of the first all-reduce, and of each later one,
 * which multiplies the data by the rank count, is exact in bf16 in any order for 2, 4, 8 or 16 ranks; other
 * counts check one all-reduce) and every element is compared with the host's sum, so a stale or racing read of
 * the previous step's data shows as a wrong element. Prints a table;
 * exits 1 on a wrong element, 0 with "skipped: no GPU" where a rank sees no GPU (or "skipped: fewer GPUs than
 * ranks on a node").
 * NCCL_NVLS_ENABLE stays 0 (set here when unset): this program never asks for NVLink multicast.
 */
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITERS 20       /* all-reduces per captured graph */
#define REPLAYS 50     /* timed graph replays per size and kind */
#define MAX_BYTES 16384

static int g_rank;

#define CK_CUDA(x) check_cuda((x), #x)
#define CK_NCCL(x) check_nccl((x), #x)
static void check_cuda(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return;
    fprintf(stderr, "rank %d: %s: %s\n", g_rank, what, cudaGetErrorString(e));
    MPI_Abort(MPI_COMM_WORLD, 1);
}
static void check_nccl(ncclResult_t r, const char *what) {
    if (r == ncclSuccess) return;
    fprintf(stderr, "rank %d: %s: %s\n", g_rank, what, ncclGetErrorString(r));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static uint16_t bf16_from_float(float f) { /* exact for the inputs used here */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
static float float_from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Rank r's input element i: -1/8, 0 or 1/8 (sums of up to 16 ranks need at most 5 significant bits, and any
 * multiple of them by up to 16 at most 8: bf16 holds each exactly). */
static float input_value(int r, int i) { return (float)((r + 2 * i) % 3 - 1) / 8.0f; }

typedef struct {
    const char *name;
    int symmetric;
    void *buf;         /* the in-place all-reduce's data */
    ncclWindow_t win;  /* its symmetric window (symmetric only) */
} buffers;

static void buffers_make(buffers *b, ncclComm_t comm) {
    if (b->symmetric) { /* collective: every rank registers its window at the same point */
        CK_NCCL(ncclMemAlloc(&b->buf, MAX_BYTES));
        CK_NCCL(ncclCommWindowRegister(comm, b->buf, MAX_BYTES, &b->win, NCCL_WIN_COLL_SYMMETRIC));
    } else {
        CK_CUDA(cudaMalloc(&b->buf, MAX_BYTES));
    }
}
static void buffers_free(buffers *b, ncclComm_t comm) {
    if (b->symmetric) {
        CK_NCCL(ncclCommWindowDeregister(comm, b->win));
        CK_NCCL(ncclMemFree(b->buf));
    } else {
        CK_CUDA(cudaFree(b->buf));
    }
}

/* `iters` in-place all-reduces of n bf16 on b, captured into one graph. */
static cudaGraphExec_t capture(buffers *b, size_t n, int iters, ncclComm_t comm, cudaStream_t s) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int k = 0; k < iters; k++) CK_NCCL(ncclAllReduce(b->buf, b->buf, n, ncclBfloat16, ncclSum, comm, s));
    CK_CUDA(cudaStreamEndCapture(s, &graph));
    CK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    CK_CUDA(cudaGraphDestroy(graph));
    return exec;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One size on one kind of buffer: latency in us (this rank's median), wrong elements into *wrong. */
static float measure(buffers *b, size_t bytes, int nranks, ncclComm_t comm, cudaStream_t s, long *wrong) {
    size_t n = bytes / 2;
    int pow2 = (nranks & (nranks - 1)) == 0 && nranks <= 16, check_iters = pow2 ? ITERS : 1;
    uint16_t host[MAX_BYTES / 2];
    for (size_t i = 0; i < n; i++) host[i] = bf16_from_float(input_value(g_rank, (int)i));
    CK_CUDA(cudaMemcpy(b->buf, host, bytes, cudaMemcpyHostToDevice));
    cudaGraphExec_t exec = capture(b, n, check_iters, comm, s);
    CK_CUDA(cudaGraphLaunch(exec, s));
    CK_CUDA(cudaStreamSynchronize(s));
    CK_CUDA(cudaGraphExecDestroy(exec));
    CK_CUDA(cudaMemcpy(host, b->buf, bytes, cudaMemcpyDeviceToHost)); /* the CPU check */
    for (size_t i = 0; i < n; i++) {
        float want = 0;
        for (int r = 0; r < nranks; r++) want += input_value(r, (int)i);
        for (int k = 1; k < check_iters; k++) want *= (float)nranks; /* at most 16^19 = 2^76: within bf16 */
        float got = float_from_bf16(host[i]);
        if (got != want) {
            if (*wrong < 3) fprintf(stderr, "rank %d: %s %zu B: element %zu is %g after %d all-reduces, host %g\n",
                                    g_rank, b->name, bytes, i, got, check_iters, want);
            (*wrong)++;
        }
    }
    CK_CUDA(cudaMemset(b->buf, 0, bytes)); /* timing on zeros: sums that stay finite over every replay */
    exec = capture(b, n, ITERS, comm, s);
    float t[REPLAYS];
    cudaEvent_t e0, e1;
    CK_CUDA(cudaEventCreate(&e0));
    CK_CUDA(cudaEventCreate(&e1));
    for (int w = 0; w < 5; w++) CK_CUDA(cudaGraphLaunch(exec, s));
    CK_CUDA(cudaStreamSynchronize(s));
    for (int rep = 0; rep < REPLAYS; rep++) {
        MPI_Barrier(MPI_COMM_WORLD); /* the ranks start each replay together */
        CK_CUDA(cudaEventRecord(e0, s));
        CK_CUDA(cudaGraphLaunch(exec, s));
        CK_CUDA(cudaEventRecord(e1, s));
        CK_CUDA(cudaEventSynchronize(e1));
        CK_CUDA(cudaEventElapsedTime(&t[rep], e0, e1));
    }
    qsort(t, REPLAYS, sizeof t[0], cmp_float);
    CK_CUDA(cudaEventDestroy(e0));
    CK_CUDA(cudaEventDestroy(e1));
    CK_CUDA(cudaGraphExecDestroy(exec));
    return t[REPLAYS / 2] * 1000.0f / ITERS;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int nranks, local_rank, local_size, ndev = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
    if (cudaGetDeviceCount(&ndev) != cudaSuccess) ndev = 0;
    int spare[2] = {ndev, ndev - local_size}, fewest[2]; /* GPUs of the rank, GPUs beyond one per rank of its node */
    MPI_Allreduce(spare, fewest, 2, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (fewest[0] == 0 || fewest[1] < 0) {
        if (g_rank == 0) printf("skipped: %s\n", fewest[0] == 0 ? "no GPU" : "fewer GPUs than ranks on a node");
        MPI_Finalize();
        return 0;
    }
    setenv("NCCL_NVLS_ENABLE", "0", 0); /* no NVLink multicast, as in the product (before NCCL reads it) */
    CK_CUDA(cudaSetDevice(local_rank % ndev));
    ncclUniqueId id;
    if (g_rank == 0) CK_NCCL(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclComm_t comm;
    CK_NCCL(ncclCommInitRank(&comm, nranks, id, g_rank));
    if (g_rank == 0 && nranks < 2) printf("# one rank: nothing to reduce across (mpirun -np 2 or more)\n");
    cudaStream_t s;
    CK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    buffers kinds[2] = {{.name = "nccl"}, {.name = "nccl-symmetric", .symmetric = 1}};
    for (int k = 0; k < 2; k++) buffers_make(&kinds[k], comm);
    if (g_rank == 0) {
        int v = 0;
        ncclGetVersion(&v);
        printf("in-place bf16 sum all-reduce, %d ranks, NCCL %d, NCCL_NVLS_ENABLE=%s; us per all-reduce "
               "(slowest rank's median of %d graph replays of %d)\n", nranks, v, getenv("NCCL_NVLS_ENABLE"), REPLAYS,
               ITERS);
        printf("| bytes | nccl (cudaMalloc) us | nccl-symmetric (window) us | symmetric / plain | check |\n");
        printf("|---|---|---|---|---|\n");
    }
    long wrong_here = 0;
    for (size_t bytes = 2048; bytes <= MAX_BYTES; bytes *= 2) {
        float us[2], slowest[2];
        long wrong[2] = {0, 0}, wrong_all[2];
        for (int k = 0; k < 2; k++) us[k] = measure(&kinds[k], bytes, nranks, comm, s, &wrong[k]);
        MPI_Reduce(us, slowest, 2, MPI_FLOAT, MPI_MAX, 0, MPI_COMM_WORLD);
        MPI_Reduce(wrong, wrong_all, 2, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
        wrong_here += wrong[0] + wrong[1];
        if (g_rank == 0) {
            char check[96] = "ok";
            if (wrong_all[0] || wrong_all[1])
                snprintf(check, sizeof check, "WRONG: %ld plain, %ld symmetric elements", wrong_all[0], wrong_all[1]);
            printf("| %zu | %.2f | %.2f | %.2f | %s |\n", bytes, slowest[0], slowest[1], slowest[1] / slowest[0],
                   check);
        }
    }
    for (int k = 0; k < 2; k++) buffers_free(&kinds[k], comm);
    CK_CUDA(cudaStreamDestroy(s));
    CK_NCCL(ncclCommDestroy(comm));
    long wrong_total = 0;
    MPI_Allreduce(&wrong_here, &wrong_total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return wrong_total ? 1 : 0;
}

/* bench_allreduce.c - latency of the decode-path bf16 all-reduce (src/comm/cuda/nccl_comm.h), per implementation,
 * inside a CUDA graph, on 2 (or more) GPUs.
 *
 * Run it (from the repository root, on a machine with >= 2 GPUs; the two OMPI_ variables are for root):
 *   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a
 *   cmake --build build -j --target bench_allreduce
 *   OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0 \
 *       mpirun -np 2 -x NCCL_NVLS_ENABLE build/tests/bench_allreduce
 * Watchdog test (rank 1 stops answering; rank 0 must abort with a message naming rank, host and operation,
 * "... NCCL communicator aborted", and mpirun must exit non-zero within ~--deadline seconds; --fault-die: rank 1
 * exits instead):
 *   ... mpirun -np 2 -x NCCL_NVLS_ENABLE build/tests/bench_allreduce --fault-hang --impl nccl --deadline 10
 *
 * For each implementation (nccl, ipc-oneshot; NCCL's symmetric windows are in the lab, dev/), op and size (2, 4, 8, 16 KB of bf16):
 *   ops: sum (qb_allreduce_sum_bf16), sum+norm (qb_allreduce_add_rmsnorm_bf16: the all-reduce with the residual
 *   add and RMSNorm that follow it on the decode path; one kernel for ipc-oneshot) and, for ipc-oneshot, sum,norm
 *   (the same as two kernels, the baseline the fusion must beat).
 *   1. correctness, outside any timing: rank r holds (r+1)*((i%7)-3); one eager reduction must give
 *      ((i%7)-3)*N(N+1)/2 exactly (small integers are exact in bf16); then a graph of --ops reductions
 *      launched once must give that times N^(ops-1) (checked when N is a power of two, where it is exact);
 *      sum+norm is checked eagerly against a host computation; the uint64 max all-reduce once per implementation;
 *   2. timing: the buffers are zeroed, the graph is launched 3 times to warm up, then --replays times, each
 *      launch after a world barrier, timed with CUDA events; per-op latency = graph time / ops.
 * Output: lines starting with '#' are not data; one table row per (implementation, size): median and min
 * over the replays of the per-op latency in microseconds, the slowest rank's median, and the check.
 * Exit: 0 every check passed; 1 a check failed or an implementation could not start; 2 bad usage;
 * 77 a rank without a GPU of its own (no GPU, or fewer GPUs than ranks on its host: "skipped: no GPU ...", for
 *    ctest's SKIP_RETURN_CODE).
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "add_rmsnorm.cuh"
#include "comm/cuda/nccl_comm.h"
#include "comm/dist.h"
#include "util/error.h"

#define MAX_SIZES 16
#define WARMUP_LAUNCHES 3
#define MAX_NORM_DIM 8192 /* kernels/norm/add_rmsnorm.cu's limit, the hidden size of 72B */

typedef struct {
    int only_impl;  /* -1: all */
    int ops, replays;
    int n_sizes;
    size_t sizes[MAX_SIZES]; /* bytes */
    int fault_hang, fault_die;
    double deadline_s;
} bench_options;

static int usage(const char *why) {
    fprintf(stderr,
            "bench_allreduce: %s\nusage: mpirun -np 2 bench_allreduce [--impl nccl|ipc-oneshot] "
            "[--ops N] [--replays N] [--sizes-kb 2,4,8,16] [--deadline S] [--fault-hang | --fault-die]\n",
            why);
    return -1;
}

static int parse_options(int argc, char **argv, bench_options *o) {
    *o = (bench_options){.only_impl = -1, .ops = 100, .replays = 20, .n_sizes = 4,
                         .sizes = {2048, 4096, 8192, 16384}, .deadline_s = 60.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--fault-hang") == 0 || strcmp(a, "--fault-die") == 0) {
            o->fault_hang = strcmp(a, "--fault-hang") == 0;
            o->fault_die = !o->fault_hang;
            continue;
        }
        if (!v) return usage("missing value after the last option");
        i++;
        if (strcmp(a, "--impl") == 0) {
            qb_allreduce_impl impl;
            if (qb_allreduce_impl_parse(v, &impl) != 0) return usage(qb_last_error());
            o->only_impl = (int)impl;
        } else if (strcmp(a, "--ops") == 0) {
            o->ops = atoi(v);
            if (o->ops < 1 || o->ops > 100000) return usage("--ops: expected 1..100000");
        } else if (strcmp(a, "--replays") == 0) {
            o->replays = atoi(v);
            if (o->replays < 1 || o->replays > 100000) return usage("--replays: expected 1..100000");
        } else if (strcmp(a, "--deadline") == 0) {
            o->deadline_s = atof(v);
            if (!(o->deadline_s > 0)) return usage("--deadline: expected seconds > 0");
        } else if (strcmp(a, "--sizes-kb") == 0) {
            o->n_sizes = 0;
            char copy[256];
            snprintf(copy, sizeof copy, "%s", v);
            for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
                double kb = atof(tok);
                if (!(kb > 0) || kb > 1024 * 1024 || o->n_sizes == MAX_SIZES) return usage("--sizes-kb: bad list");
                size_t bytes = (size_t)(kb * 1024.0);
                o->sizes[o->n_sizes++] = bytes < 2 ? 2 : bytes & ~(size_t)1;
            }
            if (o->n_sizes == 0) return usage("--sizes-kb: empty list");
        } else {
            return usage("unknown option");
        }
    }
    return 0;
}

/* ---- bf16 on the host (round to nearest even; the test values are exact) ---- */
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double pattern(size_t i) { return (double)((int)(i % 7) - 3); }

/* ---- one (implementation, size) ---- */
typedef enum {
    OP_SUM,           /* qb_allreduce_sum_bf16 */
    OP_SUM_NORM,      /* qb_allreduce_add_rmsnorm_bf16 (fused where the implementation can) */
    OP_SUM_NORM_2STEP /* qb_allreduce_sum_bf16 then qb_launch_add_rmsnorm: the unfused baseline */
} op_kind;

static const char *const OP_NAMES[] = {"sum", "sum+norm", "sum,norm"};

typedef struct {
    qb_dist *d;
    qb_nccl *c;
    cudaStream_t stream;
    op_kind op;
    void *buf;            /* the reduced bf16 values (delta for the norm ops) */
    size_t count;
    uint16_t *host;
    float *resid, *w;     /* norm ops: fp32 [count] each */
    void *out;            /* norm ops: bf16 [count] */
    const bench_options *o;
} cell;

#define NORM_EPS 1e-6f

static int enqueue_op(cell *x) {
    switch (x->op) {
    case OP_SUM: return qb_allreduce_sum_bf16(x->c, x->buf, x->count, x->stream);
    case OP_SUM_NORM:
        return qb_allreduce_add_rmsnorm_bf16(x->c, x->buf, x->resid, x->w, 1, (int)x->count, NORM_EPS, 1, x->out,
                                             x->stream);
    case OP_SUM_NORM_2STEP:
        QB_TRY(qb_allreduce_sum_bf16(x->c, x->buf, x->count, x->stream));
        return qb_launch_add_rmsnorm(x->resid, x->buf, x->w, 1, (int)x->count, NORM_EPS, x->out, x->stream);
    }
    return qb_errorf("unknown op %d", (int)x->op);
}

static int fill_pattern(cell *x) {
    for (size_t i = 0; i < x->count; i++) x->host[i] = to_bf16((float)((x->d->tp_rank + 1) * pattern(i)));
    cudaError_t e = cudaMemcpyAsync(x->buf, x->host, x->count * 2, cudaMemcpyHostToDevice, x->stream);
    return e == cudaSuccess ? 0 : qb_errorf("cudaMemcpyAsync (pattern): %s", cudaGetErrorString(e));
}

/* Compare the device buffer with pattern(i) * scale; prints the first mismatches. Returns mismatches or -1. */
static long check_result(cell *x, double scale, const char *what) {
    cudaError_t e = cudaMemcpyAsync(x->host, x->buf, x->count * 2, cudaMemcpyDeviceToHost, x->stream);
    if (e != cudaSuccess) return qb_errorf("cudaMemcpyAsync (result): %s", cudaGetErrorString(e));
    if (qb_nccl_wait(x->c, x->stream, x->o->deadline_s, "copying the result back") != 0) return -1;
    long bad = 0;
    for (size_t i = 0; i < x->count; i++) {
        double want = pattern(i) * scale, got = from_bf16(x->host[i]);
        if (got != want) {
            if (bad < 5)
                fprintf(stderr, "# rank %d: %s: element %zu of %zu: got %g, want %g (exact: small integers times "
                        "powers of two are exact in bf16)\n", x->d->world_rank, what, i, x->count, got, want);
            bad++;
        }
    }
    return bad;
}

static int capture_graph(cell *x, cudaGraphExec_t *exec) {
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(x->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) return qb_errorf("cudaStreamBeginCapture: %s", cudaGetErrorString(e));
    int rc = 0;
    for (int k = 0; k < x->o->ops && rc == 0; k++) rc = enqueue_op(x);
    e = cudaStreamEndCapture(x->stream, &graph);
    if (rc != 0) {
        if (graph) cudaGraphDestroy(graph);
        return qb_error_prefix("capturing %d all-reduces: ", x->o->ops);
    }
    if (e != cudaSuccess) return qb_errorf("cudaStreamEndCapture: %s", cudaGetErrorString(e));
    e = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    return e == cudaSuccess ? 0 : qb_errorf("cudaGraphInstantiate: %s", cudaGetErrorString(e));
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Timed replays; per-op microseconds into us[replays]. */
static int time_graph(cell *x, cudaGraphExec_t exec, double *us) {
    cudaEvent_t start = NULL, stop = NULL;
    cudaError_t e = cudaEventCreate(&start);
    if (e == cudaSuccess) e = cudaEventCreate(&stop);
    if (e != cudaSuccess) return qb_errorf("cudaEventCreate: %s", cudaGetErrorString(e));
    int rc = 0;
    for (int w = 0; w < WARMUP_LAUNCHES + x->o->replays && rc == 0; w++) {
        if (qb_dist_barrier(x->d) != 0) { rc = -1; break; }
        e = cudaEventRecord(start, x->stream);
        if (e == cudaSuccess) e = cudaGraphLaunch(exec, x->stream);
        if (e == cudaSuccess) e = cudaEventRecord(stop, x->stream);
        if (e != cudaSuccess) { rc = qb_errorf("graph launch: %s", cudaGetErrorString(e)); break; }
        if (qb_nccl_wait(x->c, x->stream, x->o->deadline_s, "timed graph of all-reduces") != 0) { rc = -1; break; }
        float ms = 0;
        e = cudaEventElapsedTime(&ms, start, stop);
        if (e != cudaSuccess) { rc = qb_errorf("cudaEventElapsedTime: %s", cudaGetErrorString(e)); break; }
        if (w >= WARMUP_LAUNCHES) us[w - WARMUP_LAUNCHES] = 1000.0 * ms / x->o->ops;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return rc;
}

static int is_power_of_two(int n) { return n > 0 && (n & (n - 1)) == 0; }

/* Sum: one eager reduction, then a graph of ops reductions launched once (exact when n is a power of two and the
 * result stays finite). Returns wrong values on this rank (or -1); *graph_checked says whether step 2 counted. */
static long check_sum(cell *x, cudaGraphExec_t exec, int *graph_checked) {
    int n = x->d->tp_size;
    QB_TRY(fill_pattern(x));
    QB_TRY(enqueue_op(x));
    QB_TRY(qb_nccl_wait(x->c, x->stream, x->o->deadline_s, "eager all-reduce (correctness)"));
    long bad = check_result(x, n * (n + 1) / 2.0, "eager all-reduce");
    if (bad < 0) return -1;
    double graph_scale = n * (n + 1) / 2.0 * pow((double)n, x->o->ops - 1);
    *graph_checked = is_power_of_two(n) && graph_scale * 3 < 3e38;
    QB_TRY(fill_pattern(x));
    if (cudaGraphLaunch(exec, x->stream) != cudaSuccess) return qb_errorf("cudaGraphLaunch (correctness)");
    QB_TRY(qb_nccl_wait(x->c, x->stream, x->o->deadline_s, "graph of all-reduces (correctness)"));
    if (*graph_checked) {
        long gbad = check_result(x, graph_scale, "graph of all-reduces");
        if (gbad < 0) return -1;
        bad += gbad;
    }
    return bad;
}

/* Sum + residual add + RMSNorm, one eager step against a host computation in double: the residual must be exact
 * (small integers and halves), out within 2^-7 relative (bf16 keeps 8 significant bits; the device's sum of
 * squares runs in fp32 in another order). The graph is launched once and must complete. */
static long check_norm(cell *x, cudaGraphExec_t exec) {
    size_t n = x->count;
    int ranks = x->d->tp_size;
    float *resid0 = malloc(n * sizeof *resid0), *w = malloc(n * sizeof *w), *got_resid = malloc(n * sizeof *got_resid);
    if (!resid0 || !w || !got_resid) return qb_errorf("out of host memory");
    for (size_t i = 0; i < n; i++) {
        resid0[i] = 0.5f * (float)((int)(i % 5) - 2);
        w[i] = 1.0f + 0.25f * (float)(i % 3);
    }
    /* copies on the benchmark's stream: it does not wait for the legacy default stream */
    cudaError_t e = cudaMemcpyAsync(x->resid, resid0, n * sizeof(float), cudaMemcpyHostToDevice, x->stream);
    if (e == cudaSuccess) e = cudaMemcpyAsync(x->w, w, n * sizeof(float), cudaMemcpyHostToDevice, x->stream);
    if (e != cudaSuccess) return qb_errorf("cudaMemcpyAsync (norm inputs): %s", cudaGetErrorString(e));
    QB_TRY(fill_pattern(x));
    QB_TRY(enqueue_op(x));
    QB_TRY(qb_nccl_wait(x->c, x->stream, x->o->deadline_s, "eager all-reduce + RMSNorm (correctness)"));
    e = cudaMemcpyAsync(got_resid, x->resid, n * sizeof(float), cudaMemcpyDeviceToHost, x->stream);
    if (e == cudaSuccess) e = cudaMemcpyAsync(x->host, x->out, n * 2, cudaMemcpyDeviceToHost, x->stream);
    if (e != cudaSuccess) return qb_errorf("cudaMemcpyAsync (norm results): %s", cudaGetErrorString(e));
    QB_TRY(qb_nccl_wait(x->c, x->stream, x->o->deadline_s, "copying the RMSNorm results back"));
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        double v = resid0[i] + pattern(i) * ranks * (ranks + 1) / 2.0;
        ss += v * v;
    }
    double scale = 1.0 / sqrt(ss / (double)n + NORM_EPS);
    long bad = 0;
    for (size_t i = 0; i < n; i++) {
        double want_resid = resid0[i] + pattern(i) * ranks * (ranks + 1) / 2.0;
        double want = want_resid * scale * w[i], got = from_bf16(x->host[i]);
        double tol = fabs(want) / 128.0 + 1e-6;
        if (got_resid[i] != want_resid || fabs(got - want) > tol) {
            if (bad < 5)
                fprintf(stderr, "# rank %d: all-reduce + RMSNorm: element %zu of %zu: residual %g (want %g exactly), "
                        "out %g (want %g within %g: bf16 rounding)\n", x->d->world_rank, i, n, got_resid[i],
                        want_resid, got, want, tol);
            bad++;
        }
    }
    free(resid0);
    free(w);
    free(got_resid);
    if (cudaGraphLaunch(exec, x->stream) != cudaSuccess) return qb_errorf("cudaGraphLaunch (norm correctness)");
    QB_TRY(qb_nccl_wait(x->c, x->stream, x->o->deadline_s, "graph of all-reduces + RMSNorm (correctness)"));
    return bad;
}

static int alloc_norm_buffers(cell *x) {
    cudaError_t e = cudaMalloc((void **)&x->resid, x->count * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&x->w, x->count * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&x->out, x->count * 2);
    return e == cudaSuccess ? 0 : qb_errorf("cudaMalloc (norm buffers): %s", cudaGetErrorString(e));
}

static void free_norm_buffers(cell *x) {
    cudaFree(x->resid);
    cudaFree(x->w);
    cudaFree(x->out);
}

/* Runs one row; *checks_ok = 0 when a value was wrong on any rank. -1 only for errors that end the job. */
static int run_size(qb_dist *d, qb_nccl *c, cudaStream_t stream, const bench_options *o, qb_allreduce_impl impl,
                    op_kind op, size_t bytes, int *checks_ok) {
    cell x = {.d = d, .c = c, .stream = stream, .op = op, .count = bytes / 2, .o = o};
    x.host = malloc(x.count * 2);
    double *us = calloc((size_t)o->replays, sizeof *us);
    if (!x.host || !us) return qb_errorf("out of host memory");
    QB_TRY(qb_nccl_alloc_bf16(c, x.count, &x.buf));
    if (op != OP_SUM) QB_TRY(alloc_norm_buffers(&x));

    /* 0. one eager op before capturing: NCCL connects its channels lazily, at the first collective that needs
     *    them, which must not happen inside a capture */
    if (op != OP_SUM) {
        cudaError_t z = cudaMemsetAsync(x.resid, 0, x.count * sizeof(float), stream);
        if (z == cudaSuccess) z = cudaMemsetAsync(x.w, 0, x.count * sizeof(float), stream);
        if (z != cudaSuccess) return qb_errorf("cudaMemsetAsync (norm buffers): %s", cudaGetErrorString(z));
    }
    QB_TRY(enqueue_op(&x));
    QB_TRY(qb_nccl_wait(c, stream, o->deadline_s, "warm-up all-reduce before capture"));

    /* 1. correctness, outside the timing */
    cudaGraphExec_t exec = NULL;
    QB_TRY(capture_graph(&x, &exec));
    int graph_checked = 0;
    long bad = op == OP_SUM ? check_sum(&x, exec, &graph_checked) : check_norm(&x, exec);
    if (bad < 0) return -1;
    int all_ok = 0;
    QB_TRY(qb_dist_all_ok(d, bad == 0, &all_ok));
    if (!all_ok) *checks_ok = 0;

    /* 2. timing on zeros (sums of zeros stay zero however often the graph runs; RMSNorm of zeros is zero) */
    cudaError_t e = cudaMemsetAsync(x.buf, 0, x.count * 2, stream);
    if (e == cudaSuccess && op != OP_SUM) e = cudaMemsetAsync(x.resid, 0, x.count * sizeof(float), stream);
    if (e != cudaSuccess) return qb_errorf("cudaMemsetAsync: %s", cudaGetErrorString(e));
    QB_TRY(time_graph(&x, exec, us));
    cudaGraphExecDestroy(exec);
    qsort(us, (size_t)o->replays, sizeof *us, compare_double);
    double median = o->replays % 2 ? us[o->replays / 2] : 0.5 * (us[o->replays / 2 - 1] + us[o->replays / 2]);
    double *medians = d->world_rank == 0 ? calloc((size_t)d->world_size, sizeof *medians) : NULL;
    QB_TRY(qb_dist_gather(d, &median, sizeof median, medians));
    if (d->world_rank == 0) {
        double slowest = 0;
        for (int r = 0; r < d->world_size; r++) slowest = medians[r] > slowest ? medians[r] : slowest;
        printf("%-15s %-9s %7zu %7zu %12.2f %10.2f %14.2f  %s\n", qb_allreduce_impl_name(impl), OP_NAMES[op], bytes,
               x.count, median, us[0], slowest,
               !all_ok ? "WRONG" : op != OP_SUM ? "ok (eager)" : graph_checked ? "ok" : "ok (eager only)");
        fflush(stdout);
        free(medians);
    }
    if (op != OP_SUM) free_norm_buffers(&x);
    free(x.host);
    free(us);
    return 0;
}

/* The cross-shard argmax reduction: uint64 max of per-rank keys. Returns 1 when right on every rank. */
static int check_max_u64(qb_dist *d, qb_nccl *c, cudaStream_t stream, const bench_options *o) {
    enum { N = 4 };
    uint64_t host[N], *dev = NULL;
    for (int i = 0; i < N; i++) host[i] = ((uint64_t)((i * 7 + d->tp_rank * 13) % 17) << 32) | (uint64_t)d->tp_rank;
    cudaError_t e = cudaMalloc((void **)&dev, sizeof host);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dev, host, sizeof host, cudaMemcpyHostToDevice, stream);
    if (e != cudaSuccess) return qb_errorf("cudaMalloc/cudaMemcpyAsync (max check): %s", cudaGetErrorString(e));
    QB_TRY(qb_allreduce_max_u64(c, dev, N, stream));
    if (cudaMemcpyAsync(host, dev, sizeof host, cudaMemcpyDeviceToHost, stream) != cudaSuccess)
        return qb_errorf("cudaMemcpyAsync (max check result)");
    QB_TRY(qb_nccl_wait(c, stream, o->deadline_s, "uint64 max all-reduce (correctness)"));
    cudaFree(dev);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        uint64_t want = 0;
        for (int r = 0; r < d->tp_size; r++) {
            uint64_t key = ((uint64_t)((i * 7 + r * 13) % 17) << 32) | (uint64_t)r;
            want = key > want ? key : want;
        }
        if (host[i] != want) {
            fprintf(stderr, "# rank %d: uint64 max: element %d: got %llx, want %llx\n", d->world_rank, i,
                    (unsigned long long)host[i], (unsigned long long)want);
            ok = 0;
        }
    }
    int all_ok = 0;
    QB_TRY(qb_dist_all_ok(d, ok, &all_ok));
    return all_ok;
}

/* Rank 1 stops answering (--fault-hang) or exits (--fault-die) after one good reduction; the job must end
 * non-zero: for a hang through rank 0's watchdog (qb_nccl_wait), for a death through mpirun or the watchdog. */
static int fault_hang(qb_dist *d, const bench_options *o, qb_allreduce_impl impl, cudaStream_t stream) {
    qb_nccl *c = NULL;
    QB_TRY(qb_nccl_create(d, impl, &c));
    void *buf = NULL;
    QB_TRY(qb_nccl_alloc_bf16(c, 8192, &buf));
    QB_TRY(qb_allreduce_sum_bf16(c, buf, 8192, stream));
    QB_TRY(qb_nccl_wait(c, stream, o->deadline_s, "all-reduce before the fault"));
    QB_TRY(qb_dist_barrier(d));
    if (d->world_rank == 0)
        fprintf(stderr, "# fault test (%s): rank 1 now %s; the job must end non-zero within %g s\n",
                qb_allreduce_impl_name(impl), o->fault_hang ? "stops answering" : "exits", o->deadline_s);
    if (d->tp_rank == 1) {
        if (o->fault_die) _exit(3);
        for (;;) pause();
    }
    QB_TRY(qb_allreduce_sum_bf16(c, buf, 8192, stream));
    QB_TRY(qb_nccl_wait(c, stream, o->deadline_s, "all-reduce during the fault test"));
    return qb_errorf("fault test: the all-reduce completed although rank 1 stopped (the watchdog did not fire)");
}

static void print_header(const qb_dist *d, const bench_options *o) {
    if (d->world_rank != 0) return;
    int device = 0;
    cudaGetDevice(&device);
    struct cudaDeviceProp prop;
    memset(&prop, 0, sizeof prop);
    cudaGetDeviceProperties(&prop, device);
    char nccl[32];
    qb_nccl_version_string(nccl, sizeof nccl);
    const char *nvls = getenv("NCCL_NVLS_ENABLE");
    printf("# bench_allreduce: in-place bf16 sum over %d ranks (one GPU each), %d all-reduces per CUDA graph, "
           "%d timed graph launches after %d warm-up\n", d->tp_size, o->ops, o->replays, WARMUP_LAUNCHES);
    printf("# rank 0 device: %s; NCCL %s; NCCL_NVLS_ENABLE=%s; NCCL_ALGO=%s; NCCL_PROTO=%s\n", prop.name, nccl,
           nvls ? nvls : "(unset)", getenv("NCCL_ALGO") ? getenv("NCCL_ALGO") : "(unset)",
           getenv("NCCL_PROTO") ? getenv("NCCL_PROTO") : "(unset)");
    printf("# us/op = microseconds per all-reduce = graph time / %d; median and min over launches on rank 0; "
           "slowest = largest median over ranks\n", o->ops);
    printf("# op: sum = in-place all-reduce; sum+norm = all-reduce + residual add + RMSNorm of one row through "
           "qb_allreduce_add_rmsnorm_bf16 (one kernel for ipc-oneshot); sum,norm = the same as two kernels\n");
    printf("# %-13s %-9s %7s %7s %12s %10s %14s  %s\n", "impl", "op", "bytes", "count", "us/op median", "us/op min",
           "slowest median", "check");
    fflush(stdout);
}

int main(int argc, char **argv) {
    bench_options o;
    if (parse_options(argc, argv, &o) != 0) return 2;
    qb_dist d;
    if (qb_dist_init(&argc, &argv, o.deadline_s, &d) != 0) {
        fprintf(stderr, "bench_allreduce: %s\n", qb_last_error());
        return 1;
    }

    int devices = 0;
    cudaError_t e = cudaGetDeviceCount(&devices);
    /* one GPU of its own per rank: a one-GPU machine (the lent GPU machine) cannot run this pair of ranks */
    int have_gpu = e == cudaSuccess && devices >= d.local_size, every_rank_has_one = 0;
    if (qb_dist_all_ok(&d, have_gpu, &every_rank_has_one) != 0) QB_FATAL(&d, qb_last_error());
    if (!every_rank_has_one) {
        if (d.world_rank == 0 || !have_gpu)
            printf("skipped: no GPU of its own for every rank (rank %d: %s)\n", d.world_rank,
                   e != cudaSuccess ? cudaGetErrorString(e)
                   : have_gpu       ? "another rank has none"
                                    : devices == 0 ? "0 devices" : "fewer GPUs than ranks on this host");
        qb_dist_finalize(&d);
        return 77;
    }
    if (d.world_size < 2) {
        fprintf(stderr, "bench_allreduce: needs at least 2 ranks, one per GPU: mpirun -np 2 %s\n", argv[0]);
        qb_dist_finalize(&d);
        return 2;
    }
    if (qb_nccl_select_device(&d, NULL) != 0) QB_FATAL(&d, qb_last_error());
    cudaStream_t stream;
    if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) QB_FATAL(&d, "cudaStreamCreate");

    if (o.fault_hang || o.fault_die) {
        qb_allreduce_impl impl = o.only_impl >= 0 ? (qb_allreduce_impl)o.only_impl : QB_AR_NCCL;
        fault_hang(&d, &o, impl, stream);
        QB_FATAL(&d, qb_last_error()); /* the expected end: MPI_Abort, non-zero exit */
    }

    print_header(&d, &o);
    int failures = 0, checks_ok = 1;
    for (int i = 0; i < QB_AR_COUNT; i++) {
        if (o.only_impl >= 0 && i != o.only_impl) continue;
        qb_allreduce_impl impl = (qb_allreduce_impl)i;
        qb_nccl *c = NULL;
        if (qb_nccl_create(&d, impl, &c) != 0) {
            /* creation agrees across ranks, so every rank skips this implementation together */
            if (d.world_rank == 0) printf("# %s: unavailable: %s\n", qb_allreduce_impl_name(impl), qb_last_error());
            else fprintf(stderr, "# rank %d: %s unavailable: %s\n", d.world_rank, qb_allreduce_impl_name(impl),
                         qb_last_error());
            fflush(stdout);
            failures++;
            continue;
        }
        for (int op = OP_SUM; op <= OP_SUM_NORM_2STEP; op++) {
            /* the two-step baseline differs from sum+norm only where sum+norm is fused (ipc-oneshot) */
            if (op == OP_SUM_NORM_2STEP && impl != QB_AR_IPC_ONESHOT) continue;
            for (int s = 0; s < o.n_sizes; s++) {
                if (op != OP_SUM && o.sizes[s] / 2 > MAX_NORM_DIM) continue;
                if (run_size(&d, c, stream, &o, impl, (op_kind)op, o.sizes[s], &checks_ok) != 0)
                    QB_FATAL(&d, qb_last_error());
            }
        }
        int max_ok = check_max_u64(&d, c, stream, &o);
        if (max_ok < 0) QB_FATAL(&d, qb_last_error());
        if (!max_ok) checks_ok = 0;
        if (d.world_rank == 0) printf("# %s: uint64 max all-reduce (argmax keys): %s\n", qb_allreduce_impl_name(impl),
                                      max_ok ? "ok" : "WRONG");
        qb_nccl_destroy(c);
    }
    if (!checks_ok && d.world_rank == 0) printf("# FAILED: some all-reduce results were wrong (see stderr)\n");
    cudaStreamDestroy(stream);
    qb_dist_finalize(&d);
    return failures || !checks_ok ? 1 : 0;
}

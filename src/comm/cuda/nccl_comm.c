/* nccl_comm.c - NCCL bring-up, reduction buffers and the decode-path all-reduce (see nccl_comm.h).
 *
 * The one-GPU-per-rank check lives in nccl_gpu_check.c and the hang watchdog in nccl_wait.c; the one-shot
 * IPC kernel in allreduce_ipc.cu with its setup in allreduce_ipc_setup.c.
 */
#include "comm/cuda/nccl_comm.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "add_rmsnorm.cuh"
#include "comm/cuda/allreduce_ipc.h"
#include "comm/cuda/nccl_internal.h"
#include "comm/tp_mpi.h"
#include "util/error.h"

static const char *const IMPL_NAMES[QB_AR_COUNT] = {"nccl", "ipc-oneshot"};

const char *qb_allreduce_impl_name(qb_allreduce_impl impl) {
    return impl >= 0 && impl < QB_AR_COUNT ? IMPL_NAMES[impl] : "?";
}

int qb_allreduce_impl_parse(const char *name, qb_allreduce_impl *out) {
    for (int i = 0; i < QB_AR_COUNT; i++)
        if (name && strcmp(name, IMPL_NAMES[i]) == 0) {
            *out = (qb_allreduce_impl)i;
            return 0;
        }
    return qb_errorf("all-reduce implementation '%s': expected one of nccl, ipc-oneshot", name ? name : "(null)");
}

int qb_nccl_fail(const char *what, ncclResult_t r, ncclComm_t comm) {
    const char *last = ncclGetLastError(comm);
    return qb_errorf("%s failed: %s%s%s", what, ncclGetErrorString(r), last && last[0] ? ": " : "",
                     last ? last : "");
}

/* NVLink multicast (NVLS) stays off: on shared hosts it can put every GPU of the machine out of service. */
static void keep_nvls_off(const qb_dist *d) {
    const char *v = getenv("NCCL_NVLS_ENABLE");
    if (!v) {
        setenv("NCCL_NVLS_ENABLE", "0", 0);
    } else if (strcmp(v, "0") != 0 && d->world_rank == 0) {
        fprintf(stderr, "# warning: NCCL_NVLS_ENABLE=%s was set by the caller; qwenbench expects 0 (NVLink "
                        "multicast off)\n", v);
    }
}

int qb_nccl_select_device(const qb_dist *d, int *device_out) {
    keep_nvls_off(d); /* before anything can load NCCL's settings */
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return qb_nccl_cuda_fail("cudaGetDeviceCount", e);
    if (n <= 0) return qb_errorf("cudaGetDeviceCount: no CUDA device is visible");
    int device = d->local_rank % n;
    e = cudaSetDevice(device);
    if (e != cudaSuccess) return qb_nccl_cuda_fail("cudaSetDevice", e);
    if (device_out) *device_out = device;
    return 0;
}

static int init_comm(qb_dist *d, qb_nccl *c) {
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    int ok = 1;
    if (d->tp_rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) ok = qb_nccl_fail("ncclGetUniqueId", r, NULL) == 0;
    }
    QB_TRY(qb_tp_agree(d, ok, "NCCL bring-up: ncclGetUniqueId on TP rank 0"));
    QB_TRY(qb_tp_bcast(d, &id, sizeof id, 0, "MPI_Bcast (NCCL unique id)"));
    qb_watchdog_arm(d, "ncclCommInitRank");
    ncclResult_t r = ncclCommInitRank(&c->comm, d->tp_size, id, d->tp_rank);
    qb_watchdog_disarm(d);
    if (r != ncclSuccess) {
        c->comm = NULL;
        ok = qb_nccl_fail("ncclCommInitRank", r, NULL) == 0;
    }
    return qb_tp_agree(d, ok, "NCCL bring-up: ncclCommInitRank");
}

/* Collective over the TP group: 1 when every rank of it shares this node (CUDA IPC reaches the peers) and the
 * group is small enough for the one-shot kernel. */
static int ipc_possible(const qb_dist *d) {
    if (d->tp_size > QB_AR_MAX_RANKS) return 0;
    MPI_Comm node;
    if (MPI_Comm_split_type(d->tp_comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS) return 0;
    int n = 0;
    MPI_Comm_size(node, &n);
    MPI_Comm_free(&node);
    int all = n == d->tp_size, every = 0;
    MPI_Allreduce(&all, &every, 1, MPI_INT, MPI_MIN, d->tp_comm);
    return every;
}

int qb_nccl_create(qb_dist *d, qb_allreduce_impl impl, qb_nccl **out) {
    *out = NULL;
    if (impl < 0 || impl >= QB_AR_COUNT) return qb_errorf("NCCL bring-up: unknown all-reduce implementation %d", impl);
    keep_nvls_off(d);
    qb_nccl *c = calloc(1, sizeof *c);
    if (!c) return qb_errorf("NCCL bring-up: out of host memory");
    c->dist = d;
    c->impl = impl;
    cudaError_t e = cudaGetDevice(&c->device);
    if (e != cudaSuccess) {
        free(c);
        return qb_nccl_cuda_fail("NCCL bring-up: cudaGetDevice", e);
    }
    if (qb_nccl_check_one_gpu_per_rank(d) != 0 || init_comm(d, c) != 0) {
        if (c->comm) ncclCommDestroy(c->comm);
        free(c);
        return -1;
    }
    if (impl == QB_AR_IPC_ONESHOT && d->tp_size > 1 && !ipc_possible(d)) {
        if (d->tp_rank == 0)
            fprintf(stderr, "# all-reduce: ipc-oneshot needs the %d ranks of the tensor-parallel group on one node "
                            "(at most %d): using nccl\n", d->tp_size, QB_AR_MAX_RANKS);
        c->impl = impl = QB_AR_NCCL;
    }
    if (impl == QB_AR_IPC_ONESHOT && d->tp_size > 1) {
        double timeout_s = d->deadline_s > 0 ? d->deadline_s : 600.0;
        if (qb_ipc_peers_open(d, QB_AR_ONESHOT_MAX_BYTES, timeout_s, &c->ipc) != 0) {
            ncclCommDestroy(c->comm);
            free(c);
            return -1;
        }
        c->ipc_open = 1;
    }
    *out = c;
    return 0;
}

static int remember_buffer(qb_nccl *c, void *ptr, size_t bytes) {
    if (c->n_buffers == c->cap_buffers) {
        int cap = c->cap_buffers ? 2 * c->cap_buffers : 8;
        qb_ar_buffer *grown = realloc(c->buffers, (size_t)cap * sizeof *grown);
        if (!grown) return qb_errorf("reduction buffer: out of host memory");
        c->buffers = grown;
        c->cap_buffers = cap;
    }
    c->buffers[c->n_buffers++] = (qb_ar_buffer){ptr, bytes};
    return 0;
}

int qb_nccl_alloc_bf16(qb_nccl *c, size_t count, void **buf_out) {
    *buf_out = NULL;
    if (!c || c->aborted) return qb_errorf("reduction buffer: the NCCL context is %s", c ? "aborted" : "missing");
    if (count == 0) return qb_errorf("reduction buffer: 0 values requested");
    size_t bytes = count * 2;
    size_t rounded = (bytes + 255) & ~(size_t)255;
    void *ptr = NULL;
    cudaError_t e = cudaMalloc(&ptr, rounded);
    if (e == cudaSuccess) e = cudaMemset(ptr, 0, rounded);
    if (e == cudaSuccess) e = cudaDeviceSynchronize(); /* the engine's streams may not wait for the legacy stream */
    if (e != cudaSuccess) {
        if (ptr) cudaFree(ptr);
        return qb_nccl_cuda_fail("reduction buffer: cudaMalloc", e);
    }
    if (remember_buffer(c, ptr, rounded) != 0) {
        cudaFree(ptr);
        return -1;
    }
    *buf_out = ptr;
    return 0;
}

int qb_allreduce_sum_bf16(qb_nccl *c, void *buf, size_t count, cudaStream_t stream) {
    if (!c || c->aborted) return qb_errorf("all-reduce: the NCCL context is %s", c ? "aborted" : "missing");
    if (count == 0 || c->dist->tp_size == 1) return 0;
    if (c->ipc_open && count * 2 <= c->ipc.slot_bytes && ((size_t)buf & 15u) == 0) {
        cudaError_t e = (cudaError_t)qb_ipc_oneshot_launch(&c->ipc, buf, count, stream);
        return e == cudaSuccess ? 0 : qb_nccl_cuda_fail("all-reduce: one-shot IPC kernel launch", e);
    }
    ncclResult_t r = ncclAllReduce(buf, buf, count, ncclBfloat16, ncclSum, c->comm, stream);
    return r == ncclSuccess ? 0 : qb_nccl_fail("all-reduce: ncclAllReduce (bf16 sum)", r, c->comm);
}

int qb_allreduce_add_rmsnorm_bf16(qb_nccl *c, void *delta, float *residual, const float *w, int rows, int dim,
                                  float eps, int one_kernel, void *out, cudaStream_t stream) {
    if (!c || c->aborted) return qb_errorf("all-reduce + RMSNorm: the NCCL context is %s", c ? "aborted" : "missing");
    if (rows <= 0 || dim <= 0) return qb_errorf("all-reduce + RMSNorm: %d rows of %d values", rows, dim);
    if (one_kernel && c->ipc_open && rows == 1 && dim <= QB_IPC_NORM_MAX_DIM && (size_t)dim * 2 <= c->ipc.slot_bytes) {
        cudaError_t e = (cudaError_t)qb_ipc_oneshot_add_rmsnorm_launch(&c->ipc, delta, residual, w, dim, eps, out,
                                                                        stream);
        return e == cudaSuccess ? 0 : qb_nccl_cuda_fail("all-reduce + RMSNorm: one-shot IPC kernel launch", e);
    }
    QB_TRY(qb_allreduce_sum_bf16(c, delta, (size_t)rows * (size_t)dim, stream));
    return qb_launch_add_rmsnorm(residual, delta, w, rows, dim, eps, out, stream);
}

int qb_allreduce_max_u64(qb_nccl *c, void *buf, size_t count, cudaStream_t stream) {
    if (!c || c->aborted) return qb_errorf("all-reduce (max): the NCCL context is %s", c ? "aborted" : "missing");
    if (count == 0 || c->dist->tp_size == 1) return 0;
    ncclResult_t r = ncclAllReduce(buf, buf, count, ncclUint64, ncclMax, c->comm, stream);
    return r == ncclSuccess ? 0 : qb_nccl_fail("all-reduce: ncclAllReduce (uint64 max)", r, c->comm);
}

void qb_nccl_abort(qb_nccl *c) {
    if (c->comm) ncclCommAbort(c->comm);
    c->comm = NULL;
    c->aborted = 1;
}

void qb_nccl_destroy(qb_nccl *c) {
    if (!c) return;
    if (!c->aborted) {
        cudaError_t e = cudaDeviceSynchronize();
        if (e != cudaSuccess) fprintf(stderr, "qwenbench: rank %d on %s: NCCL teardown: %s\n", c->dist->world_rank,
                                      c->dist->hostname, cudaGetErrorString(e));
        for (int i = c->n_buffers - 1; i >= 0; i--) cudaFree(c->buffers[i].ptr);
    }
    if (c->xchg_open) qb_ipc_peers_close(c->dist, &c->xchg, c->aborted);
    if (c->ipc_open) qb_ipc_peers_close(c->dist, &c->ipc, c->aborted);
    if (c->comm) ncclCommDestroy(c->comm);
    free(c->buffers);
    free(c);
}

int qb_nccl_tp_exchange_open(qb_nccl *c, int dim, int points, qb_tp_exchange *out) {
    *out = (qb_tp_exchange){0};
    if (!c || c->aborted) return qb_errorf("residual exchange: the NCCL context is %s", c ? "aborted" : "missing");
    if (!c->ipc_open || dim <= 0 || dim > QB_TPX_MAX_DIM || dim % 8 || points <= 0) return 0; /* not available */
    if (c->xchg_open) return qb_errorf("residual exchange: already open");
    size_t slot = ((size_t)dim * sizeof(float) + 255) & ~(size_t)255;
    /* the region's two staging halves of ranks x slot_bytes each hold the points: slot_bytes = half the points */
    size_t half_points = (size_t)(points + 1) / 2;
    double timeout_s = (double)c->ipc.timeout_ns * 1e-9;
    if (qb_ipc_peers_open_filled(c->dist, half_points * slot, 0xFF, timeout_s, &c->xchg) != 0) return -1;
    c->xchg_open = 1;
    const qb_ipc_peers *x = &c->xchg;
    for (int r = 0; r < x->ranks && r < QB_TPX_MAX_RANKS; r++) out->base[r] = x->peer[r];
    out->slot_bytes = slot;
    out->point_bytes = (size_t)x->ranks * slot;
    out->points = points;
    out->error_dev = x->error_dev;
    out->timeout_ns = x->timeout_ns;
    out->rank = x->rank;
    out->ranks = x->ranks;
    return 0;
}

ncclComm_t qb_nccl_comm(const qb_nccl *c) { return c ? c->comm : NULL; }
qb_allreduce_impl qb_nccl_impl(const qb_nccl *c) { return c->impl; }
int qb_nccl_aborted(const qb_nccl *c) { return c ? c->aborted : 1; }

void qb_nccl_version_string(char *out, size_t cap) {
    int v = 0;
    if (ncclGetVersion(&v) != ncclSuccess) {
        snprintf(out, cap, "?");
        return;
    }
    /* 2.9 and later: major*10000 + minor*100 + patch; before: major*1000 + minor*100 + patch */
    if (v >= 10000) snprintf(out, cap, "%d.%d.%d", v / 10000, (v % 10000) / 100, v % 100);
    else snprintf(out, cap, "%d.%d.%d", v / 1000, (v % 1000) / 100, v % 100);
}

/* nccl_comm.h - NCCL bring-up and the decode-path all-reduce of the CUDA engine, in one place.
 *
 * Bring-up (qb_nccl_create, collective over dist->tp_comm, every rank of the TP group calls it together):
 *   NCCL_NVLS_ENABLE=0 unless already set (NVLink multicast stays off; cuMulticastCreate is never called)
 *   -> one GPU per rank: every rank's GPU UUID and PCI bus id allgathered over the TP group; two ranks on one
 *      GPU are refused on every rank with a message naming both ranks and the GPU
 *   -> TP rank 0 ncclGetUniqueId -> MPI_Bcast over dist->tp_comm -> ncclCommInitRank on the current device
 *   -> the all-reduce implementation's own resources (see qb_allreduce_impl).
 * The CUDA device must be chosen before (qb_nccl_select_device, or the backend's own cudaSetDevice).
 *
 * All-reduce on the decode path: qb_allreduce_sum_bf16 only enqueues work on the stream; it can be captured
 * in a CUDA graph and replayed any number of times. Reductions of one context must be issued in the same
 * order with the same counts on every rank, one after another on one stream (they may not overlap).
 * Buffers come from qb_nccl_alloc_bf16 so that the implementation chosen at init owns them (the symmetric
 * path needs NCCL-registered windows); any device pointer inside such a buffer may be reduced.
 *
 * Hang safety: qb_nccl_wait polls the stream, ncclCommGetAsyncError and the one-shot kernel's error flag
 * against a deadline; on error or timeout it aborts the communicator, prints rank, host and operation, and
 * returns -1 (the caller then ends the job with qb_dist_fatal -> MPI_Abort).
 * Every function returns 0 / -1 with a one-line message (util/error.h).
 *
 * Engine use (one TP group, decode inside a CUDA graph):
 *   qb_nccl_select_device(dist, &dev);                         (or the backend's own cudaSetDevice)
 *   qb_allreduce_impl impl; qb_allreduce_impl_from_env(&impl);  ($QB_ALLREDUCE, default ipc-oneshot)
 *   qb_nccl_create(dist, impl, &nc);                           (collective)
 *   qb_nccl_alloc_bf16(nc, chunk_rows * H, &delta);            (collective: the o_proj/down_proj output buffer)
 *   per layer, after o_proj and after down_proj (prefill rows = chunk, decode rows = 1):
 *     qb_allreduce_add_rmsnorm_bf16(nc, delta, resid, norm_w, rows, H, eps, xn, stream);
 *   or, for decode, no reduction call at all: qb_nccl_tp_exchange_open(nc, H, 2 * layers, &x) once, and the
 *   row-parallel GEMVs push into x's points for the next GEMV to sum (kernels/comm/tp_exchange.cuh);
 *   greedy token: qb_allreduce_max_u64(nc, key, 1, stream) on the packed (logit, index) key;
 *   waiting: qb_nccl_wait(nc, stream, 0, "decode step") instead of cudaStreamSynchronize; -1 -> QB_FATAL;
 *   qb_nccl_destroy(nc)                                        (collective).
 */
#ifndef QB_CUDA_NCCL_COMM_H
#define QB_CUDA_NCCL_COMM_H

#include <cuda_runtime.h>
#include <nccl.h>
#include <stddef.h>

#include "comm/dist.h"
#include "tp_exchange.cuh"

typedef enum {
    QB_AR_NCCL = 0,        /* ncclAllReduce (NCCL's own algorithm choice) on plain cudaMalloc buffers */
    QB_AR_IPC_ONESHOT,     /* own one-shot kernel: each rank stores its values into every peer's staging (CUDA IPC), then
                            * sums its local copies; reductions above the one-shot limit fall back to ncclAllReduce */
    QB_AR_COUNT
} qb_allreduce_impl;

#define QB_AR_MAX_RANKS 8                     /* one-shot kernel: peers it can address */
#define QB_AR_ONESHOT_MAX_BYTES (512u * 1024) /* one-shot kernel: largest reduction; larger go to NCCL */

const char *qb_allreduce_impl_name(qb_allreduce_impl impl);                /* "nccl", "ipc-oneshot" */
int qb_allreduce_impl_parse(const char *name, qb_allreduce_impl *out);    /* inverse; -1 naming the choices */
/* The engine picks the implementation from its --allreduce option (src/cuda/cuda_choices.c). qb_nccl_create
 * falls back to nccl when the TP group spans nodes or has more than QB_AR_MAX_RANKS ranks. NCCL's symmetric-window
 * all-reduce gave wrong tokens inside the engine and lives in the lab (dev/). */

typedef struct qb_nccl qb_nccl;

/* cudaSetDevice(local_rank % visible devices); -1 when no device is visible. */
int qb_nccl_select_device(const qb_dist *d, int *device_out);
/* Collective over dist->tp_comm: -1 on every rank when two ranks of the group use the same GPU. Called by
 * qb_nccl_create; exposed for the backend's early checks. */
int qb_nccl_check_one_gpu_per_rank(qb_dist *d);

/* Collective over dist->tp_comm (also for tp_size 1, where NCCL makes a communicator of one). */
int qb_nccl_create(qb_dist *d, qb_allreduce_impl impl, qb_nccl **out);
/* Frees everything (buffers from qb_nccl_alloc_bf16 too). Not collective after an abort; otherwise every
 * rank should call it (NCCL windows and IPC mappings are torn down together). NULL is harmless. */
void qb_nccl_destroy(qb_nccl *c);

/* Collective: a reduction buffer of count bf16 values on the device (zeroed), owned by the context.
 * Every rank must call it with the same count in the same order. */
int qb_nccl_alloc_bf16(qb_nccl *c, size_t count, void **buf_out);

/* In-place sum over the TP group of count bf16 values at buf (inside a buffer from qb_nccl_alloc_bf16),
 * enqueued on stream; CUDA-graph capturable. tp_size 1: nothing to do (returns 0). */
int qb_allreduce_sum_bf16(qb_nccl *c, void *buf, size_t count, cudaStream_t stream);

/* The decode-path step after o_proj and down_proj, fused where the implementation can: delta (bf16 rows x dim,
 * this rank's partial output) is summed over the TP group, then per row residual (fp32) += the sum (rounded to
 * bf16) and out (bf16) = residual * rsqrt(mean(residual^2) + eps) * w (fp32 [dim]) - the same numbers as
 * qb_allreduce_sum_bf16 followed by qb_launch_add_rmsnorm (kernels/norm/add_rmsnorm.cuh). one_kernel (the engine's
 * choice, src/cuda/cuda_choices.c) with ipc-oneshot, one row and dim <= QB_IPC_NORM_MAX_DIM: one kernel (delta is
 * left unchanged); otherwise the two steps (delta then holds the sum).
 * CUDA-graph capturable; tp_size 1: just the add + RMSNorm. */
int qb_allreduce_add_rmsnorm_bf16(qb_nccl *c, void *delta, float *residual, const float *w, int rows, int dim,
                                  float eps, int one_kernel, void *out, cudaStream_t stream);

/* In-place maximum over the TP group of count uint64 values (ncclMax on ncclUint64), CUDA-graph capturable:
 * the greedy argmax across vocabulary shards in one 8-byte reduction. Each rank packs its best logit as
 *   key = (uint64)order(value) << 32 | (uint32)~global_index,   order(f) = f >= 0 ? bits(f) | 0x80000000 : ~bits(f)
 * so the largest key is the largest value, ties going to the smallest index; index = ~(uint32)key. */
int qb_allreduce_max_u64(qb_nccl *c, void *buf, size_t count, cudaStream_t stream);

/* Wait for stream with a deadline (deadline_s <= 0: the dist deadline). On success 0; on a CUDA error, an
 * NCCL async error, the one-shot kernel's peer timeout, or the deadline: ncclCommAbort, a line on stderr
 * "qwenbench: rank R on HOST: OPERATION: reason", the same message recorded, and -1. */
int qb_nccl_wait(qb_nccl *c, cudaStream_t stream, double deadline_s, const char *operation);

/* Collective: the decode step's residual exchange (kernels/comm/tp_exchange.cuh: the row-parallel GEMVs push their
 * partial sums into every rank's memory, the next GEMV sums them; no all-reduce kernel) with `points` points of
 * dim fp32 values per rank, freed with the context. 0 with *out filled (out->points > 0) where it can exist
 * (ipc-oneshot with more than one rank, on one node; dim a multiple of 8 up to QB_TPX_MAX_DIM), 0 with
 * out->points = 0 where not, -1 on a failure (on every rank). */
int qb_nccl_tp_exchange_open(qb_nccl *c, int dim, int points, qb_tp_exchange *out);

/* Accessors. The communicator may be used for other collectives (argmax gather, prefill all-reduce). */
ncclComm_t qb_nccl_comm(const qb_nccl *c);
qb_allreduce_impl qb_nccl_impl(const qb_nccl *c);
int qb_nccl_aborted(const qb_nccl *c);
/* "2.28.9" of the library actually loaded. */
void qb_nccl_version_string(char *out, size_t cap);

#endif

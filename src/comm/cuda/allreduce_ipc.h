/* allreduce_ipc.h - the one-shot all-reduce over CUDA IPC peer memory (own kernel), C-callable.
 *
 * Each rank owns one device region, mapped into every peer through cudaIpcGetMemHandle/OpenMemHandle:
 *   [staging 0: ranks x slot_bytes][staging 1: ranks x slot_bytes][flags: u32 [QB_IPC_MAX_RANKS][QB_IPC_MAX_BLOCKS]]
 * and private counters: u32 epoch per block, a call counter, a finished-blocks counter.
 * One reduction (kernel allreduce_ipc.cu), block b of rank r:
 *   1. store its slice of the caller's buffer into slot r of staging[call & 1] of EVERY rank (itself included):
 *      remote stores are posted, so pushing costs one trip over NVLink where pulling would cost a round trip;
 *   2. epoch = ++epoch[b]; store-release epoch into flags[r][b] of every peer (ordered after its stores); spin
 *      (load-acquire) until its own flags[p][b] >= epoch for every peer p (every slot of its staging is written);
 *   3. sum its own staging's slots in rank order (fp32; the same order, so the same result, on every rank) and
 *      write the slice back to the caller's buffer;
 *   4. the last block to finish advances the call counter (so the next call uses the other staging half).
 * Why two halves suffice: a rank starts call k+2 only after its call k+1 passed the barrier with every peer,
 * so every peer's call k (which read staging[k & 1]) has finished (stream order) before it is written again.
 * Nothing is passed from the host per call except the buffer and count, so the launch is graph-capturable.
 * A peer that never arrives: after timeout_ns the block sets *error_flag (host-mapped) and gives up, so the
 * kernel ends and the host watchdog (qb_nccl_wait) reports it.
 */
#ifndef QB_CUDA_ALLREDUCE_IPC_H
#define QB_CUDA_ALLREDUCE_IPC_H

#include <cuda_runtime.h>
#include <stddef.h>

#ifndef __cplusplus
#include "comm/dist.h" /* C only: dist.h uses _Noreturn; the kernel file needs just the struct and the launch */
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define QB_IPC_MAX_RANKS 8
#define QB_IPC_MAX_BLOCKS 32
#define QB_IPC_THREADS 256
#define QB_IPC_NORM_THREADS 512   /* fused all-reduce + add + RMSNorm: one block */
#define QB_IPC_NORM_PER_THREAD 16
#define QB_IPC_NORM_MAX_DIM (QB_IPC_NORM_THREADS * QB_IPC_NORM_PER_THREAD)

typedef struct {
    int rank, ranks;
    size_t slot_bytes;                    /* one rank's slot: the largest one-shot reduction */
    size_t half_bytes;                    /* one staging half: ranks x slot_bytes */
    size_t flags_offset;                  /* = 2 * half_bytes */
    size_t region_bytes;
    char *local;                          /* this rank's region (cudaMalloc) */
    char *peer[QB_IPC_MAX_RANKS];         /* every rank's region as mapped here (peer[rank] = local) */
    unsigned int *counters;               /* [QB_IPC_MAX_BLOCKS + 2], private */
    int *error_host, *error_dev;          /* host-mapped: 1 once a block gave up waiting for a peer */
    unsigned long long timeout_ns;
    int opened;                           /* peers mapped (close must unmap) */
} qb_ipc_peers;

#ifndef __cplusplus
/* Collective over d->tp_comm: allocate, zero, exchange handles, map the peers. slot_bytes: the largest
 * reduction. On a local failure every rank returns -1 (the failure is agreed on before anyone proceeds).
 * timeout_s: how long the kernel waits for a peer before flagging an error. */
int qb_ipc_peers_open(qb_dist *d, size_t slot_bytes, double timeout_s, qb_ipc_peers *out);
/* The same with the region filled with the byte `fill` instead of zeros (the decode's residual exchange,
 * kernels/comm/tp_exchange.cuh, uses the two staging halves as its points, filled with its sentinel). */
int qb_ipc_peers_open_filled(qb_dist *d, size_t slot_bytes, int fill, double timeout_s, qb_ipc_peers *out);
/* collective: unmap peers, barrier, free (no barrier and no free when aborted != 0). */
void qb_ipc_peers_close(qb_dist *d, qb_ipc_peers *p, int aborted);
#endif

/* Launch one in-place reduction of count bf16 values at buf (16-byte aligned, count*2 <= slot_bytes).
 * Returns the cudaError_t of the launch (cudaSuccess = 0). */
int qb_ipc_oneshot_launch(const qb_ipc_peers *p, void *buf, size_t count, cudaStream_t stream);

/* Decode-path fusion, one row of dim <= QB_IPC_NORM_MAX_DIM: delta (bf16) summed over the ranks and rounded to
 * bf16, residual (fp32) += it, out (bf16) = residual * rsqrt(mean(residual^2) + eps) * w. delta itself is
 * left unchanged. Same protocol as above (block slot 0). Returns the launch's cudaError_t. */
int qb_ipc_oneshot_add_rmsnorm_launch(const qb_ipc_peers *p, const void *delta, float *residual, const float *w,
                                      int dim, float eps, void *out, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif

/* nccl_internal.h - internal to the nccl_* files of src/comm/cuda: the context behind qb_nccl (nccl_comm.h) and
 * the error helpers they share. */
#ifndef QB_CUDA_NCCL_INTERNAL_H
#define QB_CUDA_NCCL_INTERNAL_H

#include "comm/cuda/allreduce_ipc.h"
#include "comm/cuda/nccl_comm.h"
#include "util/error.h"

typedef struct {
    void *ptr;   /* cudaMalloc */
    size_t bytes;
} qb_ar_buffer;

struct qb_nccl {
    qb_dist *dist;
    qb_allreduce_impl impl;
    ncclComm_t comm;     /* NULL once aborted */
    int aborted;
    int device;
    qb_ipc_peers ipc;    /* QB_AR_IPC_ONESHOT with more than one rank */
    int ipc_open;
    qb_ipc_peers xchg;   /* the decode step's residual exchange (kernels/comm/tp_exchange.cuh), opened with ipc */
    int xchg_open;
    qb_ar_buffer *buffers;
    int n_buffers, cap_buffers;
};

/* Record "what failed: <NCCL text>: <last NCCL error>" and return -1. */
int qb_nccl_fail(const char *what, ncclResult_t r, ncclComm_t comm);
/* Record "what failed: <CUDA text> (<name>)" and return -1. */
static inline int qb_nccl_cuda_fail(const char *what, cudaError_t e) {
    return qb_errorf("%s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
/* ncclCommAbort (in-flight work of the communicator is abandoned) and mark the context aborted. */
void qb_nccl_abort(qb_nccl *c);

#endif

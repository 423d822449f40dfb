/* allreduce_ipc_setup.c - host side of the one-shot IPC all-reduce: the shared regions and their mapping
 * into every peer (layout and protocol in allreduce_ipc.h).
 *
 * Order (collective over the TP group): cudaMalloc the region, zero it and the counters, synchronise the
 * device -> allgather the cudaIpcMemHandle_t (64 bytes) over MPI -> cudaIpcOpenMemHandle every peer's ->
 * agree that every rank succeeded -> barrier (nobody signals a peer whose flags are not yet zero).
 */
#include "comm/cuda/allreduce_ipc.h"

#include <stdio.h>
#include <string.h>

#include "comm/tp_mpi.h"
#include "util/error.h"

static int cuda_fail(const char *what, cudaError_t e) {
    return qb_errorf("one-shot all-reduce setup: %s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CU_TRY(call)                                          \
    do {                                                      \
        cudaError_t qb_cu_e_ = (call);                        \
        if (qb_cu_e_ != cudaSuccess) return cuda_fail(#call, qb_cu_e_); \
    } while (0)

static int open_local(qb_ipc_peers *p, size_t slot_bytes, int fill, double timeout_s) {
    p->slot_bytes = (slot_bytes + 255) & ~(size_t)255;
    p->half_bytes = (size_t)p->ranks * p->slot_bytes;
    p->flags_offset = 2 * p->half_bytes;
    p->region_bytes = p->flags_offset + sizeof(unsigned int) * QB_IPC_MAX_RANKS * QB_IPC_MAX_BLOCKS;
    p->timeout_ns = (unsigned long long)(timeout_s * 1e9);
    CU_TRY(cudaMalloc((void **)&p->local, p->region_bytes));
    CU_TRY(cudaMemset(p->local, fill, p->region_bytes));
    CU_TRY(cudaMalloc((void **)&p->counters, sizeof(unsigned int) * (QB_IPC_MAX_BLOCKS + 2)));
    CU_TRY(cudaMemset(p->counters, 0, sizeof(unsigned int) * (QB_IPC_MAX_BLOCKS + 2)));
    CU_TRY(cudaHostAlloc((void **)&p->error_host, sizeof(int), cudaHostAllocMapped));
    *p->error_host = 0;
    CU_TRY(cudaHostGetDevicePointer((void **)&p->error_dev, p->error_host, 0));
    CU_TRY(cudaDeviceSynchronize());
    return 0;
}

static int map_peers(const cudaIpcMemHandle_t *handles, qb_ipc_peers *p) {
    for (int r = 0; r < p->ranks; r++) {
        if (r == p->rank) {
            p->peer[r] = p->local;
            continue;
        }
        void *mapped = NULL;
        cudaError_t e = cudaIpcOpenMemHandle(&mapped, handles[r], cudaIpcMemLazyEnablePeerAccess);
        if (e != cudaSuccess)
            return qb_errorf("one-shot all-reduce setup: cudaIpcOpenMemHandle of TP rank %d's buffer failed: %s "
                             "(the GPUs need peer-to-peer access, e.g. NVLink or a PCIe switch)",
                             r, cudaGetErrorString(e));
        p->peer[r] = mapped;
        p->opened = 1;
    }
    return 0;
}

int qb_ipc_peers_open(qb_dist *d, size_t slot_bytes, double timeout_s, qb_ipc_peers *p) {
    return qb_ipc_peers_open_filled(d, slot_bytes, 0, timeout_s, p);
}

int qb_ipc_peers_open_filled(qb_dist *d, size_t slot_bytes, int fill, double timeout_s, qb_ipc_peers *p) {
    memset(p, 0, sizeof *p);
    p->rank = d->tp_rank;
    p->ranks = d->tp_size;
    if (p->ranks > QB_IPC_MAX_RANKS)
        return qb_errorf("one-shot all-reduce: %d ranks in the TP group, at most %d supported", p->ranks,
                         QB_IPC_MAX_RANKS);

    int ok = open_local(p, slot_bytes, fill, timeout_s) == 0;
    cudaIpcMemHandle_t mine, handles[QB_IPC_MAX_RANKS];
    memset(&mine, 0, sizeof mine);
    if (ok) {
        cudaError_t e = cudaIpcGetMemHandle(&mine, p->local);
        if (e != cudaSuccess) ok = cuda_fail("cudaIpcGetMemHandle", e) == 0;
    }
    if (qb_tp_agree(d, ok, "one-shot all-reduce: local buffers") != 0) goto fail;
    if (qb_tp_allgather(d, &mine, handles, sizeof mine, "MPI_Allgather (IPC memory handles)") != 0) goto fail;
    ok = map_peers(handles, p) == 0;
    if (qb_tp_agree(d, ok, "one-shot all-reduce: mapping the peers' buffers") != 0) goto fail;
    if (qb_tp_barrier(d, "MPI_Barrier (one-shot all-reduce ready)") != 0) goto fail;
    return 0;
fail:
    /* every rank took the same path here (the agreements are collective): tear down together */
    qb_ipc_peers_close(d, p, 0);
    return -1;
}

void qb_ipc_peers_close(qb_dist *d, qb_ipc_peers *p, int aborted) {
    if (p->opened)
        for (int r = 0; r < p->ranks; r++)
            if (r != p->rank && p->peer[r]) cudaIpcCloseMemHandle(p->peer[r]);
    if (!aborted) {
        /* every peer must have unmapped this rank's region before it is freed */
        if (qb_tp_barrier(d, "MPI_Barrier (one-shot all-reduce teardown)") != 0)
            fprintf(stderr, "qwenbench: rank %d on %s: %s\n", d->world_rank, d->hostname, qb_last_error());
        if (p->local) cudaFree(p->local);
        if (p->counters) cudaFree(p->counters);
        if (p->error_host) cudaFreeHost(p->error_host);
    }
    memset(p, 0, sizeof *p);
}

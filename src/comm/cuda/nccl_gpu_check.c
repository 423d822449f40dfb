/* nccl_gpu_check.c - one GPU per rank: every rank of the TP group publishes its GPU (UUID, PCI bus id,
 * host) and all ranks refuse together when two of them share a GPU (NCCL does not support two ranks of one
 * communicator on one device, and a benchmark must not share one anyway).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/cuda/nccl_internal.h"
#include "comm/tp_mpi.h"
#include "util/error.h"

typedef struct {
    unsigned char uuid[16];
    char bus_id[32];
    char host[256];
    int world_rank;
    int device;
    int device_count;
} gpu_identity;

static void format_uuid(const unsigned char *u, char *out, size_t cap) {
    snprintf(out, cap, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
             u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int uuid_known(const unsigned char *u) {
    for (int i = 0; i < 16; i++)
        if (u[i]) return 1;
    return 0;
}

static int same_gpu(const gpu_identity *a, const gpu_identity *b) {
    if (uuid_known(a->uuid) && uuid_known(b->uuid)) return memcmp(a->uuid, b->uuid, 16) == 0;
    return strcmp(a->host, b->host) == 0 && strcmp(a->bus_id, b->bus_id) == 0;
}

static int describe_own_gpu(const qb_dist *d, gpu_identity *me) {
    memset(me, 0, sizeof *me);
    me->world_rank = d->world_rank;
    snprintf(me->host, sizeof me->host, "%s", d->hostname);
    cudaError_t e = cudaGetDevice(&me->device);
    if (e == cudaSuccess) e = cudaGetDeviceCount(&me->device_count);
    if (e != cudaSuccess) return qb_nccl_cuda_fail("one-GPU-per-rank check: cudaGetDevice", e);
    struct cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, me->device);
    if (e != cudaSuccess) return qb_nccl_cuda_fail("one-GPU-per-rank check: cudaGetDeviceProperties", e);
    memcpy(me->uuid, prop.uuid.bytes, 16);
    e = cudaDeviceGetPCIBusId(me->bus_id, (int)sizeof me->bus_id, me->device);
    if (e != cudaSuccess) snprintf(me->bus_id, sizeof me->bus_id, "?");
    return 0;
}

int qb_nccl_check_one_gpu_per_rank(qb_dist *d) {
    gpu_identity me;
    int ok = describe_own_gpu(d, &me) == 0;
    QB_TRY(qb_tp_agree(d, ok, "one-GPU-per-rank check"));
    gpu_identity *all = calloc((size_t)d->tp_size, sizeof *all);
    if (!all) return qb_errorf("one-GPU-per-rank check: out of host memory");
    if (qb_tp_allgather(d, &me, all, sizeof me, "MPI_Allgather (GPU identities)") != 0) {
        free(all);
        return -1;
    }
    for (int i = 0; i < d->tp_size; i++)
        for (int j = i + 1; j < d->tp_size; j++) {
            if (!same_gpu(&all[i], &all[j])) continue;
            char uuid[64];
            format_uuid(all[i].uuid, uuid, sizeof uuid);
            qb_errorf("one GPU per rank: TP ranks %d and %d (world ranks %d and %d) both use GPU %s (PCI %s, "
                      "device %d of %d visible) on host %s; start at most as many ranks per host as it has GPUs "
                      "(check the ranks per node and CUDA_VISIBLE_DEVICES)",
                      i, j, all[i].world_rank, all[j].world_rank, uuid, all[i].bus_id, all[i].device,
                      all[i].device_count, all[i].host);
            free(all);
            return -1;
        }
    free(all);
    return 0;
}

/* tp_mpi.h - small watched MPI steps over the tensor-parallel group, for the NCCL/IPC bring-up.
 *
 * Each arms the dist watchdog (a peer that never arrives aborts the job), uses dist->tp_comm (host memory:
 * the MPI is not CUDA-aware) and turns an MPI error into the one-line message of util/error.h.
 */
#ifndef QB_CUDA_TP_MPI_H
#define QB_CUDA_TP_MPI_H

#include <stddef.h>

#include "comm/dist.h"

/* Every rank learns whether every rank's ok was true. When not: -1 on every rank; a rank that failed keeps
 * its own message (prefixed with what), the others record "what: failed on TP rank R". */
int qb_tp_agree(qb_dist *d, int ok, const char *what);
int qb_tp_allgather(qb_dist *d, const void *send, void *recv, size_t bytes_each, const char *operation);
int qb_tp_bcast(qb_dist *d, void *buf, size_t bytes, int root, const char *operation);
int qb_tp_barrier(qb_dist *d, const char *operation);

#endif

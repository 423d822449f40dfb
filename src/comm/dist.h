/* dist.h - distributed bring-up and host-side collectives: one module, one fixed order.
 *
 * Order: MPI_Init_thread -> world rank/size -> local rank via MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)
 * -> tensor-parallel groups (consecutive ranks; world_size must be a multiple of tp_size) -> (CUDA backend:
 * cudaSetDevice(local_rank % devices), NCCL comm from the TP group's MPI communicator).
 * Every blocking collective goes through here and is watched: a watchdog thread aborts the whole job
 * (message naming rank, host and the operation, then MPI_Abort) when one takes longer than the deadline,
 * so a dead or hung peer never leaves the others waiting forever. No exit() inside MPI code: errors travel up
 * as -1 (util/error.h) to main, which calls qb_dist_fatal().
 */
#ifndef QB_DIST_DIST_H
#define QB_DIST_DIST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int world_rank, world_size;
    int local_rank, local_size;  /* among the ranks on this host */
    int tp_rank, tp_size;        /* within this rank's tensor-parallel group */
    int tp_group, tp_groups;     /* which group, how many */
    MPI_Comm world;              /* dup of MPI_COMM_WORLD */
    MPI_Comm tp_comm;            /* this rank's TP group */
    char hostname[256];
    double deadline_s;           /* watchdog deadline for one collective */
} qb_dist;

/* MPI bring-up (also works when started without mpirun: a world of one). */
int qb_dist_init(int *argc, char ***argv, double deadline_s, qb_dist *d);
/* (Re)split into TP groups of tp_size consecutive ranks; -1 if world_size % tp_size != 0. */
int qb_dist_set_tp(qb_dist *d, int tp_size);
void qb_dist_finalize(qb_dist *d);

/* Print "qwenbench: rank R (host H) at file:line: msg" on stderr and MPI_Abort the job. Never returns. */
_Noreturn void qb_dist_fatal(const qb_dist *d, const char *file, int line, const char *msg);
#define QB_FATAL(d, msg) qb_dist_fatal((d), __FILE__, __LINE__, (msg))

/* Watched collectives (host memory; Debian's Open MPI is not CUDA-aware). */
int qb_dist_allreduce_sum_f32(qb_dist *d, float *buf, size_t n);      /* within the TP group */
/* Global argmax within the TP group: each rank offers its best (value, global index); ties -> smallest index. */
int qb_dist_argmax(qb_dist *d, float value, int32_t index, int32_t *best_index);
int qb_dist_barrier(qb_dist *d);                                        /* whole world */
/* Gather fixed-size byte records from every world rank to rank 0 (recv may be NULL elsewhere). */
int qb_dist_gather(qb_dist *d, const void *send, size_t bytes, void *recv);
int qb_dist_bcast(qb_dist *d, void *buf, size_t bytes, int root);       /* whole world */
/* Logical AND of ok over the world: all ranks learn whether every rank succeeded. */
int qb_dist_all_ok(qb_dist *d, int ok, int *all_ok);
/* Smallest value over the world: every rank gets it in *value. */
int qb_dist_min_size(qb_dist *d, size_t *value);

/* Every rank's error, gathered (dist_errors.c): a rank that fails alone is named by rank 0 instead of leaving
 * its peers waiting in a collective it never reaches. Records are fixed-size; messages are escaped
 * (io/printable.h) and cut to fit. */
#define QB_RANK_MESSAGE_MAX 448
typedef struct {
    int32_t ok;
    int32_t rank;
    char host[64];
    char message[QB_RANK_MESSAGE_MAX];
} qb_rank_error;

/* Fill one record: this rank's number and host, ok, and message (escaped, bounded; ignored when ok). */
void qb_rank_error_set(qb_rank_error *e, const qb_dist *d, int ok, const char *message);
/* Collective over the world: every rank offers ok and its one-line message; every rank learns whether all
 * were ok (*all_ok). On rank 0, report gets the failing ranks' lines (qb_rank_errors_format) joined
 * by separator; elsewhere report gets "" (report may be NULL when cap is 0). -1 only when the
 * communication itself failed. */
int qb_dist_gather_errors(qb_dist *d, int ok, const char *message, const char *separator, int *all_ok, char *report,
                          size_t cap);
/* The failing records of errors[0..n) as lines "rank R (host H): message", ranks with the same message on
 * one line ("ranks 0-2, 5 (hosts a, b): message"), joined by separator. With n == 1, the message alone.
 * Returns the number of failing ranks. */
int qb_rank_errors_format(const qb_rank_error *errors, int n, const char *separator, char *out, size_t cap);

/* Watchdog: arm before a blocking operation, disarm after. Used by the collectives above and by backends
 * around device-side collectives (NCCL). */
void qb_watchdog_arm(qb_dist *d, const char *operation);
void qb_watchdog_disarm(qb_dist *d);

#endif

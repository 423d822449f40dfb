/* rank_groups.h - the ranks of a job carved into groups of one size, for the packed schedule (--schedule packed).
 *
 * Which host each rank is on comes from MPI (MPI_Comm_split_type SHARED): a host is named by the world rank of
 * its first rank. Groups are carved from the ranks of one host, in world-rank order: a host of 8 ranks makes four
 * groups of 2, or two of 3 with 2 ranks left over; ranks that do not fill a whole group sit out at that size. Only when no host has as
 * many ranks as the group size (a cell needs more GPUs than a node has) do groups span hosts: consecutive world
 * ranks, as the serial schedule makes them. The carving is a pure function of (host of each rank, size), so every
 * rank computes the same groups without talking.
 */
#ifndef QB_BENCH_RANK_GROUPS_H
#define QB_BENCH_RANK_GROUPS_H

#include "comm/dist.h"

typedef struct {
    int world_size, size;  /* ranks in the job; ranks per group */
    int n_groups;
    int *group_of;         /* [world_size]: the group of each rank, -1 when it sits out at this size */
    int *leader;           /* [n_groups]: the group's lowest world rank (it talks to rank 0) */
    int across_hosts;      /* 1: no host holds `size` ranks, so the groups span hosts */
} qb_rank_groups;

/* Collective over the world: host_of[rank] = world rank of the first rank on that rank's host. */
int qb_rank_hosts(qb_dist *d, int *host_of);
/* Carve groups of `size` ranks (see above). -1 only when out of memory or size is not positive. */
int qb_rank_groups_make(const int *host_of, int world_size, int size, qb_rank_groups *g);
void qb_rank_groups_free(qb_rank_groups *g);
/* One line for the run's notes and settings: "2 groups of 2: [0,1] [2,3]" (+ "; ranks 4,5 idle", "; across hosts"). */
void qb_rank_groups_describe(const qb_rank_groups *g, char *out, size_t cap);

/* An MPI return code as the one-line error of util/error.h ("what failed: MPI's text"); returns -1. */
int qb_rank_mpi_error(const char *what, int code);

#endif

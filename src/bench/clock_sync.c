/* clock_sync.c - each rank's offset to rank 0's wall clock (see clock_sync.h). */
#include "bench/clock_sync.h"

#include <time.h>

#include "bench/rank_groups.h"
#include "util/error.h"

#define ROUNDS 8
#define TAG_PING 201
#define TAG_PONG 202

double qb_wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int qb_clock_sync(qb_dist *d, double *offset_s, double *rtt_s) {
    *offset_s = 0.0;
    *rtt_s = 0.0;
    double best = -1.0;
    int rc = MPI_SUCCESS;
    qb_watchdog_arm(d, "MPI_Send/MPI_Recv (clock offsets to rank 0)");
    for (int peer = 1; peer < d->world_size && rc == MPI_SUCCESS; peer++)
        for (int round = 0; round < ROUNDS && rc == MPI_SUCCESS; round++) {
            if (d->world_rank == 0) {
                double ping = 0.0, now = 0.0;
                rc = MPI_Recv(&ping, 1, MPI_DOUBLE, peer, TAG_PING, d->world, MPI_STATUS_IGNORE);
                now = qb_wall_now();
                if (rc == MPI_SUCCESS) rc = MPI_Send(&now, 1, MPI_DOUBLE, peer, TAG_PONG, d->world);
            } else if (d->world_rank == peer) {
                double sent = qb_wall_now(), root = 0.0;
                rc = MPI_Send(&sent, 1, MPI_DOUBLE, 0, TAG_PING, d->world);
                if (rc == MPI_SUCCESS) rc = MPI_Recv(&root, 1, MPI_DOUBLE, 0, TAG_PONG, d->world, MPI_STATUS_IGNORE);
                double back = qb_wall_now(), rtt = back - sent;
                if (rc == MPI_SUCCESS && (best < 0 || rtt < best)) {
                    best = rtt;
                    *offset_s = root - 0.5 * (sent + back);
                    *rtt_s = rtt;
                }
            }
        }
    qb_watchdog_disarm(d);
    return rc == MPI_SUCCESS ? 0 : qb_rank_mpi_error("measuring the clock offsets to rank 0", rc);
}

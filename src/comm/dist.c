/* dist.c - MPI bring-up, tensor-parallel groups, the fatal path and shutdown (see dist.h).
 *
 * Fixed order: MPI_Init_thread(MPI_THREAD_MULTIPLE) -> dup of the world with MPI_ERRORS_RETURN -> rank,
 * size, host name -> watchdog thread -> local rank (MPI_Comm_split_type SHARED) -> one TP group of all ranks.
 * The collectives live in dist_collectives.c, the watchdog in watchdog.c.
 * Started without mpirun, Open MPI makes a world of one (singleton), and everything works the same.
 */
#include "comm/dist.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/mpi_check.h"
#include "comm/watchdog.h"
#include "util/error.h"

static int find_local_rank(qb_dist *d) {
    MPI_Comm node = MPI_COMM_NULL;
    qb_watchdog_arm(d, "MPI_Comm_split_type (ranks of this host)");
    int rc = MPI_Comm_split_type(d->world, MPI_COMM_TYPE_SHARED, d->world_rank, MPI_INFO_NULL, &node);
    qb_watchdog_disarm(d);
    if (rc != MPI_SUCCESS) return qb_mpi_error("MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)", rc);
    rc = MPI_Comm_rank(node, &d->local_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(node, &d->local_size);
    MPI_Comm_free(&node);
    if (rc != MPI_SUCCESS) return qb_mpi_error("MPI_Comm_rank/size on the host communicator", rc);
    return 0;
}

int qb_dist_init(int *argc, char ***argv, double deadline_s, qb_dist *d) {
    memset(d, 0, sizeof *d);
    d->world = MPI_COMM_NULL;
    d->tp_comm = MPI_COMM_NULL;
    d->deadline_s = deadline_s;
    snprintf(d->hostname, sizeof d->hostname, "?");

    int initialized = 0;
    QB_MPI_TRY(MPI_Initialized(&initialized));
    if (initialized) return qb_errorf("MPI bring-up: MPI is already initialized (qb_dist_init must run once, first)");
    int provided = MPI_THREAD_SINGLE;
    QB_MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    QB_MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &d->world));
    QB_MPI_TRY(MPI_Comm_set_errhandler(d->world, MPI_ERRORS_RETURN));
    QB_MPI_TRY(MPI_Comm_rank(d->world, &d->world_rank));
    QB_MPI_TRY(MPI_Comm_size(d->world, &d->world_size));
    if (gethostname(d->hostname, sizeof d->hostname) != 0) {
        int length = 0;
        char name[MPI_MAX_PROCESSOR_NAME];
        if (MPI_Get_processor_name(name, &length) == MPI_SUCCESS) snprintf(d->hostname, sizeof d->hostname, "%s", name);
    }
    d->hostname[sizeof d->hostname - 1] = '\0';
    if (provided < MPI_THREAD_MULTIPLE && d->world_rank == 0)
        fprintf(stderr, "# MPI granted thread level %d < MPI_THREAD_MULTIPLE: the watchdog relies on MPI_Abort "
                        "working from its thread (true of Open MPI)\n", provided);

    if (qb_watchdog_start(d) != 0) return -1;
    if (find_local_rank(d) != 0) return -1;
    return qb_dist_set_tp(d, d->world_size);
}

int qb_dist_set_tp(qb_dist *d, int tp_size) {
    if (tp_size == 0) tp_size = d->world_size;
    if (tp_size < 0) return qb_errorf("--tp %d: the tensor-parallel size must be positive", tp_size);
    if (tp_size > d->world_size)
        return qb_errorf("--tp %d: larger than the %d rank%s of this job", tp_size, d->world_size,
                         d->world_size == 1 ? "" : "s");
    if (d->world_size % tp_size != 0)
        return qb_errorf("--tp %d: the %d ranks of this job do not split into groups of %d (%d %% %d = %d)", tp_size,
                         d->world_size, tp_size, d->world_size, tp_size, d->world_size % tp_size);

    MPI_Comm group = MPI_COMM_NULL;
    qb_watchdog_arm(d, "MPI_Comm_split (tensor-parallel groups)");
    int rc = MPI_Comm_split(d->world, d->world_rank / tp_size, d->world_rank, &group);
    qb_watchdog_disarm(d);
    if (rc != MPI_SUCCESS) return qb_mpi_error("MPI_Comm_split (tensor-parallel groups)", rc);
    rc = MPI_Comm_set_errhandler(group, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) {
        MPI_Comm_free(&group);
        return qb_mpi_error("MPI_Comm_set_errhandler (tensor-parallel group)", rc);
    }
    if (d->tp_comm != MPI_COMM_NULL) MPI_Comm_free(&d->tp_comm);
    d->tp_comm = group;
    d->tp_size = tp_size;
    d->tp_rank = d->world_rank % tp_size;
    d->tp_group = d->world_rank / tp_size;
    d->tp_groups = d->world_size / tp_size;
    return 0;
}

void qb_dist_finalize(qb_dist *d) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized) return;
    /* A watched barrier first: MPI_Finalize waits for every peer too, and a hung one must not hold us. */
    if (d->world != MPI_COMM_NULL && qb_dist_barrier(d) != 0)
        fprintf(stderr, "qwenbench: rank %d on %s: barrier before MPI_Finalize: %s\n", d->world_rank, d->hostname,
                qb_last_error());
    qb_watchdog_stop();
    if (d->tp_comm != MPI_COMM_NULL) MPI_Comm_free(&d->tp_comm);
    if (d->world != MPI_COMM_NULL) MPI_Comm_free(&d->world);
    MPI_Finalize();
}

_Noreturn void qb_dist_fatal(const qb_dist *d, const char *file, int line, const char *msg) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    bool mpi_up = initialized && !finalized;
    MPI_Comm world = d && d->world != MPI_COMM_NULL ? d->world : MPI_COMM_WORLD;
    int rank = d ? d->world_rank : 0, size = d ? d->world_size : 1;
    if (mpi_up && (!d || d->world == MPI_COMM_NULL)) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    char host[256] = "?";
    if (d && d->hostname[0]) snprintf(host, sizeof host, "%s", d->hostname);
    else if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    fprintf(stderr, "qwenbench: rank %d/%d on %s at %s:%d: %s\n", rank, size, host, file, line,
            msg && msg[0] ? msg : "(no message)");
    fflush(stderr);
    fflush(stdout);
    if (mpi_up) {
        MPI_Abort(world, 1);
        _exit(1); /* MPI_Abort does not return; this is only a guard */
    }
    exit(1); /* MPI not running (before init or after finalize): an ordinary exit is right */
}

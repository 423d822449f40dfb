/* tp_mpi.c - watched MPI steps over the tensor-parallel group (see tp_mpi.h). */
#include "comm/tp_mpi.h"

#include <limits.h>
#include <mpi.h>

#include "util/error.h"

static int mpi_fail(const char *operation, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
    text[length] = '\0';
    return qb_errorf("%s failed: %s (MPI error %d)", operation, length ? text : "unknown error", code);
}

int qb_tp_agree(qb_dist *d, int ok, const char *what) {
    /* the lowest failing rank is named: min over (ok ? INT_MAX : rank) */
    int mine = ok ? INT_MAX : d->tp_rank, first_failed = INT_MAX;
    qb_watchdog_arm(d, what);
    int rc = MPI_Allreduce(&mine, &first_failed, 1, MPI_INT, MPI_MIN, d->tp_comm);
    qb_watchdog_disarm(d);
    if (rc != MPI_SUCCESS) return mpi_fail("MPI_Allreduce (agreeing on success)", rc);
    if (first_failed == INT_MAX) return 0;
    if (!ok) return qb_error_prefix("%s: ", what);
    return qb_errorf("%s: failed on TP rank %d (its own message is on its stderr)", what, first_failed);
}

int qb_tp_allgather(qb_dist *d, const void *send, void *recv, size_t bytes_each, const char *operation) {
    if (bytes_each > INT_MAX) return qb_errorf("%s: %zu bytes is too large for one MPI call", operation, bytes_each);
    qb_watchdog_arm(d, operation);
    int rc = MPI_Allgather(send, (int)bytes_each, MPI_BYTE, recv, (int)bytes_each, MPI_BYTE, d->tp_comm);
    qb_watchdog_disarm(d);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(operation, rc);
}

int qb_tp_bcast(qb_dist *d, void *buf, size_t bytes, int root, const char *operation) {
    if (bytes > INT_MAX) return qb_errorf("%s: %zu bytes is too large for one MPI call", operation, bytes);
    qb_watchdog_arm(d, operation);
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, d->tp_comm);
    qb_watchdog_disarm(d);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(operation, rc);
}

int qb_tp_barrier(qb_dist *d, const char *operation) {
    qb_watchdog_arm(d, operation);
    int rc = MPI_Barrier(d->tp_comm);
    qb_watchdog_disarm(d);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(operation, rc);
}

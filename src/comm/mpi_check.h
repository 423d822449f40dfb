/* mpi_check.h - internal to src/comm: turn an MPI return code into the one-line error of util/error.h.
 *
 * The communicators made in dist.c use MPI_ERRORS_RETURN, so MPI errors come back as codes and travel up as
 * -1 (the caller ends the job through qb_dist_fatal), instead of MPI's default silent abort.
 */
#ifndef QB_DIST_MPI_CHECK_H
#define QB_DIST_MPI_CHECK_H

#include <mpi.h>

#include "util/error.h"

static inline int qb_mpi_error(const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
    text[length] = '\0';
    return qb_errorf("%s failed: %s (MPI error %d)", what, length ? text : "unknown error", code);
}

/* Run an MPI call; on failure record "<call> failed: <MPI text>" and return -1 from the caller. */
#define QB_MPI_TRY(call)                                      \
    do {                                                      \
        int qb_mpi_rc_ = (call);                              \
        if (qb_mpi_rc_ != MPI_SUCCESS) return qb_mpi_error(#call, qb_mpi_rc_); \
    } while (0)

#endif

/* dist_collectives.c - the watched host-side collectives of dist.h.
 *
 * Every call is armed on the watchdog with a name that says what it was waiting for, so a hung peer ends
 * the job with a message like "MPI_Allreduce (sum of 896 floats in TP group 0) did not complete within
 * 600 s". Counts above MPI's int range are sent in chunks.
 * The argmax reduction is a user-defined operation on (float value, int index) pairs with a total order:
 * larger value wins, equal values -> smaller index, NaN loses to every number. It is commutative and
 * associative, so every rank of the group computes the same winner whatever the reduction tree.
 */
#include "comm/dist.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "comm/mpi_check.h"
#include "util/error.h"

#define QB_MPI_CHUNK ((size_t)1 << 30)

int qb_dist_allreduce_sum_f32(qb_dist *d, float *buf, size_t n) {
    char name[160];
    snprintf(name, sizeof name, "MPI_Allreduce (sum of %zu floats in TP group %d)", n, d->tp_group);
    for (size_t done = 0; done < n;) {
        size_t count = n - done < QB_MPI_CHUNK ? n - done : QB_MPI_CHUNK;
        qb_watchdog_arm(d, name);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + done, (int)count, MPI_FLOAT, MPI_SUM, d->tp_comm);
        qb_watchdog_disarm(d);
        if (rc != MPI_SUCCESS) return qb_mpi_error(name, rc);
        done += count;
    }
    return 0;
}

typedef struct {
    float value;
    int index;
} qb_value_index; /* the layout of MPI_FLOAT_INT */

static int better(const qb_value_index *a, const qb_value_index *b) {
    if (isnan(a->value) != isnan(b->value)) return isnan(b->value); /* a number beats NaN */
    if (!isnan(a->value) && a->value != b->value) return a->value > b->value;
    return a->index < b->index;
}

static void argmax_op(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const qb_value_index *a = in;
    qb_value_index *b = inout;
    for (int i = 0; i < *len; i++)
        if (better(&a[i], &b[i])) b[i] = a[i];
}

int qb_dist_argmax(qb_dist *d, float value, int32_t index, int32_t *best_index) {
    MPI_Op op = MPI_OP_NULL;
    int rc = MPI_Op_create(argmax_op, 1, &op);
    if (rc != MPI_SUCCESS) return qb_mpi_error("MPI_Op_create (argmax)", rc);
    qb_value_index mine = {value, index}, best = {0};
    char name[96];
    snprintf(name, sizeof name, "MPI_Allreduce (argmax in TP group %d)", d->tp_group);
    qb_watchdog_arm(d, name);
    rc = MPI_Allreduce(&mine, &best, 1, MPI_FLOAT_INT, op, d->tp_comm);
    qb_watchdog_disarm(d);
    MPI_Op_free(&op);
    if (rc != MPI_SUCCESS) return qb_mpi_error(name, rc);
    *best_index = best.index;
    return 0;
}

int qb_dist_barrier(qb_dist *d) {
    qb_watchdog_arm(d, "MPI_Barrier (all ranks)");
    int rc = MPI_Barrier(d->world);
    qb_watchdog_disarm(d);
    return rc == MPI_SUCCESS ? 0 : qb_mpi_error("MPI_Barrier (all ranks)", rc);
}

int qb_dist_gather(qb_dist *d, const void *send, size_t bytes, void *recv) {
    if (bytes > INT_MAX) return qb_errorf("MPI_Gather: %zu bytes per rank is above MPI's limit of %d", bytes, INT_MAX);
    char name[96];
    snprintf(name, sizeof name, "MPI_Gather (%zu bytes per rank to rank 0)", bytes);
    qb_watchdog_arm(d, name);
    int rc = MPI_Gather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, 0, d->world);
    qb_watchdog_disarm(d);
    return rc == MPI_SUCCESS ? 0 : qb_mpi_error(name, rc);
}

int qb_dist_bcast(qb_dist *d, void *buf, size_t bytes, int root) {
    if (root < 0 || root >= d->world_size)
        return qb_errorf("MPI_Bcast: root %d is not a rank of this job (0..%d)", root, d->world_size - 1);
    char name[96];
    snprintf(name, sizeof name, "MPI_Bcast (%zu bytes from rank %d)", bytes, root);
    for (size_t done = 0; done < bytes;) {
        size_t count = bytes - done < QB_MPI_CHUNK ? bytes - done : QB_MPI_CHUNK;
        qb_watchdog_arm(d, name);
        int rc = MPI_Bcast((char *)buf + done, (int)count, MPI_BYTE, root, d->world);
        qb_watchdog_disarm(d);
        if (rc != MPI_SUCCESS) return qb_mpi_error(name, rc);
        done += count;
    }
    return 0;
}

int qb_dist_all_ok(qb_dist *d, int ok, int *all_ok) {
    int mine = ok ? 1 : 0, all = 0;
    qb_watchdog_arm(d, "MPI_Allreduce (all ranks ok?)");
    int rc = MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, d->world);
    qb_watchdog_disarm(d);
    if (rc != MPI_SUCCESS) return qb_mpi_error("MPI_Allreduce (all ranks ok?)", rc);
    *all_ok = all;
    return 0;
}

int qb_dist_min_size(qb_dist *d, size_t *value) {
    unsigned long long mine = *value, least = 0;
    qb_watchdog_arm(d, "MPI_Allreduce (smallest value over all ranks)");
    int rc = MPI_Allreduce(&mine, &least, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, d->world);
    qb_watchdog_disarm(d);
    if (rc != MPI_SUCCESS) return qb_mpi_error("MPI_Allreduce (smallest value over all ranks)", rc);
    *value = (size_t)least;
    return 0;
}

/* test_dist_collectives.c - the bring-up and the watched collectives of src/comm, at any number of ranks.
 *
 * Run: mpirun -np N test_dist_collectives   (N = 1, 2, 4 in CTest; also started without mpirun)
 * Checks local rank/size (every rank of a CTest job is on one host), TP groups for every divisor of the
 * world and the refusal of a non-divisor, exact float sums (small integers: no rounding, tolerance 0),
 * argmax with ties (smallest index wins) and NaN (loses), gather, bcast from two roots, all_ok, and that a
 * collective slower than nothing but faster than the deadline does not trip the watchdog.
 * Every rank prints its own first mismatches; the job exits non-zero if any rank failed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/dist.h"
#include "util/error.h"

static int g_failures;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            if (g_failures++ < 10) {                                             \
                fprintf(stderr, "FAIL rank %d (%s:%d): ", d.world_rank, __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                                    \
                fputc('\n', stderr);                                             \
            }                                                                    \
        }                                                                        \
    } while (0)

#define MUST(call)                                                               \
    do {                                                                         \
        if ((call) != 0) QB_FATAL(&d, qb_last_error());                          \
    } while (0)

static qb_dist d;

static void check_tp_groups(int tp) {
    MUST(qb_dist_set_tp(&d, tp));
    CHECK(d.tp_size == tp, "tp_size %d, want %d", d.tp_size, tp);
    CHECK(d.tp_rank == d.world_rank % tp, "tp_rank %d, want %d", d.tp_rank, d.world_rank % tp);
    CHECK(d.tp_group == d.world_rank / tp, "tp_group %d, want %d", d.tp_group, d.world_rank / tp);
    CHECK(d.tp_groups == d.world_size / tp, "tp_groups %d, want %d", d.tp_groups, d.world_size / tp);
    int comm_size = 0, comm_rank = -1;
    MPI_Comm_size(d.tp_comm, &comm_size);
    MPI_Comm_rank(d.tp_comm, &comm_rank);
    CHECK(comm_size == tp && comm_rank == d.tp_rank, "tp_comm size %d rank %d, want %d %d", comm_size, comm_rank,
          tp, d.tp_rank);

    /* allreduce: element i on rank r is r + i; the group sum is exact in float for these sizes */
    enum { N = 1000 };
    float buf[N];
    for (int i = 0; i < N; i++) buf[i] = (float)(d.world_rank + i);
    MUST(qb_dist_allreduce_sum_f32(&d, buf, N));
    int first = d.tp_group * tp;
    for (int i = 0; i < N; i++) {
        double want = 0;
        for (int r = first; r < first + tp; r++) want += r + i;
        CHECK(buf[i] == (float)want, "tp %d allreduce[%d] = %g, want %g (exact: small integers)", tp, i, buf[i],
              want);
    }

    /* argmax, distinct values: the last rank of the group holds the maximum */
    int32_t best = -1;
    MUST(qb_dist_argmax(&d, (float)d.tp_rank, 100 * d.world_rank + 7, &best));
    CHECK(best == 100 * (first + tp - 1) + 7, "tp %d argmax distinct: %d, want %d", tp, best,
          100 * (first + tp - 1) + 7);
    /* ties everywhere: the smallest index wins, whichever rank offers it; indices offered in reverse order */
    MUST(qb_dist_argmax(&d, 2.5f, 1000 - d.world_rank, &best));
    CHECK(best == 1000 - (first + tp - 1), "tp %d argmax ties: %d, want the smallest index %d", tp, best,
          1000 - (first + tp - 1));
    /* NaN loses to any number: the group's first rank offers NaN, the others -inf */
    float v = d.tp_rank == 0 ? NAN : -INFINITY;
    MUST(qb_dist_argmax(&d, v, d.world_rank, &best));
    int want_nan = tp == 1 ? first : first + 1;
    CHECK(best == want_nan, "tp %d argmax NaN: %d, want %d", tp, best, want_nan);
}

int main(int argc, char **argv) {
    if (qb_dist_init(&argc, &argv, 30.0, &d) != 0) QB_FATAL(&d, qb_last_error());
    CHECK(d.world_size >= 1 && d.world_rank >= 0 && d.world_rank < d.world_size, "rank %d of %d", d.world_rank,
          d.world_size);
    CHECK(d.local_rank == d.world_rank && d.local_size == d.world_size,
          "local rank %d/%d, want %d/%d (one host)", d.local_rank, d.local_size, d.world_rank, d.world_size);
    CHECK(d.hostname[0] != '\0' && strcmp(d.hostname, "?") != 0, "hostname '%s'", d.hostname);
    CHECK(d.tp_size == d.world_size && d.tp_groups == 1, "default tp %d groups %d", d.tp_size, d.tp_groups);

    for (int tp = 1; tp <= d.world_size; tp++)
        if (d.world_size % tp == 0) check_tp_groups(tp);

    /* refusals name the numbers and leave the groups as they were */
    int before = d.tp_size;
    int bad = d.world_size + 1;
    CHECK(qb_dist_set_tp(&d, bad) == -1, "set_tp(%d) accepted", bad);
    CHECK(strstr(qb_last_error(), "--tp") != NULL, "refusal message '%s'", qb_last_error());
    if (d.world_size == 4) {
        CHECK(qb_dist_set_tp(&d, 3) == -1, "set_tp(3) of 4 accepted");
        CHECK(strstr(qb_last_error(), "4 % 3 = 1") != NULL, "refusal message '%s' lacks '4 %% 3 = 1'",
              qb_last_error());
    }
    CHECK(d.tp_size == before, "a refused set_tp changed tp_size to %d", d.tp_size);
    MUST(qb_dist_set_tp(&d, 0));
    CHECK(d.tp_size == d.world_size, "set_tp(0) gave %d, want all %d ranks", d.tp_size, d.world_size);

    /* gather fixed-size records to rank 0 */
    struct { int rank; double x; } mine = {d.world_rank, d.world_rank * 1.5}, *all = NULL;
    if (d.world_rank == 0) all = calloc((size_t)d.world_size, sizeof *all);
    MUST(qb_dist_gather(&d, &mine, sizeof mine, all));
    if (d.world_rank == 0)
        for (int r = 0; r < d.world_size; r++)
            CHECK(all[r].rank == r && all[r].x == r * 1.5, "gather[%d] = (%d, %g)", r, all[r].rank, all[r].x);
    free(all);

    /* bcast from the first and the last rank */
    for (int root = 0; root < d.world_size; root += d.world_size - 1 > 0 ? d.world_size - 1 : 1) {
        char text[64] = "";
        if (d.world_rank == root) snprintf(text, sizeof text, "from %d", root);
        MUST(qb_dist_bcast(&d, text, sizeof text, root));
        char want[64];
        snprintf(want, sizeof want, "from %d", root);
        CHECK(strcmp(text, want) == 0, "bcast from %d gave '%s'", root, text);
    }
    CHECK(qb_dist_bcast(&d, &mine, sizeof mine, d.world_size) == -1, "bcast from a rank outside the job accepted");

    /* all_ok: true when all agree, false when the last rank says no */
    int all_ok = -1;
    MUST(qb_dist_all_ok(&d, 1, &all_ok));
    CHECK(all_ok == 1, "all_ok(all 1) = %d", all_ok);
    MUST(qb_dist_all_ok(&d, d.world_rank != d.world_size - 1, &all_ok));
    CHECK(all_ok == 0, "all_ok(last 0) = %d", all_ok);

    /* a peer 0.3 s late is well within the 30 s deadline: no abort */
    if (d.world_rank == d.world_size - 1) nanosleep(&(struct timespec){0, 300000000L}, NULL);
    MUST(qb_dist_barrier(&d));

    int passed = 0;
    MUST(qb_dist_all_ok(&d, g_failures == 0, &passed));
    if (d.world_rank == 0) printf("%s: %d ranks, %s\n", argv[0], d.world_size, passed ? "all checks passed" : "FAILED");
    qb_dist_finalize(&d);
    return passed ? 0 : 1;
}

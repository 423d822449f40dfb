/* vocab_gather.c - the logits gather over the tensor-parallel group (see vocab_gather.h). */
#include "engine/vocab_gather.h"

#include <mpi.h>
#include <stdlib.h>

#include "engine/shard_plan.h"
#include "util/error.h"

int qb_gather_vocab_logits(qb_dist *dist, const qb_model_config *cfg, int tp, const float *local, int local_rows,
                           float *logits_out, const char *who) {
    int *counts = malloc((size_t)tp * sizeof *counts), *displs = malloc((size_t)tp * sizeof *displs);
    if (!counts || !displs) {
        free(counts);
        free(displs);
        return qb_errorf("%s: out of host memory for the logits gather", who);
    }
    int rc = 0;
    for (int r = 0; r < tp && rc == 0; r++) {
        qb_shard_plan p;
        rc = qb_shard_plan_make(cfg, tp, r, &p);
        counts[r] = p.vocab_size;
        displs[r] = p.vocab_start;
    }
    if (rc == 0) {
        qb_watchdog_arm(dist, "MPI_Allgatherv (prefill logits)");
        int mrc = MPI_Allgatherv(local, local_rows, MPI_FLOAT, logits_out, counts, displs, MPI_FLOAT, dist->tp_comm);
        qb_watchdog_disarm(dist);
        if (mrc != MPI_SUCCESS) rc = qb_errorf("%s: MPI_Allgatherv of the prefill logits failed (%d)", who, mrc);
    }
    free(counts);
    free(displs);
    return rc;
}

/* vocab_gather.h - every rank of the tensor-parallel group receives all vocab_size logits: each rank's rows
 * (its shard plan's vocab slice) gathered in rank order over dist->tp_comm, on the watchdog. Used by the
 * backends' prefill_logits (the checks), the same for the CPU and the CUDA engine. */
#ifndef QB_ENGINE_VOCAB_GATHER_H
#define QB_ENGINE_VOCAB_GATHER_H

#include "comm/dist.h"
#include "config/model_config.h"

/* logits_out (vocab_size) = the local rows (local_rows of them) of every rank of the tp ranks, in order.
 * who starts the error messages ("cpu backend", "cuda"). */
int qb_gather_vocab_logits(qb_dist *dist, const qb_model_config *cfg, int tp, const float *local, int local_rows,
                           float *logits_out, const char *who);

#endif

/* cpu_estimate.h - a rough time estimate of a run on the CPU reference engine, said before it starts.
 *
 * The model, a deliberately simple bound (docs/SWEEPS.md "Time on the CPU"): every generated token reads all the
 * weights once (parameters x 2 bytes, bf16 as the reference engine holds them) at QB_CPU_BYTES_PER_S, and the
 * prefill costs 2 x parameters x input tokens flops at QB_CPU_FLOPS; per cell, warmup + repetitions runs. The
 * constants are those of a few cores of a common server or laptop; a faster machine finishes sooner.
 */
#ifndef QB_BENCH_CPU_ESTIMATE_H
#define QB_BENCH_CPU_ESTIMATE_H

#include "bench/runner.h"
#include "cli/options.h"

#define QB_CPU_BYTES_PER_S 5e9     /* weight reads: a few GB/s */
#define QB_CPU_FLOPS 20e9          /* prefill: a few tens of GFLOP/s */
#define QB_CPU_WARN_S 180.0        /* above this, the run says so before it starts */

/* Estimated seconds of the whole run; -1 when a cell's model does not resolve (validated before, so not here). */
double qb_cpu_estimate_s(const qb_options *o, const qb_cell_spec *cells, int n_cells, double *max_weight_bytes);

#endif

/* run_meta.h - what goes into the results file's root attributes: versions, hosts, devices, and the
 * effective settings (the JSON that --resume compares). */
#ifndef QB_BENCH_RUN_META_H
#define QB_BENCH_RUN_META_H

#include "bench/cell_exec.h"
#include "bench/runner.h"

/* Collective (every rank calls it): gathers host names; fills rank 0's meta. */
int qb_run_meta_init(const qb_runner *r, const qb_cell_spec *cells, const char **names, int n_cells,
                     qb_results_meta *meta);
/* Any rank, no communication: the settings JSON alone (what --resume compares; bench/resume_check.h). */
int qb_run_meta_settings_json(const qb_runner *r, const qb_cell_spec *cells, const char **names, int n_cells,
                              char *out, size_t cap);
/* Rank 0: device names/UUIDs and versions from the group's summaries/backend (first call wins). */
void qb_run_meta_add_devices(qb_results_meta *meta, const qb_cell_group *g);
/* Rank 0, packed schedule: add the devices of n ranks' summaries to the list, each rank once, sorted by rank. */
void qb_run_meta_merge_devices(qb_results_meta *meta, const qb_rank_summary *ranks, int n);
void qb_run_meta_stamp_end(qb_results_meta *meta);
/* Host copy bandwidth in GB/s (bytes read + written per second of a large memcpy). */
double qb_host_copy_bandwidth_gbps(void);

#endif

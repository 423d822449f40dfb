/* cell_transfer.h - one finished cell as bytes, from the rank that leads a packed group to rank 0.
 *
 * The image is: a header (this struct's size and counts, to refuse an image from another build), the cell
 * record's bytes, then what its pointers own (per-rank peak memory, each run's record, step latencies and
 * tokens), then the group's rank summaries (host, device, UUID per rank, for the devices list). Every rank
 * runs the same binary (the ranks compare their build before a cell: bench/rank_agreement.h), so the structs
 * travel as they are; the pointers are rebuilt on arrival.
 */
#ifndef QB_BENCH_CELL_TRANSFER_H
#define QB_BENCH_CELL_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "bench/cell_exec.h"

/* Where a cell ran, sent along with it. */
typedef struct {
    int32_t cell;                 /* index in the sweep's cell list */
    int32_t group;                /* the packed group that ran it */
    int32_t n_ranks;              /* rank summaries that follow (0 when the group never opened) */
    double copy_bandwidth_gbps;   /* the leader's device (or host) copy bandwidth, 0 when not measured */
    char driver_version[64], runtime_version[64], nccl_version[64];
} qb_cell_origin;

/* Pack into a malloc'ed image (*image, *bytes). -1 when out of memory. */
int qb_cell_pack(const qb_cell_origin *from, const qb_rank_summary *ranks, const qb_cell_record *c, void **image,
                 size_t *bytes);
/* Unpack an image: the cell (its arrays malloc'ed; free with qb_cell_free), the origin, and the summaries
 * (*ranks malloc'ed, from->n_ranks of them, NULL when none). -1 with a message when the image is damaged. */
int qb_cell_unpack(const void *image, size_t bytes, qb_cell_origin *from, qb_rank_summary **ranks,
                   qb_cell_record *c);

#endif

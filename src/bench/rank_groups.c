/* rank_groups.c - hosts of the ranks and the groups carved from them (see rank_groups.h). */
#include "bench/rank_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int qb_rank_mpi_error(const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
    text[length] = '\0';
    return qb_errorf("%s failed: %s (MPI error %d)", what, length ? text : "unknown error", code);
}

int qb_rank_hosts(qb_dist *d, int *host_of) {
    MPI_Comm host = MPI_COMM_NULL;
    qb_watchdog_arm(d, "MPI_Comm_split_type (ranks of this host, for the packed groups)");
    int rc = MPI_Comm_split_type(d->world, MPI_COMM_TYPE_SHARED, d->world_rank, MPI_INFO_NULL, &host);
    qb_watchdog_disarm(d);
    if (rc != MPI_SUCCESS) return qb_rank_mpi_error("MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)", rc);
    int first = d->world_rank; /* the host's name: its first rank (key = world rank, so host rank 0 is the lowest) */
    qb_watchdog_arm(d, "MPI_Bcast (first rank of this host)");
    rc = MPI_Bcast(&first, 1, MPI_INT, 0, host);
    qb_watchdog_disarm(d);
    MPI_Comm_free(&host);
    if (rc != MPI_SUCCESS) return qb_rank_mpi_error("MPI_Bcast (first rank of this host)", rc);
    qb_watchdog_arm(d, "MPI_Allgather (host of every rank)");
    rc = MPI_Allgather(&first, 1, MPI_INT, host_of, 1, MPI_INT, d->world);
    qb_watchdog_disarm(d);
    return rc == MPI_SUCCESS ? 0 : qb_rank_mpi_error("MPI_Allgather (host of every rank)", rc);
}

int qb_rank_groups_make(const int *host_of, int world_size, int size, qb_rank_groups *g) {
    memset(g, 0, sizeof *g);
    if (size <= 0 || world_size <= 0) return qb_errorf("rank groups: size %d of %d ranks", size, world_size);
    g->world_size = world_size;
    g->size = size;
    g->group_of = malloc(sizeof *g->group_of * (size_t)world_size);
    int *position = calloc((size_t)world_size, sizeof *position); /* index among the ranks of its host */
    int *host_size = calloc((size_t)world_size, sizeof *host_size); /* by host name (a world rank) */
    int *chunk_group = malloc(sizeof *chunk_group * (size_t)world_size); /* (host, chunk) -> group, by first rank */
    g->leader = malloc(sizeof *g->leader * (size_t)world_size);
    if (!g->group_of || !position || !host_size || !chunk_group || !g->leader) {
        free(position); free(host_size); free(chunk_group);
        qb_rank_groups_free(g);
        return qb_errorf("out of memory carving rank groups");
    }
    int largest_host = 0;
    for (int r = 0; r < world_size; r++) {
        int h = host_of[r] >= 0 && host_of[r] < world_size ? host_of[r] : r;
        position[r] = host_size[h]++;
        if (host_size[h] > largest_host) largest_host = host_size[h];
    }
    g->across_hosts = largest_host < size;
    for (int r = 0; r < world_size; r++) chunk_group[r] = -1;
    for (int r = 0; r < world_size; r++) {
        int h = host_of[r] >= 0 && host_of[r] < world_size ? host_of[r] : r;
        int pos = g->across_hosts ? r : position[r], total = g->across_hosts ? world_size : host_size[h];
        int chunk = pos / size;
        g->group_of[r] = -1;
        if ((chunk + 1) * size > total) continue; /* a partial group: sits out */
        /* a chunk is named by its first member: host h's chunk c starts at the rank with position c * size */
        int key = g->across_hosts ? chunk * size : -1;
        if (!g->across_hosts)
            for (int s = 0; s <= r; s++)
                if ((host_of[s] >= 0 && host_of[s] < world_size ? host_of[s] : s) == h && position[s] == chunk * size) {
                    key = s;
                    break;
                }
        if (chunk_group[key] < 0) {
            chunk_group[key] = g->n_groups;
            g->leader[g->n_groups++] = r;
        }
        g->group_of[r] = chunk_group[key];
    }
    free(position);
    free(host_size);
    free(chunk_group);
    return 0;
}

void qb_rank_groups_free(qb_rank_groups *g) {
    free(g->group_of);
    free(g->leader);
    memset(g, 0, sizeof *g);
}

void qb_rank_groups_describe(const qb_rank_groups *g, char *out, size_t cap) {
    size_t k = 0;
#define PUT(...) do { if (k < cap) k += (size_t)snprintf(out + k, cap - k, __VA_ARGS__); } while (0)
    if (cap) out[0] = '\0';
    PUT("%d group%s of %d:", g->n_groups, g->n_groups == 1 ? "" : "s", g->size);
    for (int i = 0; i < g->n_groups; i++) {
        PUT(" [");
        int first = 1;
        for (int r = 0; r < g->world_size; r++)
            if (g->group_of[r] == i) { PUT("%s%d", first ? "" : ",", r); first = 0; }
        PUT("]");
    }
    int idle = 0;
    for (int r = 0; r < g->world_size; r++)
        if (g->group_of[r] < 0) { PUT("%s%d", idle ? "," : "; ranks idle: ", r); idle = 1; }
    if (g->across_hosts) PUT("; across hosts (no host has %d ranks)", g->size);
#undef PUT
}

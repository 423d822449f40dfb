/* dist_errors.c - every rank's error, gathered to rank 0 and printed with its rank and host (see dist.h).
 *
 * Without this, a rank that alone finds a bad config goes its own way (to MPI_Finalize) while its peers wait
 * in the next collective until the watchdog's deadline, and its message, printed by rank 0 only, is lost.
 * Here every rank offers (ok, message) in one gather; all ranks learn the verdict from one all-reduce, so they
 * all take the same branch, and rank 0 holds every failing rank's message. Ranks that fail with the same
 * message share one line, so 512 ranks with one bad flag print one line, not 512.
 */
#include "comm/dist.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/printable.h"
#include "util/error.h"
#include "util/str.h"

void qb_rank_error_set(qb_rank_error *e, const qb_dist *d, int ok, const char *message) {
    memset(e, 0, sizeof *e);
    e->ok = ok ? 1 : 0;
    e->rank = d->world_rank;
    qb_printable(d->hostname, e->host, sizeof e->host);
    if (!ok) qb_printable(message && message[0] ? message : "(no message)", e->message, sizeof e->message);
}

/* Append to out (bounded, always terminated); returns the new length. */
static size_t append(char *out, size_t cap, size_t used, const char *text) {
    if (used + 1 >= cap) return used;
    int k = snprintf(out + used, cap - used, "%s", text);
    if (k < 0) return used;
    return used + (size_t)k < cap ? used + (size_t)k : cap - 1;
}

/* "0-3, 5, 7-8" from ascending rank numbers. */
static size_t append_rank_list(char *out, size_t cap, size_t used, const int *ranks, int n) {
    char piece[48];
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && ranks[j + 1] == ranks[j] + 1) j++;
        if (j == i) snprintf(piece, sizeof piece, "%s%d", i ? ", " : "", ranks[i]);
        else snprintf(piece, sizeof piece, "%s%d-%d", i ? ", " : "", ranks[i], ranks[j]);
        used = append(out, cap, used, piece);
        i = j + 1;
    }
    return used;
}

/* A received record is trusted to be ours, but its strings are terminated here all the same. */
static bool same_message(const qb_rank_error *a, const qb_rank_error *b) {
    return strncmp(a->message, b->message, sizeof a->message) == 0;
}

int qb_rank_errors_format(const qb_rank_error *errors, int n, const char *separator, char *out, size_t cap) {
    enum { MAX_HOSTS_NAMED = 4 };
    if (cap) out[0] = '\0';
    int failing = 0;
    for (int i = 0; i < n; i++) failing += !errors[i].ok;
    if (failing == 0 || cap == 0) return failing;
    if (n == 1) {
        char message[QB_RANK_MESSAGE_MAX];
        qb_copy_str(message, sizeof message, errors[0].message);
        qb_copy_str(out, cap, message);
        return failing;
    }
    bool *done = calloc((size_t)n, sizeof *done);
    int *ranks = calloc((size_t)n, sizeof *ranks);
    const char **hosts = calloc((size_t)n, sizeof *hosts);
    if (!done || !ranks || !hosts) {
        free(done);
        free(ranks);
        free(hosts);
        snprintf(out, cap, "%d rank(s) failed (out of memory listing them)", failing);
        return failing;
    }
    size_t used = 0;
    int lines = 0;
    for (int i = 0; i < n; i++) {
        if (errors[i].ok || done[i]) continue;
        int n_ranks = 0, n_hosts = 0;
        for (int j = i; j < n; j++) {
            if (errors[j].ok || done[j] || !same_message(&errors[i], &errors[j])) continue;
            done[j] = true;
            ranks[n_ranks++] = errors[j].rank;
            bool seen = false;
            for (int h = 0; h < n_hosts && !seen; h++) seen = strncmp(hosts[h], errors[j].host, sizeof errors[j].host) == 0;
            if (!seen) hosts[n_hosts++] = errors[j].host;
        }
        char text[QB_RANK_MESSAGE_MAX + 96];
        if (lines++) used = append(out, cap, used, separator);
        used = append(out, cap, used, n_ranks == 1 ? "rank " : "ranks ");
        used = append_rank_list(out, cap, used, ranks, n_ranks);
        used = append(out, cap, used, n_hosts == 1 ? " (host " : " (hosts ");
        for (int h = 0; h < n_hosts && h < MAX_HOSTS_NAMED; h++) {
            char host[sizeof errors[0].host];
            qb_copy_str(host, sizeof host, hosts[h]);
            snprintf(text, sizeof text, "%s%s", h ? ", " : "", host);
            used = append(out, cap, used, text);
        }
        if (n_hosts > MAX_HOSTS_NAMED) {
            snprintf(text, sizeof text, " and %d more", n_hosts - MAX_HOSTS_NAMED);
            used = append(out, cap, used, text);
        }
        char message[QB_RANK_MESSAGE_MAX];
        qb_copy_str(message, sizeof message, errors[i].message);
        snprintf(text, sizeof text, "): %s", message);
        used = append(out, cap, used, text);
    }
    free(done);
    free(ranks);
    free(hosts);
    return failing;
}

int qb_dist_gather_errors(qb_dist *d, int ok, const char *message, const char *separator, int *all_ok, char *report,
                          size_t cap) {
    if (cap) report[0] = '\0';
    qb_rank_error mine;
    qb_rank_error_set(&mine, d, ok, message);
    qb_rank_error *all = NULL;
    /* (the caller ends the job on -1: MPI_Abort, so no peer is left waiting) */
    if (d->world_rank == 0 && !(all = calloc((size_t)d->world_size, sizeof *all)))
        return qb_errorf("out of memory gathering the errors of %d ranks", d->world_size);
    int rc = qb_dist_gather(d, &mine, sizeof mine, all);
    if (rc == 0) rc = qb_dist_all_ok(d, mine.ok, all_ok);
    if (rc == 0 && all && !*all_ok) qb_rank_errors_format(all, d->world_size, separator, report, cap);
    free(all);
    return rc;
}

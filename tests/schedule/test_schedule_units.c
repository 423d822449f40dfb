/* test_schedule_units.c - the packed schedule's pure parts: groups carved per host, and a finished cell as a
 * byte image and back (bench/rank_groups.h, bench/cell_transfer.h). No MPI communication. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cell_transfer.h"
#include "bench/rank_groups.h"

static int failures;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); failures++; } \
    } while (0)

static void expect_layout(const int *host_of, int n, int size, const char *want) {
    qb_rank_groups g;
    CHECK(qb_rank_groups_make(host_of, n, size, &g) == 0);
    char got[512];
    qb_rank_groups_describe(&g, got, sizeof got);
    if (strcmp(got, want)) { fprintf(stderr, "size %d: got '%s', want '%s'\n", size, got, want); failures++; }
    for (int i = 0; i < g.n_groups; i++) CHECK(g.group_of[g.leader[i]] == i);
    qb_rank_groups_free(&g);
}

static void test_groups(void) {
    const int one_host[4] = {0, 0, 0, 0};
    expect_layout(one_host, 4, 2, "2 groups of 2: [0,1] [2,3]");
    expect_layout(one_host, 4, 1, "4 groups of 1: [0] [1] [2] [3]");
    expect_layout(one_host, 4, 3, "1 group of 3: [0,1,2]; ranks idle: 3");
    /* two hosts of 3 ranks: a group of 2 never spans them; ranks left over sit out */
    const int two_hosts[6] = {0, 0, 0, 3, 3, 3};
    expect_layout(two_hosts, 6, 2, "2 groups of 2: [0,1] [3,4]; ranks idle: 2,5");
    /* round-robin placement: host A holds ranks 0,2,4,6; host B 1,3,5,7 */
    const int round_robin[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    expect_layout(round_robin, 8, 2, "4 groups of 2: [0,2] [1,3] [4,6] [5,7]");
    expect_layout(round_robin, 8, 4, "2 groups of 4: [0,2,4,6] [1,3,5,7]");
    /* a cell needing more ranks than a host has: consecutive ranks across hosts */
    const int small_hosts[8] = {0, 0, 2, 2, 4, 4, 6, 6};
    expect_layout(small_hosts, 8, 4, "2 groups of 4: [0,1,2,3] [4,5,6,7]; across hosts (no host has 4 ranks)");
    qb_rank_groups g;
    CHECK(qb_rank_groups_make(one_host, 4, 0, &g) != 0);
}

static void test_transfer(void) {
    qb_cell_record c;
    memset(&c, 0, sizeof c);
    snprintf(c.model, sizeof c.model, "qwen2.5-tiny");
    snprintf(c.checks, sizeof c.checks, "packed: group 1, ranks 2,3");
    c.context_len = 16;
    c.gen_len = 5;
    c.n_ranks = 2;
    c.peak_mem_rank = calloc(2, sizeof *c.peak_mem_rank);
    c.peak_mem_rank[1] = 123.5;
    c.n_runs = 2;
    c.runs = calloc(3, sizeof *c.runs); /* as the runner allocates: repetitions, of which n_runs ran */
    for (int i = 0; i < 2; i++) {
        c.runs[i].n_gen = 5;
        c.runs[i].total_s = 0.5 + i;
        c.runs[i].step_s = calloc(4, sizeof(double));
        c.runs[i].tokens = calloc(5, sizeof(int32_t));
        c.runs[i].step_s[3] = 0.25 * (i + 1);
        c.runs[i].tokens[4] = 7 + i;
    }
    c.runs[1].step_s = (free(c.runs[1].step_s), NULL); /* a run whose steps were never allocated */
    qb_cell_origin from = {4, 1, 2, 88.5, "drv", "rt", "nccl"};
    qb_rank_summary ranks[2];
    memset(ranks, 0, sizeof ranks);
    ranks[1].rank = 3;
    snprintf(ranks[1].device, sizeof ranks[1].device, "cpu");
    void *image = NULL;
    size_t bytes = 0;
    CHECK(qb_cell_pack(&from, ranks, &c, &image, &bytes) == 0);

    qb_cell_record back;
    qb_cell_origin from2;
    qb_rank_summary *ranks2 = NULL;
    CHECK(qb_cell_unpack(image, bytes, &from2, &ranks2, &back) == 0);
    CHECK(!strcmp(back.model, "qwen2.5-tiny") && !strcmp(back.checks, c.checks) && back.context_len == 16);
    CHECK(back.n_runs == 2 && back.runs[0].step_s[3] == 0.25 && back.runs[1].step_s == NULL);
    CHECK(back.runs[0].tokens[4] == 7 && back.runs[1].tokens[4] == 8 && back.runs[1].total_s == 1.5);
    CHECK(back.peak_mem_rank && back.peak_mem_rank[1] == 123.5);
    CHECK(from2.cell == 4 && from2.group == 1 && from2.n_ranks == 2 && from2.copy_bandwidth_gbps == 88.5);
    CHECK(ranks2 && ranks2[1].rank == 3 && !strcmp(ranks2[1].device, "cpu"));
    qb_cell_free(&back);
    free(ranks2);

    /* every cut of the image is refused with a message, never read past its end */
    for (size_t cut = 0; cut < bytes; cut += 7) {
        CHECK(qb_cell_unpack(image, cut, &from2, &ranks2, &back) != 0);
        CHECK(ranks2 == NULL && back.runs == NULL);
    }
    ((unsigned char *)image)[0] ^= 0xff; /* another build's image */
    CHECK(qb_cell_unpack(image, bytes, &from2, &ranks2, &back) != 0);
    free(image);
    qb_cell_free(&c);
}

int main(void) {
    test_groups();
    test_transfer();
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("schedule units: ok\n");
    return failures ? 1 : 0;
}

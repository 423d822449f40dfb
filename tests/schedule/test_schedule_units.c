/* test_schedule_units.c - the packed schedule's pure parts: groups carved per host, a finished cell as a byte image
 * and back, the dealing over phases without a barrier between them, and --interference's spec, dealing steps,
 * overlap check and NOISY rule (bench/rank_groups.h, bench/cell_transfer.h, bench/packed_dealer.h,
 * bench/interference.h). No MPI communication. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cell_transfer.h"
#include "bench/interference.h"
#include "bench/packed_dealer.h"
#include "bench/rank_groups.h"
#include "util/error.h"

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

static void test_interference_spec(void) {
    qb_interference_spec s;
    CHECK(qb_interference_parse("qwen2.5-0.5b:bf16:1", &s) == 0);
    CHECK(!strcmp(s.model, "qwen2.5-0.5b") && s.quant == QB_QUANT_BF16 && s.context_len == 1 && s.tp == 0);
    CHECK(qb_interference_parse("/data/m:v2:gptq-int4:6144:2", &s) == 0); /* a model path may hold colons */
    CHECK(!strcmp(s.model, "/data/m:v2") && s.quant == QB_QUANT_GPTQ_INT4 && s.context_len == 6144 && s.tp == 2);
    const char *bad[] = {"", "m", "m:bf16", ":bf16:1", "m:bf99:1", "m:bf16:0", "m:bf16:-1", "m:bf16: 1", "m:bf16:1:0",
                         "m:bf16:1:x", "m:1:2", "m:bf16:1:2:3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (qb_interference_parse(bad[i], &s) == 0) { fprintf(stderr, "accepted '%s'\n", bad[i]); failures++; }
    }

    qb_cell_spec cells[3];
    memset(cells, 0, sizeof cells);
    snprintf(cells[0].model, sizeof cells[0].model, "/ckpt/gqa");
    snprintf(cells[1].model, sizeof cells[1].model, "/ckpt/gqa");
    snprintf(cells[2].model, sizeof cells[2].model, "qwen2.5-tiny");
    cells[0].context_len = cells[2].context_len = 1;
    cells[1].context_len = 16;
    const char *names[3] = {"gqa", "gqa", "qwen2.5-tiny"};
    int tps[3] = {1, 1, 2}, k = -1;
    CHECK(qb_interference_find("gqa:bf16:16", cells, names, tps, 3, &k) == 0 && k == 1); /* by its name */
    CHECK(qb_interference_find("/ckpt/gqa:bf16:1", cells, names, tps, 3, &k) == 0 && k == 0); /* as given */
    CHECK(qb_interference_find("qwen2.5-tiny:bf16:1:2", cells, names, tps, 3, &k) == 0 && k == 2);
    CHECK(qb_interference_find("qwen2.5-tiny:bf16:1:1", cells, names, tps, 3, &k) != 0);
    CHECK(qb_interference_find("gqa:gptq-int8:1", cells, names, tps, 3, &k) != 0);
    cells[1].context_len = 1; /* two cells alike but for engine options */
    CHECK(qb_interference_find("gqa:bf16:1", cells, names, tps, 3, &k) != 0 && strstr(qb_last_error(), "names 2 cells"));
}

/* A record of runs at the given [start, end) times, speed mean/std as given (moved into the module). */
static qb_cell_record runs_at(const double (*t)[2], int n, double mean, double std) {
    qb_cell_record c;
    memset(&c, 0, sizeof c);
    c.alone_speed_mean = c.alone_speed_std = c.interference_ratio = NAN;
    c.status = QB_CELL_VALID;
    c.n_runs = n;
    c.runs = calloc((size_t)n, sizeof *c.runs);
    for (int i = 0; i < n; i++) {
        c.runs[i].start_unix_s = t[i][0];
        c.runs[i].end_unix_s = t[i][1];
    }
    c.speed.mean = mean;
    c.speed.stddev = std;
    return c;
}

/* The steps for three groups, the chosen cell 5 on group 1 (beside runs 20-21 and 21-22); other_t: the runs of
 * group 0's cell during step 2. */
static void interference_steps(const double (*other_t)[2], int n_other, qb_cell_record *out) {
    qb_interference it;
    char done[3] = {0, 0, 0};
    int in_flight[3] = {-1, -1, -1};
    qb_cell_origin from;
    memset(&from, 0, sizeof from);
    qb_rank_summary *ranks = NULL;
    CHECK(qb_interference_start(&it, 5, 3) == 0);
    CHECK(qb_interference_answer(&it, 1, done, 0) == QB_ITF_CHOSEN); /* the first to ask: alone */
    CHECK(qb_interference_answer(&it, 0, done, 0) == QB_ITF_WAIT);
    CHECK(qb_interference_answer(&it, 2, done, 0) == QB_ITF_WAIT);
    const double alone_t[2][2] = {{10, 11}, {11, 12}};
    qb_cell_record alone = runs_at(alone_t, 2, 100.0, 1.0);
    CHECK(qb_interference_receive(&it, 1, 5, &alone, &from, &ranks, in_flight) == 1); /* kept, not recorded */
    CHECK(alone.runs == NULL);
    CHECK(qb_interference_wants_company(&it));
    CHECK(qb_interference_answer(&it, 1, done, 0) == QB_ITF_WAIT); /* the others first */
    CHECK(qb_interference_answer(&it, 0, done, 0) == QB_ITF_SWEEP);
    CHECK(qb_interference_answer(&it, 2, done, 0) == QB_ITF_SWEEP);
    CHECK(qb_interference_answer(&it, 1, done, 0) == QB_ITF_WAIT); /* until each began its second cell */
    const double first_t[1][2] = {{13, 14}};
    qb_cell_record first = runs_at(first_t, 1, 50.0, 0.0);
    CHECK(qb_interference_receive(&it, 0, 3, &first, &from, &ranks, in_flight) == 0); /* the dealer records it */
    qb_cell_free(&first);
    CHECK(qb_interference_answer(&it, 0, done, 0) == QB_ITF_SWEEP);
    done[2] = 1; /* a group told "none left" is not waited for */
    CHECK(qb_interference_answer(&it, 1, done, 0) == QB_ITF_CHOSEN);
    in_flight[0] = 4; /* group 0 runs beside it, and reports after it */
    const double beside_t[2][2] = {{20, 21}, {21, 22}};
    qb_cell_record beside = runs_at(beside_t, 2, 90.0, 1.0);
    CHECK(qb_interference_receive(&it, 1, 5, &beside, &from, &ranks, in_flight) == 1);
    CHECK(!qb_interference_wants_company(&it));
    qb_cell_record got;
    CHECK(qb_interference_release(&it, &got, &from, &ranks) == 0); /* held: group 0 has not reported */
    in_flight[0] = -1;
    qb_cell_record other = runs_at(other_t, n_other, 50.0, 0.0);
    CHECK(qb_interference_receive(&it, 0, 4, &other, &from, &ranks, in_flight) == 0);
    qb_cell_free(&other);
    CHECK(qb_interference_release(&it, &got, &from, &ranks) == 1);
    CHECK(qb_interference_answer(&it, 2, done, 0) == QB_ITF_SWEEP); /* then the phase goes on as usual */
    qb_interference_end(&it);
    *out = got;
}

static void test_interference_dealing(void) {
    qb_cell_record c;
    const double covers[1][2] = {{19.5, 22.5}}, short_of[1][2] = {{19.5, 20.5}}, around[2][2] = {{19, 19.9}, {22.1, 23}};
    interference_steps(covers, 1, &c); /* group 0's run covers both beside runs */
    CHECK(c.alone_speed_mean == 100.0 && c.alone_speed_std == 1.0 && c.interference_ratio == 0.9);
    CHECK(strstr(c.checks, "interference: beside 1 groups: 0.9000 of alone (alone 100.00 ± 1.00 tok/s)") != NULL);
    CHECK(strstr(c.checks, "slower beyond noise: packed cells NOISY") != NULL);
    double limit = 0.0;
    /* se = sqrt(1^2 / 2 + 1^2 / 2) = 1 tok/s: the limit is 2 se / alone mean = 2 % */
    CHECK(qb_interference_slowed(&c, &limit) == 1 && fabs(limit - 0.02) < 1e-12);
    c.speed.stddev = c.alone_speed_std = 0.1; /* 2 se / mean = 0.2 %: the limit is 1 % */
    c.interference_ratio = 0.995;
    CHECK(qb_interference_slowed(&c, &limit) == 0 && limit == 0.01);
    c.interference_ratio = 0.985;
    CHECK(qb_interference_slowed(&c, &limit) == 1);
    c.speed.stddev = c.alone_speed_std = 10.0; /* se = 10 tok/s over 2 runs: limit 2 x 10 / 100 = 20 % */
    c.interference_ratio = 0.85;
    CHECK(qb_interference_slowed(&c, &limit) == 0 && fabs(limit - 0.2) < 1e-12);
    c.interference_ratio = NAN;
    CHECK(qb_interference_slowed(&c, &limit) == 0);
    qb_cell_free(&c);

    interference_steps(short_of, 1, &c); /* the second beside run overlaps nothing */
    CHECK(c.alone_speed_mean == 100.0 && isnan(c.interference_ratio));
    CHECK(strstr(c.checks, "interference: no overlap: beside run 1 overlapped no cell of another group") != NULL);
    qb_cell_free(&c);

    interference_steps(around, 2, &c); /* both beside runs fall between two runs of group 0's cell: beside it */
    CHECK(c.interference_ratio == 0.9);
    qb_cell_free(&c);
}


/* 4 ranks on one host: phase 0 (TP 2) has groups 0 = [0,1] and 1 = [2,3], phase 1 (TP 1) groups 2..5 = [0]..[3].
 * Cell 0 needs TP 2; cells 1,2 (unit 1) and 3,4 (unit 3, the costlier) TP 1. */
static const int k_tps[5] = {2, 1, 1, 1, 1}, k_units[5] = {0, 1, 1, 3, 3}, k_none_done[5] = {0};
static const double k_cost[5] = {50, 1, 1, 5, 5};
static const int k_phase_tp[2] = {2, 1}, k_phase_groups[2] = {2, 4};

static int32_t ask(qb_dealing *dl, int g) {
    int background = 0;
    int32_t k = qb_dealing_answer(dl, g, 0, &background);
    CHECK(!background);
    return k;
}

static void test_dealing_without_barrier(void) {
    qb_dealing dl;
    CHECK(qb_dealing_init(&dl, 5, k_tps, k_none_done, k_units, k_cost, 2, k_phase_tp, k_phase_groups, -1) == 0);
    CHECK(dl.n_groups == 6 && dl.phases[1].first_group == 2 && dl.group_phase[5] == 1);
    CHECK(ask(&dl, 0) == 0);  /* group [0,1] runs the TP-2 cell */
    CHECK(ask(&dl, 1) == -1); /* group [2,3]: nothing of its phase left (the cell's unit has one: no help) */
    /* ranks 2 and 3 are free: their TP-1 groups are dealt cells while the TP-2 cell is still running */
    CHECK(ask(&dl, 4) == 3); /* the costliest unit first */
    CHECK(ask(&dl, 5) == 1);
    CHECK(dl.group_cell[0] == 0 && dl.in_flight == 3 && !qb_dealing_over(&dl));
    CHECK(qb_dealing_finished(&dl, 4) == 0 && ask(&dl, 4) == 4); /* the unit it has loaded */
    CHECK(qb_dealing_finished(&dl, 5) == 0 && ask(&dl, 5) == 2);
    CHECK(qb_dealing_finished(&dl, 5) == 0 && ask(&dl, 5) == -1);
    CHECK(qb_dealing_finished(&dl, 4) == 0 && ask(&dl, 4) == -1);
    CHECK(qb_dealing_finished(&dl, 5) == -1); /* nothing in flight */
    CHECK(qb_dealing_finished(&dl, 0) == 0 && ask(&dl, 0) == -1);
    CHECK(!qb_dealing_over(&dl)); /* groups [0] and [1] have not asked yet */
    CHECK(ask(&dl, 2) == -1 && ask(&dl, 3) == -1);
    CHECK(qb_dealing_over(&dl) && !dl.stopped);
    qb_dealing_free(&dl);

    /* --resume: cell 0 is in the file; the TP-2 groups get nothing, the TP-1 ones the rest */
    const int done[5] = {1, 0, 0, 0, 0};
    CHECK(qb_dealing_init(&dl, 5, k_tps, done, k_units, k_cost, 2, k_phase_tp, k_phase_groups, -1) == 0);
    CHECK(ask(&dl, 0) == -1 && ask(&dl, 1) == -1 && ask(&dl, 2) == 3 && ask(&dl, 3) == 1);
    /* the help rule: a free group takes the last cell of the unit with two or more left... */
    CHECK(ask(&dl, 4) == -1); /* ... but each unit has one left */
    qb_dealing_free(&dl);

    /* a stop signal: "none left" to every group that asks, of any phase */
    CHECK(qb_dealing_init(&dl, 5, k_tps, k_none_done, k_units, k_cost, 2, k_phase_tp, k_phase_groups, -1) == 0);
    CHECK(ask(&dl, 0) == 0);
    int background = 0;
    CHECK(qb_dealing_answer(&dl, 1, 1, &background) == -1 && dl.stopped);
    CHECK(ask(&dl, 4) == -1 && ask(&dl, 2) == -1);
    qb_dealing_free(&dl);

    /* --interference on cell 1 (phase 1): its phase's first free group gets it alone, the others wait */
    CHECK(qb_dealing_init(&dl, 5, k_tps, k_none_done, k_units, k_cost, 2, k_phase_tp, k_phase_groups, 1) == 0);
    CHECK(dl.phases[0].itf.state == QB_ITF_OFF && dl.phases[1].itf.state == QB_ITF_READY);
    CHECK(ask(&dl, 0) == 0 && ask(&dl, 1) == -1);
    CHECK(ask(&dl, 3) == 1 && dl.phases[1].itf.group == 1);
    CHECK(ask(&dl, 4) == QB_INTERFERENCE_WAIT && !dl.group_done[4] && dl.group_cell[4] == -1);
    qb_dealing_free(&dl);
}

int main(void) {
    test_groups();
    test_transfer();
    test_dealing_without_barrier();
    test_interference_spec();
    test_interference_dealing();
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("schedule units: ok\n");
    return failures ? 1 : 0;
}

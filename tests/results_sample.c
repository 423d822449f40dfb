/* results_sample.c - sample records and exact comparison for the results-file tests (see results_sample.h). */
#include "results_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(char *dst, size_t size, char c) {
    memset(dst, c, size - 1);
    dst[size - 1] = '\0';
}

void qb_sample_meta(qb_results_meta *m, int variant) {
    memset(m, 0, sizeof *m);
    snprintf(m->version, sizeof m->version, "0.1.%d", variant);
    snprintf(m->build_commit, sizeof m->build_commit, "abcdef%06d-dirty", variant);
    snprintf(m->build_type, sizeof m->build_type, "Release");
    snprintf(m->command_line, sizeof m->command_line, "qwenbench --model qwen2.5-0.5b --out r\xc3\xa9sultats.h5 --v %d",
             variant);
    snprintf(m->start_time, sizeof m->start_time, "2026-11-25T21:00:%02dZ", variant % 60);
    snprintf(m->end_time, sizeof m->end_time, "2026-11-25T22:00:%02dZ", variant % 60);
    snprintf(m->hosts, sizeof m->hosts, "node1,node1,node2,node2");
    snprintf(m->devices_json, sizeof m->devices_json, "[{\"rank\":0,\"host\":\"node1\",\"name\":\"cpu\",\"uuid\":\"\"}]");
    fill(m->settings_json, sizeof m->settings_json, 's'); /* a field filled to its last byte */
    snprintf(m->mpi_version, sizeof m->mpi_version, "Open MPI v4.1.4");
    snprintf(m->hdf5_version, sizeof m->hdf5_version, "1.10.8");
    m->copy_bandwidth_gbps = 1234.5 + variant / 3.0;
}

qb_cell_record *qb_sample_cells(int n, int variant) {
    qb_cell_record *cells = calloc((size_t)n + 1, sizeof *cells);
    for (int i = 0; i < n; i++) {
        qb_cell_record *c = &cells[i];
        snprintf(c->model, sizeof c->model, "qwen2.5-fixture-%d", i);
        if (i == 1) fill(c->model, sizeof c->model, 'm');
        snprintf(c->quant, sizeof c->quant, i % 2 ? "q8_0" : "bf16");
        snprintf(c->backend, sizeof c->backend, "cpu");
        c->context_len = 16 << (i % 8);
        c->gen_len = 3 + i;
        c->tp_size = 1 + i % 4;
        c->n_ranks = c->tp_size;
        c->repetitions = i % 4 == 1 || i % 4 == 2 ? 0 : 3;
        c->warmup = 1;
        c->seed = 0xfedcba9876543210ull + (uint64_t)variant;
        snprintf(c->prompt_rule, sizeof c->prompt_rule, i % 2 ? "repeat:%d" : "random", 1000 + i);
        c->status = (qb_cell_status)(i % 4);
        if (c->status == QB_CELL_DOES_NOT_FIT)
            snprintf(c->reason, sizeof c->reason, "needs 80.5 GiB, the device has 79.1 GiB");
        else if (c->status == QB_CELL_FAILED) fill(c->reason, sizeof c->reason, 'r');
        else if (c->status == QB_CELL_INVALID) snprintf(c->reason, sizeof c->reason, "tokens differ at step 2");
        c->n_runs = c->repetitions;
        c->runs = calloc((size_t)c->n_runs + 1, sizeof *c->runs);
        for (int j = 0; j < c->n_runs; j++) {
            qb_run_record *r = &c->runs[j];
            r->repetition = j;
            r->n_prompt = c->context_len;
            r->n_gen = i == 4 ? 1 : c->gen_len; /* cell 4: one token, no decode steps */
            r->prefill_s = 0.1 * (i + 1) + j / 7.0 + variant * 1e-3;
            r->step_s = malloc(sizeof(double) * (size_t)r->n_gen);
            r->tokens = malloc(sizeof(int32_t) * (size_t)r->n_gen);
            double decode = 0;
            for (int k = 0; k < r->n_gen; k++) {
                r->tokens[k] = (int32_t)((151643u * (unsigned)(i + 1) + 7919u * (unsigned)k + (unsigned)variant) % 151936u);
                if (k < r->n_gen - 1) decode += r->step_s[k] = 0.01 / 3.0 * (k + 1) + i * 1e-4 + j * 1e-5;
            }
            r->total_s = r->prefill_s + decode;
            qb_run_finish(r);
        }
        qb_cell_summarize(c);
        c->warmup_total_s = c->n_runs ? 1.0 / 3.0 + i : 0;
        c->peak_mem_rank = calloc((size_t)c->n_ranks, sizeof(double));
        for (int k = 0; k < c->n_ranks; k++) {
            c->peak_mem_rank[k] = 1e9 / 3.0 * (k + 1) + variant;
            c->peak_mem_total += c->peak_mem_rank[k];
        }
        c->weights_bytes_rank0 = 987654321.0 + i;
        c->kv_bytes_rank0 = 12345678.0 + variant;
        /* energy: measured (cell 3 throttled by the SW power cap) or unavailable (NaN, -1) */
        int measured = i % 2 == 0 || i == 3;
        snprintf(c->energy_source, sizeof c->energy_source, "%s",
                 measured ? "nvml energy counter" : "unavailable: cannot load libnvidia-ml.so.1");
        c->energy_j = measured ? 123.25 + i : NAN;
        c->joules_per_token = measured ? (123.25 + i) / c->gen_len : NAN;
        c->power_mean_w = measured ? 301.5 : NAN;
        c->power_peak_w = measured ? 350.0 + variant : NAN;
        c->sm_clock_mhz = measured ? 1980.0 - i : NAN;
        c->mem_clock_mhz = measured ? 2619.0 : NAN;
        c->temperature_max_c = measured ? 60.0 + i : NAN;
        c->throttled = measured ? i == 3 : -1;
        c->throttle_reasons = measured ? (i == 3 ? 0x5 : 0x1) : -1;
    }
    return cells;
}

void qb_sample_free(qb_cell_record *cells, int n) {
    for (int i = 0; cells && i < n; i++) qb_cell_free(&cells[i]);
    free(cells);
}

static int g_diffs;

static void diff(const char *where, const char *what) {
    if (g_diffs++ < 12) fprintf(stderr, "  mismatch %s: %s (exact comparison: the file stores the same values)\n", where, what);
}

#define SAME_STR(w, a, b)                                             \
    do {                                                              \
        if (strcmp((a), (b)) != 0) {                                  \
            char m_[1200];                                            \
            snprintf(m_, sizeof m_, "'%.500s' != '%.500s'", (a), (b)); \
            diff(w, m_);                                              \
        }                                                             \
    } while (0)
#define SAME_NUM(w, a, b)                                                      \
    do {                                                                       \
        double a_ = (double)(a), b_ = (double)(b);                             \
        if (!(a_ == b_ || (isnan(a_) && isnan(b_)))) {                         \
            char m_[200];                                                      \
            snprintf(m_, sizeof m_, "%s: %.17g != %.17g", #a, a_, b_);         \
            diff(w, m_);                                                       \
        }                                                                      \
    } while (0)
#define SAME_STATS(w, a, b) \
    SAME_NUM(w, (a).mean, (b).mean); SAME_NUM(w, (a).stddev, (b).stddev); SAME_NUM(w, (a).min, (b).min); SAME_NUM(w, (a).max, (b).max)

int qb_sample_compare_meta(const qb_results_meta *a, const qb_results_meta *b) {
    g_diffs = 0;
    SAME_STR("meta", a->version, b->version);
    SAME_STR("meta", a->build_commit, b->build_commit);
    SAME_STR("meta", a->build_type, b->build_type);
    SAME_STR("meta", a->command_line, b->command_line);
    SAME_STR("meta", a->start_time, b->start_time);
    SAME_STR("meta", a->end_time, b->end_time);
    SAME_STR("meta", a->hosts, b->hosts);
    SAME_STR("meta", a->devices_json, b->devices_json);
    SAME_STR("meta", a->driver_version, b->driver_version);
    SAME_STR("meta", a->cuda_version, b->cuda_version);
    SAME_STR("meta", a->nccl_version, b->nccl_version);
    SAME_STR("meta", a->mpi_version, b->mpi_version);
    SAME_STR("meta", a->hdf5_version, b->hdf5_version);
    SAME_STR("meta", a->settings_json, b->settings_json);
    SAME_NUM("meta", a->copy_bandwidth_gbps, b->copy_bandwidth_gbps);
    return g_diffs;
}

int qb_sample_compare_cells(const qb_cell_record *want, int n_want, const qb_cell_record *got, int n_got) {
    g_diffs = 0;
    char w[64];
    if (n_want != n_got) {
        snprintf(w, sizeof w, "%d cells != %d", n_want, n_got);
        diff("cell count", w);
        return g_diffs;
    }
    for (int i = 0; i < n_want; i++) {
        const qb_cell_record *a = &want[i], *b = &got[i];
        snprintf(w, sizeof w, "cell %d", i);
        SAME_STR(w, a->model, b->model);
        SAME_STR(w, a->quant, b->quant);
        SAME_STR(w, a->backend, b->backend);
        SAME_STR(w, a->prompt_rule, b->prompt_rule);
        SAME_STR(w, a->reason, b->reason);
        SAME_NUM(w, a->context_len, b->context_len);
        SAME_NUM(w, a->gen_len, b->gen_len);
        SAME_NUM(w, a->tp_size, b->tp_size);
        SAME_NUM(w, a->n_ranks, b->n_ranks);
        SAME_NUM(w, a->repetitions, b->repetitions);
        SAME_NUM(w, a->warmup, b->warmup);
        if (a->seed != b->seed) diff(w, "seed");
        SAME_NUM(w, a->status, b->status);
        SAME_STATS(w, a->speed, b->speed);
        SAME_STATS(w, a->ttft_s, b->ttft_s);
        SAME_STATS(w, a->tpot_s, b->tpot_s);
        SAME_STATS(w, a->decode_tok_per_s, b->decode_tok_per_s);
        SAME_NUM(w, a->warmup_total_s, b->warmup_total_s);
        SAME_NUM(w, a->peak_mem_total, b->peak_mem_total);
        SAME_NUM(w, a->weights_bytes_rank0, b->weights_bytes_rank0);
        SAME_NUM(w, a->kv_bytes_rank0, b->kv_bytes_rank0);
        SAME_STR(w, a->energy_source, b->energy_source);
        SAME_NUM(w, a->energy_j, b->energy_j);
        SAME_NUM(w, a->joules_per_token, b->joules_per_token);
        SAME_NUM(w, a->power_mean_w, b->power_mean_w);
        SAME_NUM(w, a->power_peak_w, b->power_peak_w);
        SAME_NUM(w, a->sm_clock_mhz, b->sm_clock_mhz);
        SAME_NUM(w, a->mem_clock_mhz, b->mem_clock_mhz);
        SAME_NUM(w, a->temperature_max_c, b->temperature_max_c);
        SAME_NUM(w, a->throttled, b->throttled);
        SAME_NUM(w, a->throttle_reasons, b->throttle_reasons);
        for (int k = 0; k < a->n_ranks && a->peak_mem_rank && b->peak_mem_rank; k++)
            SAME_NUM(w, a->peak_mem_rank[k], b->peak_mem_rank[k]);
        if (!a->peak_mem_rank != !b->peak_mem_rank && a->n_ranks > 0) diff(w, "peak_mem_rank present in one only");
        SAME_NUM(w, a->n_runs, b->n_runs);
        for (int j = 0; j < a->n_runs && j < b->n_runs; j++) {
            const qb_run_record *x = &a->runs[j], *y = &b->runs[j];
            snprintf(w, sizeof w, "cell %d run %d", i, j);
            SAME_NUM(w, x->repetition, y->repetition);
            SAME_NUM(w, x->n_prompt, y->n_prompt);
            SAME_NUM(w, x->n_gen, y->n_gen);
            SAME_NUM(w, x->total_s, y->total_s);
            SAME_NUM(w, x->prefill_s, y->prefill_s);
            SAME_NUM(w, x->decode_s, y->decode_s);
            SAME_NUM(w, x->tok_per_s, y->tok_per_s);
            SAME_NUM(w, x->decode_tok_per_s, y->decode_tok_per_s);
            SAME_NUM(w, x->tpot_s, y->tpot_s);
            for (int k = 0; k < x->n_gen && x->n_gen == y->n_gen; k++) {
                SAME_NUM(w, x->tokens[k], y->tokens[k]);
                if (k < x->n_gen - 1) SAME_NUM(w, x->step_s[k], y->step_s[k]);
            }
        }
    }
    return g_diffs;
}

void qb_sample_dump(FILE *f, const qb_results_meta *m, const qb_cell_record *cells, int n) {
    fprintf(f, "attr.copy_bandwidth_gbps %.17g\nattr.command_line %s\nattr.build_commit %s\n", m->copy_bandwidth_gbps,
            m->command_line, m->build_commit);
    long run_row = 0, step = 0, token = 0;
    for (int i = 0; i < n; i++) {
        const qb_cell_record *c = &cells[i];
        fprintf(f, "cells.%d.model %s\ncells.%d.status %s\ncells.%d.reason %s\n", i, c->model, i,
                qb_cell_status_name(c->status), i, c->reason);
        fprintf(f, "cells.%d.context_len %d\ncells.%d.seed %llu\ncells.%d.n_runs %d\ncells.%d.first_run %ld\n", i,
                c->context_len, i, (unsigned long long)c->seed, i, c->n_runs, i, run_row);
        fprintf(f, "cells.%d.speed_mean %.17g\ncells.%d.speed_std %.17g\ncells.%d.tpot_s_max %.17g\n", i,
                c->speed.mean, i, c->speed.stddev, i, c->tpot_s.max);
        fprintf(f, "cells.%d.decode_tok_per_s_min %.17g\ncells.%d.peak_mem_total_bytes %.17g\n", i,
                c->decode_tok_per_s.min, i, c->peak_mem_total);
        for (int j = 0; j < c->n_runs; j++, run_row++) {
            const qb_run_record *r = &c->runs[j];
            fprintf(f, "runs.%ld.cell %d\nruns.%ld.tok_per_s %.17g\nruns.%ld.total_s %.17g\n", run_row, i, run_row,
                    r->tok_per_s, run_row, r->total_s);
            fprintf(f, "runs.%ld.step_offset %ld\nruns.%ld.token_offset %ld\n", run_row, step, run_row, token);
            for (int k = 0; k + 1 < r->n_gen; k++) fprintf(f, "step_latency_s.%ld %.17g\n", step++, r->step_s[k]);
            for (int k = 0; k < r->n_gen; k++) fprintf(f, "generated_tokens.%ld %d\n", token++, r->tokens[k]);
        }
    }
}

/* weights_random.c - random weights of a rank's exact shapes (weights.h, random_init.h): every value a pure
 * function of seed, tensor name and element index, so any slice equals the slice of the full tensor. BF16
 * configs fill dense matrices here; quantized configs get packed weights from weights_quant.c. Tensor names
 * (and so the seeds hashed from them) come from the family table (model/model_family.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cpu_threads.h"
#include "engine/random_init.h"
#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "engine/weights_quant.h"

/* dst[r][c] = random bf16 of element (row0+r, col0+c) of the full [*, cols] tensor `name`. Large blocks are
 * split by rows over threads; every element is a pure function of its index, so the result does not depend
 * on the split. */
typedef struct {
    uint16_t *dst;
    uint64_t id, seed, cols, row0, n_rows, col0, n_cols;
} fill_job;

static void fill_rows(const fill_job *j) {
    for (uint64_t r = 0; r < j->n_rows; r++) {
        uint64_t base = (j->row0 + r) * j->cols + j->col0;
        uint16_t *out = j->dst + r * j->n_cols;
        for (uint64_t c = 0; c < j->n_cols; c++) out[c] = qb_random_weight_bf16(j->seed, j->id, base + c);
    }
}

static void *fill_thread(void *arg) {
    fill_rows(arg);
    return NULL;
}

#define QB_FILL_MAX_THREADS 64
#define QB_FILL_MIN_PER_THREAD (1u << 20) /* elements */

static void fill_block(uint16_t *dst, const char *name, uint64_t seed, uint64_t cols, uint64_t row0, uint64_t n_rows,
                       uint64_t col0, uint64_t n_cols) {
    fill_job all = {dst, qb_tensor_id(name), seed, cols, row0, n_rows, col0, n_cols};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t total = n_rows * n_cols, want = total / QB_FILL_MIN_PER_THREAD;
    int n = (int)(want < (uint64_t)(cpus > 0 ? cpus : 1) ? want : (uint64_t)cpus);
    if (n > QB_FILL_MAX_THREADS) n = QB_FILL_MAX_THREADS;
    if (n > (int)n_rows) n = (int)n_rows;
    if (n <= 1) {
        fill_rows(&all);
        return;
    }
    fill_job jobs[QB_FILL_MAX_THREADS];
    pthread_t tids[QB_FILL_MAX_THREADS];
    bool started[QB_FILL_MAX_THREADS];
    uint64_t per = (n_rows + (uint64_t)n - 1) / (uint64_t)n;
    for (int t = 0; t < n; t++) {
        uint64_t r0 = (uint64_t)t * per, nr = r0 < n_rows ? (n_rows - r0 < per ? n_rows - r0 : per) : 0;
        jobs[t] = all;
        jobs[t].dst = dst + r0 * n_cols;
        jobs[t].row0 = row0 + r0;
        jobs[t].n_rows = nr;
        started[t] = t > 0 && pthread_create(&tids[t], NULL, fill_thread, &jobs[t]) == 0;
    }
    fill_rows(&jobs[0]);
    for (int t = 1; t < n; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        else fill_rows(&jobs[t]); /* thread creation failed: do it here */
    }
}

static void fill_bias(float *dst, const char *name, uint64_t seed, uint64_t start, uint64_t n) {
    uint64_t id = qb_tensor_id(name);
    for (uint64_t i = 0; i < n; i++) dst[i] = qb_bf16_to_float(qb_random_weight_bf16(seed, id, start + i));
}

static void fill_norm(float *dst, const char *name, uint64_t seed, uint64_t n) {
    uint64_t id = qb_tensor_id(name);
    for (uint64_t i = 0; i < n; i++) dst[i] = qb_random_norm(seed, id, i);
}

int qb_weights_random(const qb_model_config *c, const qb_shard_plan *p, uint64_t seed, qb_weights *out) {
    memset(out, 0, sizeof *out);
    /* quantized configs: packed weights of the exact shapes (weights_quant.h), never dense stand-ins */
    int quant = c->quant != QB_QUANT_BF16;
    if ((quant ? qb_weights_alloc_quant(c, p, out) : qb_weights_alloc(c, p, out)) != 0) {
        qb_weights_free(out);
        return -1;
    }
    const uint64_t H = (uint64_t)c->hidden_size;
    char name[256];
    const qb_model_family *fam = qb_model_family_of(c);
    fill_block(out->embed, fam->embed, seed, H, 0, (uint64_t)c->vocab_size, 0, H);
    if (!c->tie_word_embeddings)
        fill_block(out->lm_head.w, fam->lm_head, seed, H, (uint64_t)p->vocab_start, (uint64_t)p->vocab_size, 0, H);
    fill_norm(out->final_norm, fam->final_norm, seed, H);
    for (int i = 0; i < c->num_layers; i++) {
        qb_layer_weights *l = &out->layers[i];
        float *norms[2] = {l->input_norm, l->post_attn_norm}; /* the family's layer_norms, in order */
        for (int n = 0; n < fam->n_layer_norms; n++) {
            qb_tensor_name(name, sizeof name, i, fam->layer_norms[n]);
            fill_norm(norms[n], name, seed, H);
        }
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_slice s;
            qb_linear_slice(c, p, k, &s);
            qb_linear *lin = qb_layer_linear(l, k);
            if (quant) {
                qb_tensor_name(name, sizeof name, i, qb_linear_suffix[k]);
                qb_linear_random_quant(lin, name, &s, seed, qb_cpu_count());
            } else {
                qb_linear_tensor_name(name, sizeof name, i, k, qb_format_info(QB_QUANT_BF16)->parts[0]);
                fill_block(lin->w, name, seed, s.cols, s.row0, s.n_rows, s.col0, s.n_cols);
            }
            if (s.has_bias) {
                qb_linear_tensor_name(name, sizeof name, i, k, "bias");
                fill_bias(lin->bias, name, seed, s.row0, s.n_rows);
            }
        }
    }
    return 0;
}


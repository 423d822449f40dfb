/* weights.c - one rank's weight buffers: canonical names, allocation of the shapes a shard plan gives,
 * random filling (random_init.h), freeing. Loading from a checkpoint is in weights_load.c.
 *
 * Slices of this rank in the full (unsharded) tensors:
 *   q/k/v  rows of this rank's heads            [heads*hd, H]    bias likewise
 *   o      columns of this rank's query heads   [H, heads*hd]
 *   gate/up rows [inter_start, +inter_size)      [I, H]
 *   down   columns [inter_start, +inter_size)   [H, I]
 *   lm_head rows [vocab_start, +vocab_size)     [V, H]   (aliases embed rows when tied)
 *   embed, norms: full.
 */
#include "engine/weights.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cpu_threads.h"
#include "engine/random_init.h"
#include "engine/weights_layout.h"
#include "engine/weights_quant.h"
#include "util/error.h"

void qb_tensor_name(char *buf, size_t cap, int layer, const char *suffix) {
    if (layer >= 0) snprintf(buf, cap, "model.layers.%d.%s", layer, suffix);
    else snprintf(buf, cap, "%s", suffix);
}

const char *const qb_linear_suffix[QB_NUM_LINEAR] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",
};

qb_linear *qb_layer_linear(qb_layer_weights *l, int which) {
    qb_linear *all[QB_NUM_LINEAR] = {&l->q, &l->k, &l->v, &l->o, &l->gate, &l->up, &l->down};
    return all[which];
}

void qb_linear_slice(const qb_model_config *c, const qb_shard_plan *p, int which, qb_slice *s) {
    const uint64_t H = (uint64_t)c->hidden_size, I = (uint64_t)c->intermediate_size, hd = (uint64_t)c->head_dim;
    memset(s, 0, sizeof *s);
    switch (which) {
    case QB_LIN_Q:
        s->rows = (uint64_t)c->num_heads * hd, s->cols = H;
        s->row0 = (uint64_t)p->q_head_start * hd, s->n_rows = (uint64_t)p->q_heads * hd, s->n_cols = H;
        s->has_bias = true;
        break;
    case QB_LIN_K:
    case QB_LIN_V:
        s->rows = (uint64_t)c->num_kv_heads * hd, s->cols = H;
        s->row0 = (uint64_t)p->kv_head_start * hd, s->n_rows = (uint64_t)p->kv_heads * hd, s->n_cols = H;
        s->has_bias = true;
        break;
    case QB_LIN_O:
        s->rows = H, s->cols = (uint64_t)c->num_heads * hd;
        s->n_rows = H, s->col0 = (uint64_t)p->q_head_start * hd, s->n_cols = (uint64_t)p->q_heads * hd;
        break;
    case QB_LIN_GATE:
    case QB_LIN_UP:
        s->rows = I, s->cols = H;
        s->row0 = (uint64_t)p->inter_start, s->n_rows = (uint64_t)p->inter_size, s->n_cols = H;
        break;
    default: /* down */
        s->rows = H, s->cols = I;
        s->n_rows = H, s->col0 = (uint64_t)p->inter_start, s->n_cols = (uint64_t)p->inter_size;
        break;
    }
}

void *qb_weights_alloc_bytes(qb_weights *w, size_t bytes, const char *what) {
    void *ptr = malloc(bytes ? bytes : 1);
    if (!ptr) {
        qb_errorf("%s: out of memory allocating %zu bytes", what, bytes);
        return NULL;
    }
    w->host_bytes += bytes;
    return ptr;
}

int qb_weights_alloc_common(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w) {
    memset(w, 0, sizeof *w);
    w->cfg = *c;
    w->plan = *p;
    w->embed_fmt = QB_WFMT_BF16;
    const size_t H = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    w->layers = calloc((size_t)c->num_layers, sizeof *w->layers);
    if (!w->layers) return qb_errorf("weights: out of memory for %d layers", c->num_layers);
    if (!(w->embed = qb_weights_alloc_bytes(w, V * H * 2, "model.embed_tokens.weight"))) return -1;
    if (!(w->final_norm = qb_weights_alloc_bytes(w, H * sizeof(float), "model.norm.weight"))) return -1;
    qb_linear *lm = &w->lm_head;
    lm->fmt = QB_WFMT_BF16;
    lm->out_features = p->vocab_size;
    lm->in_features = c->hidden_size;
    if (c->tie_word_embeddings) {
        lm->w = w->embed + (size_t)p->vocab_start * H;
        lm->owns_w = 0;
    } else {
        if (!(lm->w = qb_weights_alloc_bytes(w, (size_t)p->vocab_size * H * 2, "lm_head.weight"))) return -1;
        lm->owns_w = 1;
    }
    for (int i = 0; i < c->num_layers; i++) {
        qb_layer_weights *l = &w->layers[i];
        if (!(l->input_norm = qb_weights_alloc_bytes(w, H * sizeof(float), "input_layernorm"))) return -1;
        if (!(l->post_attn_norm = qb_weights_alloc_bytes(w, H * sizeof(float), "post_attention_layernorm")))
            return -1;
    }
    return 0;
}

int qb_weights_alloc(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w) {
    QB_TRY(qb_weights_alloc_common(c, p, w));
    for (int i = 0; i < c->num_layers; i++) {
        qb_layer_weights *l = &w->layers[i];
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_slice s;
            qb_linear_slice(c, p, k, &s);
            qb_linear *lin = qb_layer_linear(l, k);
            lin->fmt = QB_WFMT_BF16;
            lin->out_features = (int)s.n_rows;
            lin->in_features = (int)s.n_cols;
            lin->owns_w = 1;
            if (!(lin->w = qb_weights_alloc_bytes(w, (size_t)(s.n_rows * s.n_cols) * 2, qb_linear_suffix[k])))
                return -1;
            if (s.has_bias &&
                !(lin->bias = qb_weights_alloc_bytes(w, (size_t)s.n_rows * sizeof(float), qb_linear_suffix[k])))
                return -1;
        }
    }
    return 0;
}

static void free_linear(qb_linear *l) {
    if (l->owns_w) free(l->w);
    free(l->qweight);
    free(l->qzeros);
    free(l->g_idx);
    free(l->scales);
    free(l->bias);
    memset(l, 0, sizeof *l);
}

void qb_weights_free(qb_weights *w) {
    if (!w) return;
    if (w->layers) {
        for (int i = 0; i < w->cfg.num_layers; i++) {
            qb_layer_weights *l = &w->layers[i];
            for (int k = 0; k < QB_NUM_LINEAR; k++) free_linear(qb_layer_linear(l, k));
            free(l->input_norm);
            free(l->post_attn_norm);
        }
    }
    free(w->layers);
    free_linear(&w->lm_head);
    free(w->embed);
    free(w->final_norm);
    memset(w, 0, sizeof *w);
}

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
    fill_block(out->embed, "model.embed_tokens.weight", seed, H, 0, (uint64_t)c->vocab_size, 0, H);
    if (!c->tie_word_embeddings)
        fill_block(out->lm_head.w, "lm_head.weight", seed, H, (uint64_t)p->vocab_start, (uint64_t)p->vocab_size, 0, H);
    fill_norm(out->final_norm, "model.norm.weight", seed, H);
    for (int i = 0; i < c->num_layers; i++) {
        qb_layer_weights *l = &out->layers[i];
        qb_tensor_name(name, sizeof name, i, "input_layernorm.weight");
        fill_norm(l->input_norm, name, seed, H);
        qb_tensor_name(name, sizeof name, i, "post_attention_layernorm.weight");
        fill_norm(l->post_attn_norm, name, seed, H);
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_slice s;
            qb_linear_slice(c, p, k, &s);
            qb_linear *lin = qb_layer_linear(l, k);
            char suffix[64];
            if (quant) {
                qb_tensor_name(name, sizeof name, i, qb_linear_suffix[k]);
                qb_linear_random_quant(lin, name, &s, seed, qb_cpu_count());
            } else {
                snprintf(suffix, sizeof suffix, "%s.weight", qb_linear_suffix[k]);
                qb_tensor_name(name, sizeof name, i, suffix);
                fill_block(lin->w, name, seed, s.cols, s.row0, s.n_rows, s.col0, s.n_cols);
            }
            if (s.has_bias) {
                snprintf(suffix, sizeof suffix, "%s.bias", qb_linear_suffix[k]);
                qb_tensor_name(name, sizeof name, i, suffix);
                fill_bias(lin->bias, name, seed, s.row0, s.n_rows);
            }
        }
    }
    return 0;
}

size_t qb_weights_rank_bytes(const qb_model_config *c, const qb_shard_plan *p) {
    const size_t H = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    size_t total = V * H * 2 + H * sizeof(float) * (1 + 2 * (size_t)c->num_layers);
    if (!c->tie_word_embeddings) total += (size_t)p->vocab_size * H * 2;
    for (int k = 0; k < QB_NUM_LINEAR; k++) {
        qb_slice s;
        qb_linear_slice(c, p, k, &s);
        size_t per = c->quant != QB_QUANT_BF16
                         ? qb_linear_quant_bytes(c, &s)
                         : (size_t)(s.n_rows * s.n_cols) * 2 + (s.has_bias ? (size_t)s.n_rows * sizeof(float) : 0);
        total += per * (size_t)c->num_layers;
    }
    return total;
}

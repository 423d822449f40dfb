/* test_memory_plan.c - the one memory plan (src/engine/memory_plan.h) against the planner and the CUDA engine's
 * actual allocations, without a GPU.
 *
 * For the 7 Qwen2.5 sizes x bf16 / GPTQ-Int8 / GPTQ-Int4 / AWQ x TP 1, 2, 4, 8 (where the shard plan allows it)
 * x a few lengths, for rank 0 and the last rank:
 *   - the plan is consistent: the entries a cell needs are there (and no others) with bytes > 0, each region is the
 *     aligned walk of its entries, the total the sum of the regions, the KV cache the formula;
 *   - the engine allocates exactly the plan: cuda_memory.c runs over the host stand-ins of cuda_layout_standins.c
 *     (cudaMalloc records sizes, nothing allocated), its cudaMalloc requests are the plan's three regions, every
 *     tensor pointer it sets lies inside its region, and the tiling pass (cuda_quant_tiles.c) allocates the plan's
 *     temporary scratch or nothing;
 *   - the byte amounts are today's: the regions equal a reference of the engine's layout before the plan (the
 *     sequence of 256-byte-aligned tensors it took, written out here as the oracle);
 *   - the planner's numbers are the plan's (rank 0 at the planner's largest choices: same entries, same total);
 *   - the engine refuses ("does not fit") a plan one byte larger than the free memory, counting the TP delta and
 *     the tiling scratch it allocates after its regions, before any cudaMalloc.
 * Without CUDA (the CPU-only build) the engine checks are left out: the plan and the planner only.
 * Run: ctest -R memory_plan (or build/tests/test_memory_plan).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/planner.h"
#include "config/model_config.h"
#include "engine/memory_plan.h"
#include "engine/shard_plan.h"
#include "util/error.h"

#ifdef QB_HAVE_CUDA
#include "cuda/cuda_engine.h"
#include "cuda_layout_standins.h"
#endif

static int g_failures, g_cases, g_skipped;

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            g_failures++;                                           \
            printf("FAIL %s: ", label);                             \
            printf(__VA_ARGS__);                                    \
            printf("\n");                                           \
            return;                                                 \
        }                                                           \
    } while (0)

#ifdef QB_HAVE_CUDA
/* ---- the oracle: the engine's layout before the plan, as a sequence of 256-byte-aligned tensors ---- */

typedef struct {
    size_t used;
} oracle_arena;

static void take(oracle_arena *a, size_t bytes) { a->used = ((a->used + 255) & ~(size_t)255) + bytes; }

static void oracle_regions(const qb_cuda_engine *e, int tp, size_t out[3]) {
    size_t H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd, n_qkv = (size_t)e->n_qkv;
    size_t bits = (size_t)e->quant_bits, g = (size_t)e->group_size;
    oracle_arena w = {0}, kv = {0}, ws = {0};
    take(&w, (size_t)e->vocab_full * H * 2);
    if (!e->cfg.tie_word_embeddings) take(&w, (size_t)e->vocab_rows * H * 2);
    take(&w, H * 4);
    size_t n[4] = {n_qkv, H, 2 * I, H}, k[4] = {H, nq, H, I};
    for (int l = 0; l < e->layers; l++) {
        for (int i = 0; i < 4; i++) {
            if (bits) {
                take(&w, n[i] * (k[i] * bits / 32) * 4);
                take(&w, n[i] * (k[i] / g) * 4);
            } else {
                take(&w, n[i] * k[i] * 2);
            }
            if (i == 0) take(&w, n_qkv * 4); /* the q|k|v bias after its matrix */
        }
        take(&w, H * 4);
        take(&w, H * 4);
    }
    size_t per = (size_t)e->layers * e->hkv * e->max_seq * e->hd * 2;
    take(&kv, per);
    take(&kv, per);
    size_t C = (size_t)e->chunk_rows, big = n_qkv > 2 * I ? n_qkv : 2 * I, seq = (size_t)e->max_seq;
    take(&ws, C * H * 4);
    if (tp > 1) take(&ws, H * 4);
    take(&ws, C * H * 2);
    if (tp == 1) take(&ws, C * H * 2);
    take(&ws, C * big * 2);
    take(&ws, C * nq * 2);
    take(&ws, C * nq * 2);
    take(&ws, C * I * 2);
    take(&ws, (size_t)e->vocab_rows * 4);
    take(&ws, (size_t)e->hq * e->hd * ((seq + 63) / 64) * 4);
    take(&ws, (size_t)e->hq * ((seq + 63) / 64) * 2 * 4);
    take(&ws, seq * (e->hd / 2) * 4);
    take(&ws, seq * (e->hd / 2) * 4);
    take(&ws, 16);
    take(&ws, 4);
    take(&ws, seq * 4);
    take(&ws, C * 4);
    take(&ws, e->gemm_workspace_bytes);
    size_t largest = 0;
    for (int i = 0; i < 4; i++) largest = n[i] * k[i] > largest ? n[i] * k[i] : largest;
    if (bits && C > 1) take(&ws, largest * 2);
    out[0] = w.used;
    out[1] = kv.used;
    out[2] = ws.used;
}

#endif

/* ---- the plan on its own ---- */

static bool has(const qb_memory_plan *p, qb_mem_id id) { return qb_memory_plan_find(p, id) != NULL; }

typedef struct {
    size_t sum[QB_MEM_REGION_COUNT];
    long instances[QB_MEM_REGION_COUNT];
} walk_sums;

static void sum_visit(void *ctx, const qb_mem_entry *t, int layer, size_t offset) {
    (void)layer;
    (void)offset;
    walk_sums *s = ctx;
    s->sum[t->region] += t->bytes;
    s->instances[t->region]++;
}

static void check_plan(const char *label, const qb_model_config *c, const qb_shard_plan *s, const qb_memory_plan *p,
                       int max_seq, int chunk, int tiled_scratch_possible) {
    bool quant = c->quant != QB_QUANT_BF16, tp = s->tp_size > 1;
    static const qb_mem_id always[] = {QB_MEM_EMBED, QB_MEM_FINAL_NORM, QB_MEM_B_QKV, QB_MEM_NORM_IN,
                                       QB_MEM_NORM_POST, QB_MEM_K_CACHE, QB_MEM_V_CACHE, QB_MEM_RESID, QB_MEM_XN,
                                       QB_MEM_BIG, QB_MEM_Q, QB_MEM_ATTN, QB_MEM_ACT, QB_MEM_LOGITS, QB_MEM_PART_O,
                                       QB_MEM_PART_ML, QB_MEM_COS, QB_MEM_SIN, QB_MEM_STATE, QB_MEM_TOKEN,
                                       QB_MEM_TOKENS, QB_MEM_PROMPT, QB_MEM_GEMM_WORKSPACE, QB_MEM_CUDA_RUNTIME};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        CHECK(has(p, always[i]), "entry %d missing", (int)always[i]);
    CHECK(has(p, QB_MEM_LM_HEAD) == !c->tie_word_embeddings, "lm_head %s with tie_word_embeddings %d",
          has(p, QB_MEM_LM_HEAD) ? "present" : "absent", c->tie_word_embeddings);
    static const qb_mem_id bf16[] = {QB_MEM_W_QKV, QB_MEM_W_O, QB_MEM_W_GATE_UP, QB_MEM_W_DOWN};
    static const qb_mem_id packed[] = {QB_MEM_Q_QKV_WEIGHT, QB_MEM_Q_QKV_SZ, QB_MEM_Q_O_WEIGHT, QB_MEM_Q_O_SZ,
                                       QB_MEM_Q_GATE_UP_WEIGHT, QB_MEM_Q_GATE_UP_SZ, QB_MEM_Q_DOWN_WEIGHT,
                                       QB_MEM_Q_DOWN_SZ};
    for (int i = 0; i < 4; i++) CHECK(has(p, bf16[i]) == !quant, "bf16 linear %d vs quantization", i);
    for (int i = 0; i < 8; i++) CHECK(has(p, packed[i]) == quant, "packed linear part %d vs quantization", i);
    CHECK(has(p, QB_MEM_WDQ) == (quant && chunk > 1), "dequantization scratch with %d prefill rows", chunk);
    CHECK(has(p, QB_MEM_DELTA) == !tp && has(p, QB_MEM_TP_DELTA) == tp && has(p, QB_MEM_RESID_ALT) == tp,
          "delta / tensor-parallel delta / alternate residual vs tp %d", s->tp_size);
    CHECK(has(p, QB_MEM_ARGMAX_LOCAL) == tp && has(p, QB_MEM_ARGMAX_KEY) == tp && has(p, QB_MEM_NCCL_INTERNAL) == tp,
          "argmax scratch / NCCL figure vs tp %d", s->tp_size);
    CHECK(!has(p, QB_MEM_TILE_SCRATCH) || (quant && tiled_scratch_possible), "a tiling scratch it cannot need");
    CHECK(p->chunk_rows == chunk, "chunk rows %d, want %d", p->chunk_rows, chunk);
    for (int i = 0; i < p->n_entries; i++)
        CHECK(p->entry[i].bytes > 0 && p->entry[i].name && p->entry[i].name[0], "entry %d (%s) of 0 bytes",
              (int)p->entry[i].id, p->entry[i].name ? p->entry[i].name : "?");
    for (int i = 0; i < p->n_entries; i++)
        for (int j = i + 1; j < p->n_entries; j++) CHECK(p->entry[i].id != p->entry[j].id, "entry twice");
    walk_sums ws;
    memset(&ws, 0, sizeof ws);
    size_t total = 0;
    for (int r = 0; r < QB_MEM_REGION_COUNT; r++) {
        size_t walked = qb_memory_plan_walk(p, (qb_mem_region)r, sum_visit, &ws);
        CHECK(walked == p->region_bytes[r], "region %s: walk %zu bytes, plan %zu", qb_mem_region_name(r), walked,
              p->region_bytes[r]);
        size_t slack = r <= QB_MEM_REGION_WORKSPACE ? (size_t)255 * (size_t)ws.instances[r] : 0;
        CHECK(p->region_bytes[r] >= ws.sum[r] && p->region_bytes[r] <= ws.sum[r] + slack,
              "region %s: %zu bytes for tensors of %zu (alignment at most %zu)", qb_mem_region_name(r),
              p->region_bytes[r], ws.sum[r], slack);
        total += p->region_bytes[r];
    }
    CHECK(total == p->total_bytes, "total %zu, regions sum to %zu", p->total_bytes, total);
    size_t kv = (size_t)2 * c->num_layers * s->kv_heads * (size_t)max_seq * c->head_dim * 2;
    CHECK(qb_memory_plan_bytes(p, QB_MEM_K_CACHE) + qb_memory_plan_bytes(p, QB_MEM_V_CACHE) == kv,
          "KV %zu bytes, want %zu", qb_memory_plan_bytes(p, QB_MEM_K_CACHE) + qb_memory_plan_bytes(p, QB_MEM_V_CACHE),
          kv);
    if (tp) { /* the IPC regions of allreduce_ipc_setup.c / nccl_comm.c: two halves of ranks slots, then flags */
        size_t ranks = (size_t)s->tp_size, flags = 4 * 8 * 32, counters = 4 * (32 + 2);
        size_t row = ((size_t)c->hidden_size * 4 + 255) / 256 * 256;
        CHECK(qb_memory_plan_bytes(p, QB_MEM_IPC_ONESHOT) == 2 * ranks * (512 << 10) + flags &&
                  qb_memory_plan_bytes(p, QB_MEM_IPC_ONESHOT_COUNTERS) == counters,
              "one-shot IPC region %zu bytes", qb_memory_plan_bytes(p, QB_MEM_IPC_ONESHOT));
        CHECK(qb_memory_plan_bytes(p, QB_MEM_IPC_EXCHANGE) == 2 * ranks * c->num_layers * row + flags &&
                  qb_memory_plan_bytes(p, QB_MEM_IPC_EXCHANGE_COUNTERS) == counters,
              "exchange IPC region %zu bytes", qb_memory_plan_bytes(p, QB_MEM_IPC_EXCHANGE));
        CHECK(qb_memory_plan_bytes(p, QB_MEM_TP_DELTA) == (size_t)chunk * c->hidden_size * 2, "TP delta %zu bytes",
              qb_memory_plan_bytes(p, QB_MEM_TP_DELTA));
    }
    long per_layer = 0;
    for (int i = 0; i < p->n_entries; i++) per_layer += p->entry[i].per_layer;
    CHECK(per_layer == (quant ? 11 : 7), "%ld per-layer entries", per_layer);
}

#ifdef QB_HAVE_CUDA
/* ---- the engine's allocations ---- */

typedef struct {
    const qb_cuda_engine *e;
    int bad;
} inside_ctx;

static int inside(const qb_cuda_engine *e, const void *p, int region, size_t bytes) {
    uintptr_t b = (uintptr_t)e->region[region], q = (uintptr_t)p;
    return p && q >= b && q + bytes <= b + e->region_bytes[region] && (q - b) % 256 == 0;
}

static void pointer_visit(void *ctx, const qb_mem_entry *t, int layer, size_t offset) {
    inside_ctx *c = ctx;
    const qb_cuda_engine *e = c->e;
    const void *p = NULL;
    const qb_cuda_layer *L = layer >= 0 ? &e->layer[layer] : NULL;
    switch (t->id) { /* a sample of the engine's pointers: the first and last of each region and the linears */
    case QB_MEM_EMBED: p = e->embed; break;
    case QB_MEM_W_QKV: p = L->w_qkv; break;
    case QB_MEM_Q_QKV_WEIGHT: p = L->q_qkv.qweight; break;
    case QB_MEM_Q_DOWN_SZ: p = L->q_down.sz; break;
    case QB_MEM_W_DOWN: p = L->w_down; break;
    case QB_MEM_NORM_POST: p = L->norm_post; break;
    case QB_MEM_K_CACHE: p = e->k_cache; break;
    case QB_MEM_V_CACHE: p = e->v_cache; break;
    case QB_MEM_RESID: p = e->resid; break;
    case QB_MEM_PART_O: p = e->part_o; break;
    case QB_MEM_GEMM_WORKSPACE: p = e->gemm_workspace; break;
    case QB_MEM_WDQ: p = e->wdq; break;
    default: return;
    }
    if ((uintptr_t)p != (uintptr_t)e->region[t->region] + offset || !inside(e, p, t->region, t->bytes)) c->bad++;
}

/* largest: the planner's largest choices (tiled layout at 4 or 8 bits, residual exchange), else both off. */
static void check_engine(const char *label, const qb_model_config *c, const qb_shard_plan *s, int max_seq,
                         int max_prompt, int largest, const qb_memory_plan *planner_plan) {
    qb_cuda_engine *e = calloc(1, sizeof *e);
    CHECK(e != NULL, "out of memory");
    qb_cuda_engine_shapes(e, c, s, max_seq, max_prompt);
    e->layer = calloc((size_t)e->layers, sizeof *e->layer);
    e->gemm_workspace_bytes = QB_MEMORY_PLAN_GEMM_WORKSPACE_BYTES;
    e->quant_tiled = largest && e->quant_bits > 0 && e->H <= 8192;
    if (s->tp_size > 1) {
        e->nc = (struct qb_nccl *)(uintptr_t)0x10; /* stand-in context: the one-shot IPC all-reduce */
        e->xchg_on = largest && c->hidden_size <= 8192;
    }
    g_mallocs_fake = 1;
    g_n_mallocs = 0;
    int rc = e->layer ? qb_cuda_memory_plan(e) : -1;
    int n_plan_mallocs = g_n_mallocs;
    size_t mallocs[3] = {g_mallocs[0], g_mallocs[1], g_mallocs[2]};
    inside_ctx ic = {e, 0};
    size_t oracle[3];
    int n_tile_mallocs = 0, tile_rc = 0;
    size_t tile_bytes = 0;
    if (rc == 0) {
        for (int r = 0; r < 3; r++) qb_memory_plan_walk(&e->mem, (qb_mem_region)r, pointer_visit, &ic);
        oracle_regions(e, s->tp_size, oracle);
        g_n_mallocs = 0;
        tile_rc = qb_cuda_quant_tile_weights(e);
        n_tile_mallocs = g_n_mallocs;
        tile_bytes = g_mallocs[0];
        qb_cuda_memory_free(e);
    }
    g_mallocs_fake = 0;
    qb_memory_plan mem = e->mem;
    int tied_ok = !c->tie_word_embeddings || e->lm_head == e->embed + (size_t)s->vocab_start * e->H;
    free(e->layer);
    free(e);
    CHECK(rc == 0, "engine memory plan: %s", qb_last_error());
    CHECK(n_plan_mallocs == 3, "the engine made %d cudaMalloc calls, want 3 (its regions)", n_plan_mallocs);
    for (int r = 0; r < 3; r++) {
        CHECK(mallocs[r] == mem.region_bytes[r], "engine cudaMalloc %d of %zu bytes, the plan's %s region %zu", r,
              mallocs[r], qb_mem_region_name(r), mem.region_bytes[r]);
        CHECK(mallocs[r] == oracle[r], "%s region %zu bytes, the engine before the plan took %zu",
              qb_mem_region_name(r), mallocs[r], oracle[r]);
    }
    CHECK(ic.bad == 0, "%d engine pointers not at their plan offsets", ic.bad);
    CHECK(tied_ok, "tied lm_head does not alias the embedding's vocabulary rows");
    CHECK(tile_rc == 0, "tiling pass: %s", qb_last_error());
    size_t scratch = qb_memory_plan_bytes(&mem, QB_MEM_TILE_SCRATCH);
    CHECK(n_tile_mallocs == (scratch ? 1 : 0) && (!scratch || tile_bytes == scratch),
          "tiling pass made %d cudaMalloc calls (%zu bytes), the plan's temporary scratch is %zu bytes",
          n_tile_mallocs, n_tile_mallocs ? tile_bytes : 0, scratch);
    if (planner_plan) { /* rank 0: the planner saw this very plan */
        CHECK(planner_plan->n_entries == mem.n_entries && planner_plan->total_bytes == mem.total_bytes,
              "planner plan %d entries %zu bytes, engine plan %d entries %zu bytes", planner_plan->n_entries,
              planner_plan->total_bytes, mem.n_entries, mem.total_bytes);
        for (int i = 0; i < mem.n_entries; i++)
            CHECK(planner_plan->entry[i].id == mem.entry[i].id && planner_plan->entry[i].bytes == mem.entry[i].bytes,
                  "entry %d: planner %s %zu, engine %s %zu", i, planner_plan->entry[i].name,
                  planner_plan->entry[i].bytes, mem.entry[i].name, mem.entry[i].bytes);
    }
}

/* The engine refuses a plan larger than the free memory before allocating anything, counting what it allocates
 * after its regions (TP delta, tiling scratch): one byte short is "does not fit", the exact amount fits. */
static void check_refusal(const char *model, qb_quant quant, int tp, int context, int gen, qb_mem_id later_id) {
    char label[160];
    snprintf(label, sizeof label, "refusal %s %s tp%d context %d + %d", model, qb_quant_name(quant), tp, context, gen);
    qb_model_config c;
    bool is_ckpt = false;
    char dir[1024];
    qb_shard_plan s;
    CHECK(qb_model_config_resolve(model, &c, &is_ckpt, dir, sizeof dir) == 0 &&
              qb_model_config_apply_quant(&c, quant, false) == 0 && qb_shard_plan_make(&c, tp, 0, &s) == 0,
          "%s", qb_last_error());
    for (int short_by = 1; short_by >= 0; short_by--) {
        qb_cuda_engine *e = calloc(1, sizeof *e);
        CHECK(e != NULL, "out of memory");
        qb_cuda_engine_shapes(e, &c, &s, context + gen, context);
        e->layer = calloc((size_t)e->layers, sizeof *e->layer);
        e->quant_tiled = e->quant_bits == 4;
        if (tp > 1) e->nc = (struct qb_nccl *)(uintptr_t)0x10;
        qb_memory_plan p;
        qb_memory_plan_input in = {.max_seq_len = context + gen, .max_prompt_len = context,
                                   .quant_tiled = e->quant_tiled, .ipc_oneshot = tp > 1};
        int rc = qb_memory_plan_make(&c, &s, &in, &p);
        size_t later = qb_memory_plan_bytes(&p, later_id);
        g_mallocs_fake = 1;
        g_n_mallocs = 0;
        g_free_bytes = p.region_bytes[0] + p.region_bytes[1] + p.region_bytes[2] + later - (size_t)short_by;
        if (rc == 0 && e->layer) rc = qb_cuda_memory_plan(e);
        int n_mallocs = g_n_mallocs;
        qb_cuda_memory_free(e);
        g_mallocs_fake = 0;
        g_free_bytes = 0;
        free(e->layer);
        free(e);
        const char *msg = qb_last_error();
        CHECK(later > 0, "the plan has no entry %d to allocate later", (int)later_id);
        if (short_by) {
            CHECK(rc == -1 && strncmp(msg, "does not fit:", 13) == 0 && strstr(msg, "TP delta and tiling scratch") &&
                      n_mallocs == 0,
                  "one byte short: rc %d, %d cudaMalloc calls, '%s'", rc, n_mallocs, msg);
        } else {
            CHECK(rc == 0, "the exact amount free: %s", msg);
        }
    }
}
#endif

/* ---- the sweep ---- */

static void check_cell(const qb_model_config *c, int tp, int context, int gen) {
    if (qb_shard_plan_check(c, tp) != 0) {
        g_skipped++;
        return;
    }
    char label[200];
    snprintf(label, sizeof label, "%s %s tp%d context %d + %d", c->name, qb_quant_name(c->quant), tp, context, gen);
    qb_memory_plan planner_plan;
    qb_rank_memory m;
    CHECK(qb_plan_rank_plan(c, tp, context, gen, &planner_plan) == 0, "planner: %s", qb_last_error());
    CHECK(qb_plan_rank_memory(c, tp, context, gen, &m) == 0, "planner: %s", qb_last_error());
    CHECK(m.total_bytes == planner_plan.total_bytes &&
              m.weights_bytes + m.kv_cache_bytes + m.workspace_bytes + m.overhead_bytes == m.total_bytes &&
              m.weights_bytes == planner_plan.region_bytes[QB_MEM_REGION_WEIGHTS] &&
              m.kv_cache_bytes == planner_plan.region_bytes[QB_MEM_REGION_KV],
          "planner numbers (%zu) are not the plan's (%zu)", m.total_bytes, planner_plan.total_bytes);
    int ranks[2] = {0, tp - 1};
    for (int i = 0; i < (tp > 1 ? 2 : 1); i++) {
        qb_shard_plan s;
        CHECK(qb_shard_plan_make(c, tp, ranks[i], &s) == 0, "shard plan: %s", qb_last_error());
        char rank_label[240];
        snprintf(rank_label, sizeof rank_label, "%s rank %d", label, ranks[i]);
        qb_memory_plan_input in = {.max_seq_len = context + gen, .max_prompt_len = context,
                                   .gemm_workspace_bytes = QB_MEMORY_PLAN_GEMM_WORKSPACE_BYTES,
                                   .quant_tiled = c->quant_bits == 4 && c->quant != QB_QUANT_BF16,
                                   .ipc_oneshot = tp > 1,
                                   .tp_exchange = tp > 1 && c->hidden_size <= 8192};
        qb_memory_plan p;
        int failures = g_failures;
        if (qb_memory_plan_make(c, &s, &in, &p) != 0) {
            printf("FAIL %s: %s\n", rank_label, qb_last_error());
            g_failures++;
            continue;
        }
        int chunk = context < QB_MEMORY_PLAN_PREFILL_CHUNK ? context : QB_MEMORY_PLAN_PREFILL_CHUNK;
        check_plan(rank_label, c, &s, &p, context + gen, chunk, chunk == 1);
#ifdef QB_HAVE_CUDA
        check_engine(rank_label, c, &s, context + gen, context, 1, ranks[i] == 0 ? &planner_plan : NULL);
        char off_label[300];
        snprintf(off_label, sizeof off_label, "%s (tiling and exchange off)", rank_label);
        check_engine(off_label, c, &s, context + gen, context, 0, NULL);
#endif
        if (g_failures == failures) g_cases++;
    }
}

static const char *MODELS[] = {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b",
                               "qwen2.5-14b",  "qwen2.5-32b",  "qwen2.5-72b"};
static const qb_quant FORMATS[] = {QB_QUANT_BF16, QB_QUANT_GPTQ_INT8, QB_QUANT_GPTQ_INT4, QB_QUANT_AWQ};
/* (context, generated): one prefill row with a small and a large KV cache (the tiling scratch apart or in the KV
 * cache), a few rows, just past one prefill chunk, the long contexts */
static const int LENGTHS[][2] = {{1, 8}, {1, 32767}, {9, 2048}, {4097, 2048}, {30720, 2048}, {129024, 2048}};

int main(void) {
    for (size_t m = 0; m < sizeof MODELS / sizeof MODELS[0]; m++)
        for (size_t f = 0; f < sizeof FORMATS / sizeof FORMATS[0]; f++) {
            qb_model_config c;
            bool is_ckpt = false;
            char dir[1024];
            if (qb_model_config_resolve(MODELS[m], &c, &is_ckpt, dir, sizeof dir) != 0 ||
                qb_model_config_apply_quant(&c, FORMATS[f], false) != 0) {
                printf("FAIL %s %s: %s\n", MODELS[m], qb_quant_name(FORMATS[f]), qb_last_error());
                g_failures++;
                continue;
            }
            for (int tp = 1; tp <= 8; tp *= 2)
                for (size_t l = 0; l < sizeof LENGTHS / sizeof LENGTHS[0]; l++)
                    check_cell(&c, tp, LENGTHS[l][0], LENGTHS[l][1]);
        }
#ifdef QB_HAVE_CUDA
    const char *against = "against the engine's allocations";
#else
    const char *against = "(CPU-only build: without the engine's allocations)";
#endif
    printf("memory plan: %d rank plans checked %s, %d illegal tp skipped\n", g_cases, against, g_skipped);
#ifdef QB_HAVE_CUDA
    check_refusal("qwen2.5-72b", QB_QUANT_BF16, 8, 129024, 2048, QB_MEM_TP_DELTA);
    check_refusal("qwen2.5-7b", QB_QUANT_GPTQ_INT4, 1, 1, 8, QB_MEM_TILE_SCRATCH);
#endif
    if (g_cases < 300) {
        printf("FAIL: only %d rank plans checked\n", g_cases);
        g_failures++;
    }
    if (g_failures) printf("%d check(s) failed\n", g_failures);
    else printf("memory plan: all checks passed\n");
    return g_failures ? 1 : 0;
}

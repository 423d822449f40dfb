/* backend.h - the engine interface the harness sees; implemented by the CPU reference and by CUDA.
 *
 * The harness never knows which engine runs. A backend holds one rank's shard of the model (weights, KV
 * cache for max_seq_len positions, workspace) and generates greedily. It does all tensor-parallel
 * communication itself through the qb_dist it was given (MPI on the CPU, NCCL on CUDA).
 */
#ifndef QB_ENGINE_BACKEND_H
#define QB_ENGINE_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "comm/dist.h"
#include "engine/engine_options.h"
#include "engine/shard_plan.h"

typedef struct {
    const qb_model_config *cfg;
    const qb_shard_plan *plan;
    qb_dist *dist;
    const char *checkpoint_dir; /* NULL: random weights from weight_seed */
    uint64_t weight_seed;
    int max_seq_len;            /* KV capacity: prompt + generated tokens */
    int max_prompt_len;         /* longest prefill the workspace must hold */
    int threads;                /* CPU backend: worker threads (0 = all cores) */
    qb_engine_options engine;   /* the cell's engine options; "auto" resolved by the engine's choice functions */
    int test_corrupt_argmax;    /* set only by the test build's hooks (bench/test_hooks.h): from the second
                                 * generated token on, emit (argmax + 1) % vocab, as a broken kernel would; the
                                 * validity checks must catch it */
} qb_backend_params;

typedef struct {
    size_t weights_bytes;       /* this rank */
    size_t kv_cache_bytes;
    size_t workspace_bytes;
    size_t peak_allocated_bytes;     /* engine's own accounting (analogue of torch.cuda.max_memory_allocated) */
    size_t device_used_delta_bytes;  /* cudaMemGetInfo before/after (CUDA only; 0 on CPU) */
    size_t device_total_bytes;       /* 0 on CPU */
} qb_memory_stats;

typedef struct {
    double prefill_s;   /* prompt processed and first token chosen (time to first token) */
    double *step_s;     /* caller-provided [n_gen-1]: each later decode step */
    atomic_int *progress_step; /* optional (NULL: none): the engine stores the count of tokens generated so far
                                * after the prefill and after each decode step (qb_progress_store: one relaxed
                                * atomic store, a plain store on x86 and ARM, nothing else, inside the timed
                                * region); bench/progress.h reads it from its thread */
} qb_gen_timing;

/* The engine's progress store (qb_gen_timing.progress_step), a no-op without a counter. */
static inline void qb_progress_store(const qb_gen_timing *t, int generated) {
    if (t && t->progress_step) atomic_store_explicit(t->progress_step, generated, memory_order_relaxed);
}

typedef struct qb_backend qb_backend;
struct qb_backend {
    char name[16];          /* "cpu" | "cuda" */
    char device_name[128];  /* "cpu (N threads)" or the GPU's name */
    char device_uuid[64];   /* GPU UUID or "" */
    /* Reset caches, process the prompt, then produce exactly n_gen tokens greedily (end-of-sequence never
     * stops it). tokens_out[n_gen] holds the generated ids (the first is the prefill's argmax). Returns when
     * all work is done (device synchronised). */
    int (*generate)(qb_backend *b, const int32_t *prompt, int n_prompt, int n_gen,
                    int32_t *tokens_out, qb_gen_timing *timing);
    /* For tests: reset, prefill the prompt, write the full-vocabulary logits of its last position (every
     * rank gets all vocab_size values). */
    int (*prefill_logits)(qb_backend *b, const int32_t *prompt, int n_prompt, float *logits_out);
    void (*memory)(qb_backend *b, qb_memory_stats *m);
    void (*destroy)(qb_backend *b);
    /* What the engine resolved its options to for a cell of context_len input tokens: "key=value;..." (the
     * kernel of each linear family, attention, TP reduction, fusion, layout, PDL, chunk sizes; docs/RESULTS.md). */
    void (*choices)(qb_backend *b, int context_len, char *out, size_t cap);
    /* Optional (NULL: choices is printed): the engine's plan for a cell of context_len input tokens in words, a
     * few lines (qwenbench --explain). */
    void (*explain)(qb_backend *b, int context_len, char *out, size_t cap);
    /* Optional (NULL if absent): measured copy bandwidth of this rank's device in GB/s (bytes read + written
     * per second of a large device-to-device copy), the denominator of the bandwidth floor. */
    double (*copy_bandwidth_gbps)(qb_backend *b);
    /* Versions of what the backend runs on ("" when not applicable): driver, CUDA runtime, NCCL. */
    char driver_version[64];
    char runtime_version[64];
    char nccl_version[64];
    void *impl;
};

typedef int (*qb_backend_create_fn)(const qb_backend_params *p, qb_backend **out);

/* The CPU reference engine (always built). */
int qb_cpu_backend_create(const qb_backend_params *p, qb_backend **out);

/* The CUDA engine, present when built with CUDA (src/cuda/). */
#ifdef QB_HAVE_CUDA
int qb_cuda_backend_create(const qb_backend_params *p, qb_backend **out);
/* 1 when a usable GPU is visible; else 0 with the reason in why. */
int qb_cuda_available(char *why, size_t cap);
/* Total memory of the GPU this local rank uses (device local_rank % visible devices). */
int qb_cuda_device_memory(int local_rank, size_t *total_bytes);
#endif

#endif

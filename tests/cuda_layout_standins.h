/* cuda_layout_standins.h - what test_cuda_quant_layout.c's, test_memory_plan.c's and test_cuda_launch_trace.c's
 * checks see of cuda_layout_standins.c: the host stand-ins for the CUDA runtime and kernels that cuda_memory.c,
 * cuda_weights.c, cuda_quant_tiles.c and cuda_forward.c call, the kernel launches recorded in order (g_calls), a
 * lookup in that trace, cudaMalloc's requests (g_mallocs), and the launch trace as text (every argument of every
 * launch, pointers named by buffer + byte offset).
 */
#ifndef QB_TEST_CUDA_LAYOUT_STANDINS_H
#define QB_TEST_CUDA_LAYOUT_STANDINS_H

#include <stddef.h>

#define QB_CALLS_CAP 8192

typedef struct {
    const char *kernel;
    const void *w; /* the weight matrix read (GEMV / GEMM / dequantization / lookup), else NULL */
    const void *out;
    int m, n, k;
    /* the fused q|k|v and gate|up GEMVs: their input (residual read, tensor-parallel exchange) */
    const void *in_resid, *in_next;
    int in_tp, in_point;
} qb_call;
extern qb_call g_calls[QB_CALLS_CAP];
extern int g_n_calls; /* calls made since the caller last set it to 0 (may exceed QB_CALLS_CAP: only those kept) */

/* cudaMalloc's requested sizes in order, counted since the caller last set g_n_mallocs to 0 (the first
 * QB_MALLOCS_CAP kept). With g_mallocs_fake set nothing is allocated: cudaMalloc hands out distinct fake addresses
 * and cudaFree, the memsets, the copies and the tiling stand-in touch no memory (plans of any size, no GPU). */
#define QB_MALLOCS_CAP 64
extern size_t g_mallocs[QB_MALLOCS_CAP];
extern int g_n_mallocs;
extern int g_mallocs_fake;
/* What cudaMemGetInfo reports free (0: all of its 1 TiB). */
extern size_t g_free_bytes;

/* The calls of kernel `name` in the recorded trace, in order (at most cap kept in out); returns how many. */
int calls_of(const char *name, const qb_call **out, int cap);

/* What qb_nccl_impl says the stand-in NCCL context runs (QB_AR_IPC_ONESHOT unless set). */
extern int standin_nccl_impl;

/* The launch trace as text: while trace_on is set, every recorded launch (and the forward pass's host-to-device
 * copies and state writes) appends one line with all its arguments; a pointer is written as the named buffer that
 * holds it plus the byte offset ("k_cache+4096"), "null", or "unknown" (a pointer into no named buffer). */
extern int trace_on;
void trace_clear(void);                                          /* empties the text and forgets every name */
void trace_name(const char *name, const void *base, size_t bytes); /* bytes 0: up to the next named base */
void trace_span(const void *base, size_t bytes); /* a region that open-ended names (bytes 0) do not run past */
const char *trace_text(void);                                    /* the lines so far */
void trace_note(const char *fmt, ...);                           /* a line of the caller's own */

#endif

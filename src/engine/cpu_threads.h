/* cpu_threads.h - the one way the CPU reference runs work on several threads: split [0, n) into
 * contiguous chunks, one per pthread, and wait for all. Threads are created per call (simple, and cheap
 * next to the work of one matmul or one attention); with threads <= 1 or a small n it runs inline.
 */
#ifndef QB_ENGINE_CPU_THREADS_H
#define QB_ENGINE_CPU_THREADS_H

/* fn(ctx, begin, end) handles items [begin, end). Runs inline when threads <= 1, n is small, or a thread
 * cannot be created (the work is then done by the caller, so the result never depends on threading). */
typedef void (*qb_range_fn)(void *ctx, int begin, int end);
void qb_parallel_for(int n, int threads, qb_range_fn fn, void *ctx);

/* Online cores (at least 1): what threads = 0 means. */
int qb_cpu_count(void);

#endif

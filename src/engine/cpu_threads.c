/* cpu_threads.c - contiguous-chunk parallel loop over pthreads (see cpu_threads.h). */
#include "engine/cpu_threads.h"

#include <pthread.h>
#include <unistd.h>

#define QB_MAX_THREADS 256

typedef struct {
    qb_range_fn fn;
    void *ctx;
    int begin, end;
} qb_chunk;

static void *run_chunk(void *arg) {
    qb_chunk *c = arg;
    c->fn(c->ctx, c->begin, c->end);
    return NULL;
}

void qb_parallel_for(int n, int threads, qb_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (threads > n) threads = n;
    if (threads > QB_MAX_THREADS) threads = QB_MAX_THREADS;
    if (threads <= 1) {
        fn(ctx, 0, n);
        return;
    }
    qb_chunk chunks[QB_MAX_THREADS];
    pthread_t ids[QB_MAX_THREADS];
    int started[QB_MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        chunks[t].fn = fn;
        chunks[t].ctx = ctx;
        chunks[t].begin = (int)((long long)n * t / threads);
        chunks[t].end = (int)((long long)n * (t + 1) / threads);
    }
    /* chunk 0 runs on the calling thread */
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, run_chunk, &chunks[t]) == 0;
    run_chunk(&chunks[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(ids[t], NULL);
        else
            run_chunk(&chunks[t]);
    }
}

int qb_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

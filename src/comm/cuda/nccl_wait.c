/* nccl_wait.c - the device-side watchdog: wait for a stream with a deadline (see qb_nccl_wait in
 * nccl_comm.h).
 *
 * A rank that died or hung leaves its peers inside an NCCL kernel (or the one-shot kernel's spin) forever,
 * and a blocking cudaStreamSynchronize would never return. So the wait polls: cudaStreamQuery for
 * completion, ncclCommGetAsyncError for NCCL's own failures, the one-shot kernel's host-mapped error flag,
 * and the clock. It spins (yielding the core) for the first half second, longer than any decode step, so
 * the step times it ends are not stretched by a sleep, and then sleeps between polls. On failure: ncclCommAbort, one line on stderr naming rank, host and operation, -1.
 */
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include "comm/cuda/nccl_internal.h"
#include "util/error.h"

#define SPIN_SECONDS 0.5
#define SLEEP_NS 200000L

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define PEER_GAVE_UP \
    "a kernel waiting for a peer's data (one-shot all-reduce or residual exchange) gave up: the peer died or hung"

static int ipc_failed(const qb_nccl *c) {
    return (c->ipc_open && c->ipc.error_host && *(volatile int *)c->ipc.error_host != 0) ||
           (c->xchg_open && c->xchg.error_host && *(volatile int *)c->xchg.error_host != 0);
}

static int fail(qb_nccl *c, const char *operation, const char *reason) {
    qb_nccl_abort(c);
    fprintf(stderr, "qwenbench: rank %d on %s: %s: %s; NCCL communicator aborted\n", c->dist->world_rank,
            c->dist->hostname, operation, reason);
    fflush(stderr);
    return qb_errorf("rank %d on %s: %s: %s", c->dist->world_rank, c->dist->hostname, operation, reason);
}

int qb_nccl_wait(qb_nccl *c, cudaStream_t stream, double deadline_s, const char *operation) {
    if (!operation) operation = "device work";
    if (!c || c->aborted) return qb_errorf("%s: the NCCL context is %s", operation, c ? "aborted" : "missing");
    if (deadline_s <= 0) deadline_s = c->dist->deadline_s > 0 ? c->dist->deadline_s : 600.0;
    char reason[512];
    const double start = now_s();
    for (;;) {
        cudaError_t e = cudaStreamQuery(stream);
        if (e == cudaSuccess) {
            if (!ipc_failed(c)) return 0;
            return fail(c, operation, PEER_GAVE_UP);
        }
        if (e != cudaErrorNotReady) {
            snprintf(reason, sizeof reason, "CUDA error %s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
            return fail(c, operation, reason);
        }
        if (c->comm) {
            ncclResult_t async = ncclSuccess;
            ncclResult_t r = ncclCommGetAsyncError(c->comm, &async);
            if (r != ncclSuccess) async = r;
            if (async != ncclSuccess && async != ncclInProgress) {
                const char *last = ncclGetLastError(c->comm);
                snprintf(reason, sizeof reason, "NCCL asynchronous error: %s%s%s", ncclGetErrorString(async),
                         last && last[0] ? ": " : "", last ? last : "");
                return fail(c, operation, reason);
            }
        }
        if (ipc_failed(c))
            return fail(c, operation, PEER_GAVE_UP);
        double waited = now_s() - start;
        if (waited > deadline_s) {
            snprintf(reason, sizeof reason, "did not complete within %g s (a peer rank died or hung)", deadline_s);
            return fail(c, operation, reason);
        }
        if (waited > SPIN_SECONDS) {
            struct timespec pause = {0, SLEEP_NS};
            nanosleep(&pause, NULL);
        } else {
            sched_yield();
        }
    }
}

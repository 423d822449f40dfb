/* watchdog.c - turns a collective that never completes into an aborted job (see watchdog.h, dist.h).
 *
 * A rank that dies is noticed by mpirun itself, which then kills the job; a rank that hangs (a deadlock, a
 * stuck device, a sleeping process) is not, and its peers would wait forever inside MPI or NCCL. So every
 * blocking collective is armed here with its name; the thread sleeps until the deadline of the armed
 * operation and, if an operation is still armed past its deadline, aborts the whole job.
 *
 * Thread safety: qb_dist_init asks for MPI_THREAD_MULTIPLE, so calling MPI_Abort from this thread is allowed
 * by the standard. Should the library grant less, Open MPI 4.1 still handles MPI_Abort from a second thread
 * (it goes straight to the runtime's abort path and does not touch the progress engine), so the watchdog
 * runs anyway; dist.c notes the granted level on stderr in that case.
 * The state is one static struct: there is one watchdog per process, as there is one MPI world.
 */
#include "comm/watchdog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stop;
    bool armed;
    bool idle;               /* the thread waits without a timeout: an arm must wake it */
    char operation[160];
    struct timespec start;   /* CLOCK_MONOTONIC */
    double deadline_s;
    int rank;
    char host[256];
    MPI_Comm world;
} g_wd = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static struct timespec add_seconds(struct timespec t, double s) {
    time_t whole = (time_t)s;
    long nanos = (long)((s - (double)whole) * 1e9);
    t.tv_sec += whole;
    t.tv_nsec += nanos;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec += 1;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static bool reached(struct timespec now, struct timespec when) {
    return now.tv_sec > when.tv_sec || (now.tv_sec == when.tv_sec && now.tv_nsec >= when.tv_nsec);
}

static _Noreturn void fire(const char *operation, double deadline_s) {
    fprintf(stderr,
            "qwenbench: rank %d on %s: %s did not complete within %g s (a peer rank died or hung); aborting\n",
            g_wd.rank, g_wd.host, operation, deadline_s);
    fflush(stderr);
    MPI_Abort(g_wd.world, 1);
    _exit(1); /* MPI_Abort does not return; this is only a guard */
}

static void *watchdog_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&g_wd.mutex);
    while (!g_wd.stop) {
        if (!g_wd.armed) {
            g_wd.idle = true;
            pthread_cond_wait(&g_wd.cond, &g_wd.mutex);
            g_wd.idle = false;
            continue;
        }
        struct timespec deadline = add_seconds(g_wd.start, g_wd.deadline_s), now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (reached(now, deadline)) {
            char operation[sizeof g_wd.operation];
            memcpy(operation, g_wd.operation, sizeof operation);
            double deadline_s = g_wd.deadline_s;
            pthread_mutex_unlock(&g_wd.mutex);
            fire(operation, deadline_s);
        }
        /* woken early (disarm, re-arm, stop) or timed out: the loop re-reads the state either way */
        pthread_cond_timedwait(&g_wd.cond, &g_wd.mutex, &deadline);
    }
    pthread_mutex_unlock(&g_wd.mutex);
    return NULL;
}

int qb_watchdog_start(const qb_dist *d) {
    pthread_mutex_lock(&g_wd.mutex);
    bool running = g_wd.running;
    pthread_mutex_unlock(&g_wd.mutex);
    if (running) return qb_errorf("watchdog: already started");
    g_wd.rank = d->world_rank;
    snprintf(g_wd.host, sizeof g_wd.host, "%s", d->hostname);
    g_wd.world = d->world;
    g_wd.stop = false;
    g_wd.armed = false;

    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0) rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(&g_wd.cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) return qb_errorf("watchdog: condition variable: %s", strerror(rc));
    rc = pthread_create(&g_wd.thread, NULL, watchdog_main, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&g_wd.cond);
        return qb_errorf("watchdog: cannot start the thread: %s", strerror(rc));
    }
    g_wd.running = true;
    return 0;
}

void qb_watchdog_stop(void) {
    pthread_mutex_lock(&g_wd.mutex);
    if (!g_wd.running) {
        pthread_mutex_unlock(&g_wd.mutex);
        return;
    }
    g_wd.stop = true;
    pthread_cond_signal(&g_wd.cond);
    pthread_mutex_unlock(&g_wd.mutex);
    pthread_join(g_wd.thread, NULL);
    pthread_cond_destroy(&g_wd.cond);
    g_wd.running = false;
}

void qb_watchdog_arm(qb_dist *d, const char *operation) {
    pthread_mutex_lock(&g_wd.mutex);
    if (g_wd.running && d->deadline_s > 0) {
        /* Wake the thread only when it would otherwise miss this deadline: when it waits without a timeout,
         * or when the deadline shrank. Otherwise it is already asleep until an earlier deadline (of an
         * earlier arm with the same length) and re-reads the state then: no thread switch per collective,
         * which matters around every per-layer all-reduce of a decode step. */
        bool wake = g_wd.idle || d->deadline_s < g_wd.deadline_s;
        g_wd.deadline_s = d->deadline_s; /* read now: main sets it from --deadline after qb_dist_init */
        snprintf(g_wd.operation, sizeof g_wd.operation, "%s", operation);
        clock_gettime(CLOCK_MONOTONIC, &g_wd.start);
        g_wd.armed = true;
        if (wake) pthread_cond_signal(&g_wd.cond);
    }
    pthread_mutex_unlock(&g_wd.mutex);
}

void qb_watchdog_disarm(qb_dist *d) {
    (void)d;
    pthread_mutex_lock(&g_wd.mutex);
    g_wd.armed = false; /* no signal needed: the thread re-checks at its deadline and then waits */
    pthread_mutex_unlock(&g_wd.mutex);
}

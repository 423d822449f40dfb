/* progress.c - the live progress line's thread and its shared state (see progress.h). */
#include "bench/progress.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define DRAW_INTERVAL_NS 200000000L /* five times a second */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* guards g; the thread draws holding it */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;   /* a stop wakes the thread at once */

static struct {
    pthread_t thread;
    int running, stop, held, drawn;
    /* set by the cell executor (under lock) */
    int cell, cells;
    char label[256];
    qb_progress_phase phase;
    int run_k, run_n, n_gen, run_id;
    double weights_bytes;
    /* the thread's own: where the running tok/s is measured from in the current run */
    int seen_run_id, first_step;
    double first_time;
} g;

/* Stored by the engine (one int per generated token), read by the thread. */
static atomic_int g_step;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int terminal_width(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) return ws.ws_col;
    return 80;
}

/* The step counter and the running speed of the current run ("decode step i/N, R tok/s" or "prefill"). */
static void format_steps(char *out, size_t cap) {
    int step = atomic_load_explicit(&g_step, memory_order_relaxed);
    double t = now_s();
    if (g.seen_run_id != g.run_id || step < g.first_step) {
        g.seen_run_id = g.run_id;
        g.first_step = -1;
    }
    if (step <= 0) { snprintf(out, cap, "prefill"); return; }
    if (g.first_step < 0) {
        g.first_step = step;
        g.first_time = t;
    }
    if (step > g.first_step && t > g.first_time)
        snprintf(out, cap, "decode step %d/%d, %.1f tok/s", step, g.n_gen, (step - g.first_step) / (t - g.first_time));
    else
        snprintf(out, cap, "decode step %d/%d", step, g.n_gen);
}

/* Called with the lock held. The label is cut, never the state, to keep the line within the terminal. */
static void draw(void) {
    char what[160] = "", steps[96];
    switch (g.phase) {
    case QB_PROGRESS_IDLE: snprintf(what, sizeof what, "starting"); break;
    case QB_PROGRESS_LOADING:
        if (g.weights_bytes > 0) snprintf(what, sizeof what, "loading weights (%.1f MiB)", g.weights_bytes / 1048576.0);
        else snprintf(what, sizeof what, "loading weights");
        break;
    case QB_PROGRESS_WARMUP:
    case QB_PROGRESS_TIMED:
        format_steps(steps, sizeof steps);
        snprintf(what, sizeof what, "%s %d/%d, %s", g.phase == QB_PROGRESS_WARMUP ? "warm-up" : "repetition", g.run_k,
                 g.run_n, steps);
        break;
    case QB_PROGRESS_CHECKS: snprintf(what, sizeof what, "checks"); break;
    case QB_PROGRESS_RECORDING: snprintf(what, sizeof what, "recording"); break;
    }
    char head[32];
    snprintf(head, sizeof head, "# cell %d/%d ", g.cell, g.cells);
    /* a line as wide as the terminal would wrap, and "\r" would not reach its start */
    int room = terminal_width() - 1 - (int)strlen(head) - 2 - (int)strlen(what);
    int label_len = (int)strlen(g.label);
    if (room < 0) room = 0;
    if (label_len > room) label_len = room;
    fprintf(stderr, "\r%s%.*s: %s\033[K", head, label_len, g.label, what);
    fflush(stderr);
    g.drawn = 1;
}

static void clear_line(void) {
    if (!g.drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    g.drawn = 0;
}

static void *draw_loop(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g.stop) {
        if (!g.held && g.cells > 0) draw();
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += DRAW_INTERVAL_NS;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&g_wake, &g_lock, &until);
    }
    clear_line();
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

void qb_progress_start(int enabled) {
    if (!enabled || g.running) return;
    /* The thread takes no signal: the stop handlers (bench/stop_signals.h) run on the main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    g.stop = 0;
    g.running = pthread_create(&g.thread, NULL, draw_loop, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void qb_progress_stop(void) {
    if (!g.running) return;
    pthread_mutex_lock(&g_lock);
    g.stop = 1;
    pthread_cond_signal(&g_wake);
    pthread_mutex_unlock(&g_lock);
    pthread_join(g.thread, NULL);
    g.running = 0;
}

void qb_progress_cell(int number, int total, const char *label) {
    if (!g.running) return;
    pthread_mutex_lock(&g_lock);
    g.cell = number;
    g.cells = total;
    snprintf(g.label, sizeof g.label, "%s", label);
    g.phase = QB_PROGRESS_IDLE;
    pthread_mutex_unlock(&g_lock);
}

void qb_progress_loading(double weights_bytes) {
    if (!g.running) return;
    pthread_mutex_lock(&g_lock);
    g.phase = QB_PROGRESS_LOADING;
    g.weights_bytes = weights_bytes;
    pthread_mutex_unlock(&g_lock);
}

void qb_progress_run(qb_progress_phase phase, int k, int n, int n_gen) {
    if (!g.running) return;
    pthread_mutex_lock(&g_lock);
    atomic_store_explicit(&g_step, 0, memory_order_relaxed);
    g.phase = phase;
    g.run_k = k;
    g.run_n = n;
    g.n_gen = n_gen;
    g.run_id++;
    pthread_cond_signal(&g_wake); /* drawn now, before the run's clock starts: even a short run shows */
    pthread_mutex_unlock(&g_lock);
}

void qb_progress_phase_set(qb_progress_phase phase) {
    if (!g.running) return;
    pthread_mutex_lock(&g_lock);
    g.phase = phase;
    pthread_mutex_unlock(&g_lock);
}

atomic_int *qb_progress_step_counter(void) { return g.running ? &g_step : NULL; }

void qb_progress_hold(void) {
    if (!g.running) return;
    pthread_mutex_lock(&g_lock);
    g.held = 1;
    clear_line();
    pthread_mutex_unlock(&g_lock);
}

void qb_progress_release(void) {
    if (!g.running) return;
    pthread_mutex_lock(&g_lock);
    g.held = 0;
    pthread_mutex_unlock(&g_lock);
}

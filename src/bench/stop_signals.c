/* stop_signals.c - the stop handlers and the --resume command printed after a stop (see stop_signals.h). */
#include "bench/stop_signals.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/printable.h"

static volatile sig_atomic_t g_stop_requested; /* any stop signal so far */
static volatile sig_atomic_t g_writes_messages, g_stderr_is_tty;
static volatile sig_atomic_t g_writing;      /* the results file is being written */
static volatile sig_atomic_t g_exit_pending; /* the signal of a second stop that came during a write */

static void say(const char *text) {
    if (!g_writes_messages) return;
    if (g_stderr_is_tty) (void)!write(STDERR_FILENO, "\r\033[K", 4); /* over the live line (bench/progress.h) */
    (void)!write(STDERR_FILENO, text, strlen(text));
}

static void exit_now(int sig) {
    say("qwenbench: stopped at once; the results file holds the cells finished so far\n");
    _exit(sig == SIGINT ? 130 : 143);
}

static void on_stop_signal(int sig) {
    int again = g_stop_requested;
    g_stop_requested = 1;
    if (!again) {
        say("qwenbench: stopping after the current cell (again to stop now; the results file stays intact)\n");
        return;
    }
    if (sig == SIGUSR1) return; /* Slurm's warning, repeated: still after the current cell */
    /* pending first, then the test: a write that ends meanwhile sees it (qb_stop_signals_writing) */
    g_exit_pending = sig;
    if (!g_writing) exit_now(sig);
}

void qb_stop_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

void qb_stop_signals_arm(int writes_messages) {
    g_stderr_is_tty = isatty(STDERR_FILENO);
    g_writes_messages = writes_messages;
}

void qb_stop_signals_writing(int writing) {
    g_writing = writing;
    if (!writing && g_exit_pending) exit_now(g_exit_pending);
}

int qb_stop_requested(void) { return g_stop_requested != 0; }

/* One argument as the shell reads it back: bare when only safe characters, else in single quotes. */
static void put_quoted(FILE *f, const char *arg) {
    int safe = arg[0] != '\0';
    for (const char *p = arg; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *p)) safe = 0;
    if (safe) { fputs(arg, f); return; }
    char shown[4 * 1024];
    qb_printable(arg, shown, sizeof shown); /* control bytes escaped: a terminal never gets them raw */
    fputc('\'', f);
    for (const char *p = shown; *p; p++)
        if (*p == '\'') fputs("'\\''", f);
        else fputc(*p, f);
    fputc('\'', f);
}

/* This process's argv from /proc/self/cmdline (NUL-separated); NULL when unreadable. */
static char *read_cmdline(size_t *len) {
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16;
    char *buf = malloc(cap + 1);
    if (buf) {
        *len = fread(buf, 1, cap, f);
        buf[*len] = '\0';
        if (*len == 0 || *len == cap) { free(buf); buf = NULL; }
    }
    fclose(f);
    return buf;
}

void qb_stop_print_resume(FILE *f, const char *command_line, const char *results_path, int world_size) {
    if (!results_path[0]) {
        fprintf(f, "# stopped early by a signal; nothing was saved (no --out)\n");
        return;
    }
    char shown_path[4 * 1024];
    qb_printable(results_path, shown_path, sizeof shown_path);
    fprintf(f, "# stopped early by a signal: %s holds the cells finished so far; to complete it%s, run:\n# ",
            shown_path, world_size > 1 ? " (under the same launcher and rank count)" : "");
    size_t len = 0;
    char *argv = read_cmdline(&len);
    int has_resume = 0;
    if (argv) {
        int first = 1;
        for (size_t at = 0; at < len; at += strlen(argv + at) + 1) {
            const char *arg = argv + at;
            if (!strcmp(arg, "--overwrite")) continue;
            if (!strcmp(arg, "--resume")) has_resume = 1;
            if (!first) fputc(' ', f);
            put_quoted(f, arg);
            first = 0;
        }
        free(argv);
    } else { /* no /proc: the printable command line the results file records, word by word */
        char words[4096];
        snprintf(words, sizeof words, "%s", command_line);
        int first = 1;
        for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            if (!strcmp(w, "--overwrite")) continue;
            if (!strcmp(w, "--resume")) has_resume = 1;
            fprintf(f, "%s%s", first ? "" : " ", w);
            first = 0;
        }
    }
    fprintf(f, "%s\n", has_resume ? "" : " --resume");
}

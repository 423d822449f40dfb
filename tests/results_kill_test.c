/* results_kill_test.c - a writer killed at any moment leaves a complete results file.
 *
 * Usage: results_kill_test DIR
 * 30 times: a child rewrites DIR/kill.h5 in a loop (write k holds k % 7 + 1 sample cells of variant k,
 * 1..40 KB), and is SIGKILLed after 1..60 ms (varied, so kills land before, during and after renames).
 * Then the file must read back and equal exactly the sample its version attribute names: some complete
 * write, never a mix. The killed child's temporary file is expected and removed.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "results/results_file.h"
#include "results_sample.h"
#include "util/error.h"

static int write_version(const char *path, int k) {
    qb_results_meta meta;
    qb_sample_meta(&meta, k);
    int n = k % 7 + 1;
    qb_cell_record *cells = qb_sample_cells(n, k);
    int rc = qb_results_write(path, &meta, cells, n);
    qb_sample_free(cells, n);
    return rc;
}

static int remove_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    char p[4096];
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (unlink(p) == 0) n++;
        }
    if (d) closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/kill.h5", dir);
    if (write_version(path, 0) != 0) {
        fprintf(stderr, "FAIL: initial write: %s\n", qb_last_error());
        return 1;
    }
    int failures = 0, temps = 0, last_version = 0, versions_seen = 0;
    for (int attempt = 0; attempt < 30; attempt++) {
        fflush(NULL);
        pid_t child = fork();
        if (child == 0) {
            for (int k = 1000 * (attempt + 1);; k++)
                if (write_version(path, k) != 0) _exit(3);
        }
        long ms = 1 + (attempt * 37) % 60;
        nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
        kill(child, SIGKILL);
        int status = 0;
        waitpid(child, &status, 0);
        if (!WIFSIGNALED(status)) {
            fprintf(stderr, "FAIL: attempt %d: the writer stopped by itself (status %d)\n", attempt, status);
            failures++;
        }
        temps += remove_temp_files(dir);

        qb_results_meta meta;
        qb_cell_record *cells = NULL;
        int n = 0, version = -1;
        if (qb_results_read(path, &meta, &cells, &n) != 0) {
            fprintf(stderr, "FAIL: attempt %d (killed after %ld ms): %s\n", attempt, ms, qb_last_error());
            failures++;
            continue;
        }
        if (sscanf(meta.version, "0.1.%d", &version) != 1) version = -1;
        qb_results_meta want_meta;
        qb_sample_meta(&want_meta, version);
        qb_cell_record *want = qb_sample_cells(version % 7 + 1, version);
        if (version < 0 || qb_sample_compare_meta(&want_meta, &meta) ||
            qb_sample_compare_cells(want, version % 7 + 1, cells, n)) {
            fprintf(stderr, "FAIL: attempt %d: the file is not exactly write %d (above)\n", attempt, version);
            failures++;
        }
        if (version != last_version) versions_seen++;
        last_version = version;
        qb_sample_free(want, version % 7 + 1);
        qb_sample_free(cells, n);
    }
    printf("results_kill_test: 30 kills, %d left a temporary file, the file changed %d times: %s\n", temps,
           versions_seen, failures ? "FAILED" : "every read gave one complete write");
    return failures ? 1 : 0;
}

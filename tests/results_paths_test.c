/* results_paths_test.c - hostile output paths (issue 20 items 1 and 2): the results writer never writes
 * through a planted link and never replaces anything but a regular file.
 *
 * Usage: results_paths_test DIR
 *   - symlink race: a child writer waits until links are planted at "<out>.tmp.<child pid>" (the old
 *     temporary name, predictable from the pid) and at the probe's name, pointing at a victim file and at a
 *     name that does not exist yet; then writes twice and checks the target (whose writability probe uses a
 *     temporary name too). The victim must be unchanged, the
 *     dangling link's target must not have been created, the results file must read back exactly, and
 *     no temporary file may be left;
 *   - special targets: a FIFO, a symbolic link to a file outside DIR, a dangling link and /dev/null are
 *     refused by the check (with --overwrite, with --resume, without either) and by the write itself
 *     (a link is refused, not resolved: docs/untrusted-checkpoints.md); nothing of them changes;
 *   - a FIFO appearing at the target after the check is refused at rename time and is still a FIFO.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/results_file.h"
#include "results_sample.h"
#include "util/error.h"

static int g_failures;

static void expect(int ok, const char *what) {
    if (!ok) {
        g_failures++;
        fprintf(stderr, "FAIL: %s\n  last error: %s\n", what, qb_last_error());
    } else {
        printf("  ok: %s\n", what);
    }
}

static void expect_refusal(int rc, const char *needle, const char *what) {
    expect(rc == -1 && strstr(qb_last_error(), needle) != NULL, what);
    if (rc == -1) printf("    message: %s\n", qb_last_error());
}

static int write_sample(const char *path, int n, int variant) {
    qb_results_meta meta;
    qb_sample_meta(&meta, variant);
    qb_cell_record *cells = qb_sample_cells(n, variant);
    int rc = qb_results_write(path, &meta, cells, n);
    qb_sample_free(cells, n);
    return rc;
}

static int reads_back(const char *path, int n, int variant) {
    qb_results_meta want_meta, got_meta;
    qb_sample_meta(&want_meta, variant);
    qb_cell_record *want = qb_sample_cells(n, variant), *got = NULL;
    int n_got = 0, ok = 0;
    if (qb_results_read(path, &got_meta, &got, &n_got) == 0)
        ok = qb_sample_compare_meta(&want_meta, &got_meta) == 0 && qb_sample_compare_cells(want, n, got, n_got) == 0;
    qb_sample_free(want, n);
    qb_sample_free(got, n_got);
    return ok;
}

static const char VICTIM_TEXT[] = "victim file: must never change\n";

static void make_victim(const char *path) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(VICTIM_TEXT, f);
        fclose(f);
    }
}

static int victim_intact(const char *path) {
    char buf[256] = {0};
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(VICTIM_TEXT) && strcmp(buf, VICTIM_TEXT) == 0;
}

static int temp_files_in(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) {
            struct stat st;
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (lstat(p, &st) == 0 && !S_ISLNK(st.st_mode)) n++; /* our planted links do not count */
        }
    if (d) closedir(d);
    return n;
}

static void symlink_race(const char *dir) {
    char out[4096], victim[4200], absent[4200], link[4300];
    snprintf(out, sizeof out, "%s/race.h5", dir);
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    snprintf(absent, sizeof absent, "%s/created_through_link", dir);
    remove(out);
    remove(absent);
    make_victim(victim);
    int go[2];
    if (pipe(go) != 0) {
        expect(0, "pipe");
        return;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1) _exit(3);
        int ok = write_sample(out, 3, 5) == 0 && write_sample(out, 4, 6) == 0 &&
                 qb_results_check_target(out, true, false) == 0;
        if (!ok) fprintf(stderr, "  child: %s\n", qb_last_error());
        _exit(ok ? 0 : 4);
    }
    close(go[0]);
    /* The old writer's names, predictable from the pid: "<out>.tmp.<pid>". */
    snprintf(link, sizeof link, "%s.tmp.%ld", out, (long)child);
    remove(link);
    int planted = symlink(victim, link) == 0;
    snprintf(link, sizeof link, "%s.tmp.%ld.h5", out, (long)child);
    remove(link);
    planted = planted && symlink(absent, link) == 0;
    expect(planted, "links planted at the child's predictable temporary names");
    if (write(go[1], "x", 1) != 1) expect(0, "starting the child");
    close(go[1]);
    int status = 0;
    waitpid(child, &status, 0);
    expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "the writer succeeds with links planted at its old temp names");
    expect(victim_intact(victim), "the file the planted link points at is unchanged");
    struct stat st;
    expect(lstat(absent, &st) != 0, "nothing was created through the dangling planted link");
    expect(lstat(out, &st) == 0 && S_ISREG(st.st_mode), "the results file is a regular file");
    expect(reads_back(out, 4, 6), "the results file holds exactly the last write");
    expect(temp_files_in(dir) == 0, "no temporary file left behind");
}

static void special_targets(const char *dir) {
    char fifo[4096], link[4200], dangling[4200], outside[4200], late[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo.h5", dir);
    snprintf(link, sizeof link, "%s/link.h5", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling.h5", dir);
    snprintf(outside, sizeof outside, "%s/outside/victim.h5", dir);
    char outside_dir[4200];
    snprintf(outside_dir, sizeof outside_dir, "%s/outside", dir);
    mkdir(outside_dir, 0755);
    make_victim(outside);
    remove(fifo);
    remove(link);
    remove(dangling);
    expect(mkfifo(fifo, 0644) == 0, "mkfifo");
    expect(symlink(outside, link) == 0, "a link to a file outside the directory");
    expect(symlink("/nonexistent/qwenbench-target.h5", dangling) == 0, "a dangling link");

    for (int mode = 0; mode < 3; mode++) {
        bool overwrite = mode != 1, resume = mode == 1;
        const char *flags = mode == 0 ? "--overwrite" : mode == 1 ? "--resume" : "no flag";
        char what[300];
        snprintf(what, sizeof what, "a FIFO as target is refused (%s)", flags);
        expect_refusal(qb_results_check_target(fifo, mode == 2 ? false : overwrite, resume),
                       "is a FIFO, not a regular file", what);
        snprintf(what, sizeof what, "a symbolic link as target is refused (%s)", flags);
        expect_refusal(qb_results_check_target(link, mode == 2 ? false : overwrite, resume), "is a symbolic link",
                       what);
        snprintf(what, sizeof what, "a dangling symbolic link as target is refused (%s)", flags);
        expect_refusal(qb_results_check_target(dangling, mode == 2 ? false : overwrite, resume),
                       "is a symbolic link", what);
        snprintf(what, sizeof what, "/dev/null as target is refused (%s)", flags);
        expect_refusal(qb_results_check_target("/dev/null", mode == 2 ? false : overwrite, resume),
                       "is a character device, not a regular file", what);
    }
    expect_refusal(write_sample(fifo, 1, 1), "is a FIFO, not a regular file", "writing over a FIFO is refused");
    expect_refusal(write_sample(link, 1, 1), "is a symbolic link", "writing over a symbolic link is refused");
    struct stat st;
    expect(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is still a FIFO");
    expect(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
    expect(victim_intact(outside), "the link's target is unchanged");
    expect(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "/dev/null is still a character device");
    expect(temp_files_in(dir) == 0, "refused writes leave no temporary file");

    /* The target passes the check, then a FIFO takes its place before the write: refused at rename. */
    snprintf(late, sizeof late, "%s/late.h5", dir);
    remove(late);
    expect(qb_results_check_target(late, true, false) == 0, "a new target passes the check");
    expect(mkfifo(late, 0644) == 0, "mkfifo at the checked target");
    expect_refusal(write_sample(late, 2, 2), "is a FIFO, not a regular file",
                   "a FIFO appearing after the check is refused at rename");
    expect(lstat(late, &st) == 0 && S_ISFIFO(st.st_mode), "that FIFO is still a FIFO");
    expect(temp_files_in(dir) == 0, "the refused write removed its temporary file");

    /* A regular file is still replaced (--overwrite) as before. */
    char plain[4200];
    snprintf(plain, sizeof plain, "%s/plain.h5", dir);
    expect(write_sample(plain, 1, 1) == 0 && qb_results_check_target(plain, true, false) == 0 &&
               write_sample(plain, 2, 3) == 0 && reads_back(plain, 2, 3),
           "a regular file is overwritten");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    symlink_race(argv[1]);
    special_targets(argv[1]);
    printf("%s: %s\n", argv[0], g_failures ? "FAILED" : "all checks passed");
    return g_failures ? 1 : 0;
}

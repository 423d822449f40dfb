/* model_dir.c - open files of a model directory under one containment rule (see model_dir.h). */
#include "io/model_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/printable.h"
#include "io/small_file.h"
#include "util/error.h"

#define REL_MAX 1024

static bool path_is_under(const char *path, const char *root) {
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/') return path[0] == '/' && path[1] != '\0';
    return strncmp(path, root, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

/* path is an entry directly inside dir (dir/name, name without '/'). */
static bool path_is_child(const char *path, const char *dir) {
    return path_is_under(path, dir) && strchr(path + strlen(dir) + 1, '/') == NULL;
}

/* The Hugging Face cache exception: real = <repo>/snapshots/<rev>, <repo> named models--*, with
 * <repo>/blobs a real directory. */
static void find_cache_blobs(qb_model_dir *d) {
    d->blobs[0] = '\0';
    d->cache_note[0] = '\0';
    char repo[PATH_MAX];
    snprintf(repo, sizeof repo, "%s", d->real);
    char *slash = strrchr(repo, '/'); /* repo = <repo>/snapshots */
    if (!slash || slash == repo) return;
    *slash = '\0';
    slash = strrchr(repo, '/');
    if (!slash || strcmp(slash + 1, "snapshots") != 0 || slash == repo) return;
    *slash = '\0'; /* repo = <repo> */
    const char *repo_name = strrchr(repo, '/') + 1;
    if (strncmp(repo_name, "models--", 8) != 0) {
        snprintf(d->cache_note, sizeof d->cache_note, "; the cache layout needs a models--NAME/snapshots/REV directory");
        return;
    }
    char blobs[PATH_MAX + 8];
    snprintf(blobs, sizeof blobs, "%s/blobs", repo);
    struct stat st;
    if (lstat(blobs, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(d->cache_note, sizeof d->cache_note, "; the cache's blobs is %s",
                 lstat(blobs, &st) != 0 ? "missing" : S_ISLNK(st.st_mode) ? "a symlink (refused)" : "not a directory");
        return;
    }
    size_t n = strlen(blobs);
    if (n < sizeof d->blobs) memcpy(d->blobs, blobs, n + 1);
}

static int init_impl(const char *dir, qb_model_dir *out) {
    memset(out, 0, sizeof *out);
    if (strlen(dir) >= sizeof out->shown - REL_MAX - 64) return qb_errorf("%s: path too long", dir);
    snprintf(out->shown, sizeof out->shown, "%s", dir);
    if (!realpath(dir, out->real)) return qb_errorf("%s: cannot resolve the model directory: %s", dir, strerror(errno));
    struct stat st;
    if (stat(out->real, &st) != 0 || !S_ISDIR(st.st_mode)) return qb_errorf("%s: not a directory", dir);
    find_cache_blobs(out);
    return 0;
}

int qb_model_dir_init(const char *dir, qb_model_dir *out) {
    if (init_impl(dir, out) != 0) return qb_error_make_printable();
    return 0;
}

bool qb_model_dir_has(const qb_model_dir *d, const char *rel) {
    char joined[PATH_MAX + REL_MAX + 2];
    struct stat st;
    snprintf(joined, sizeof joined, "%s/%s", d->real, rel);
    return lstat(joined, &st) == 0;
}

static int check_relative(const qb_model_dir *d, const char *rel, const char *what) {
    if (!*rel) return qb_errorf("%s: empty %s file name", d->shown, what);
    if (rel[0] == '/') return qb_errorf("%s: %s \"%.200s\": absolute paths are not allowed", d->shown, what, rel);
    if (strlen(rel) > REL_MAX) return qb_errorf("%s: %s name of %zu bytes is too long", d->shown, what, strlen(rel));
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return qb_errorf("%s: %s \"%.200s\": \"..\" is not allowed in %s paths", d->shown, what, rel, what);
        p += len;
        if (*p == '/') p++;
    }
    return 0;
}

static bool allowed(const qb_model_dir *d, const char *resolved) {
    return path_is_under(resolved, d->real) || (d->blobs[0] && path_is_child(resolved, d->blobs));
}

static int open_impl(const qb_model_dir *d, const char *rel, const char *what, int *fd_out) {
    *fd_out = -1;
    QB_TRY(check_relative(d, rel, what));
    char joined[PATH_MAX + REL_MAX + 2], resolved[PATH_MAX];
    snprintf(joined, sizeof joined, "%s/%s", d->real, rel);
    if (!realpath(joined, resolved)) return qb_errorf("%s/%s: missing %s: %s", d->shown, rel, what, strerror(errno));
    if (!allowed(d, resolved))
        return qb_errorf("%s/%s: resolves to %s, outside the model directory%s", d->shown, rel, resolved, d->cache_note);
    int fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) return qb_errorf("%s/%s: cannot open: %s", d->shown, rel, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return qb_errorf("%s/%s: not a regular file", d->shown, rel);
    }
    /* The file actually opened: a path component swapped for a symlink after realpath shows here. */
    char proc[64], opened[PATH_MAX];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, opened, sizeof opened - 1);
    if (n > 0) {
        opened[n] = '\0';
        if (strcmp(opened, resolved) != 0 || !allowed(d, opened)) {
            close(fd);
            return qb_errorf("%s/%s: changed while being opened (now outside the model directory)", d->shown, rel);
        }
    }
    *fd_out = fd;
    return 0;
}

int qb_model_dir_open(const qb_model_dir *d, const char *rel, const char *what, int *fd) {
    if (open_impl(d, rel, what, fd) != 0) return qb_error_make_printable();
    return 0;
}

int qb_model_dir_read_small(const qb_model_dir *d, const char *rel, const char *what, size_t max_bytes, char **buf,
                            size_t *len) {
    *buf = NULL;
    *len = 0;
    int fd;
    QB_TRY(qb_model_dir_open(d, rel, what, &fd));
    char shown[PATH_MAX + REL_MAX + 2];
    snprintf(shown, sizeof shown, "%s/%s", d->shown, rel);
    if (qb_read_small_fd(fd, shown, max_bytes, buf, len) != 0) return qb_error_make_printable();
    return 0;
}

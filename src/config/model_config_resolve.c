/* model_config_resolve.c - find a model's config: a checkpoint directory or a shipped preset (see
 * model_config.h); quantize_config.json beside config.json; a quantized checkpoint's padded intermediate size.
 *
 * Presets are <dir>/<name>.json with dir = $QWENBENCH_CONFIG_DIR, else QB_SOURCE_DIR "/configs/models".
 * A preset name is restricted to [A-Za-z0-9._-] (no path separators), so it cannot name a file elsewhere.
 * Config files are read under the model directory's containment rule (io/model_dir.h), like the weights; a
 * checkpoint's name (its directory's base name) is stored escaped (io/printable.h), as it comes from a path.
 */
#include "config/model_config.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/model_config_internal.h"
#include "io/model_dir.h"
#include "io/printable.h"
#include "io/checkpoint.h"
#include "model/model_family.h"
#include "util/error.h"

#ifndef QB_SOURCE_DIR
#define QB_SOURCE_DIR "."
#endif

int qb_model_config_apply_quant(qb_model_config *c, qb_quant q, bool is_checkpoint) {
    if ((int)q < 0 || q >= QB_QUANT_COUNT) return qb_errorf("--quant: unknown quantization %d", (int)q);
    if (is_checkpoint || c->quant != QB_QUANT_BF16) {
        if (c->quant != q)
            return qb_errorf("--quant %s: the checkpoint %s is %s (its own quantization decides)", qb_quant_name(q),
                             c->name, qb_quant_name(c->quant));
        return 0;
    }
    if (q == QB_QUANT_BF16) return 0;
    const qb_weight_format_info *f = qb_format_info(q);
    c->quant = q;
    c->quant_bits = f->bits;
    c->group_size = f->default_group_size;
    c->desc_act = false;
    c->sym = f->symmetric;
    if (c->hidden_size == 8192 && c->intermediate_size == 29568) c->intermediate_size = 29696; /* 72B releases */
    if (qb_model_config_validate(c, c->name) != 0)
        return qb_error_prefix("--quant %s: %s has no such release", qb_quant_name(q), c->name);
    return 0;
}

/* Quantized checkpoints may pad intermediate_size beyond config.json (the 72B releases: 29696 instead of
 * 29568, so that row-parallel slices hold whole groups): take it from the shape of layer 0's gate_proj scales.
 * No-op for bf16 configs; a directory that cannot be opened is left to the weight loader to report. */
static int checkpoint_intermediate(const char *dir, qb_model_config *c) {
    if (c->quant == QB_QUANT_BF16 || c->group_size <= 0) return 0;
    qb_checkpoint ck;
    if (qb_checkpoint_open(dir, &ck) != 0) { /* not loadable: the loader reports why, when weights are loaded */
        qb_error_clear();
        return 0;
    }
    int rc = 0;
    char name[128];
    qb_linear_tensor_name(name, sizeof name, 0, QB_LIN_GATE, "scales");
    const qb_ck_entry *e = qb_checkpoint_find(&ck, name);
    if (e && e->tensor->ndim == 2) {
        uint64_t I = e->tensor->shape[1];
        if (I != (uint64_t)c->intermediate_size) {
            if (I > (uint64_t)c->intermediate_size && I <= (uint64_t)c->intermediate_size + 4096 &&
                I % (uint64_t)c->group_size == 0)
                c->intermediate_size = (int)I; /* publisher's padding */
            else
                rc = qb_errorf("%s: %s has %llu columns but intermediate_size is %d "
                               "(only padding up to a multiple of group_size %d is accepted)", dir, name,
                               (unsigned long long)I, c->intermediate_size, c->group_size);
        }
    }
    qb_checkpoint_close(&ck);
    return rc == 0 ? 0 : qb_error_make_printable();
}

/* quantize_config.json beside config.json (older AutoGPTQ repos), used when config.json has no
 * quantization_config; read under the directory's containment rule like every model file. */
static int load_quantize_config(const qb_model_dir *md, qb_model_config *c) {
    if (!qb_model_dir_has(md, "quantize_config.json")) return 0; /* absent: plain checkpoint */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/quantize_config.json", md->shown);
    char *buf;
    size_t len;
    QB_TRY(qb_model_dir_read_small(md, "quantize_config.json", "config", QB_MAX_CONFIG_BYTES, &buf, &len));
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!root) return qb_errorf("%s: invalid JSON at line %d column %d: %s", path, jerr.line, jerr.column, jerr.text);
    int rc = qb_model_config_parse_quant(root, path, "quantize_config", c);
    json_decref(root);
    if (rc != 0) return -1;
    return qb_model_config_validate(c, path);
}

/* The config file `file` of directory md (and quantize_config.json beside it). */
static int load_from_dir(const qb_model_dir *md, const char *file, qb_model_config *out) {
    char *buf;
    size_t len;
    char origin[PATH_MAX + 160];
    snprintf(origin, sizeof origin, "%s/%s", md->shown, file);
    QB_TRY(qb_model_dir_read_small(md, file, "config", QB_MAX_CONFIG_BYTES, &buf, &len));
    int rc = qb_model_config_parse(buf, len, origin, out);
    free(buf);
    if (rc != 0) return -1;
    if (out->quant == QB_QUANT_BF16) QB_TRY(load_quantize_config(md, out));
    return 0;
}

static int load_file_impl(const char *path, qb_model_config *out) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *file = slash ? slash + 1 : path;
    if (strlen(path) >= sizeof dir || strlen(file) > 128) return qb_errorf("%s: path too long", path);
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(path, &st) != 0) return qb_errorf("%s: cannot open: %s", path, strerror(errno));
    qb_model_dir md;
    QB_TRY(qb_model_dir_init(dir, &md));
    return load_from_dir(&md, file, out);
}

static bool is_directory(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool valid_preset_name(const char *s) {
    if (!*s || *s == '.' || strlen(s) > 100) return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "a, b, c" of the *.json presets in dir (sorted), or "none". */
static void list_presets(const char *dir, char *buf, size_t cap) {
    snprintf(buf, cap, "none");
    DIR *d = opendir(dir);
    if (!d) return;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0 && e->d_name[0] != '.') {
            names[n] = strndup(e->d_name, l - 5);
            if (names[n]) n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && used + (size_t)w < cap) used += (size_t)w;
        free(names[i]);
    }
    if (n == 0) snprintf(buf, cap, "none");
}

static int resolve_impl(const char *model, qb_model_config *out, bool *is_checkpoint, char *dir_out,
                            size_t dir_cap) {
    char path[4096];
    if (!model || !*model) return qb_errorf("--model: empty (a preset name or a checkpoint directory)");
    if (dir_out && dir_cap) dir_out[0] = '\0';
    if (is_directory(model)) {
        qb_model_dir md;
        QB_TRY(qb_model_dir_init(model, &md));
        if (!qb_model_dir_has(&md, "config.json")) return qb_errorf("%s: no config.json in this directory", model);
        QB_TRY(load_from_dir(&md, "config.json", out));
        /* a quantized release may pad intermediate_size beyond config.json (72B: 29696): the shapes decide */
        QB_TRY(checkpoint_intermediate(model, out));
        /* name = base name of the directory, trailing slashes ignored */
        size_t len = strlen(model);
        while (len > 1 && model[len - 1] == '/') len--;
        size_t start = len;
        while (start > 0 && model[start - 1] != '/') start--;
        char base[sizeof out->name];
        snprintf(base, sizeof base, "%.*s", (int)(len - start), model + start);
        qb_printable(base, out->name, sizeof out->name); /* shown and stored escaped: it comes from a path */
        if (is_checkpoint) *is_checkpoint = true;
        if (dir_out && dir_cap) {
            if (strlen(model) >= dir_cap) return qb_errorf("%s: path too long", model);
            snprintf(dir_out, dir_cap, "%s", model);
        }
        return 0;
    }
    const char *env = getenv("QWENBENCH_CONFIG_DIR");
    const char *dir = env && *env ? env : QB_SOURCE_DIR "/configs/models";
    char available[2048];
    if (!valid_preset_name(model)) {
        list_presets(dir, available, sizeof available);
        return qb_errorf("--model: \"%.200s\" is neither a checkpoint directory nor a preset (presets in %s: %s)",
                         model, dir, available);
    }
    int n = snprintf(path, sizeof path, "%s/%s.json", dir, model);
    if (n < 0 || (size_t)n >= sizeof path) return qb_errorf("%s: path too long", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        list_presets(dir, available, sizeof available);
        return qb_errorf("--model: unknown model \"%s\" (not a directory; presets in %s: %s)", model, dir, available);
    }
    QB_TRY(qb_model_config_load_file(path, out));
    snprintf(out->name, sizeof out->name, "%s", model);
    if (is_checkpoint) *is_checkpoint = false;
    return 0;
}

int qb_model_config_load_file(const char *path, qb_model_config *out) {
    if (load_file_impl(path, out) != 0) return qb_error_make_printable();
    return 0;
}

int qb_model_config_resolve(const char *model, qb_model_config *out, bool *is_checkpoint, char *dir_out,
                            size_t dir_cap) {
    if (resolve_impl(model, out, is_checkpoint, dir_out, dir_cap) != 0) return qb_error_make_printable();
    return 0;
}

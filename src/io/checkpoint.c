/* checkpoint.c - open and validate a model directory (single file or index + shards); see checkpoint.h.
 * The slice readers are in checkpoint_read.c.
 */
#include "io/checkpoint.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/model_dir.h"
#include "io/printable.h"
#include "util/error.h"

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const qb_ck_entry *)a)->name, ((const qb_ck_entry *)b)->name);
}

/* One model file (index-relative name rel) opened under the directory's containment rule (io/model_dir.h)
 * and validated as safetensors. */
static int open_model_file(const qb_model_dir *md, const char *rel, qb_st_file *out) {
    int fd;
    char shown[PATH_MAX + 1100];
    QB_TRY(qb_model_dir_open(md, rel, "shard", &fd));
    snprintf(shown, sizeof shown, "%s/%s", md->shown, rel);
    return qb_st_open_fd(fd, shown, out);
}

static int open_single(const char *dir, const qb_model_dir *md, qb_checkpoint *ck) {
    ck->files = calloc(1, sizeof *ck->files);
    if (!ck->files) return qb_errorf("%s: out of memory", dir);
    QB_TRY(open_model_file(md, "model.safetensors", &ck->files[0]));
    ck->n_files = 1;
    const qb_st_file *f = &ck->files[0];
    ck->entries = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *ck->entries);
    if (!ck->entries) return qb_errorf("%s: out of memory", dir);
    for (size_t i = 0; i < f->n_tensors; i++) {
        ck->entries[i].name = f->tensors[i].name;
        ck->entries[i].file = f;
        ck->entries[i].tensor = &f->tensors[i];
    }
    ck->n_entries = f->n_tensors; /* already sorted by name */
    return 0;
}

typedef struct {
    const char *tensor;
    size_t shard; /* index into the sorted shard list */
} map_item;

static int cmp_map(const void *a, const void *b) {
    return strcmp(((const map_item *)a)->tensor, ((const map_item *)b)->tensor);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Index + shards. All work is on validated, bounded data: the index is at most QB_CK_MAX_INDEX_BYTES. */
static int open_sharded(const qb_model_dir *md, const char *index_path, qb_checkpoint *ck) {
    char *text = NULL;
    size_t len;
    json_t *root = NULL;
    map_item *map = NULL;
    const char **shards = NULL;
    int rc = -1;
    QB_TRY(qb_model_dir_read_small(md, "model.safetensors.index.json", "index", QB_CK_MAX_INDEX_BYTES, &text, &len));
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) {
        qb_errorf("%s: invalid JSON at line %d column %d: %s", index_path, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(root)) {
        qb_errorf("%s: top level must be a JSON object", index_path);
        goto done;
    }
    if (!json_is_object(wm)) {
        qb_errorf("%s: weight_map: %s", index_path, wm ? "must be an object" : "missing");
        goto done;
    }
    json_t *meta = json_object_get(root, "metadata");
    if (meta && !json_is_null(meta) && !json_is_object(meta)) {
        qb_errorf("%s: metadata: must be an object", index_path);
        goto done;
    }
    size_t n = json_object_size(wm);
    map = calloc(n ? n : 1, sizeof *map);
    shards = calloc(n ? n : 1, sizeof *shards);
    if (!map || !shards) {
        qb_errorf("%s: out of memory", index_path);
        goto done;
    }
    size_t i = 0, n_shards = 0;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        if (!json_is_string(v)) {
            qb_errorf("%s: weight_map: \"%.200s\": shard name must be a string", index_path, key);
            goto done;
        }
        map[i].tensor = key;
        shards[i] = json_string_value(v);
        i++;
    }
    /* distinct shard names, sorted */
    const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        qb_errorf("%s: out of memory", index_path);
        goto done;
    }
    memcpy(sorted, shards, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_cstr);
    for (size_t k = 0; k < n; k++)
        if (n_shards == 0 || strcmp(sorted[n_shards - 1], sorted[k]) != 0) sorted[n_shards++] = sorted[k];
    for (size_t k = 0; k < n; k++) {
        const char **hit = bsearch(&shards[k], sorted, n_shards, sizeof *sorted, cmp_cstr);
        map[k].shard = (size_t)(hit - sorted);
    }
    free(shards);
    shards = sorted;
    if (n_shards > QB_CK_MAX_SHARDS) {
        qb_errorf("%s: %zu shard files, more than the limit %d", index_path, n_shards, QB_CK_MAX_SHARDS);
        goto done;
    }
    ck->files = calloc(n_shards ? n_shards : 1, sizeof *ck->files);
    if (!ck->files) {
        qb_errorf("%s: out of memory", index_path);
        goto done;
    }
    for (size_t s = 0; s < n_shards; s++) {
        if (open_model_file(md, shards[s], &ck->files[s]) != 0) goto done;
        ck->n_files = s + 1;
    }
    qsort(map, n, sizeof *map, cmp_map);
    /* every mapped tensor is in its shard */
    ck->entries = calloc(n ? n : 1, sizeof *ck->entries);
    if (!ck->entries) {
        qb_errorf("%s: out of memory", index_path);
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        const qb_st_file *f = &ck->files[map[k].shard];
        const qb_st_tensor *t = qb_st_find(f, map[k].tensor);
        if (!t) {
            qb_errorf("%s: tensor \"%.200s\": the index maps it to this shard, which does not contain it", f->origin,
                      map[k].tensor);
            goto done;
        }
        ck->entries[k].name = t->name;
        ck->entries[k].file = f;
        ck->entries[k].tensor = t;
    }
    ck->n_entries = n;
    /* every shard tensor is mapped to that shard (catches a tensor in two shards, or unlisted) */
    for (size_t s = 0; s < ck->n_files; s++) {
        const qb_st_file *f = &ck->files[s];
        for (size_t k = 0; k < f->n_tensors; k++) {
            qb_ck_entry *e = qb_checkpoint_find(ck, f->tensors[k].name);
            if (!e) {
                qb_errorf("%s: tensor \"%.200s\" is not listed in model.safetensors.index.json", f->origin,
                          f->tensors[k].name);
                goto done;
            }
            if (e->file != f) {
                qb_errorf("%s: tensor \"%.200s\" is in two shards (the index maps it to %s)", f->origin,
                          f->tensors[k].name, e->file->origin);
                goto done;
            }
        }
    }
    rc = 0;
done:
    free(shards);
    free(map);
    json_decref(root); /* entry names point into the shard files, not into the JSON */
    return rc;
}

static int open_impl(const char *dir, qb_checkpoint *out) {
    memset(out, 0, sizeof *out);
    if (strlen(dir) >= sizeof out->dir - 64) return qb_errorf("%s: path too long", dir);
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    qb_model_dir md;
    QB_TRY(qb_model_dir_init(dir, &md));
    char index_path[PATH_MAX + 64];
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    int rc;
    if (qb_model_dir_has(&md, "model.safetensors.index.json")) {
        rc = open_sharded(&md, index_path, out);
    } else if (qb_model_dir_has(&md, "model.safetensors")) {
        rc = open_single(dir, &md, out);
    } else {
        return qb_errorf("%s: no model.safetensors or model.safetensors.index.json in this directory", dir);
    }
    if (rc != 0) qb_checkpoint_close(out);
    return rc;
}

void qb_checkpoint_close(qb_checkpoint *ck) {
    for (size_t i = 0; i < ck->n_files; i++) qb_st_close(&ck->files[i]);
    free(ck->files);
    free(ck->entries);
    memset(ck, 0, sizeof *ck);
}

qb_ck_entry *qb_checkpoint_find(qb_checkpoint *ck, const char *name) {
    if (ck->n_entries == 0) return NULL;
    qb_ck_entry key = {.name = name};
    return bsearch(&key, ck->entries, ck->n_entries, sizeof key, cmp_entry);
}

size_t qb_checkpoint_unused(const qb_checkpoint *ck, const char **names, size_t cap) {
    size_t count = 0;
    for (size_t i = 0; i < ck->n_entries; i++) {
        if (ck->entries[i].used) continue;
        if (count < cap) names[count] = ck->entries[i].name;
        count++;
    }
    return count;
}

int qb_checkpoint_open(const char *dir, qb_checkpoint *out) {
    if (open_impl(dir, out) != 0) return qb_error_make_printable();
    return 0;
}

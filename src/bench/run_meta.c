/* run_meta.c - results-file metadata: settings JSON, versions, hosts, devices (see run_meta.h). */
#include "bench/run_meta.h"

#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ; /* POSIX */
#include <time.h>

#include "util/error.h"
#include "util/str.h"

static void iso_now(char *buf, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void qb_run_meta_stamp_end(qb_results_meta *meta) { iso_now(meta->end_time, sizeof meta->end_time); }

static int settings_json(const qb_runner *r, const qb_cell_spec *cells, const char **names, int n, char *out,
                         size_t cap) {
    const qb_options *o = r->opt;
    json_t *root = json_object(), *list = json_array();
    if (!root || !list) return qb_errorf("out of memory building settings");
    char prompt[64];
    if (o->prompt_mode == QB_PROMPT_REPEAT) snprintf(prompt, sizeof prompt, "repeat:%d", (int)o->prompt_repeat_id);
    else snprintf(prompt, sizeof prompt, "random");
    json_object_set_new(root, "backend", json_string(r->backend_name));
    json_object_set_new(root, "generate_length", json_integer(o->generate_length));
    json_object_set_new(root, "repetitions", json_integer(o->repetitions));
    json_object_set_new(root, "warmup", json_integer(o->warmup));
    json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(root, "prompt", json_string(prompt));
    json_object_set_new(root, "tp", json_integer(o->tp)); /* 0: planned per cell */
    json_object_set_new(root, "world_size", json_integer(r->dist->world_size));
    /* named only when packed, so that files of the serial schedule keep the settings they always had */
    if (o->schedule == QB_SCHEDULE_PACKED) json_object_set_new(root, "schedule", json_string("packed"));
    if (o->interference[0]) json_object_set_new(root, "interference", json_string(o->interference));
    json_object_set_new(root, "build_commit", json_string(QB_GIT_COMMIT));
    /* Foreign variables that change what NCCL and the CUDA runtime do (qwenbench's own choices are options,
     * recorded per cell): the same build runs other code under them, so they are part of the settings. */
    static const char *const engine_vars[] = {"NCCL_", "CUDA_"};
    /* labels and places, not settings: a container's versions, where CUDA is installed, which GPUs a job sees */
    static const char *const not_settings[] = {"NCCL_VERSION=", "CUDA_VERSION=", "CUDA_HOME=", "CUDA_PATH=",
                                               "CUDA_VISIBLE_DEVICES="};
    json_t *env = json_object();
    for (char **e = environ; env && e && *e; e++) {
        const char *eq = strchr(*e, '=');
        int known = 0;
        for (size_t v = 0; v < sizeof engine_vars / sizeof *engine_vars; v++)
            known |= strncmp(*e, engine_vars[v], strlen(engine_vars[v])) == 0;
        for (size_t v = 0; v < sizeof not_settings / sizeof *not_settings; v++)
            known &= strncmp(*e, not_settings[v], strlen(not_settings[v])) != 0;
        if (!eq || !known) continue;
        char name[128];
        size_t len = (size_t)(eq - *e) < sizeof name - 1 ? (size_t)(eq - *e) : sizeof name - 1;
        memcpy(name, *e, len);
        name[len] = '\0';
        json_object_set_new(env, name, json_string(eq + 1));
    }
    if (env) json_object_set_new(root, "environment", env);
    if (r->hooks && r->hooks->description[0]) json_object_set_new(root, "test_hooks", json_string(r->hooks->description));
    for (int i = 0; i < n; i++) {
        char options[256];
        qb_engine_options_format(&cells[i].engine, options, sizeof options);
        json_t *c = json_pack("[ssis]", names[i], qb_quant_name(cells[i].quant), cells[i].context_len, options);
        /* a sweep entry's own "tp" (0: auto) is part of the cell, so that --resume refuses a file made with
         * another; named only then, so that files without one keep the settings they always had */
        if (c && cells[i].own_tp) json_array_append_new(c, json_integer(cells[i].tp));
        if (c) json_array_append_new(list, c);
    }
    json_object_set_new(root, "cells", list);
    char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!s) return qb_errorf("out of memory building settings");
    if (strlen(s) >= cap) {
        free(s);
        return qb_errorf("the sweep's settings are longer than %zu bytes", cap - 1);
    }
    strcpy(out, s);
    free(s);
    return 0;
}

int qb_run_meta_init(const qb_runner *r, const qb_cell_spec *cells, const char **names, int n_cells,
                     qb_results_meta *meta) {
    qb_dist *d = r->dist;
    memset(meta, 0, sizeof *meta);
    char host[64];
    qb_copy_str(host, sizeof host, d->hostname);
    char *all = d->world_rank == 0 ? calloc((size_t)d->world_size, sizeof host) : NULL;
    if (d->world_rank == 0 && !all) return qb_errorf("out of memory gathering host names");
    if (qb_dist_gather(d, host, sizeof host, all) != 0) { free(all); return -1; }
    if (d->world_rank != 0) return 0;

    size_t k = 0;
    for (int i = 0; i < d->world_size && k < sizeof meta->hosts; i++)
        k += (size_t)snprintf(meta->hosts + k, sizeof meta->hosts - k, "%s%s", i ? "," : "", all + (size_t)i * sizeof host);
    free(all);
    snprintf(meta->version, sizeof meta->version, "%s", QB_VERSION);
    snprintf(meta->build_commit, sizeof meta->build_commit, "%s", QB_GIT_COMMIT);
    snprintf(meta->build_type, sizeof meta->build_type, "%s", QB_BUILD_TYPE);
    snprintf(meta->command_line, sizeof meta->command_line, "%s", r->command_line);
    iso_now(meta->start_time, sizeof meta->start_time);
    snprintf(meta->end_time, sizeof meta->end_time, "%s", meta->start_time);
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    char *nl = strchr(mpi, '\n');
    if (nl) *nl = '\0';
    snprintf(meta->mpi_version, sizeof meta->mpi_version, "%s", mpi);
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(meta->hdf5_version, sizeof meta->hdf5_version, "%u.%u.%u", maj, min, rel);
    snprintf(meta->devices_json, sizeof meta->devices_json, "[]");
    return settings_json(r, cells, names, n_cells, meta->settings_json, sizeof meta->settings_json);
}

/* Devices: the ranks that ran a group, one object each; a later group with more ranks replaces the list
 * (with fewer GPUs per cell than ranks, the first groups may leave some ranks idle). The copy bandwidth is
 * measured once, by rank 0's engine as soon as it has one. */
void qb_run_meta_add_devices(qb_results_meta *meta, const qb_cell_group *g) {
    if (!g->ranks) return;
    json_t *list = json_array();
    for (int i = 0; i < g->n_ranks; i++) {
        const qb_rank_summary *s = &g->ranks[i];
        if (!s->device[0]) continue; /* idle in this group, or its engine was not created */
        json_array_append_new(list, json_pack("{sissssss}", "rank", s->rank, "host", s->host, "name", s->device,
                                              "uuid", s->uuid));
    }
    json_t *old = json_loads(meta->devices_json, 0, NULL);
    size_t had = old ? json_array_size(old) : 0;
    json_decref(old);
    if (json_array_size(list) > had) {
        char *txt = json_dumps(list, JSON_COMPACT);
        if (txt && strlen(txt) < sizeof meta->devices_json) strcpy(meta->devices_json, txt);
        free(txt);
    }
    json_decref(list);
    if (g->backend && meta->copy_bandwidth_gbps <= 0) {
        snprintf(meta->driver_version, sizeof meta->driver_version, "%s", g->backend->driver_version);
        snprintf(meta->cuda_version, sizeof meta->cuda_version, "%s", g->backend->runtime_version);
        snprintf(meta->nccl_version, sizeof meta->nccl_version, "%s", g->backend->nccl_version);
        meta->copy_bandwidth_gbps = g->backend->copy_bandwidth_gbps ? g->backend->copy_bandwidth_gbps(g->backend)
                                                                    : qb_host_copy_bandwidth_gbps();
    }
}

void qb_run_meta_merge_devices(qb_results_meta *meta, const qb_rank_summary *ranks, int n) {
    json_t *list = json_loads(meta->devices_json, 0, NULL);
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_array();
    }
    int changed = 0;
    for (int i = 0; list && i < n; i++) {
        const qb_rank_summary *s = &ranks[i];
        if (!s->device[0]) continue;
        size_t at = json_array_size(list), j; /* sorted by rank: insert before the first larger one */
        json_t *item;
        int known = 0;
        json_array_foreach(list, j, item) {
            json_int_t rank = json_integer_value(json_object_get(item, "rank"));
            if (rank == s->rank) { known = 1; break; }
            if (rank > s->rank && at == json_array_size(list)) at = j;
        }
        if (known) continue;
        char host[sizeof s->host + 1], device[sizeof s->device + 1], uuid[sizeof s->uuid + 1];
        qb_copy_str(host, sizeof host, s->host);
        qb_copy_str(device, sizeof device, s->device);
        qb_copy_str(uuid, sizeof uuid, s->uuid);
        json_array_insert_new(list, at, json_pack("{sissssss}", "rank", s->rank, "host", host, "name", device,
                                                  "uuid", uuid));
        changed = 1;
    }
    char *txt = changed ? json_dumps(list, JSON_COMPACT) : NULL;
    if (txt && strlen(txt) < sizeof meta->devices_json) strcpy(meta->devices_json, txt);
    free(txt);
    json_decref(list);
}

double qb_host_copy_bandwidth_gbps(void) {
    const size_t bytes = (size_t)256 << 20;
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) { free(a); free(b); return 0.0; }
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 0.0;
    for (int it = 0; it < 5; it++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        memcpy(b, a, bytes);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        double gbps = 2.0 * (double)bytes / s / 1e9;
        if (gbps > best) best = gbps;
        a[it] = b[bytes - 1 - (size_t)it]; /* keep the copies observable */
    }
    free(a);
    free(b);
    return best;
}

/* The settings JSON alone, without the collective part of qb_run_meta_init (bench/resume_check.c). */
int qb_run_meta_settings_json(const qb_runner *r, const qb_cell_spec *cells, const char **names, int n_cells,
                              char *out, size_t cap) {
    return settings_json(r, cells, names, n_cells, out, cap);
}

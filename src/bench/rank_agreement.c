/* rank_agreement.c - fingerprints of what a rank is about to run, compared with rank 0's (see rank_agreement.h). */
#include "bench/rank_agreement.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/printable.h"
#include "util/error.h"
#include "util/str.h"

uint64_t qb_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t text_digest(const char *s) { return qb_fnv1a64(QB_FNV1A64_OFFSET, s, strlen(s)); }

void qb_fingerprint_init(qb_fingerprint *f) {
    memset(f, 0, sizeof *f);
    f->v.valid = 1;
}

static void add(qb_fingerprint *f, const char *section, const char *name, qb_fingerprint_kind kind, uint64_t value) {
    if (f->v.n >= QB_FINGERPRINT_FIELDS) return; /* a programming error; the unit test counts the fields */
    int i = f->v.n++;
    f->section[i] = section;
    f->name[i] = name;
    f->kind[i] = kind;
    f->v.value[i] = value;
}

static void add_int(qb_fingerprint *f, const char *section, const char *name, int64_t value) {
    add(f, section, name, QB_FP_INT, (uint64_t)value);
}

static void add_real(qb_fingerprint *f, const char *section, const char *name, double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    add(f, section, name, QB_FP_REAL, bits);
}

void qb_fingerprint_add_options(qb_fingerprint *f, const qb_options *o, const char *backend_name, int n_cells) {
    add(f, "build", "qwenbench version and commit", QB_FP_TEXT, text_digest(QB_VERSION " " QB_GIT_COMMIT));
    add(f, "options", "engine (--backend)", QB_FP_TEXT, text_digest(backend_name));
    add_int(f, "options", "number of cells (--context-lengths, --sweep)", n_cells);
    add_int(f, "options", "--generate-length", o->generate_length);
    add_int(f, "options", "--repetitions", o->repetitions);
    add_int(f, "options", "--warmup", o->warmup);
    add_int(f, "options", "--seed", (int64_t)o->seed);
    add_int(f, "options", "--prompt (mode)", o->prompt_mode);
    add_int(f, "options", "--prompt (repeat id)", o->prompt_mode == QB_PROMPT_REPEAT ? o->prompt_repeat_id : 0);
    add_int(f, "options", "--tp", o->tp);
    add_int(f, "options", "--check (steps)", o->check_steps);
    add(f, "options", "--expect-tokens (given)", QB_FP_BOOL, o->expect_tokens[0] != '\0');
    add(f, "options", "--rope-scaling", QB_FP_TEXT, text_digest(o->rope_scaling));
    add(f, "options", "--resume", QB_FP_BOOL, o->resume);
}

void qb_fingerprint_add_config(qb_fingerprint *f, const qb_model_config *c) {
    add_int(f, "config", "vocab_size", c->vocab_size);
    add_int(f, "config", "hidden_size", c->hidden_size);
    add_int(f, "config", "intermediate_size", c->intermediate_size);
    add_int(f, "config", "num_hidden_layers", c->num_layers);
    add_int(f, "config", "num_attention_heads", c->num_heads);
    add_int(f, "config", "num_key_value_heads", c->num_kv_heads);
    add_int(f, "config", "head_dim", c->head_dim);
    add_int(f, "config", "max_position_embeddings", c->max_position_embeddings);
    add_real(f, "config", "rms_norm_eps", c->rms_norm_eps);
    add_real(f, "config", "rope_theta", c->rope_theta);
    add_int(f, "config", "rope_scaling.type (0 default, 1 yarn)", c->rope_type);
    add_real(f, "config", "rope_scaling.factor", c->rope_factor);
    add_int(f, "config", "rope_scaling.original_max_position_embeddings", c->rope_original_max_pos);
    add_real(f, "config", "rope_scaling.beta_fast", c->yarn_beta_fast);
    add_real(f, "config", "rope_scaling.beta_slow", c->yarn_beta_slow);
    add_real(f, "config", "rope_scaling.attention_factor", c->yarn_attn_factor);
    add(f, "config", "tie_word_embeddings", QB_FP_BOOL, c->tie_word_embeddings);
    add(f, "config", "quantization format", QB_FP_QUANT, (uint64_t)c->quant);
    add_int(f, "config", "quantization_config.bits", c->quant_bits);
    add_int(f, "config", "quantization_config.group_size", c->group_size);
    add(f, "config", "quantization_config.desc_act", QB_FP_BOOL, c->desc_act);
    add(f, "config", "quantization_config.sym", QB_FP_BOOL, c->sym);
}

void qb_fingerprint_add_cell(qb_fingerprint *f, qb_quant quant, int context_len, const qb_engine_options *engine) {
    add(f, "options", "--quant", QB_FP_QUANT, (uint64_t)quant);
    add_int(f, "options", "input length (--context-lengths)", context_len);
    for (int id = 0; id < QB_EOPT_COUNT; id++) /* ranks that choose other kernels would wait on each other */
        add(f, "options", qb_engine_option_table[id].flag, QB_FP_TEXT,
            text_digest(qb_engine_option_value_name(id, engine->v[id])));
}

int qb_fingerprint_add_tensors(qb_fingerprint *f, const char *dir) {
    qb_checkpoint ck;
    if (qb_checkpoint_open(dir, &ck) != 0) return -1;
    uint64_t h = QB_FNV1A64_OFFSET;
    for (size_t i = 0; i < ck.n_entries; i++) { /* sorted by name: the same order on every rank */
        const qb_st_tensor *t = ck.entries[i].tensor;
        int32_t head[2] = {(int32_t)t->dtype, t->ndim};
        h = qb_fnv1a64(h, ck.entries[i].name, strlen(ck.entries[i].name) + 1);
        h = qb_fnv1a64(h, head, sizeof head);
        h = qb_fnv1a64(h, t->shape, sizeof t->shape[0] * (size_t)t->ndim);
    }
    f->v.has_tensors = 1;
    f->v.tensors_digest = h;
    f->v.n_tensors = ck.n_entries;
    qb_checkpoint_close(&ck);
    return 0;
}

/* The checkpoint's tensor headers as text, one "NAME DTYPE [SHAPE]" line each, sorted by name (malloc'd). */
static char *tensor_lines(const char *dir, size_t *len) {
    qb_checkpoint ck;
    *len = 0;
    if (qb_checkpoint_open(dir, &ck) != 0) return NULL;
    size_t cap = 1;
    for (size_t i = 0; i < ck.n_entries; i++) cap += strlen(ck.entries[i].name) + 32 + 24 * QB_ST_MAX_DIMS;
    char *text = malloc(cap);
    for (size_t i = 0; text && i < ck.n_entries; i++) {
        char shape[24 * QB_ST_MAX_DIMS + 8];
        qb_st_shape_str(ck.entries[i].tensor, shape, sizeof shape);
        *len += (size_t)snprintf(text + *len, cap - *len, "%s %s %s\n", ck.entries[i].name,
                                 qb_st_dtype_name(ck.entries[i].tensor->dtype), shape);
    }
    qb_checkpoint_close(&ck);
    if (!text) qb_errorf("out of memory listing the tensors of %s", dir);
    return text;
}

/* One line of a tensor list: the name and the rest ("DTYPE [SHAPE]"), or 0 at the end. */
static int next_line(const char **p, const char **name, size_t *name_len, const char **rest, size_t *rest_len) {
    if (!**p) return 0;
    const char *end = strchr(*p, '\n');
    if (!end) end = *p + strlen(*p);
    const char *space = memchr(*p, ' ', (size_t)(end - *p));
    if (!space) space = end;
    *name = *p, *name_len = (size_t)(space - *p);
    *rest = space < end ? space + 1 : end, *rest_len = (size_t)(end - *rest);
    *p = *end ? end + 1 : end;
    return 1;
}

/* The first tensor whose header differs between two sorted lists, as "NAME: ... here, ... on rank 0". */
static void first_tensor_difference(const char *mine, const char *rank0, char *out, size_t cap) {
    const char *a = mine, *b = rank0, *an = NULL, *ar = NULL, *bn = NULL, *br = NULL;
    size_t anl = 0, arl = 0, bnl = 0, brl = 0;
    int have_a = next_line(&a, &an, &anl, &ar, &arl), have_b = next_line(&b, &bn, &bnl, &br, &brl);
    while (have_a || have_b) {
        int order = !have_a ? 1 : !have_b ? -1 : 0;
        if (have_a && have_b) {
            size_t n = anl < bnl ? anl : bnl;
            order = memcmp(an, bn, n);
            if (order == 0) order = anl < bnl ? -1 : anl > bnl ? 1 : 0;
        }
        if (order < 0) {
            snprintf(out, cap, "%.*s: here, not on rank 0", (int)anl, an);
            return;
        }
        if (order > 0) {
            snprintf(out, cap, "%.*s: on rank 0, not here", (int)bnl, bn);
            return;
        }
        if (arl != brl || memcmp(ar, br, arl) != 0) {
            snprintf(out, cap, "%.*s: %.*s here, %.*s on rank 0", (int)anl, an, (int)arl, ar, (int)brl, br);
            return;
        }
        have_a = next_line(&a, &an, &anl, &ar, &arl);
        have_b = next_line(&b, &bn, &bnl, &br, &brl);
    }
    snprintf(out, cap, "the headers list the same tensors (the digests differ)");
}

/* After a comparison in which some rank found other tensor headers (verdict 2): rank 0 broadcasts its list
 * and such a rank names the first tensor that differs in why. Collective: every rank calls it. */
static int name_tensor_difference(qb_dist *d, const char *checkpoint_dir, int rank0_has, int verdict, char *why,
                                  size_t cap) {
    int none = 1;
    QB_TRY(qb_dist_all_ok(d, verdict != 2, &none));
    if (none) return 0;
    size_t len = 0;
    char *list = d->world_rank == 0 && rank0_has && checkpoint_dir ? tensor_lines(checkpoint_dir, &len) : NULL;
    uint64_t length = list ? (uint64_t)len : 0;
    int rc = qb_dist_bcast(d, &length, sizeof length, 0), have = 1;
    if (rc == 0 && d->world_rank != 0) have = (list = malloc((size_t)length + 1)) != NULL;
    if (rc == 0) rc = qb_dist_all_ok(d, have, &have); /* every rank takes the second broadcast, or none */
    if (rc == 0 && !have) rc = qb_errorf("out of memory for rank 0's tensor list (%llu bytes)",
                                         (unsigned long long)length);
    if (rc == 0 && length) rc = qb_dist_bcast(d, list, (size_t)length, 0);
    if (rc == 0 && verdict == 2 && length) {
        list[length] = '\0';
        size_t mine_len;
        char *mine = tensor_lines(checkpoint_dir, &mine_len);
        if (mine) {
            char first[360];
            first_tensor_difference(mine, list, first, sizeof first);
            snprintf(why, cap, "tensors differ from rank 0's: %s", first);
        }
        free(mine);
    }
    free(list);
    return rc;
}

static void value_text(qb_fingerprint_kind kind, uint64_t v, char *out, size_t cap) {
    double real;
    switch (kind) {
    case QB_FP_REAL:
        memcpy(&real, &v, sizeof real);
        snprintf(out, cap, "%.17g", real);
        break;
    case QB_FP_BOOL: snprintf(out, cap, "%s", v ? "true" : "false"); break;
    case QB_FP_QUANT: snprintf(out, cap, "%s", v < QB_QUANT_COUNT ? qb_quant_name((qb_quant)v) : "?"); break;
    case QB_FP_TEXT: snprintf(out, cap, "%016" PRIx64, v); break;
    default: snprintf(out, cap, "%" PRId64, (int64_t)v); break;
    }
}

int qb_fingerprint_compare(const qb_fingerprint *mine, const qb_fingerprint_values *rank0, char *why, size_t cap) {
    if (cap) why[0] = '\0';
    if (!rank0->valid || !mine->v.valid) return 0;
    if (rank0->n != mine->v.n) {
        snprintf(why, cap, "build differs from rank 0's (%d fingerprint fields here, %d on rank 0)", mine->v.n, rank0->n);
        return 1;
    }
    for (int i = 0; i < mine->v.n; i++) {
        if (mine->v.value[i] == rank0->value[i]) continue;
        const char *verb = strcmp(mine->section[i], "options") == 0 ? "differ" : "differs";
        if (mine->kind[i] == QB_FP_TEXT) {
            snprintf(why, cap, "%s %s from rank 0's: %s is not the same", mine->section[i], verb, mine->name[i]);
        } else {
            char here[40], there[40];
            value_text(mine->kind[i], mine->v.value[i], here, sizeof here);
            value_text(mine->kind[i], rank0->value[i], there, sizeof there);
            snprintf(why, cap, "%s %s from rank 0's: %s %s here, %s on rank 0", mine->section[i], verb,
                     mine->name[i], here, there);
        }
        return 1;
    }
    if (mine->v.has_tensors != rank0->has_tensors) {
        snprintf(why, cap, "weights differ from rank 0's: %s here, %s on rank 0",
                 mine->v.has_tensors ? "a checkpoint" : "random weights (a preset)",
                 rank0->has_tensors ? "a checkpoint" : "random weights (a preset)");
        return 1;
    }
    if (mine->v.tensors_digest != rank0->tensors_digest || mine->v.n_tensors != rank0->n_tensors) {
        snprintf(why, cap, "tensors differ from rank 0's: the checkpoint's tensor headers (names, dtypes, shapes) are "
                 "not the same (%" PRIu64 " tensors here, %" PRIu64 " on rank 0)", mine->v.n_tensors, rank0->n_tensors);
        return 2;
    }
    return 0;
}

int qb_ranks_compare(qb_dist *d, const qb_fingerprint *mine, int have, int *verdict, char *why, size_t cap) {
    qb_fingerprint_values rank0;
    *verdict = 0;
    if (cap) why[0] = '\0';
    if (d->world_rank == 0) {
        rank0 = mine->v;
        rank0.valid = have ? 1 : 0;
    } else {
        memset(&rank0, 0, sizeof rank0);
    }
    QB_TRY(qb_dist_bcast(d, &rank0, sizeof rank0, 0));
    if (d->world_rank != 0 && have) *verdict = qb_fingerprint_compare(mine, &rank0, why, cap);
    return 0;
}

int qb_ranks_compare_cells(qb_dist *d, const qb_cell_spec *cells, int n_cells, int *same, char *why, size_t cap) {
    *same = 1;
    if (cap) why[0] = '\0';
    if (n_cells <= 0) return 0;
    qb_fingerprint *mine = calloc((size_t)n_cells, sizeof *mine);
    qb_fingerprint_values *rank0 = calloc((size_t)n_cells, sizeof *rank0);
    if (!mine || !rank0) {
        free(mine);
        free(rank0);
        return qb_errorf("out of memory comparing %d cells between ranks", n_cells);
    }
    for (int i = 0; i < n_cells; i++) {
        qb_model_config cfg;
        bool ckpt;
        char dir[QB_PATH_MAX];
        qb_fingerprint_init(&mine[i]);
        qb_fingerprint_add_cell(&mine[i], cells[i].quant, cells[i].context_len, &cells[i].engine);
        add_int(&mine[i], "options", "the cell's sweep-entry \"tp\" (-1: none)", cells[i].own_tp ? cells[i].tp : -1);
        /* already validated on every rank; should the config have changed since, there is nothing to compare */
        if (qb_model_config_resolve(cells[i].model, &cfg, &ckpt, dir, sizeof dir) != 0 ||
            qb_model_config_apply_quant(&cfg, cells[i].quant, ckpt) != 0)
            mine[i].v.valid = 0;
        else
            qb_fingerprint_add_config(&mine[i], &cfg);
        rank0[i] = mine[i].v;
    }
    int rc = qb_dist_bcast(d, rank0, sizeof *rank0 * (size_t)n_cells, 0);
    for (int i = 0; rc == 0 && d->world_rank != 0 && i < n_cells && *same; i++) {
        char differs[400], model[160];
        if (!qb_fingerprint_compare(&mine[i], &rank0[i], differs, sizeof differs)) continue;
        *same = 0;
        qb_printable(cells[i].model, model, sizeof model);
        snprintf(why, cap, "cell %d (--model %s, input %d): %s", i + 1, model, cells[i].context_len, differs);
    }
    free(mine);
    free(rank0);
    return rc;
}

int qb_ranks_agree_on_group(const qb_runner *r, const char *model, const qb_model_config *cfg,
                            const char *checkpoint_dir, int active, int ok, int *all_ok, char *failure, size_t cap) {
    qb_dist *d = r->dist;
    char why[QB_RANK_MESSAGE_MAX] = "", differs[400] = "", shown[160];
    qb_fingerprint mine;
    qb_fingerprint_init(&mine);
    qb_fingerprint_add_options(&mine, r->opt, r->backend_name, 0); /* the sweep's length was compared at startup */
    int have = active && ok;
    if (have) {
        qb_fingerprint_add_config(&mine, cfg);
        if (checkpoint_dir && qb_fingerprint_add_tensors(&mine, checkpoint_dir) != 0) have = ok = 0;
    }
    if (!ok) qb_copy_str(why, sizeof why, qb_last_error());
    int verdict = 0;
    QB_TRY(qb_ranks_compare(d, &mine, have, &verdict, differs, sizeof differs));
    QB_TRY(name_tensor_difference(d, have ? checkpoint_dir : NULL, have && checkpoint_dir, verdict, differs,
                                  sizeof differs));
    if (verdict) {
        ok = 0;
        snprintf(why, sizeof why, "ranks disagree on --model %s: %s", qb_printable(model, shown, sizeof shown), differs);
    }
    QB_TRY(qb_dist_gather_errors(d, ok, why, "; ", all_ok, failure, cap));
    if (!*all_ok) QB_TRY(qb_dist_bcast(d, failure, cap, 0));
    return 0;
}

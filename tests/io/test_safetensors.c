/* test_safetensors.c - writer/reader round trip (dtypes, scalar and empty tensors, metadata, lookup), reading
 * from a memory buffer, checkpoint slice readers with dtype conversion, and a few refusals (the full corpus
 * of malformed files is tests/make_bad_checkpoints.py). Usage: test_safetensors <scratch dir> */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/random_init.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "io/small_file.h"
#include "io_test_util.h"

static void test_round_trip(const char *scratch) {
    uint16_t m[6 * 4];
    float v[5];
    int32_t scalar = -7;
    for (int i = 0; i < 24; i++) m[i] = qb_float_to_bf16((float)i - 3.5f);
    for (int i = 0; i < 5; i++) v[i] = 0.25f * (float)i;
    qb_st_write_tensor t[4] = {
        {.name = "b.matrix", .dtype = QB_ST_BF16, .ndim = 2, .shape = {6, 4}, .data = m},
        {.name = "a.vector", .dtype = QB_ST_F32, .ndim = 1, .shape = {5}, .data = v},
        {.name = "c.scalar", .dtype = QB_ST_I32, .ndim = 0, .data = &scalar},
        {.name = "d.empty \"quoted\" \xc3\xa9", .dtype = QB_ST_F16, .ndim = 2, .shape = {0, 4}, .data = NULL},
    };
    char path[4096];
    snprintf(path, sizeof path, "%s/round_trip.safetensors", scratch);
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    CHECK_OK(qb_st_write(path, t, 4, mk, mv, 1));
    qb_st_file f;
    CHECK_OK(qb_st_open(path, &f));
    if (g_failures) return;
    CHECK(f.n_tensors == 4 && f.n_meta == 1 && strcmp(qb_st_metadata(&f, "format"), "pt") == 0);
    CHECK(qb_st_metadata(&f, "nope") == NULL);
    const qb_st_tensor *a = qb_st_find(&f, "b.matrix");
    CHECK(a && a->dtype == QB_ST_BF16 && a->ndim == 2 && a->shape[0] == 6 && a->shape[1] == 4 && a->numel == 24);
    if (a) CHECK(memcmp(qb_st_bytes(&f, a), m, sizeof m) == 0);
    const qb_st_tensor *b = qb_st_find(&f, "a.vector");
    CHECK(b && b->dtype == QB_ST_F32 && memcmp(qb_st_bytes(&f, b), v, sizeof v) == 0);
    const qb_st_tensor *s = qb_st_find(&f, "c.scalar");
    CHECK(s && s->ndim == 0 && s->numel == 1 && memcmp(qb_st_bytes(&f, s), &scalar, 4) == 0);
    const qb_st_tensor *e = qb_st_find(&f, "d.empty \"quoted\" \xc3\xa9");
    CHECK(e && e->numel == 0 && e->begin == e->end);
    CHECK(qb_st_find(&f, "missing") == NULL);
    char shape[64];
    qb_st_shape_str(a, shape, sizeof shape);
    CHECK(strcmp(shape, "[6, 4]") == 0);
    /* the same bytes parsed from memory */
    char *buf;
    size_t len;
    CHECK_OK(qb_read_small_file(path, 1 << 20, &buf, &len));
    qb_st_file g;
    CHECK_OK(qb_st_parse(buf, len, "buffer", &g));
    CHECK(g.n_tensors == 4);
    qb_st_close(&g);
    /* truncations of a valid file are all refused */
    for (size_t cut = 0; cut < len; cut += 7) CHECK(qb_st_parse(buf, cut, "cut", &g) == -1);
    /* one byte appended */
    char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    CHECK_ERR(qb_st_parse(longer, len + 1, "longer", &g), "longer: 1 trailing bytes after the last tensor");
    free(longer);
    free(buf);
    qb_st_close(&f);
}

static void test_slices(const char *scratch) {
    /* a 5x6 F32 matrix, a 5x6 F16 matrix, a 6-vector in BF16, read by rows / columns with conversion */
    float mf[30];
    uint16_t mh[30], vb[6];
    for (int i = 0; i < 30; i++) mf[i] = 1.0f + (float)i / 1024.0f + 1.0f / 65536.0f; /* needs rounding */
    for (int i = 0; i < 30; i++) mh[i] = (uint16_t)(0x3c00 + i); /* 1 + i/1024 in f16 */
    for (int i = 0; i < 6; i++) vb[i] = qb_float_to_bf16(-2.0f + (float)i);
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/slices", scratch);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    qb_st_write_tensor t[3] = {
        {.name = "mf", .dtype = QB_ST_F32, .ndim = 2, .shape = {5, 6}, .data = mf},
        {.name = "mh", .dtype = QB_ST_F16, .ndim = 2, .shape = {5, 6}, .data = mh},
        {.name = "vb", .dtype = QB_ST_BF16, .ndim = 1, .shape = {6}, .data = vb},
    };
    CHECK_OK(qb_st_write(path, t, 3, NULL, NULL, 0));
    qb_checkpoint ck;
    CHECK_OK(qb_checkpoint_open(dir, &ck));
    if (g_failures) return;
    uint16_t out[30];
    float fo[6];
    CHECK_OK(qb_checkpoint_read_rows_bf16(&ck, "mf", 5, 6, 2, 2, out));
    for (int i = 0; i < 12; i++) CHECK(out[i] == qb_float_to_bf16(mf[12 + i]));
    CHECK_OK(qb_checkpoint_read_cols_bf16(&ck, "mh", 5, 6, 3, 2, out));
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 2; c++) CHECK(out[r * 2 + c] == qb_float_to_bf16(1.0f + (float)(r * 6 + 3 + c) / 1024.0f));
    CHECK_OK(qb_checkpoint_read_vec_f32(&ck, "vb", 6, 1, 4, fo));
    for (int i = 0; i < 4; i++) CHECK(fo[i] == -1.0f + (float)i);
    CHECK_ERR(qb_checkpoint_read_rows_bf16(&ck, "mf", 6, 5, 0, 1, out), "slices/model.safetensors: mf: shape [5, 6] but config says [6, 5]");
    CHECK_ERR(qb_checkpoint_read_rows_bf16(&ck, "mf", 5, 6, 4, 2, out), "mf: block rows [4, +2)");
    CHECK_ERR(qb_checkpoint_read_vec_f32(&ck, "vb", 6, 5, 2, fo), "vb: range [5, +2) is outside [6]");
    CHECK_ERR(qb_checkpoint_read_vec_f32(&ck, "zz", 6, 0, 1, fo), "tensor \"zz\" is missing from the checkpoint");
    const char *unused[4];
    CHECK(qb_checkpoint_unused(&ck, unused, 4) == 0);
    qb_checkpoint_close(&ck);
    CHECK_OK(qb_checkpoint_open(dir, &ck));
    CHECK(qb_checkpoint_unused(&ck, unused, 4) == 3 && strcmp(unused[0], "mf") == 0);
    qb_checkpoint_close(&ck);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    mkdir(argv[1], 0755);
    test_round_trip(argv[1]);
    test_slices(argv[1]);
    qb_st_file f;
    CHECK_ERR(qb_st_open("/nonexistent.safetensors", &f), "/nonexistent.safetensors: cannot open");
    CHECK_OK(qb_st_parse("\x02\0\0\0\0\0\0\0{}", 10, "empty", &f));
    CHECK(f.n_tensors == 0);
    qb_st_close(&f);
    CHECK_ERR(qb_st_parse("\x02\0\0\0\0\0\0\0{}X", 11, "empty", &f), "empty: 1 trailing bytes after the header");
    return test_finish("test_safetensors");
}

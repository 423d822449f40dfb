/* test_fixture_load.c - the checkpoints transformers wrote (each directory of tests/fixtures) load through the validating
 * loader at every legal TP size up to 4, and each rank's slices equal the TP 1 slices (bit-exact).
 * Usage: test_fixture_load <fixture dir>... */
#include <stdio.h>
#include <string.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "io_test_util.h"

static void check_rank(const qb_weights *w, const qb_weights *full) {
    const qb_model_config *c = &w->cfg;
    for (int i = 0; i < c->num_layers; i++)
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_slice s;
            qb_linear_slice(c, &w->plan, k, &s);
            const qb_linear *a = qb_layer_linear(&w->layers[i], k), *b = qb_layer_linear(&full->layers[i], k);
            for (uint64_t r = 0; r < s.n_rows; r++)
                if (memcmp(a->w + r * s.n_cols, b->w + (s.row0 + r) * s.cols + s.col0, s.n_cols * 2) != 0) {
                    fprintf(stderr, "FAILED tp %d rank %d layer %d %s row %llu differs from the TP 1 slice\n",
                            w->plan.tp_size, w->plan.tp_rank, i, qb_linear_suffix[k], (unsigned long long)r);
                    g_failures++;
                    return;
                }
        }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        qb_model_config c;
        bool ckpt = false;
        if (qb_model_config_resolve(argv[i], &c, &ckpt, NULL, 0) != 0) {
            fprintf(stderr, "FAILED %s: %s\n", argv[i], qb_last_error());
            g_failures++;
            continue;
        }
        qb_shard_plan p1;
        qb_weights full;
        CHECK_OK(qb_shard_plan_make(&c, 1, 0, &p1));
        if (qb_weights_load(argv[i], &c, &p1, &full) != 0) {
            fprintf(stderr, "FAILED %s: %s\n", argv[i], qb_last_error());
            g_failures++;
            continue;
        }
        for (int tp = 2; tp <= 4; tp++) {
            if (qb_shard_plan_check(&c, tp) != 0) continue;
            for (int r = 0; r < tp; r++) {
                qb_shard_plan p;
                qb_weights w;
                CHECK_OK(qb_shard_plan_make(&c, tp, r, &p));
                int rc = qb_weights_load(argv[i], &c, &p, &w);
                CHECK_OK(rc);
                if (rc == 0) {
                    check_rank(&w, &full);
                    qb_weights_free(&w);
                }
            }
        }
        printf("%s: %s, %d layers, loaded\n", argv[i], c.name, c.num_layers);
        qb_weights_free(&full);
    }
    return test_finish("test_fixture_load");
}

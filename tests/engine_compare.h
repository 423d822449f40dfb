/* engine_compare.h - the measures the engine-vs-engine tests share: a token's rank in a logit vector (ties to
 * the smaller index, the argmax rule) and the relative L2 error of two logit vectors, noting the first NaN. */
#ifndef QB_TESTS_ENGINE_COMPARE_H
#define QB_TESTS_ENGINE_COMPARE_H

#include <math.h>

static inline int qb_test_rank_of(const float *logits, int n, int token) {
    int r = 0;
    for (int i = 0; i < n; i++)
        if (logits[i] > logits[token] || (logits[i] == logits[token] && i < token)) r++;
    return r;
}

static inline double qb_test_rel_l2(const float *got, const float *ref, int n, int *nan_at) {
    double num = 0, den = 0;
    *nan_at = -1;
    for (int i = 0; i < n; i++) {
        if (!isfinite(got[i]) && *nan_at < 0) *nan_at = i;
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

#endif

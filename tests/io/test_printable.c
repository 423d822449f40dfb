/* test_printable.c - the one escaper (io/printable.h) and the one non-finite rule (kernels/weights/nonfinite.cuh with
 * its host scan in engine/weights_finite.c), which the CUDA kernel shares, so its logic is tested on the CPU. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/weights.h"
#include "io/printable.h"
#include "io_test_util.h"
#include "nonfinite.cuh"

static void expect_escaped(const char *in, const char *want) {
    char buf[256];
    qb_printable(in, buf, sizeof buf);
    if (strcmp(buf, want) != 0) {
        fprintf(stderr, "FAILED: escape of \"%s\": got \"%s\", want \"%s\"\n", in, buf, want);
        g_failures++;
    }
    CHECK(qb_is_printable(in) == (strcmp(in, want) == 0));
}

static void test_escaper(void) {
    expect_escaped("model.layers.0.mlp", "model.layers.0.mlp");
    expect_escaped("a\nb\tc\rd", "a\\nb\\tc\\rd");
    expect_escaped("\x1b[2J\x07\x7f", "\\x1b[2J\\x07\\x7f");
    expect_escaped("evil\xe2\x80\xae" "exe", "evil\\u{202e}exe");                 /* RIGHT-TO-LEFT OVERRIDE */
    expect_escaped("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", "\\u{202a}\\u{202b}\\u{202c}\\u{202d}");
    expect_escaped("\xe2\x81\xa6x\xe2\x81\xa9", "\\u{2066}x\\u{2069}");       /* isolates */
    expect_escaped("\xe2\x80\x8b\xe2\x80\x8f\xef\xbb\xbf", "\\u{200b}\\u{200f}\\u{feff}"); /* zero width, RLM, BOM */
    expect_escaped("\xc2\x9b" "31m", "\\u{009b}31m");                           /* C1 CSI */
    expect_escaped("caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b", "caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b"); /* plain UTF-8 kept */
    expect_escaped("\xff\xc0\xaf", "\\xff\\xc0\\xaf");                          /* invalid and overlong */
    expect_escaped("\xed\xa0\x80", "\\xed\\xa0\\x80");                          /* surrogate */
    expect_escaped("tail\xe2\x80", "tail\\xe2\\x80");                          /* truncated sequence */
    /* truncation never splits an escape or a character */
    char small[8];
    qb_printable("ab\xe2\x80\xae", small, sizeof small);
    CHECK(strcmp(small, "ab") == 0);
    qb_printable("abc\xc3\xa9z", small, 6);
    CHECK(strcmp(small, "abc\xc3\xa9") == 0);
    /* the recorded error message */
    qb_errorf("x: tensor \"a\xe2\x80\xae\x1b\"");
    CHECK(qb_error_make_printable() == -1);
    CHECK(strcmp(qb_last_error(), "x: tensor \"a\\u{202e}\\x1b\"") == 0);
}

static void test_nonfinite(void) {
    CHECK(qb_bits_nonfinite(0x7fc0, QB_BF16_EXP_MASK));  /* bf16 NaN */
    CHECK(qb_bits_nonfinite(0xff80, QB_BF16_EXP_MASK));  /* bf16 -Inf */
    CHECK(!qb_bits_nonfinite(0x7f7f, QB_BF16_EXP_MASK)); /* bf16 max */
    CHECK(!qb_bits_nonfinite(0x0001, QB_BF16_EXP_MASK)); /* subnormal */
    CHECK(qb_bits_nonfinite(0x7c00, QB_F16_EXP_MASK));   /* f16 Inf */
    CHECK(qb_bits_nonfinite(0xfe00, QB_F16_EXP_MASK));   /* f16 NaN */
    CHECK(!qb_bits_nonfinite(0x7bff, QB_F16_EXP_MASK));  /* f16 max */
    CHECK(qb_bits_nonfinite(0x7f800000u, QB_F32_EXP_MASK));
    CHECK(!qb_bits_nonfinite(0x7f7fffffu, QB_F32_EXP_MASK));
    enum { N = 10000 };
    static uint16_t v[N];
    for (int i = 0; i < N; i++) v[i] = 0x3c00;
    CHECK(qb_first_nonfinite16(v, N, QB_BF16_EXP_MASK) == -1);
    v[9000] = 0x7fc0;
    v[9999] = 0x7f80;
    CHECK(qb_first_nonfinite16(v, N, QB_BF16_EXP_MASK) == 9000); /* past the first 4096-value block */
    CHECK(qb_first_nonfinite16(v, 9000, QB_BF16_EXP_MASK) == -1);
    float f[5] = {0.0f, 1.0f, -3.0e38f, NAN, INFINITY};
    CHECK(qb_first_nonfinite_f32(f, 3) == -1);
    CHECK(qb_first_nonfinite_f32(f, 5) == 3);
}

int main(void) {
    test_escaper();
    test_nonfinite();
    return test_finish("test_printable");
}

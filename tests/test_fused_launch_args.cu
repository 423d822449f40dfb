// test_fused_launch_args.cu - the host side shared by the fused GEMV launchers (kernels/linear/gemv_fused_common.cuh):
// qb_fused_set_input (input mode, its checks and the parameter fields), qb_fused_set_rope and qb_fused_set_push.
// Host code only: runs without a GPU (CI). The kernels that read these fields are tested on the GPU by
// test_decode_fusion, test_decode_fusion_quant and test_tp_exchange.
#include <stdio.h>
#include <string.h>

#include "gemv_fused_common.cuh"

static int g_failures = 0;

static void expect(bool ok, const char *what) {
    if (!ok) {
        printf("FAIL %s (last error: %s)\n", what, qb_last_error());
        g_failures++;
    }
}

int main() {
    alignas(16) static uint16_t x[64];
    alignas(16) static float resid[64], norm_w[64], next[64];
    char region[4096];
    qb_tp_exchange tp = {};
    tp.base[0] = region;
    tp.slot_bytes = 256;
    tp.point_bytes = 256;
    tp.points = 4;
    tp.ranks = 1;

    qb_fused_params p = {};
    qb_gemv_input in = {};
    in.x = x;
    expect(qb_fused_set_input(p, &in, QB_FE_STORE, 64, "t") == QB_FX_VEC, "x: vector input");
    expect(p.k8 == 8 && p.x == (const uint4 *)x && !p.resid_in, "x: fields");
    in.x = x + 1;
    expect(qb_fused_set_input(p, &in, QB_FE_STORE, 64, "t") < 0, "misaligned x refused");

    in = qb_gemv_input{};
    in.resid = resid;
    in.norm_w = norm_w;
    in.eps = 1e-6f;
    p = qb_fused_params{};
    expect(qb_fused_set_input(p, &in, QB_FE_SILU, 64, "t") == QB_FX_NORM, "residual: normalising input");
    expect(p.resid_in == resid && p.norm_w == norm_w && p.eps == 1e-6f && p.k8 == 8, "residual: fields");
    expect(qb_fused_set_input(p, &in, QB_FE_STORE, 64, "t") < 0, "normalised input refused for a store");
    expect(qb_fused_set_input(p, &in, QB_FE_PUSH, 64, "t") < 0, "normalised input refused for a push");
    expect(qb_fused_set_input(p, &in, QB_FE_ROPE, QB_FUSED_MAX_NORM_K + 8, "t") < 0, "K above the maximum refused");
    in.norm_w = NULL;
    expect(qb_fused_set_input(p, &in, QB_FE_SILU, 64, "t") < 0, "no norm weight refused");
    expect(qb_fused_set_input(p, NULL, QB_FE_SILU, 64, "t") < 0, "no input refused");

    in.norm_w = norm_w;
    in.tp = &tp;
    in.tp_point = 2;
    in.resid_next = next;
    p = qb_fused_params{};
    expect(qb_fused_set_input(p, &in, QB_FE_ROPE, 64, "t") == QB_FX_TPNORM, "exchange: its input mode");
    expect(p.tp.base[0] == region && p.tp_point == 2 && p.resid_next == next && p.resid_in == resid,
           "exchange: fields");
    in.tp_point = 4;
    expect(qb_fused_set_input(p, &in, QB_FE_ROPE, 64, "t") < 0, "exchange point out of range refused");
    in.tp_point = 0;
    expect(qb_fused_set_input(p, &in, QB_FE_ROPE, 72, "t") < 0, "K above the exchange slot refused");
    in.resid_next = NULL;
    expect(qb_fused_set_input(p, &in, QB_FE_ROPE, 64, "t") < 0, "exchange without a next residual refused");

    p = qb_fused_params{};
    expect(qb_fused_set_push(p, &tp, 3, 64, "t") == 0 && p.tp_point == 3 && p.tp.points == 4, "push: fields");
    expect(qb_fused_set_push(p, &tp, 4, 64, "t") < 0, "push point out of range refused");
    expect(qb_fused_set_push(p, &tp, 0, 65, "t") < 0, "push wider than a slot refused");
    expect(qb_fused_set_push(p, NULL, 0, 64, "t") < 0, "push without an exchange refused");

    int pos = 3;
    float cs[8], sn[8];
    uint16_t q[64], kc[64], vc[64];
    p = qb_fused_params{};
    expect(qb_fused_set_rope(p, NULL, 2, 1, 16, &pos, cs, sn, q, kc, vc, 8, "t") == 0, "rope: accepted");
    expect(p.n_rows == 64 && p.n_units == 32 && p.hq == 2 && p.hkv == 1 && p.hd == 16 && p.max_seq == 8 &&
               p.pos == &pos && p.q_out == (qb_bf16 *)q && p.k_cache == (qb_bf16 *)kc && p.v_cache == (qb_bf16 *)vc,
           "rope: fields");
    expect(qb_fused_set_rope(p, NULL, 2, 1, 15, &pos, cs, sn, q, kc, vc, 8, "t") < 0, "odd head size refused");
    expect(qb_fused_set_rope(p, NULL, 0, 1, 16, &pos, cs, sn, q, kc, vc, 8, "t") < 0, "no heads refused");

    printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
    return g_failures ? 1 : 0;
}

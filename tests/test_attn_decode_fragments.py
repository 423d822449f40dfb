#!/usr/bin/python3
"""test_attn_decode_fragments.py - a numpy model of the per-lane data movement of the tensor-core decode attention
split kernel (qb_attn_decode_mma_kernel in kernels/attention/attention_decode.cu), run on the CPU.

The kernel feeds mma.sync m16n8k16 fragments straight from 16-byte global loads, permutes dimensions and keys
inside each mma, transposes P through shared memory and pairs V rows with byte permutes. A mistake in any of
those indices gives wrong attention only on a GPU; this model repeats the kernel's index arithmetic lane by lane,
does each mma with the fragment layouts of the PTX ISA (A row-major 16x16, B 16x8, C 16x8; groupID = lane / 4,
threadID_in_group = lane % 4) and checks one split's merged output against exact attention. Keep it in step with
the kernel. Exit status non-zero on a mismatch (relative L2 error above 1e-2; bf16 P gives ~5e-4).
Run: /usr/bin/python3 tests/test_attn_decode_fragments.py
"""
import math
import sys

import numpy as np

RNG = np.random.default_rng(1)
WARPS = 4  # QB_ADM_WARPS


def to_bf16(x):
    """float32 array -> bf16 bits (round to nearest even)."""
    u = np.atleast_1d(np.asarray(x, np.float32)).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(bits):
    return float((np.uint32(bits) << np.uint32(16)).view(np.float32))


def word(piece, i):
    """32-bit word i (x, y, z, w) of a 16-byte piece of 8 bf16: (low half, high half)."""
    return (piece[2 * i], piece[2 * i + 1])


def mma(c, a, b):
    """c[lane] (4 floats) += A . B with a[lane] = 4 registers, b[lane] = 2 registers (pairs of bf16 bits)."""
    A, B, C = np.zeros((16, 16)), np.zeros((16, 8)), np.zeros((16, 8))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for reg, (row, col) in enumerate(((g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8))):
            A[row][col], A[row][col + 1] = from_bf16(a[lane][reg][0]), from_bf16(a[lane][reg][1])
        for reg, k in enumerate((2 * t, 2 * t + 8)):
            B[k][g], B[k + 1][g] = from_bf16(b[lane][reg][0]), from_bf16(b[lane][reg][1])
        C[g][2 * t], C[g][2 * t + 1], C[g + 8][2 * t], C[g + 8][2 * t + 1] = c[lane]
    D = A @ B + C
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        c[lane] = [D[g][2 * t], D[g][2 * t + 1], D[g + 8][2 * t], D[g + 8][2 * t + 1]]


def pair(va, vb, e):
    """qb_pair: element e of two keys' lane data packed (key a low, key b high)."""
    return (va[e >> 3][2 * ((e >> 1) & 3) + (e & 1)], vb[e >> 3][2 * ((e >> 1) & 3) + (e & 1)])


def split_partials(kc, vc, q, hd, g, k_begin, k_end):
    """One block: every warp's online softmax over its tiles, then the merge. Returns o (g, hd) / l."""
    nt = 128 // hd
    kch, mb, vch = hd // 32, hd // 16, hd // 64
    zero = np.zeros(8, np.uint16)
    scale = 1 / math.sqrt(hd) * 1.4426950408889634
    per_warp = []
    for warp in range(WARPS):
        qf = {}
        for lane in range(32):
            gi, ti = lane >> 2, lane & 3
            for j in range(kch):
                u = q[gi][(j * 4 + ti) * 8:(j * 4 + ti) * 8 + 8] if gi < g else zero
                qf[lane, 2 * j] = (word(u, 0), word(u, 1))
                qf[lane, 2 * j + 1] = (word(u, 2), word(u, 3))
        acc = [[[0.0] * 4 for _ in range(mb)] for _ in range(32)]
        m = [[-np.inf, -np.inf] for _ in range(32)]
        l = [[0.0, 0.0] for _ in range(32)]
        tk = 16 * nt
        n_tiles = (k_end - k_begin + tk - 1) // tk
        for tile in range(warp, n_tiles, WARPS):
            for s in range(nt):
                base = k_begin + tile * tk + s * 16
                K, V = {}, {}
                for lane in range(32):
                    gi, ti = lane >> 2, lane & 3
                    for r in range(2):
                        key = base + gi + 8 * r
                        for j in range(kch):
                            c0 = (j * 4 + ti) * 8
                            K[lane, r, j] = kc[key][c0:c0 + 8] if key < k_end else zero
                    for r in range(4):
                        key = base + 2 * ti + (r & 1) + (r >> 1) * 8
                        V[lane, r] = [vc[key][c * 64 + gi * 8:c * 64 + gi * 8 + 8] if key < k_end else zero
                                      for c in range(vch)]
                sc = [[0.0] * 4 for _ in range(32)]
                for j in range(kch):
                    for half in range(2):
                        a = [(word(K[ln, 0, j], 2 * half), word(K[ln, 1, j], 2 * half),
                              word(K[ln, 0, j], 2 * half + 1), word(K[ln, 1, j], 2 * half + 1)) for ln in range(32)]
                        mma(sc, a, [qf[ln, 2 * j + half] for ln in range(32)])
                scores, mx = [], []
                for lane in range(32):
                    gi = lane >> 2
                    ok0, ok1 = base + gi < k_end, base + gi + 8 < k_end
                    sv = [sc[lane][e] * scale if (ok0 if e < 2 else ok1) else -np.inf for e in range(4)]
                    scores.append(sv)
                    mx.append([max(sv[0], sv[2]), max(sv[1], sv[3])])
                for o in (4, 8, 16):
                    mx = [[max(mx[ln][h], mx[ln ^ o][h]) for h in range(2)] for ln in range(32)]
                pw = np.zeros((8, 24), np.uint16)
                for lane in range(32):
                    gi, ti = lane >> 2, lane & 3
                    mn = [max(m[lane][h], mx[lane][h]) for h in range(2)]
                    alpha = [2.0 ** (m[lane][h] - mn[h]) for h in range(2)]
                    m[lane] = mn
                    p = [to_bf16(2.0 ** (scores[lane][e] - mn[e & 1]))[0] for e in range(4)]
                    for h in range(2):
                        l[lane][h] = l[lane][h] * alpha[h] + from_bf16(p[h]) + from_bf16(p[2 + h])
                    for i in range(mb):
                        acc[lane][i] = [acc[lane][i][e] * alpha[e & 1] for e in range(4)]
                    pw[2 * ti][gi], pw[2 * ti + 1][gi] = p[0], p[1]
                    pw[2 * ti][gi + 8], pw[2 * ti + 1][gi + 8] = p[2], p[3]
                pb = [((pw[ln >> 2][2 * (ln & 3)], pw[ln >> 2][2 * (ln & 3) + 1]),
                       (pw[ln >> 2][2 * (ln & 3) + 8], pw[ln >> 2][2 * (ln & 3) + 9])) for ln in range(32)]
                for i in range(mb):
                    c = [acc[ln][i] for ln in range(32)]
                    a = [(pair(V[ln, 0], V[ln, 1], i), pair(V[ln, 0], V[ln, 1], mb + i),
                          pair(V[ln, 2], V[ln, 3], i), pair(V[ln, 2], V[ln, 3], mb + i)) for ln in range(32)]
                    mma(c, a, pb)
                    for ln in range(32):
                        acc[ln][i] = list(c[ln])
        for o in (4, 8, 16):
            l = [[l[ln][h] + l[ln ^ o][h] for h in range(2)] for ln in range(32)]
        o_s, m_s, l_s = np.zeros((8, hd)), np.zeros(8), np.zeros(8)
        for lane in range(32):
            gi, ti = lane >> 2, lane & 3
            for i in range(mb):
                d0 = (i >> 3) * 64 + gi * 8 + (i & 7)
                d1 = ((mb + i) >> 3) * 64 + gi * 8 + ((mb + i) & 7)
                o_s[2 * ti][d0], o_s[2 * ti + 1][d0] = acc[lane][i][0], acc[lane][i][1]
                o_s[2 * ti][d1], o_s[2 * ti + 1][d1] = acc[lane][i][2], acc[lane][i][3]
            if gi == 0:
                m_s[2 * ti], m_s[2 * ti + 1] = m[lane]
                l_s[2 * ti], l_s[2 * ti + 1] = l[lane]
        per_warp.append((m_s, l_s, o_s))
    big = np.max([w[0] for w in per_warp], axis=0)
    weights = [np.exp2(w[0] - big) for w in per_warp]
    o = sum(wt[:, None] * w[2] for wt, w in zip(weights, per_warp))
    l = sum(wt * w[1] for wt, w in zip(weights, per_warp))
    return o[:g] / l[:g, None]


def check(hd, g, k_begin, k_end):
    rows = k_end + 40
    kc = to_bf16(RNG.uniform(-2, 2, (rows, hd))).reshape(rows, hd)
    vc = to_bf16(RNG.uniform(-1, 1, (rows, hd))).reshape(rows, hd)
    q = to_bf16(RNG.uniform(-4, 4, (g, hd))).reshape(g, hd)
    got = split_partials(kc, vc, q, hd, g, k_begin, k_end)
    f = np.vectorize(from_bf16)
    kf, vf, qf = f(kc[k_begin:k_end]), f(vc[k_begin:k_end]), f(q)
    s = qf @ kf.T / math.sqrt(hd)
    p = np.exp(s - s.max(1, keepdims=True))
    ref = (p @ vf) / p.sum(1, keepdims=True)
    err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    ok = err < 1e-2
    print(f"{'ok  ' if ok else 'FAIL'} hd={hd} group={g} keys {k_begin}..{k_end - 1}: relative L2 error {err:.2e}"
          f" (tolerance 1e-2)")
    return ok


def check_index_bounds():
    """The launcher's and both kernels' index arithmetic at the longest contexts (as tests/test_cuda_attn_decode.c
    sets them up), split by split: int32 expressions stay below 2**31, keys loaded lie inside the context (rows past
    it hold NaN in the GPU test), partial writes stay inside the workspaces the engine allocates, and every split the
    merge reads (s < active) ran and wrote its (m, l). Written after the context-131072 hkv=8 NaNs of 074ce18."""
    int_max, ok = 2**31 - 1, True
    tk = {64: 32, 128: 16}  # mma tile keys: 16 * (128 / hd); the old kernel's tile is 64 keys
    for name, hq, hkv, hd in [("0.5B", 14, 2, 64), ("7B", 28, 4, 128), ("14B,32B", 40, 8, 128), ("72B", 64, 8, 128)]:
        for t in (32768, 131072):
            max_seq = t + 1 + t % 97 + (2048 if t > 4096 else 40)
            cache = hkv * max_seq * hd
            splits_cap = -(-max_seq // 64)
            part_o, part_ml = hq * splits_cap * hd, hq * splits_cap * 2
            for chunk in (64 << i for i in range(6)):
                for len_cap in (t, t + 1, max_seq):
                    n_splits = -(-len_cap // chunk)
                    active = min((t + chunk - 1) // chunk, n_splits)
                    ran = [sp for sp in range(n_splits) if sp * chunk < t]
                    if ran != list(range(active)):
                        print(f"FAIL {name} T={t} chunk={chunk} len_cap={len_cap}: merged splits {active}, ran {len(ran)}")
                        ok = False
                    last = n_splits - 1
                    k_end = min(last * chunk + chunk, t) if last * chunk < t else None
                    # largest int32 values: split * chunk, the mma kernel's next-tile base (+2 W tiles), a key * hd
                    biggest = max(last * chunk + chunk, (k_end or 0) + 2 * WARPS * tk[hd] + 16, max_seq * hd)
                    hi_key = min(t, n_splits * chunk) - 1  # loads are masked to key < k_end <= t
                    hi_k = (hkv - 1) * max_seq * hd + hi_key * hd + hd - 1
                    hi_po = ((hq - 1) * n_splits + last) * hd + hd - 1
                    hi_ml = ((hq - 1) * n_splits + last) * 2 + 1
                    if biggest > int_max or hi_k >= cache or hi_key >= t or hi_po >= part_o or hi_ml >= part_ml:
                        print(f"FAIL {name} T={t} chunk={chunk} len_cap={len_cap}: int {biggest}, key {hi_key}, "
                              f"cache {hi_k}/{cache}, part_o {hi_po}/{part_o}, part_ml {hi_ml}/{part_ml}")
                        ok = False
    print(f"{'ok  ' if ok else 'FAIL'} index bounds at contexts 32768, 131072 (int32, keys inside the context, "
          f"workspaces, merged splits all written)")
    return ok


def main():
    cases = [(128, 7, 0, 37), (128, 8, 64, 194), (64, 7, 0, 77), (128, 5, 0, 16), (64, 1, 128, 131),
             (128, 1, 0, 200), (64, 8, 0, 64)]
    results = [check(*c) for c in cases]
    results.append(check_index_bounds())
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

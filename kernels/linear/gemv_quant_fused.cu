/* gemv_quant_fused.cu - fused decode GEMVs on GPTQ / AWQ weights (gemv_quant_fused.cuh).
 *
 * Work: a "tile" is 16 output rows (store / residual add) or 8 row pairs (RoPE: rows i and i + hd/2 of a head;
 * SiLU: gate j and up j), so that lane group g of the tensor-core step (gemv_quant_tc.cuh) holds rows a and b of
 * pair g and the epilogue finds both halves in one place. A block of 8 warps takes tiles blockIdx.x,
 * + gridDim.x, ...; the grid is what is resident at once (occupancy calculator), balanced so every block runs the
 * same number of tiles. The warps of a block split the K steps of a tile (warp w: steps w, w + 8, ...) and are
 * summed in shared memory in a fixed order (deterministic), then threads 0..15 (0..7 for pairs) run the epilogue
 * of gemv_fused_common.cuh.
 * Weights, row layout: lane 4g + t reads 16 bytes of row a and of row b per step (16 pieces of 64 bytes per warp);
 * tiled layout (quant_tile.cuh): the same values stored so that a warp's step is 1 KiB contiguous.
 * Each warp streams its steps through a ring of D stages in shared memory filled by cp.async (as the kernel
 * lab's dev/cuda/gemv_quant_tc_async.cu), and the ring runs over the concatenation of the warp's steps of all its
 * block's tiles: the first steps of the next tile load while the last ones of the current tile are summed, so the
 * stream never restarts between tiles. The first D - 1 stages are issued before the PDL wait (constant data).
 * Input: x (global, bf16) or the RMSNorm of the fp32 residual made once per block into shared memory (the
 * prologue of gemv_fused_common.cuh; this is why the grid is capped at the resident blocks: the prologue reads
 * 8 k bytes per block).
 */
#include <stdlib.h>

#include "common.cuh"
#include "gemv_fused_common.cuh"
#include "gemv_quant.cuh"
#include "gemv_quant_fused.cuh"
#include "gemv_quant_tc.cuh"
#include "quant_tile.cuh"

#define QB_QF_WARPS 8
#define QB_QF_THREADS (QB_QF_WARPS * 32)
#define QB_QF_SMEM_LIMIT 49152 /* static + dynamic shared memory without an opt-in attribute */

/* One warp's ring: stage s holds, for every lane, the 16-byte pieces of rows a (half 0) and b (half 1) and their
 * scale | zero entries. */
template <int D>
struct qb_qf_ring {
    uint4 w[D][2][32];
    uint32_t s_z[D][2][32];
};

/* Rows a and b (slots g and g + 8) of lane group g in tile `tile`: qb_tile_row (engine/quant_tile_map.h) of the
 * epilogue's pairing, written out so that the pair shares one division (qb_tile_row for both slots made two
 * instantiations spill); past the end: clamped, computed, never stored. */
template <int EPI>
__device__ __forceinline__ void qb_qf_rows(const qb_fused_params &p, int tile, int g, int &ra, int &rb) {
    if (QB_FE_ROWS(EPI)) {
        ra = min(tile * 16 + g, p.n_rows - 1);
        rb = min(tile * 16 + g + 8, p.n_rows - 1);
    } else {
        int pair = min(tile * 8 + g, p.n_units - 1);
        if (EPI == QB_FE_SILU) {
            ra = pair;
            rb = pair + p.inter;
        } else {
            int half = p.hd >> 1, head = pair / half;
            ra = head * p.hd + (pair - head * half);
            rb = ra + half;
        }
    }
}

/* Where one warp's next copy comes from: tile, step j of the warp's `mine` steps in it, and the row pointers. */
struct qb_qf_cursor {
    int tile, j;
    const uint4 *wa, *wb;
    const uint32_t *sza, *szb;
    int ws, gs; /* 16-byte pieces between steps of a row, entries between groups */
};

template <int EPI>
__device__ __forceinline__ void qb_qf_point(const qb_fused_params &p, qb_qf_cursor &c, int g, int t) {
    if (p.tile_major) { /* tile, step: 64 pieces (lane 4g + t: row g at 4g + t, row g + 8 at 32 + 4g + t) */
        c.wa = p.qw + (size_t)c.tile * p.steps * 64 + 4 * g + t;
        c.wb = c.wa + 32;
        c.sza = p.sz + (size_t)c.tile * p.groups * 16 + g;
        c.szb = c.sza + 8;
        c.ws = 64;
        c.gs = 16;
        return;
    }
    int ra, rb;
    qb_qf_rows<EPI>(p, c.tile, g, ra, rb);
    const size_t pieces = (size_t)p.steps * 4;
    c.wa = p.qw + (size_t)ra * pieces + t;
    c.wb = p.qw + (size_t)rb * pieces + t;
    c.sza = p.sz + (size_t)ra * p.groups;
    c.szb = p.sz + (size_t)rb * p.groups;
    c.ws = 4;
    c.gs = 1;
}

/* Copy the cursor's step into stage st (nothing past the block's last tile), commit, advance the cursor. */
template <int EPI, int D>
__device__ __forceinline__ void qb_qf_issue(const qb_fused_params &p, qb_qf_ring<D> &ring, int st, qb_qf_cursor &c,
                                            int mine, int warp, int lane, int g, int t) {
    if (mine > 0 && c.tile < p.n_tiles) {
        const int s = warp + c.j * QB_QF_WARPS, gi = s / p.steps_per_group;
        qb_cp_async16(&ring.w[st][0][lane], c.wa + (size_t)c.ws * s);
        qb_cp_async16(&ring.w[st][1][lane], c.wb + (size_t)c.ws * s);
        qb_cp_async4(&ring.s_z[st][0][lane], c.sza + (size_t)c.gs * gi);
        qb_cp_async4(&ring.s_z[st][1][lane], c.szb + (size_t)c.gs * gi);
        if (++c.j == mine) {
            c.j = 0;
            c.tile += gridDim.x;
            if (c.tile < p.n_tiles) qb_qf_point<EPI>(p, c, g, t);
        }
    }
    qb_cp_async_commit();
}

template <int BITS, int D, int XM, int EPI>
__global__ void __launch_bounds__(QB_QF_THREADS) qb_gemv_quant_fused_kernel(qb_fused_params p) {
    extern __shared__ uint4 smem[];
    __shared__ float red[QB_QF_WARPS][16];
    __shared__ float warp_ss[QB_QF_WARPS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    qb_qf_ring<D> &ring = reinterpret_cast<qb_qf_ring<D> *>(smem)[warp];
    uint4 *xs = smem + QB_QF_WARPS * sizeof(qb_qf_ring<D>) / sizeof(uint4); /* the normalised input */
    const int mine = warp < p.steps ? (p.steps - 1 - warp) / QB_QF_WARPS + 1 : 0;
    constexpr int X16_PER_STEP = 64 / BITS; /* 16-byte pieces of x per step (128 or 64 values) */

    qb_qf_cursor c;
    c.tile = blockIdx.x;
    c.j = 0;
    if (c.tile < p.n_tiles) qb_qf_point<EPI>(p, c, g, t);
#pragma unroll
    for (int i = 0; i < D - 1; i++) qb_qf_issue<EPI, D>(p, ring, i, c, mine, warp, lane, g, t); /* before the wait */
    if (XM != QB_FX_VEC) qb_fused_prefetch_norm_w<QB_QF_THREADS>(p);
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (XM == QB_FX_NORM) qb_fused_norm_prologue<QB_QF_THREADS>(p, xs, warp_ss);
    if (XM == QB_FX_TPNORM) qb_fused_tp_norm_prologue<QB_QF_THREADS>(p, xs, warp_ss);
    const uint4 *xt = (XM != QB_FX_VEC ? (const uint4 *)xs : p.x) + (X16_PER_STEP / 4) * t;

    int st = 0, ist = D - 1; /* stage read next, stage written next */
    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) { /* uniform over the block */
        float acc_a = 0.f, acc_b = 0.f;
        for (int j = 0; j < mine; j++) {
            qb_cp_async_wait<D - 2>(); /* this step's group is complete */
            const uint4 va = ring.w[st][0][lane], vb = ring.w[st][1][lane];
            const uint32_t sa = ring.s_z[st][0][lane], sb = ring.s_z[st][1][lane];
            qb_qf_issue<EPI, D>(p, ring, ist, c, mine, warp, lane, g, t); /* refills the stage read last time */
            const uint4 *xp = xt + X16_PER_STEP * (size_t)(warp + j * QB_QF_WARPS);
            if (BITS == 4) qb_q4_tc_step<XM != QB_FX_VEC>(va, vb, xp, sa, sb, acc_a, acc_b);
            else qb_q8_tc_step<XM != QB_FX_VEC>(va, vb, xp, sa, sb, acc_a, acc_b);
            st = st + 1 == D ? 0 : st + 1;
            ist = ist + 1 == D ? 0 : ist + 1;
        }
        /* lanes t = 0..3 of a group hold the same sums (identical columns of C) */
        if (t == 0) {
            red[warp][g] = acc_a;
            red[warp][g + 8] = acc_b;
        }
        __syncthreads();
        if (QB_FE_ROWS(EPI)) {
            if (threadIdx.x < 16) {
                float s = 0.f;
#pragma unroll
                for (int w = 0; w < QB_QF_WARPS; w++) s += red[w][threadIdx.x];
                /* tiled weights of a paired kind (a one-row prefill reads q|k|v and gate|up this way): slot -> row */
                int row = p.tile_major ? qb_tile_row(p.store_kind, tile, (int)threadIdx.x, p.hd, p.inter)
                                       : tile * 16 + (int)threadIdx.x;
                if (row < p.n_rows) qb_fused_epilogue<1, EPI>(p, row, &s);
            }
        } else if (threadIdx.x < 8) {
            float s[2] = {0.f, 0.f};
#pragma unroll
            for (int w = 0; w < QB_QF_WARPS; w++) {
                s[0] += red[w][threadIdx.x];
                s[1] += red[w][threadIdx.x + 8];
            }
            int pair = tile * 8 + (int)threadIdx.x;
            if (pair < p.n_units) qb_fused_epilogue<1, EPI>(p, pair, s);
        }
        __syncthreads(); /* red is reused by the next tile */
    }
    qb_cp_async_wait<0>(); /* no copy outlives the block (the trailing groups are empty) */
}

static int g_qf_stages = 0, g_qf_blocks_per_sm = 0;

extern "C" void qb_gemv_quant_fused_tuning(int stages, int blocks_per_sm) {
    g_qf_stages = stages;
    g_qf_blocks_per_sm = blocks_per_sm;
}

/* Resident blocks per SM of one instantiation, asked of the occupancy calculator once with the most shared memory
 * any launch of it uses (48 KiB), so one answer serves every K. Not asked while `stream` is being captured into a
 * graph (the engine captures its first decode step; qb_gemv_quant_fused_prepare asks before): then 2, uncached. */
template <int BITS, int D, int XM, int EPI>
static int qb_qf_blocks_per_sm(cudaStream_t stream) {
    static int cached = 0;
    if (cached <= 0) {
        cudaStreamCaptureStatus cs = cudaStreamCaptureStatusActive;
        if (stream && (cudaStreamIsCapturing(stream, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone)) {
            (void)cudaGetLastError();
            return 2;
        }
        int b = 0;
        size_t smem = QB_QF_SMEM_LIMIT - sizeof(float) * QB_QF_WARPS * 17;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, qb_gemv_quant_fused_kernel<BITS, D, XM, EPI>,
                                                          QB_QF_THREADS, smem) != cudaSuccess || b <= 0) {
            (void)cudaGetLastError();
            return 2;
        }
        cached = b;
    }
    return cached;
}

/* Launch one instantiation with the grid capped at its resident blocks, balanced so that every block runs the same
 * number of tiles (measured on the H100 against grids of every resident slot and against splitting K across blocks
 * with a last-arriver sum, both slower on the 7B and 72B-TP2 shapes). */
template <int BITS, int D, int XM, int EPI>
static cudaError_t qb_qf_go(const qb_fused_params &p, size_t smem, cudaStream_t s) {
    int bps = g_qf_blocks_per_sm > 0 ? g_qf_blocks_per_sm : qb_qf_blocks_per_sm<BITS, D, XM, EPI>(s);
    long cap = (long)bps * qb_device_sm_count();
    long rounds = (p.n_tiles + cap - 1) / cap;
    int grid = (int)((p.n_tiles + rounds - 1) / rounds);
    return qb_launch_kernel(qb_gemv_quant_fused_kernel<BITS, D, XM, EPI>, dim3(grid), dim3(QB_QF_THREADS), smem, s,
                            p);
}

template <int BITS, int D>
static void qb_qf_prepare_stages(void) {
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_VEC, QB_FE_STORE>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_VEC, QB_FE_RESID>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_VEC, QB_FE_ROPE>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_NORM, QB_FE_ROPE>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_VEC, QB_FE_SILU>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_NORM, QB_FE_SILU>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_VEC, QB_FE_PUSH>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_TPNORM, QB_FE_ROPE>(0);
    (void)qb_qf_blocks_per_sm<BITS, D, QB_FX_TPNORM, QB_FE_SILU>(0);
}

extern "C" void qb_gemv_quant_fused_prepare(void) {
    (void)qb_device_sm_count();
    qb_qf_prepare_stages<4, 2>();
    qb_qf_prepare_stages<4, 3>();
    qb_qf_prepare_stages<4, 4>();
    qb_qf_prepare_stages<8, 2>();
    qb_qf_prepare_stages<8, 3>();
    qb_qf_prepare_stages<8, 4>();
}

template <int BITS, int XM, int EPI>
static cudaError_t qb_qf_stages(int d, const qb_fused_params &p, size_t x_bytes, cudaStream_t s) {
    switch (d) {
    case 2: return qb_qf_go<BITS, 2, XM, EPI>(p, QB_QF_WARPS * sizeof(qb_qf_ring<2>) + x_bytes, s);
    case 3: return qb_qf_go<BITS, 3, XM, EPI>(p, QB_QF_WARPS * sizeof(qb_qf_ring<3>) + x_bytes, s);
    default: return qb_qf_go<BITS, 4, XM, EPI>(p, QB_QF_WARPS * sizeof(qb_qf_ring<4>) + x_bytes, s);
    }
}

template <int XM, int EPI>
static cudaError_t qb_qf_bits(int bits, int d, const qb_fused_params &p, size_t x_bytes, cudaStream_t s) {
    return bits == 4 ? qb_qf_stages<4, XM, EPI>(d, p, x_bytes, s) : qb_qf_stages<8, XM, EPI>(d, p, x_bytes, s);
}

/* Checks, the input, the stage count, then the launch. Named condition for the stages: the most (4, 3, 2) whose
 * rings (8 warps x stages x 1280 bytes) plus the normalised input (2 k bytes) and the static arrays fit the 48 KiB
 * a block gets without an opt-in (7B q|k|v: 4 stages; 14B / 32B / 72B hidden sizes with the normalised input: 3). */
static int qb_qf_launch(int epi, qb_fused_params &p, const qb_gemv_qweights *w, int k, const qb_gemv_input *in,
                        cudaStream_t s, const char *what) {
    if (!w || !w->qweight || !w->sz) return qb_errorf("%s: no quantized weights", what);
    if (!qb_gemv_quant_tc_supported(w->bits, k, w->group_size))
        return qb_errorf("%s: bits %d K %d group_size %d: needs 4 (8) bits, K and group_size multiples of 128 (64)",
                         what, w->bits, k, w->group_size);
    if (((uintptr_t)w->qweight & 15) || ((uintptr_t)w->sz & 3))
        return qb_errorf("%s: qweight must be 16-byte aligned", what);
    int xm = qb_fused_set_input(p, in, epi, k, what);
    if (xm < 0) return -1;
    const int step_k = 512 / w->bits;
    p.tile_major = w->tiled != 0;
    if (epi == QB_FE_STORE && p.tile_major) { /* rows by the weights' tiles (quant_tile.cuh) */
        p.store_kind = w->kind;
        p.hd = w->hd;
        p.inter = w->inter;
        if (!qb_quant_tile_supported(w->kind, p.n_rows, w->hd, w->inter))
            return qb_errorf("%s: %d rows are not tiles of kind %d", what, p.n_rows, w->kind);
    } else if (p.tile_major && (epi == QB_FE_RESID || epi == QB_FE_PUSH) && w->kind != QB_TILE_ROWS) {
        return qb_errorf("%s: the residual add and the push need weights tiled by rows", what);
    }
    if (p.tile_major && (p.n_tiles * 16 != p.n_rows || (epi >= QB_FE_ROPE && p.n_tiles * 8 != p.n_units)))
        return qb_errorf("%s: %d rows are not whole tiles of the tiled layout", what, p.n_rows);
    p.qw = (const uint4 *)w->qweight;
    p.sz = w->sz;
    p.steps = k / step_k;
    p.groups = k / w->group_size;
    p.steps_per_group = w->group_size / step_k;
    size_t x_bytes = xm != QB_FX_VEC ? (size_t)k * 2 : 0;
    const size_t fixed = sizeof(float) * QB_QF_WARPS * 17; /* red + warp_ss */
    int d = g_qf_stages >= 2 && g_qf_stages <= 4 ? g_qf_stages : 4; /* a forced count is the most tried */
    while (d > 2 && QB_QF_WARPS * (size_t)d * 1280 + x_bytes + fixed > QB_QF_SMEM_LIMIT) d--;
    if (QB_QF_WARPS * (size_t)d * 1280 + x_bytes + fixed > QB_QF_SMEM_LIMIT)
        return qb_errorf("%s: K=%d needs more than 48 KiB of shared memory with %d stages", what, k, d);
    cudaError_t rc;
    switch (epi) {
    case QB_FE_STORE: rc = qb_qf_bits<QB_FX_VEC, QB_FE_STORE>(w->bits, d, p, x_bytes, s); break;
    case QB_FE_RESID: rc = qb_qf_bits<QB_FX_VEC, QB_FE_RESID>(w->bits, d, p, x_bytes, s); break;
    case QB_FE_PUSH: rc = qb_qf_bits<QB_FX_VEC, QB_FE_PUSH>(w->bits, d, p, x_bytes, s); break;
    case QB_FE_ROPE:
        rc = xm == QB_FX_NORM     ? qb_qf_bits<QB_FX_NORM, QB_FE_ROPE>(w->bits, d, p, x_bytes, s)
             : xm == QB_FX_TPNORM ? qb_qf_bits<QB_FX_TPNORM, QB_FE_ROPE>(w->bits, d, p, x_bytes, s)
                                  : qb_qf_bits<QB_FX_VEC, QB_FE_ROPE>(w->bits, d, p, x_bytes, s);
        break;
    default:
        rc = xm == QB_FX_NORM     ? qb_qf_bits<QB_FX_NORM, QB_FE_SILU>(w->bits, d, p, x_bytes, s)
             : xm == QB_FX_TPNORM ? qb_qf_bits<QB_FX_TPNORM, QB_FE_SILU>(w->bits, d, p, x_bytes, s)
                                  : qb_qf_bits<QB_FX_VEC, QB_FE_SILU>(w->bits, d, p, x_bytes, s);
        break;
    }
    if (rc != cudaSuccess) return qb_errorf("%s: kernel launch failed: %s", what, cudaGetErrorString(rc));
    return 0;
}

/* The row epilogues' work: n rows, one unit each, tiles of 16. */
static qb_fused_params qb_qf_rows(int n) {
    qb_fused_params p = {};
    p.n_rows = n;
    p.n_units = n;
    p.n_tiles = (n + 15) / 16;
    return p;
}

extern "C" int qb_launch_gemv_quant_fused_store(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in,
                                                uint16_t *y, cudaStream_t stream) {
    if (n <= 0 || !y) return qb_errorf("gemv_quant_fused_store: bad N=%d or no output", n);
    qb_fused_params p = qb_qf_rows(n);
    p.y = (qb_bf16 *)y;
    return qb_qf_launch(QB_FE_STORE, p, w, k, in, stream, "gemv_quant_fused_store");
}

extern "C" int qb_launch_gemv_quant_resid_add(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in,
                                              float *resid, cudaStream_t stream) {
    if (n <= 0 || !resid) return qb_errorf("gemv_quant_resid_add: bad N=%d or no residual", n);
    qb_fused_params p = qb_qf_rows(n);
    p.resid_out = resid;
    return qb_qf_launch(QB_FE_RESID, p, w, k, in, stream, "gemv_quant_resid_add");
}

extern "C" int qb_launch_gemv_quant_tp_push(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in,
                                            const qb_tp_exchange *tp, int point, cudaStream_t stream) {
    qb_fused_params p = qb_qf_rows(n);
    if (qb_fused_set_push(p, tp, point, n, "gemv_quant_tp_push") != 0) return -1;
    return qb_qf_launch(QB_FE_PUSH, p, w, k, in, stream, "gemv_quant_tp_push");
}

extern "C" int qb_launch_gemv_quant_qkv_rope(const qb_gemv_qweights *w, int k, const qb_gemv_input *in,
                                             const float *bias, int hq, int hkv, int hd, const int *pos,
                                             const float *cos_t, const float *sin_t, uint16_t *q_out,
                                             uint16_t *k_cache, uint16_t *v_cache, int max_seq,
                                             cudaStream_t stream) {
    qb_fused_params p = {};
    if (qb_fused_set_rope(p, bias, hq, hkv, hd, pos, cos_t, sin_t, q_out, k_cache, v_cache, max_seq,
                          "gemv_quant_qkv_rope") != 0)
        return -1;
    p.n_tiles = (p.n_units + 7) / 8;
    return qb_qf_launch(QB_FE_ROPE, p, w, k, in, stream, "gemv_quant_qkv_rope");
}

extern "C" int qb_launch_gemv_quant_gate_up_silu(const qb_gemv_qweights *w, int inter, int k,
                                                 const qb_gemv_input *in, uint16_t *act, cudaStream_t stream) {
    if (inter <= 0 || !act) return qb_errorf("gemv_quant_gate_up_silu: bad intermediate size %d or no output", inter);
    qb_fused_params p = {};
    p.n_rows = 2 * inter;
    p.n_units = inter;
    p.n_tiles = (inter + 7) / 8;
    p.inter = inter;
    p.y = (qb_bf16 *)act;
    return qb_qf_launch(QB_FE_SILU, p, w, k, in, stream, "gemv_quant_gate_up_silu");
}

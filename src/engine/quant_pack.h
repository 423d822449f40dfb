/* quant_pack.h - the bit layouts of GPTQ and AWQ packed weights, f16 conversions, and the rule that makes
 * random quantized weights; usable from C and CUDA alike (see ../shared/reference/formats.md).
 *
 * Logical weight W is [N][K] (out, in) as everywhere in the engine; packed tensors are [K..][N..] as in the
 * checkpoints:
 *   GPTQ  qweight [K/pf][N], pf = 32/bits: element (k, n) is bits [bits*(k%pf), +bits) of word (k/pf, n).
 *         qzeros [K/g][N/pf] packed along N the same way, stored minus one; scales f16 [K/g][N]; g = g_idx[k].
 *         w = scale * (q - (zero_stored + 1)).
 *   AWQ   qweight [K][N/8]: column 8c+j of row k is nibble QB_AWQ_REVERSE[j] of word (k, c) (the interleaved
 *         order [0,2,4,6,1,3,5,7]); qzeros [K/g][N/8] the same; scales f16 [K/g][N]; w = scale * (q - zero).
 * Dequantization is (float)(q - z) * scale in fp32: one rounding, the same on every engine and in the test
 * script.
 *
 * Random quantized weights: q(k, n) = a hash of (seed, id("<prefix>.qweight"), k*N_full + n) (see
 * qb_random_quant_q for the range); GPTQ zeros are symmetric (stored 2^(bits-1) - 1, as the Qwen2.5 GPTQ releases); AWQ zeros are in [4, 11];
 * scales are f16 of QB_RANDOM_SCALE / 2^(bits-1) * [0.75, 1.25) (std about 0.02 like the bf16 weights), per
 * (group, n) from id("<prefix>.scales"). Indices are in the FULL tensor, so any slice equals the slice of
 * the whole.
 */
#ifndef QB_ENGINE_QUANT_PACK_H
#define QB_ENGINE_QUANT_PACK_H

#include <stdint.h>

#include "engine/random_init.h"

#define QB_AWQ_PACK 8

/* bit shift of column j (0..7) within an AWQ word: 4 * REVERSE[j], REVERSE = [0,4,1,5,2,6,3,7] */
QB_HD int qb_awq_shift(int j) { return 4 * ((j & 1) * 4 + (j >> 1)); }

/* value of element i (0 .. 32/bits-1) of a word packed LSB first (GPTQ, both directions) */
QB_HD uint32_t qb_gptq_unpack(uint32_t word, int bits, int i) {
    return (word >> (bits * i)) & ((1u << bits) - 1u);
}

/* IEEE half bits -> float, exact (subnormals, inf, NaN). */
QB_HD float qb_f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            int e = -1;
            do { e++; mant <<= 1; } while ((mant & 0x400u) == 0);
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 112u) << 23 | mant << 13;
    }
    union { uint32_t u; float f; } v;
    v.u = bits;
    return v.f;
}

/* float -> IEEE half bits, round to nearest even (overflow -> inf, NaN kept). */
QB_HD uint16_t qb_float_to_f16(float f) {
    union { float f; uint32_t u; } v;
    v.f = f;
    uint32_t sign = (v.u >> 16) & 0x8000u, abs = v.u & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (abs < 0x38800000u) { /* below 2^-14: subnormal half */
        if (abs < 0x33000000u) return (uint16_t)sign; /* below 2^-25: rounds to zero */
        uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(abs >> 23); /* 14 .. 24 */
        uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}

/* Random element q(k, n) of a quantized weight (index = k * N_full + n of the logical [K][N]): uniform in
 * [1, 2^bits - 1] for GPTQ (symmetric around the zero point 2^(bits-1), so the weights have mean 0), in
 * [0, 2^bits - 1] for AWQ (whose zero points are themselves spread around the middle). */
QB_HD uint32_t qb_random_quant_q(uint64_t seed, uint64_t qweight_id, uint64_t index, int bits, int awq) {
    uint64_t h = qb_splitmix64(seed ^ qb_splitmix64(qweight_id ^ qb_splitmix64(index))) >> 40; /* 24 bits */
    if (awq) return (uint32_t)h & ((1u << bits) - 1u);
    return 1u + (uint32_t)(h % ((1u << bits) - 1u));
}

/* Random stored zero point of group row g, column n (index = g * N_full + n). */
QB_HD uint32_t qb_random_quant_zero_stored(uint64_t seed, uint64_t qzeros_id, uint64_t index, int bits, int awq) {
    if (!awq) return (1u << (bits - 1)) - 1u; /* symmetric GPTQ: zero 2^(bits-1), stored minus one */
    uint64_t h = qb_splitmix64(seed ^ qb_splitmix64(qzeros_id ^ qb_splitmix64(index)));
    return 4u + (uint32_t)((h >> 40) & 7u);
}

/* Random f16 scale of group row g, column n (index = g * N_full + n). */
QB_HD uint16_t qb_random_quant_scale(uint64_t seed, uint64_t scales_id, uint64_t index, int bits) {
    float u = qb_random_unit(seed, scales_id, index); /* [-1, 1) */
    return qb_float_to_f16(QB_RANDOM_SCALE / (float)(1 << (bits - 1)) * (1.0f + 0.25f * u));
}

#endif

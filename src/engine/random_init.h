/* random_init.h - the rule that makes random weights, usable from C and CUDA alike.
 *
 * value(seed, tensor, index) is uniform in [-scale, scale), computed by a counter-based hash (splitmix64) of the
 * seed, a 64-bit hash of the tensor's checkpoint name, and the element's index in the FULL (unsharded) tensor.
 * So a rank's slice equals the slice of the whole tensor, and the GPU can fill its memory with the same
 * numbers the CPU reference uses. Linear weights and biases use scale QB_RANDOM_SCALE (std 0.02, the
 * transformers initializer range); norm weights are 1 + U(-0.1, 0.1). Values are rounded to bf16 (round to
 * nearest even) before use, identically everywhere.
 */
#ifndef QB_ENGINE_RANDOM_INIT_H
#define QB_ENGINE_RANDOM_INIT_H

#include <stdint.h>

#ifdef __CUDACC__
#define QB_HD __host__ __device__ __forceinline__
#else
#define QB_HD static inline
#endif

#define QB_RANDOM_SCALE 0.0346410162f /* 0.02 * sqrt(3): uniform with std 0.02 */
#define QB_RANDOM_NORM_SCALE 0.1f

QB_HD uint64_t qb_splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* FNV-1a 64 of a tensor name (host only is enough: ids are computed once per tensor). */
static inline uint64_t qb_tensor_id(const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *name; name++) { h ^= (unsigned char)*name; h *= 0x100000001b3ull; }
    return h;
}

/* Uniform in [-1, 1) from (seed, tensor id, element index). */
QB_HD float qb_random_unit(uint64_t seed, uint64_t tensor_id, uint64_t index) {
    uint64_t h = qb_splitmix64(seed ^ qb_splitmix64(tensor_id ^ qb_splitmix64(index)));
    return (float)((double)(h >> 40) * (1.0 / 8388608.0) - 1.0); /* 24 bits -> [-1, 1) */
}

/* float -> bf16 bits, round to nearest even (NaN kept quiet). */
QB_HD uint16_t qb_float_to_bf16(float f) {
    union { float f; uint32_t u; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)((v.u + rounding) >> 16);
}

QB_HD float qb_bf16_to_float(uint16_t b) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)b << 16;
    return v.f;
}

/* The bf16 value of a random linear weight or bias element. */
QB_HD uint16_t qb_random_weight_bf16(uint64_t seed, uint64_t tensor_id, uint64_t index) {
    return qb_float_to_bf16(QB_RANDOM_SCALE * qb_random_unit(seed, tensor_id, index));
}

/* The value of a random norm weight element (bf16-rounded, returned as float). */
QB_HD float qb_random_norm(uint64_t seed, uint64_t tensor_id, uint64_t index) {
    return qb_bf16_to_float(qb_float_to_bf16(1.0f + QB_RANDOM_NORM_SCALE * qb_random_unit(seed, tensor_id, index)));
}

#endif

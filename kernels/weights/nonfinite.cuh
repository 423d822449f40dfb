/* nonfinite.cuh - find NaN / Inf among weights, on the host or on the device after upload.
 *
 * qb_bits_nonfinite(bits, exp_mask): the one predicate: an IEEE value is NaN or Inf when its exponent bits
 *   are all ones (bf16: 0x7f80, f16: 0x7c00, f32: 0x7f800000). Plain C, so the CPU engine's pass
 *   (engine/weights_finite.c) and the tests use the same rule as the kernel.
 * qb_launch_first_nonfinite: *d_first = min(*d_first, index of the first non-finite element) of the device
 *   buffer data[n] of elem_bytes 2 or 4; the caller presets *d_first to QB_NONFINITE_NONE. Enqueued on
 *   stream (a cudaStream_t, passed as void * so this header needs no CUDA headers). 0 ok, -1 with a message.
 */
#ifndef QB_KERNELS_NONFINITE_CUH
#define QB_KERNELS_NONFINITE_CUH
#include <stddef.h>
#include <stdint.h>

#define QB_NONFINITE_NONE (~0ull)
#define QB_BF16_EXP_MASK 0x7f80u
#define QB_F16_EXP_MASK 0x7c00u
#define QB_F32_EXP_MASK 0x7f800000u

#ifdef __CUDACC__
#define QB_NONFINITE_HD __host__ __device__
#else
#define QB_NONFINITE_HD
#endif

QB_NONFINITE_HD static inline int qb_bits_nonfinite(uint32_t bits, uint32_t exp_mask) {
    return (bits & exp_mask) == exp_mask;
}

#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_first_nonfinite(const void *data, size_t n, int elem_bytes, uint32_t exp_mask,
                              unsigned long long *d_first, void *stream);
#ifdef __cplusplus
}
#endif
#endif

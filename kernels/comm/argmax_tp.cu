/* argmax_tp.cu - pack / unpack the cross-shard argmax key (see argmax_tp.cuh). */
#include "argmax_tp.cuh"
#include "common.cuh"

__device__ __forceinline__ uint32_t qb_float_order(float f) {
    uint32_t b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__global__ void qb_argmax_pack_kernel(const float *logits, const int32_t *local, int index_base, uint64_t *key) {
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int i = *local;
    *key = ((uint64_t)qb_float_order(logits[i]) << 32) | (uint64_t)(uint32_t)~(uint32_t)(index_base + i);
}

__global__ void qb_argmax_unpack_kernel(const uint64_t *key, int32_t *token_out, int32_t *token_log, int *step,
                                        int *pos, int pos_advance) {
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int32_t token = (int32_t)~(uint32_t)(*key & 0xffffffffu);
    *token_out = token;
    if (token_log) token_log[*step] = token;
    if (step) *step += 1;
    if (pos) *pos += pos_advance;
}

extern "C" int qb_launch_argmax_pack(const float *logits, const int32_t *local, int index_base, uint64_t *key,
                                     cudaStream_t stream) {
    QB_LAUNCH("argmax_pack", qb_argmax_pack_kernel, dim3(1), dim3(1), 0, stream, logits, local, index_base, key);
    return 0;
}

extern "C" int qb_launch_argmax_unpack(const uint64_t *key, int32_t *token_out, int32_t *token_log, int *step,
                                       int *pos, int pos_advance, cudaStream_t stream) {
    if (token_log && !step) return qb_errorf("argmax_unpack: token_log needs a step counter");
    QB_LAUNCH("argmax_unpack", qb_argmax_unpack_kernel, dim3(1), dim3(1), 0, stream, key, token_out, token_log, step,
              pos, pos_advance);
    return 0;
}

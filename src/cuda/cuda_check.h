/* cuda_check.h - the CUDA runtime check for the engine's host code: a failing call becomes one error line
 * (util/error.h) naming the call, the file:line and CUDA's reason, and the function returns -1. */
#ifndef QB_CUDA_CHECK_H
#define QB_CUDA_CHECK_H

#include <cuda_runtime_api.h>

#include "util/error.h"

#define QB_CUDA_TRY(call)                                                                                \
    do {                                                                                                 \
        cudaError_t cuda_err_ = (call);                                                                  \
        if (cuda_err_ != cudaSuccess)                                                                    \
            return qb_errorf("%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(cuda_err_)); \
    } while (0)

#endif

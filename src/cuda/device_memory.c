/* device_memory.c - the memory of the GPU a rank will use, for the tensor-parallel planner
 * (bench/planner.h), read without creating a context: totalGlobalMem of device local_rank % count. */
#include <cuda_runtime.h>

#include "engine/backend.h"
#include "util/error.h"

int qb_cuda_device_memory(int local_rank, size_t *total_bytes) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0) return qb_errorf("cuda: no device to size the plan: %s", cudaGetErrorString(err));
    struct cudaDeviceProp prop;
    err = cudaGetDeviceProperties(&prop, local_rank % n);
    if (err != cudaSuccess) return qb_errorf("cuda: cudaGetDeviceProperties: %s", cudaGetErrorString(err));
    *total_bytes = prop.totalGlobalMem;
    return 0;
}

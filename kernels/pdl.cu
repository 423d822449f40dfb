/* pdl.cu - the switch for programmatic dependent launch (see common.cuh): on unless QB_CUDA_PDL=0. */
#include <stdlib.h>

#include "common.cuh"

extern "C" int qb_pdl_enabled(void) {
    static int state = -1;
    if (state < 0) {
        const char *v = getenv("QB_CUDA_PDL");
        state = (v && v[0] == '0') ? 0 : 1;
    }
    return state;
}

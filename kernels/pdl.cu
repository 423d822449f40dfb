/* pdl.cu - the process's switch for programmatic dependent launch (see common.cuh), set by the engine from its
 * --pdl option (src/cuda/cuda_choices.c, qb_choose_pdl) before it launches; on until set. */
#include "common.cuh"

static int g_pdl_enabled = 1;

extern "C" void qb_pdl_set_enabled(int on) { g_pdl_enabled = on ? 1 : 0; }

extern "C" int qb_pdl_enabled(void) { return g_pdl_enabled; }

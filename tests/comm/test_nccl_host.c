/* test_nccl_host.c - the parts of src/comm/cuda/nccl_comm.h that need no GPU: implementation names and
 * the --allreduce choice, and the NCCL library's version string. Runs anywhere the CUDA engine is built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_engine.h"
#include "comm/cuda/nccl_comm.h"
#include "util/error.h"

static int failures = 0;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                               \
        }                                                        \
    } while (0)

int main(void) {
    for (int i = 0; i < QB_AR_COUNT; i++) {
        qb_allreduce_impl back = QB_AR_COUNT;
        const char *name = qb_allreduce_impl_name((qb_allreduce_impl)i);
        CHECK(qb_allreduce_impl_parse(name, &back) == 0 && back == (qb_allreduce_impl)i, "name %s does not parse back",
              name);
    }
    qb_allreduce_impl impl;
    CHECK(qb_allreduce_impl_parse("mpi", &impl) == -1 && strstr(qb_last_error(), "ipc-oneshot"),
          "unknown name: want the list of choices, got '%s'", qb_last_error());

    /* the engine's choice (src/cuda/cuda_choices.c) from --allreduce */
    qb_engine_options o = {{0}};
    CHECK(qb_choose_allreduce(&o) == QB_AR_IPC_ONESHOT, "--allreduce auto: want ipc-oneshot");
    o.v[QB_EOPT_ALLREDUCE] = QB_ALLREDUCE_OPT_NCCL;
    CHECK(qb_choose_allreduce(&o) == QB_AR_NCCL, "--allreduce nccl: want nccl");
    o.v[QB_EOPT_ALLREDUCE] = QB_ALLREDUCE_OPT_IPC_ONESHOT;
    CHECK(qb_choose_allreduce(&o) == QB_AR_IPC_ONESHOT, "--allreduce ipc-oneshot: want ipc-oneshot");

    char version[32];
    qb_nccl_version_string(version, sizeof version);
    int major = 0, minor = 0, patch = 0;
    CHECK(sscanf(version, "%d.%d.%d", &major, &minor, &patch) == 3 && major == 2 && minor >= 27,
          "NCCL version '%s': want 2.27 or later", version);
    printf("NCCL %s\n", version);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("test_nccl_host: all checks passed\n");
    return failures ? 1 : 0;
}

/* nccl_host_test.c - the parts of src/cuda/nccl_comm.h that need no GPU: implementation names and
 * $QB_ALLREDUCE, and the NCCL library's version string. Runs anywhere the CUDA engine is built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/nccl_comm.h"
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

    unsetenv("QB_ALLREDUCE");
    CHECK(qb_allreduce_impl_from_env(&impl) == 0 && impl == QB_AR_DEFAULT, "default when $QB_ALLREDUCE is unset");
    setenv("QB_ALLREDUCE", "nccl-symmetric", 1);
    CHECK(qb_allreduce_impl_from_env(&impl) == 0 && impl == QB_AR_NCCL_SYMMETRIC, "$QB_ALLREDUCE=nccl-symmetric");
    setenv("QB_ALLREDUCE", "fast", 1);
    CHECK(qb_allreduce_impl_from_env(&impl) == -1 && strstr(qb_last_error(), "$QB_ALLREDUCE"),
          "bad $QB_ALLREDUCE must name the variable: '%s'", qb_last_error());

    char version[32];
    qb_nccl_version_string(version, sizeof version);
    int major = 0, minor = 0, patch = 0;
    CHECK(sscanf(version, "%d.%d.%d", &major, &minor, &patch) == 3 && major == 2 && minor >= 27,
          "NCCL version '%s': want 2.27 or later (symmetric windows)", version);
    printf("NCCL %s\n", version);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("nccl_host_test: all checks passed\n");
    return failures ? 1 : 0;
}

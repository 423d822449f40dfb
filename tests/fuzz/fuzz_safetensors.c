/* fuzz_safetensors.c - libFuzzer target: the safetensors header parser and validator on arbitrary bytes.
 *
 * Any input must give either a clean -1 with a one-line message, or a file whose every tensor lies inside
 * the buffer (each accepted tensor's bytes are read here, so AddressSanitizer sees any out-of-bounds range),
 * is found by name, and has numel x dtype size == its byte range. Build and run: tests/run_fuzz.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy of exactly `size` bytes, so reading one byte past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    qb_st_file f;
    if (qb_st_parse(copy, size, "fuzz", &f) != 0) {
        const char *msg = qb_last_error();
        if (msg[0] == '\0' || strchr(msg, '\n')) abort(); /* failures must say why, in one line */
        free(copy);
        return 0;
    }
    uint64_t covered = 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        const qb_st_tensor *t = &f.tensors[i];
        if (qb_st_find(&f, t->name) != t) abort();
        if (t->end < t->begin || t->end > f.data_size) abort();
        if (t->numel * (uint64_t)qb_st_dtype_bits(t->dtype) / 8 != t->end - t->begin) abort();
        const uint8_t *b = qb_st_bytes(&f, t);
        for (uint64_t k = 0; k < t->end - t->begin; k++) sink ^= b[k];
        covered += t->end - t->begin;
    }
    if (covered != f.data_size) abort(); /* tensors tile the data buffer exactly */
    (void)sink;
    qb_st_close(&f);
    free(copy);
    return 0;
}

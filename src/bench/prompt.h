/* prompt.h - the synthetic prompt rule, shared by the harness, the tests and the Python fixture script.
 *
 * random: token[i] = (uint32)(splitmix64(splitmix64(seed) + i) >> 32) % limit, limit = min(151643, vocab_size)
 *         (151643 = the tokenizer's ordinary tokens, so no control token appears in a prompt);
 * repeat:ID: every token is ID (the seed script repeats one character, one token each).
 * tests/make_fixtures.py reimplements the same rule; keep them in step.
 */
#ifndef QB_BENCH_PROMPT_H
#define QB_BENCH_PROMPT_H

#include <stdint.h>

#include "engine/random_init.h"

#define QB_ORDINARY_TOKENS 151643

static inline int32_t qb_prompt_random_token(uint64_t seed, int64_t i, int vocab_size) {
    uint32_t limit = vocab_size < QB_ORDINARY_TOKENS ? (uint32_t)vocab_size : QB_ORDINARY_TOKENS;
    uint64_t h = qb_splitmix64(qb_splitmix64(seed) + (uint64_t)i);
    return (int32_t)((uint32_t)(h >> 32) % limit);
}

static inline void qb_prompt_fill(int32_t *tokens, int n, int repeat_mode, int32_t repeat_id, uint64_t seed,
                                  int vocab_size) {
    for (int i = 0; i < n; i++)
        tokens[i] = repeat_mode ? repeat_id : qb_prompt_random_token(seed, i, vocab_size);
}

#endif

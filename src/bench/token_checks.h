/* token_checks.h - checks of what a cell generated against an independent engine, outside the timed region.
 *
 * --check reference[:N]: the CPU reference engine (same weights, same TP size) generates the first N tokens
 * (default 16) for the same prompt; they must equal the engine's, or at the first difference each side's token
 * must be in the other's top 5 at that step (bf16 rounding may swap near-ties). Skipped, with a note, where the
 * CPU would need more than about two minutes.
 * --expect-tokens FILE: compare with tokens another engine generated (JSON written by the transformers peer):
 * the steps equal before the first difference are recorded; at the difference, the other engine's token must be
 * in our top 5. Either failure makes the cell INVALID with the step and the tokens.
 *
 * Always: the logits of step 0 (the prompt's prefill, untimed) must be finite, else the cell is INVALID naming
 * the logit.
 *
 * The expected-tokens file (format: bench/expected_tokens.h) is read and checked before the first cell
 * (qb_runner.expected); a cell it has no entry for gets a note.
 */
#ifndef QB_BENCH_TOKEN_CHECKS_H
#define QB_BENCH_TOKEN_CHECKS_H

#include "bench/cell_exec.h"

/* Every rank calls it after the timed runs (the backends are collective). tokens: the engine's check run.
 * Rank 0's c receives notes in c->checks and, on failure, status INVALID with the reason. -1 on an error that
 * prevents the check (message recorded). */
int qb_token_checks(const qb_runner *r, qb_cell_group *g, const int32_t *prompt, int n_prompt,
                    const int32_t *tokens, int n_gen, qb_cell_record *c);

/* Appends "; text" to the cell's list of checks. */
void qb_cell_note(qb_cell_record *c, const char *text);

#endif

/* limits.h - the bounds of the run settings, one set for the command line (cli/options.c, whose --help quotes
 * them) and sweep files (config/sweep.c), and the size caps of the user-given input files.
 *
 * They bound allocations and run time for any input, hostile or mistyped, and are far above every real use:
 * the published sweeps use inputs up to 129024 tokens, 2048 generated tokens, 3 repetitions, 1 warm-up run,
 * 144 cells. Plain literals, so that QB_LIMIT_STR can quote them in help texts.
 */
#ifndef QB_CONFIG_LIMITS_H
#define QB_CONFIG_LIMITS_H

#define QB_LIMIT_CONTEXT_LEN 1048576        /* input length in tokens: [1, 2^20] */
#define QB_LIMIT_GENERATE_LEN 1048576       /* generated tokens per run: [1, 2^20] */
#define QB_LIMIT_REPETITIONS 1000           /* timed runs per cell: [1, 1000] */
#define QB_LIMIT_WARMUP 100                 /* untimed runs per cell: [0, 100] */
#define QB_LIMIT_TP 1024                    /* tensor-parallel size: [1, 1024] */
#define QB_LIMIT_DEADLINE_MIN_S 1           /* --deadline: [1, 1e6] seconds (shorter would abort healthy runs) */
#define QB_LIMIT_DEADLINE_MAX_S 1e6
#define QB_LIMIT_SWEEP_CELLS 10000          /* cells of one sweep file, all entries together */
#define QB_LIMIT_MODEL_NAME_LEN 4095        /* a preset name or checkpoint directory in a sweep file */
#define QB_LIMIT_SWEEP_FILE_BYTES 1048576   /* a --sweep file: at most 1 MiB */
#define QB_LIMIT_EXPECT_TOKENS_FILE_BYTES 67108864 /* an --expect-tokens file: at most 64 MiB */

/* "1048576" for QB_LIMIT_STR(QB_LIMIT_CONTEXT_LEN) */
#define QB_LIMIT_STR(x) QB_LIMIT_STR_(x)
#define QB_LIMIT_STR_(x) #x

#endif

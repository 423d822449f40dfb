/* tokens_cmd.h - `qwenbench tokens FILE.h5 [--cell N]`: print the prompt rule and the generated token ids of
 * every run of a results file (or of one cell), so anyone can check what a number was measured on. */
#ifndef QB_RESULTS_TOKENS_CMD_H
#define QB_RESULTS_TOKENS_CMD_H

/* argv[0] is "tokens". Returns the process exit status. */
int qb_tokens_command(int argc, char **argv);

#endif

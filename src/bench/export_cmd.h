/* export_cmd.h - `qwenbench export-weights --model PRESET --out DIR [--seed N] [--shards N]`: write the random
 * weights a run uses as a Hugging Face checkpoint (config.json + safetensors), so that a peer engine such as
 * transformers runs exactly the same model. */
#ifndef QB_BENCH_EXPORT_CMD_H
#define QB_BENCH_EXPORT_CMD_H

/* argv[0] is "export-weights". Returns the process exit status. */
int qb_export_weights_command(int argc, char **argv);

#endif

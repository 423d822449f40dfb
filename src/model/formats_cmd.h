/* formats_cmd.h - `qwenbench formats --json`: the weight-format table (model/weight_format.h) and the Qwen2
 * family's tensor table (model/model_family.h) as JSON, the one source analysis/ reads (configs/formats.json
 * is this output, committed; a test keeps them equal). */
#ifndef QB_MODEL_FORMATS_CMD_H
#define QB_MODEL_FORMATS_CMD_H

/* The tables as a JSON text (malloc'd, ends with a newline), or NULL on out of memory. */
char *qb_formats_json(void);
/* argv[0] is "formats"; "--json" is required (the only output). Returns the process exit status. */
int qb_formats_command(int argc, char **argv);

#endif

/* weight_format.h - the weight formats qwenbench runs (bf16, GPTQ int8 / int4, AWQ), each described once.
 *
 * One row of a static table per format: its names (the --quant / results name, the Qwen2.5 release suffix,
 * the checkpoint's quantization_config.quant_method), bits per value, the published group size, the packing
 * (GPTQ: along K, LSB first, zero points stored minus one, a g_idx per input; AWQ: along N in the interleaved
 * order of quant_pack.h, zero points as stored), the tensor suffixes one linear has in a checkpoint, the
 * bytes of scales and zero points, and the kernel family that serves it. Everything that needs such a fact
 * (config parsing, loaders, shard plan, memory plans, roofline, CUDA upload, `qwenbench formats --json` for
 * analysis/) asks these accessors instead of spelling it. Bit layouts themselves are in engine/quant_pack.h.
 */
#ifndef QB_MODEL_WEIGHT_FORMAT_H
#define QB_MODEL_WEIGHT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    QB_QUANT_BF16 = 0,
    QB_QUANT_GPTQ_INT8,
    QB_QUANT_GPTQ_INT4,
    QB_QUANT_AWQ,
    QB_QUANT_COUNT
} qb_quant;

typedef enum {
    QB_PACK_DENSE = 0, /* one 16-bit value per weight, [N][K] */
    QB_PACK_GPTQ,      /* AutoGPTQ v1: qweight [K/pf][N] packed along K, qzeros [K/g][N/pf], scales, g_idx [K] */
    QB_PACK_AWQ,       /* AutoAWQ GEMM: qweight [K][N/8] packed along N (interleaved), qzeros [K/g][N/8], scales */
} qb_packing;

#define QB_FORMAT_MAX_PARTS 4
/* Index of a tensor in a format's parts[]: dense formats have "weight" only, packed ones these four (AWQ
 * without g_idx). */
enum { QB_PART_WEIGHT = 0, QB_PART_QWEIGHT = 0, QB_PART_QZEROS = 1, QB_PART_SCALES = 2, QB_PART_G_IDX = 3 };

/* Bytes per group and output row of the engines' repacked layout (engine/quant_repack.h): one u32 holding
 * the f16 scale and the zero point. */
#define QB_ENGINE_GROUP_BYTES 4

typedef struct {
    qb_quant id;
    const char *name;           /* --quant, results, formats.json: "gptq-int4" */
    const char *published_name; /* the Qwen2.5 release's suffix: "GPTQ-Int4" */
    const char *quant_method;   /* quantization_config.quant_method ("gptq", "awq"); NULL for dense */
    int bits;                   /* bits per stored weight value (16 for bf16) */
    int default_group_size;     /* group size of the published releases (0: not grouped) */
    qb_packing packing;
    int values_per_word;        /* values per packed int32 word (32 / bits); 1 for dense */
    bool zeros_stored_minus_one;/* GPTQ v1 stores zero - 1 */
    bool symmetric;             /* presets' zero points sit at 2^(bits-1) */
    bool has_g_idx;             /* a g_idx [K] tensor per linear */
    int scale_bytes;            /* bytes per stored scale (f16: 2; 0 for dense) */
    int n_parts;
    const char *parts[QB_FORMAT_MAX_PARTS]; /* tensor suffixes of one linear: "weight" | "qweight", "qzeros", ... */
    const char *kernels;        /* the kernel family serving it, as the decode plan names it (cuda_decode_plan.c),
                                 * with its files */
} qb_weight_format_info;

/* The row of q, or NULL when q is not a format. */
const qb_weight_format_info *qb_format_info(qb_quant q);
/* "bf16", "gptq-int8", ... ("unknown" out of range). */
const char *qb_quant_name(qb_quant q);
/* Inverse of qb_quant_name; -1 with "unknown quantization ..." naming the known ones. */
int qb_quant_parse(const char *s, qb_quant *out);
/* "bf16, gptq-int8, gptq-int4, awq": every format's name, for messages and help. */
const char *qb_quant_name_list(void);
/* The format a checkpoint's quant_method (case-insensitive) and bits name; -1 (no message) when none. */
int qb_quant_from_checkpoint(const char *quant_method, int bits, qb_quant *out);
/* "4 or 8" ("4 only"): the bits the formats of quant_method support, for messages; "" for an unknown method. */
const char *qb_quant_bits_list(const char *quant_method);
/* The row of (packing, bits), or NULL when the table has none (then no kernel serves it). */
const qb_weight_format_info *qb_format_find(qb_packing packing, int bits);
/* Is (packing, bits) a format of the table (the kernels of that format serve it)? */
bool qb_format_supported(qb_packing packing, int bits);

/* Element counts of one K x N linear in the checkpoint's packing (group size g), as the loaders hold it. */
typedef struct {
    size_t weight;  /* dense values (16-bit) */
    size_t qweight; /* int32 words */
    size_t qzeros;  /* int32 words */
    size_t scales;  /* 16-bit values */
    size_t g_idx;   /* int32 values */
} qb_format_counts;
qb_format_counts qb_format_checkpoint_counts(qb_quant q, size_t k, size_t n, size_t g);
/* Host bytes of one K x N linear in the checkpoint's packing (bias excluded): what the loaders allocate. */
size_t qb_format_host_linear_bytes(qb_quant q, size_t k, size_t n, size_t g);

/* The engines' repacked layout of an N x K quantized matrix (engine/quant_repack.h): qweight n rows of
 * k*bits/32 u32 words, sz n rows of k/g u32 words. */
size_t qb_engine_qweight_bytes(int bits, size_t n, size_t k);
size_t qb_engine_sz_bytes(size_t n, size_t k, size_t g);
/* Bytes per weight the engines read in format q: 2 for dense, bits/8 + QB_ENGINE_GROUP_BYTES/g quantized
 * (g <= 0: the format's published group size). */
double qb_format_engine_bytes_per_weight(qb_quant q, int g);

#endif

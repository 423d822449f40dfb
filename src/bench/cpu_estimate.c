/* cpu_estimate.c - rough time of a CPU run (see cpu_estimate.h). */
#include "bench/cpu_estimate.h"

#include "config/model_config.h"
#include "util/error.h"

double qb_cpu_estimate_s(const qb_options *o, const qb_cell_spec *cells, int n_cells, double *max_weight_bytes) {
    double total = 0.0;
    *max_weight_bytes = 0.0;
    const double runs = (double)o->warmup + o->repetitions;
    for (int i = 0; i < n_cells; i++) {
        qb_model_config cfg;
        bool ckpt = false;
        if (qb_model_config_resolve(cells[i].model, &cfg, &ckpt, NULL, 0) != 0) {
            qb_error_clear();
            return -1.0;
        }
        const double params = (double)qb_model_param_count(&cfg);
        const double weight_bytes = 2.0 * params;
        if (weight_bytes > *max_weight_bytes) *max_weight_bytes = weight_bytes;
        const double decode_s = (double)o->generate_length * weight_bytes / QB_CPU_BYTES_PER_S;
        const double prefill_s = 2.0 * params * cells[i].context_len / QB_CPU_FLOPS;
        total += runs * (decode_s + prefill_s);
    }
    return total;
}

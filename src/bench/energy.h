/* energy.h - power, energy, clocks and throttling of one GPU during a timed run, read from NVML.
 *
 * NVML is loaded at run time with dlopen (no NVML or CUDA headers are needed: the few functions and types
 * used are declared in energy.c), so the module builds everywhere; where the library cannot be loaded, or
 * the device is not found, the meter says "unavailable: why" and measures nothing.
 * Method (as the ML.ENERGY benchmark): the energy is the difference of the GPU's total energy counter
 * (nvmlDeviceGetTotalEnergyConsumption, mJ, Volta and later) read at the two edges of the window; where the
 * counter is not supported, the power samples are integrated (trapezoids). A thread samples power, SM and
 * memory clocks, temperature and the clocks-event (throttle) reasons every interval_ms while the window is open.
 * Start the window before the timed region's clock starts and stop it after the clock stops: starting and
 * stopping (thread creation and join) stay outside the timed region.
 */
#ifndef QB_BENCH_ENERGY_H
#define QB_BENCH_ENERGY_H

#include <stdint.h>

#define QB_NVML_LIBRARY "libnvidia-ml.so.1"
#define QB_ENERGY_INTERVAL_MS 25

/* NVML clocks-event reason bits that mean the GPU was slowed down: SW power cap (0x4), HW slowdown (0x8),
 * SW thermal (0x20), HW thermal (0x40), HW power brake (0x80). Idle (0x1), application clock setting (0x2),
 * sync boost (0x10) and display clock setting (0x100) are not throttling. */
#define QB_THROTTLE_REASON_MASK 0xECull

/* One window (one timed run) of one GPU. */
typedef struct {
    int available;             /* 0: nothing measured (the meter's why says so) */
    int from_counter;          /* 1: energy from the energy counter; 0: integrated power samples */
    double seconds;            /* between the two edges */
    double energy_j;
    int n_samples;
    double power_sum_w, power_peak_w;           /* sum over samples (for the mean), highest sample */
    double sm_clock_sum_mhz, mem_clock_sum_mhz; /* sums over samples */
    double temperature_max_c;
    uint64_t reasons_seen;     /* OR of every sample's clocks-event reasons */
} qb_energy_window;

/* Several windows of one GPU added up (fixed size: rank summaries carry it through MPI). */
typedef struct {
    int32_t available;         /* 1 when every window was measured */
    int32_t from_counter;      /* 1 when every window used the energy counter */
    int32_t n_windows, n_samples;
    double seconds, energy_j;
    double power_sum_w, power_peak_w, sm_clock_sum_mhz, mem_clock_sum_mhz, temperature_max_c;
    uint64_t reasons_seen;
    char why[96];              /* why not available */
} qb_energy_totals;

typedef struct qb_energy_meter qb_energy_meter;

/* Load the library (NULL: QB_NVML_LIBRARY), initialise NVML and find the GPU by its UUID ("GPU-..."). Never
 * fails: NULL only when out of memory; otherwise a meter that is available or says why not. */
qb_energy_meter *qb_energy_meter_open(const char *library, const char *device_uuid, int interval_ms);
/* NULL when available, else "unavailable: why". */
const char *qb_energy_meter_unavailable(const qb_energy_meter *m);
/* Open the window: start the sampling thread, then read the energy counter. 0 ok; -1 (error set) when the
 * thread cannot start (the window then measures nothing). Nothing happens on an unavailable meter. */
int qb_energy_meter_start(qb_energy_meter *m);
/* Close the window: read the energy counter, stop and join the thread, fill *out. */
void qb_energy_meter_stop(qb_energy_meter *m, qb_energy_window *out);
void qb_energy_meter_close(qb_energy_meter *m);

/* Totals: start empty (available until a window says otherwise), add each window. */
void qb_energy_totals_init(qb_energy_totals *t);
void qb_energy_totals_add(qb_energy_totals *t, const qb_energy_window *w, const char *why_unavailable);

/* The cell's figures from its GPUs' totals (each covering the same n_runs runs of n_gen tokens). */
typedef struct {
    int available;
    int from_counter;
    double energy_j;          /* per run: sum over GPUs, mean over runs */
    double joules_per_token;
    double power_mean_w;      /* sum over GPUs of each GPU's mean draw (energy / time) */
    double power_peak_w;      /* sum over GPUs of each GPU's highest sample (an upper bound of the cell's peak) */
    double sm_clock_mhz, mem_clock_mhz; /* mean over every sample of every GPU */
    double temperature_max_c;
    uint64_t reasons_seen;
    int throttled;            /* 1 when a reason in QB_THROTTLE_REASON_MASK was seen */
    char why[96];
} qb_energy_cell;

void qb_energy_cell_combine(const qb_energy_totals *const *gpus, int n_gpus, int n_runs, int n_gen,
                            qb_energy_cell *out);
/* "SW power cap, HW slowdown" from a reasons mask (throttling bits only); "" when none. */
void qb_throttle_reasons_text(uint64_t reasons, char *out, int size);

#endif

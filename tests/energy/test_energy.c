/* test_energy.c - the NVML meter (src/bench/energy.h) against a stand-in library (fake_nvml.c).
 *
 * Usage: test_energy FAKE_LIBNVML.so
 * Energy from the counter (300 W for ~0.2 s: ~60 J), from integrated power when the counter is not supported,
 * mean/peak watts, clocks, temperature, the throttle flag (idle alone is not throttling; SW power cap is),
 * the cell's J/token over two GPUs, and "unavailable" for a missing library, an unknown GPU and no GPU.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench/energy.h"

static int failures;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            failures++;                                   \
            fprintf(stderr, "FAIL line %d: ", __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                 \
            fputc('\n', stderr);                          \
        }                                                 \
    } while (0)

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int near(double x, double want, double rel) { return fabs(x - want) <= rel * fabs(want); }

static void one_window(qb_energy_meter *m, int ms, qb_energy_window *w) {
    CHECK(qb_energy_meter_start(m) == 0, "start");
    sleep_ms(ms);
    qb_energy_meter_stop(m, w);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FAKE_LIBNVML.so\n", argv[0]);
        return 2;
    }
    const char *fake = argv[1];
    /* the same library object the meter loads: its control functions script the readings */
    void *lib = dlopen(fake, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "cannot load %s: %s\n", fake, dlerror());
        return 1;
    }
    void (*set_reasons)(unsigned long long) = (void (*)(unsigned long long))dlsym(lib, "fake_nvml_set_reasons");
    void (*set_energy)(int) = (void (*)(int))dlsym(lib, "fake_nvml_set_energy_supported");
    if (!set_reasons || !set_energy) {
        fprintf(stderr, "stand-in lacks its control functions\n");
        return 1;
    }

    /* counter: 300 mJ per ms */
    qb_energy_meter *m = qb_energy_meter_open(fake, "GPU-fake-0", 20);
    CHECK(m && !qb_energy_meter_unavailable(m), "meter unavailable: %s", m ? qb_energy_meter_unavailable(m) : "NULL");
    qb_energy_window w;
    one_window(m, 200, &w);
    CHECK(w.available && w.from_counter, "counter window: available %d from_counter %d", w.available, w.from_counter);
    CHECK(near(w.energy_j / w.seconds, 300.0, 0.10), "counter: %.3f J over %.3f s, want 300 W", w.energy_j, w.seconds);
    CHECK(w.n_samples >= 5, "only %d samples in 200 ms at 20 ms", w.n_samples);
    CHECK(near(w.power_sum_w / w.n_samples, 300.0, 1e-9) && near(w.power_peak_w, 300.0, 1e-9), "power mean/peak");
    CHECK(near(w.sm_clock_sum_mhz / w.n_samples, 1980, 1e-9) && near(w.mem_clock_sum_mhz / w.n_samples, 2619, 1e-9),
          "clocks");
    CHECK(w.temperature_max_c == 61 && w.reasons_seen == 0x1, "temperature %.0f reasons %llx", w.temperature_max_c,
          (unsigned long long)w.reasons_seen);

    /* two GPUs of a cell, two runs each: J/token = (sum over GPUs, mean over runs) / tokens; idle is not throttling */
    qb_energy_totals a, b;
    qb_energy_totals_init(&a);
    qb_energy_totals_init(&b);
    qb_energy_totals_add(&a, &w, NULL);
    qb_energy_window w2;
    one_window(m, 100, &w2);
    qb_energy_totals_add(&a, &w2, NULL);
    b = a;
    const qb_energy_totals *gpus[2] = {&a, &b};
    qb_energy_cell cell;
    qb_energy_cell_combine(gpus, 2, 2, 100, &cell);
    double want_j = 2 * (w.energy_j + w2.energy_j) / 2;
    CHECK(cell.available && near(cell.energy_j, want_j, 1e-9), "cell energy %.3f, want %.3f", cell.energy_j, want_j);
    CHECK(near(cell.joules_per_token, want_j / 100, 1e-9), "J/token %.4f", cell.joules_per_token);
    CHECK(near(cell.power_mean_w, 600.0, 0.02) && near(cell.power_peak_w, 600.0, 1e-9), "cell watts %.1f mean %.1f peak",
          cell.power_mean_w, cell.power_peak_w);
    CHECK(near(cell.sm_clock_mhz, 1980, 1e-9) && cell.throttled == 0, "cell clocks %.0f throttled %d",
          cell.sm_clock_mhz, cell.throttled);

    /* a throttle reason during a run: SW power cap */
    set_reasons(0x4);
    qb_energy_window w3;
    one_window(m, 60, &w3);
    set_reasons(0);
    qb_energy_totals_add(&a, &w3, NULL);
    qb_energy_cell_combine(gpus, 2, 3, 100, &cell);
    char text[128];
    qb_throttle_reasons_text(cell.reasons_seen, text, sizeof text);
    CHECK(cell.throttled == 1 && strcmp(text, "SW power cap") == 0, "throttled %d (%s)", cell.throttled, text);

    /* no energy counter (pre-Volta): the power samples are integrated */
    set_energy(0);
    qb_energy_window w4;
    one_window(m, 200, &w4);
    set_energy(1);
    CHECK(w4.available && !w4.from_counter, "fallback window: available %d from_counter %d", w4.available,
          w4.from_counter);
    CHECK(near(w4.energy_j / w4.seconds, 300.0, 0.15), "integrated: %.3f J over %.3f s, want ~300 W", w4.energy_j,
          w4.seconds);
    qb_energy_meter_close(m);

    /* unavailable: missing library, unknown GPU, no GPU; their windows measure nothing and the cell says why */
    const char *cases[][2] = {{"/nonexistent/libnvidia-ml.so.1", "GPU-fake-0"}, {fake, "GPU-other"}, {fake, ""}};
    const char *want[] = {"unavailable: cannot load /nonexistent/libnvidia-ml.so.1",
                          "unavailable: NVML does not know GPU GPU-other", "unavailable: no GPU"};
    for (int i = 0; i < 3; i++) {
        qb_energy_meter *u = qb_energy_meter_open(cases[i][0], cases[i][1], 20);
        const char *why = u ? qb_energy_meter_unavailable(u) : NULL;
        CHECK(why && strncmp(why, want[i], strlen(want[i])) == 0, "case %d: '%s', want '%s'", i, why ? why : "(null)",
              want[i]);
        qb_energy_window none;
        one_window(u, 1, &none);
        CHECK(!none.available, "case %d: an unavailable meter measured something", i);
        qb_energy_totals t;
        qb_energy_totals_init(&t);
        qb_energy_totals_add(&t, &none, why);
        const qb_energy_totals *one[1] = {&t};
        qb_energy_cell_combine(one, 1, 1, 100, &cell);
        CHECK(!cell.available && isnan(cell.joules_per_token) && cell.throttled == -1 && strcmp(cell.why, why) == 0,
              "case %d: cell available %d J/token %g throttled %d why '%s'", i, cell.available, cell.joules_per_token,
              cell.throttled, cell.why);
        qb_energy_meter_close(u);
    }
    dlclose(lib);
    if (failures) return 1;
    printf("energy meter: all checks passed\n");
    return 0;
}

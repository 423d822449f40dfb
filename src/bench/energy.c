/* energy.c - the NVML meter of one GPU, loaded with dlopen (see energy.h). */
#include "bench/energy.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/printable.h"
#include "util/error.h"

/* The few NVML declarations used (nvml.h's names and values). */
typedef int nvml_return;
typedef struct nvml_device_opaque *nvml_device;
enum { NVML_SUCCESS = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2, NVML_TEMPERATURE_GPU = 0 };

typedef struct {
    nvml_return (*init)(void);
    nvml_return (*shutdown)(void);
    nvml_return (*handle_by_uuid)(const char *, nvml_device *);
    nvml_return (*power_usage)(nvml_device, unsigned int *);                  /* mW */
    nvml_return (*total_energy)(nvml_device, unsigned long long *);          /* mJ */
    nvml_return (*clock_info)(nvml_device, int, unsigned int *);             /* MHz */
    nvml_return (*temperature)(nvml_device, int, unsigned int *);            /* C */
    nvml_return (*clock_reasons)(nvml_device, unsigned long long *);         /* bit mask */
} nvml_api;

struct qb_energy_meter {
    void *library;
    int initialised;
    nvml_api api;
    nvml_device device;
    int interval_ms;
    char why[96];
    /* the open window */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int running, stop;
    int counter_ok;
    unsigned long long counter_start_mj;
    double t_start, last_t, last_w;
    qb_energy_window w;
};

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void unavailable(qb_energy_meter *m, const char *why) {
    char safe[80];
    qb_printable(why, safe, sizeof safe);
    snprintf(m->why, sizeof m->why, "unavailable: %s", safe);
}

static void *symbol(qb_energy_meter *m, const char *name, int required) {
    void *f = dlsym(m->library, name);
    if (!f && required && !m->why[0]) {
        char why[80];
        snprintf(why, sizeof why, "NVML has no %s", name);
        unavailable(m, why);
    }
    return f;
}

qb_energy_meter *qb_energy_meter_open(const char *library, const char *device_uuid, int interval_ms) {
    qb_energy_meter *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->interval_ms = interval_ms > 0 ? interval_ms : QB_ENERGY_INTERVAL_MS;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (!device_uuid || !device_uuid[0]) {
        unavailable(m, "no GPU");
        return m;
    }
    const char *path = library ? library : QB_NVML_LIBRARY;
    m->library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->library) {
        char why[80];
        snprintf(why, sizeof why, "cannot load %s", path);
        unavailable(m, why);
        return m;
    }
    nvml_api *a = &m->api;
    *(void **)&a->init = symbol(m, "nvmlInit_v2", 1);
    *(void **)&a->shutdown = symbol(m, "nvmlShutdown", 1);
    *(void **)&a->handle_by_uuid = symbol(m, "nvmlDeviceGetHandleByUUID", 1);
    *(void **)&a->power_usage = symbol(m, "nvmlDeviceGetPowerUsage", 1);
    *(void **)&a->clock_info = symbol(m, "nvmlDeviceGetClockInfo", 1);
    *(void **)&a->temperature = symbol(m, "nvmlDeviceGetTemperature", 1);
    *(void **)&a->total_energy = symbol(m, "nvmlDeviceGetTotalEnergyConsumption", 0);
    *(void **)&a->clock_reasons = symbol(m, "nvmlDeviceGetCurrentClocksEventReasons", 0);
    if (!a->clock_reasons) *(void **)&a->clock_reasons = symbol(m, "nvmlDeviceGetCurrentClocksThrottleReasons", 0);
    if (m->why[0]) return m;
    nvml_return rc = a->init();
    if (rc != NVML_SUCCESS) {
        char why[80];
        snprintf(why, sizeof why, "nvmlInit failed (NVML error %d)", rc);
        unavailable(m, why);
        return m;
    }
    m->initialised = 1;
    rc = a->handle_by_uuid(device_uuid, &m->device);
    if (rc != NVML_SUCCESS) {
        char why[96];
        snprintf(why, sizeof why, "NVML does not know GPU %.48s (error %d)", device_uuid, rc);
        unavailable(m, why);
    }
    return m;
}

const char *qb_energy_meter_unavailable(const qb_energy_meter *m) { return m->why[0] ? m->why : NULL; }

/* One sample of every reading (the lock held); the power is integrated from the previous sample. */
static void take_sample(qb_energy_meter *m) {
    const nvml_api *a = &m->api;
    unsigned int mw = 0, sm = 0, mem = 0, temp = 0;
    unsigned long long reasons = 0;
    double t = monotonic_s();
    if (a->power_usage(m->device, &mw) == NVML_SUCCESS) {
        double w = mw / 1000.0;
        if (m->w.n_samples > 0) m->w.energy_j += 0.5 * (w + m->last_w) * (t - m->last_t);
        m->last_t = t;
        m->last_w = w;
        m->w.n_samples++;
        m->w.power_sum_w += w;
        if (w > m->w.power_peak_w) m->w.power_peak_w = w;
        if (a->clock_info(m->device, NVML_CLOCK_SM, &sm) == NVML_SUCCESS) m->w.sm_clock_sum_mhz += sm;
        if (a->clock_info(m->device, NVML_CLOCK_MEM, &mem) == NVML_SUCCESS) m->w.mem_clock_sum_mhz += mem;
        if (a->temperature(m->device, NVML_TEMPERATURE_GPU, &temp) == NVML_SUCCESS && temp > m->w.temperature_max_c)
            m->w.temperature_max_c = temp;
        if (a->clock_reasons && a->clock_reasons(m->device, &reasons) == NVML_SUCCESS) m->w.reasons_seen |= reasons;
    }
}

static void *sampler(void *arg) {
    qb_energy_meter *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        take_sample(m);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long long ns = until.tv_nsec + (long long)m->interval_ms * 1000000LL;
        until.tv_sec += (time_t)(ns / 1000000000LL);
        until.tv_nsec = (long)(ns % 1000000000LL);
        while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT) {
        }
    }
    take_sample(m); /* the closing edge */
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int qb_energy_meter_start(qb_energy_meter *m) {
    if (m->why[0] || m->running) return 0;
    memset(&m->w, 0, sizeof m->w);
    m->stop = 0;
    m->t_start = monotonic_s();
    sigset_t all, old; /* the sampler never takes a signal: the main thread handles them (bench/stop_signals.h) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int created = pthread_create(&m->thread, NULL, sampler, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (created != 0) return qb_errorf("energy meter: cannot start the sampling thread");
    m->running = 1;
    pthread_mutex_lock(&m->lock);
    m->counter_ok = m->api.total_energy && m->api.total_energy(m->device, &m->counter_start_mj) == NVML_SUCCESS;
    m->t_start = monotonic_s();
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void qb_energy_meter_stop(qb_energy_meter *m, qb_energy_window *out) {
    memset(out, 0, sizeof *out);
    if (m->why[0] || !m->running) return;
    unsigned long long end_mj = 0;
    pthread_mutex_lock(&m->lock);
    int counter_ok = m->counter_ok && m->api.total_energy(m->device, &end_mj) == NVML_SUCCESS && end_mj >= m->counter_start_mj;
    double t_end = monotonic_s();
    m->stop = 1;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    m->running = 0;
    *out = m->w;
    out->seconds = t_end - m->t_start;
    out->available = out->n_samples > 0 || counter_ok;
    out->from_counter = counter_ok;
    if (counter_ok) out->energy_j = (double)(end_mj - m->counter_start_mj) / 1000.0;
}

void qb_energy_meter_close(qb_energy_meter *m) {
    if (!m) return;
    if (m->running) {
        qb_energy_window ignored;
        qb_energy_meter_stop(m, &ignored);
    }
    if (m->initialised) m->api.shutdown();
    if (m->library) dlclose(m->library);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void qb_energy_totals_init(qb_energy_totals *t) {
    memset(t, 0, sizeof *t);
    t->available = 1;
    t->from_counter = 1;
}

void qb_energy_totals_add(qb_energy_totals *t, const qb_energy_window *w, const char *why_unavailable) {
    t->n_windows++;
    if (!w->available) {
        if (t->available) snprintf(t->why, sizeof t->why, "%s", why_unavailable ? why_unavailable : "unavailable: no samples");
        t->available = 0;
        return;
    }
    t->from_counter = t->from_counter && w->from_counter;
    t->n_samples += w->n_samples;
    t->seconds += w->seconds;
    t->energy_j += w->energy_j;
    t->power_sum_w += w->power_sum_w;
    if (w->power_peak_w > t->power_peak_w) t->power_peak_w = w->power_peak_w;
    t->sm_clock_sum_mhz += w->sm_clock_sum_mhz;
    t->mem_clock_sum_mhz += w->mem_clock_sum_mhz;
    if (w->temperature_max_c > t->temperature_max_c) t->temperature_max_c = w->temperature_max_c;
    t->reasons_seen |= w->reasons_seen;
}

void qb_energy_cell_combine(const qb_energy_totals *const *gpus, int n_gpus, int n_runs, int n_gen,
                            qb_energy_cell *out) {
    memset(out, 0, sizeof *out);
    out->available = n_gpus > 0 && n_runs > 0 && n_gen > 0;
    out->from_counter = 1;
    snprintf(out->why, sizeof out->why, "%s", n_gpus > 0 ? "unavailable: no timed run" : "unavailable: no GPU");
    double samples = 0;
    for (int i = 0; i < n_gpus && out->available; i++) {
        const qb_energy_totals *t = gpus[i];
        if (!t->available || t->n_windows < 1 || t->seconds <= 0) {
            out->available = 0;
            snprintf(out->why, sizeof out->why, "%s", t->why[0] ? t->why : "unavailable: not measured");
            break;
        }
        out->from_counter = out->from_counter && t->from_counter;
        out->energy_j += t->energy_j / n_runs;
        out->power_mean_w += t->energy_j / t->seconds;
        out->power_peak_w += t->power_peak_w;
        out->sm_clock_mhz += t->sm_clock_sum_mhz;
        out->mem_clock_mhz += t->mem_clock_sum_mhz;
        samples += t->n_samples;
        if (t->temperature_max_c > out->temperature_max_c) out->temperature_max_c = t->temperature_max_c;
        out->reasons_seen |= t->reasons_seen;
    }
    if (!out->available) {
        out->energy_j = out->joules_per_token = out->power_mean_w = out->power_peak_w = NAN;
        out->sm_clock_mhz = out->mem_clock_mhz = out->temperature_max_c = NAN;
        out->reasons_seen = 0;
        out->throttled = -1;
        return;
    }
    out->why[0] = '\0';
    out->joules_per_token = out->energy_j / n_gen;
    out->sm_clock_mhz = samples > 0 ? out->sm_clock_mhz / samples : NAN;
    out->mem_clock_mhz = samples > 0 ? out->mem_clock_mhz / samples : NAN;
    if (samples == 0) out->temperature_max_c = out->power_peak_w = NAN;
    out->throttled = (out->reasons_seen & QB_THROTTLE_REASON_MASK) != 0;
}

void qb_throttle_reasons_text(uint64_t reasons, char *out, int size) {
    static const struct { uint64_t bit; const char *name; } names[] = {
        {0x4, "SW power cap"}, {0x8, "HW slowdown"}, {0x20, "SW thermal slowdown"},
        {0x40, "HW thermal slowdown"}, {0x80, "HW power brake"},
    };
    int used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((reasons & names[i].bit) && used < size) {
            int n = snprintf(out + used, (size_t)(size - used), "%s%s", used ? ", " : "", names[i].name);
            if (n > 0) used += n;
        }
}

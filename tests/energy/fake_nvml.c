/* fake_nvml.c - a stand-in for libnvidia-ml.so.1 with scripted readings, for tests/energy/test_energy.c.
 *
 * One GPU, UUID "GPU-fake-0": power 300 W constant, energy counter rising 300 mJ per ms of CLOCK_MONOTONIC
 * since nvmlInit_v2, SM clock 1980 MHz, memory clock 2619 MHz, temperature 61 C, clocks-event reasons 0x1
 * (idle: not throttling) plus whatever fake_nvml_set_reasons() adds; fake_nvml_set_energy_supported(0)
 * makes the energy counter answer NVML_ERROR_NOT_SUPPORTED (3), as pre-Volta GPUs do.
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

static double t0;
static unsigned long long extra_reasons;
static int energy_supported = 1;
static int initialised;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

void fake_nvml_set_reasons(unsigned long long r) { extra_reasons = r; }
void fake_nvml_set_energy_supported(int on) { energy_supported = on; }

int nvmlInit_v2(void) {
    t0 = now_ms();
    initialised = 1;
    return 0;
}
int nvmlShutdown(void) {
    initialised = 0;
    return 0;
}
int nvmlDeviceGetHandleByUUID(const char *uuid, void **device) {
    if (!initialised) return 1; /* NVML_ERROR_UNINITIALIZED */
    if (strcmp(uuid, "GPU-fake-0") != 0) return 6; /* NVML_ERROR_NOT_FOUND */
    *device = (void *)&t0;
    return 0;
}
int nvmlDeviceGetPowerUsage(void *device, unsigned int *mw) {
    (void)device;
    *mw = 300000;
    return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(void *device, unsigned long long *mj) {
    (void)device;
    if (!energy_supported) return 3;
    *mj = 1000000ull + (unsigned long long)(300.0 * (now_ms() - t0));
    return 0;
}
int nvmlDeviceGetClockInfo(void *device, int type, unsigned int *mhz) {
    (void)device;
    *mhz = type == 1 ? 1980 : type == 2 ? 2619 : 0;
    return 0;
}
int nvmlDeviceGetTemperature(void *device, int sensor, unsigned int *c) {
    (void)device;
    (void)sensor;
    *c = 61;
    return 0;
}
int nvmlDeviceGetCurrentClocksEventReasons(void *device, unsigned long long *reasons) {
    (void)device;
    *reasons = 0x1ull | extra_reasons;
    return 0;
}

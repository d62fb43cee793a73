/*
 * devices.c - CUDA device discovery through the runtime API (cudaGetDeviceCount,
 * cudaGetDeviceProperties). A machine without a GPU or driver reports zero devices.
 */
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "td_cuda.h"

int td_cuda_devices(struct td_cuda_device *out, int max, char *why, size_t why_len)
{
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) {
        if (why && why_len)
            snprintf(why, why_len, "%s", cudaGetErrorString(rc));
        (void)cudaGetLastError(); /* clear the sticky-free error state */
        return 0;
    }
    int n = 0;
    for (int i = 0; i < count && n < max; i++) {
        struct cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
            (void)cudaGetLastError();
            continue;
        }
        struct td_cuda_device *d = &out[n++];
        memset(d, 0, sizeof *d);
        d->ordinal = i;
        snprintf(d->model, sizeof d->model, "%s", prop.name);
        d->memory_bytes = (uint64_t)prop.totalGlobalMem;
        d->cc_major = prop.major;
        d->cc_minor = prop.minor;
    }
    if (n == 0 && why && why_len)
        snprintf(why, why_len, "no CUDA device");
    return n;
}

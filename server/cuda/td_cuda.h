/*
 * td_cuda.h - the CUDA side of the daemon. Built only where nvcc (and so the CUDA toolkit) is
 * found; TD_HAVE_CUDA is defined for code that may call it.
 */
#ifndef TD_CUDA_H
#define TD_CUDA_H

#include <stddef.h>
#include <stdint.h>

struct td_cuda_device {
    int ordinal;
    char model[256];          /* "NVIDIA H100 80GB HBM3" (cudaDeviceProp.name) */
    uint64_t memory_bytes;    /* total global memory */
    int cc_major, cc_minor;   /* compute capability */
};

/* Lists the CUDA devices this process can use, at most max of them, into out.
 * Returns: the number found (0 when there is no GPU or no driver: then `why`, if non-NULL,
 * holds the CUDA runtime's reason). Never fails otherwise.
 * Thread: call once at start-up, before worker threads use CUDA. */
int td_cuda_devices(struct td_cuda_device *out, int max, char *why, size_t why_len);

#endif

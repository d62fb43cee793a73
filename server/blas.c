/*
 * blas.c - makes OpenBLAS use the right kernels on CPUs its build does not recognise.
 *
 * OpenBLAS chooses its kernels once, in a constructor that runs before main(), from the CPU
 * model. Debian 12's OpenBLAS 0.3.21 predates Sapphire Rapids and similar parts; on them it
 * falls back to its generic "Prescott" kernels, 3-5x slower than the AVX2/AVX-512 ones the
 * CPU supports. The only way to choose kernels is the OPENBLAS_CORETYPE variable read by that
 * constructor, so when detection fell back to Prescott and the user did not choose a core
 * type, we set the one the CPU's features support and re-execute ourselves once.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>

#include "log.h"
#include "server.h"

/* Returns: the OpenBLAS core type this CPU supports best, or NULL when nothing better than
 * the generic kernels is available. */
static const char *best_coretype(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    return NULL;
}

void td_blas_select_kernels(char **argv)
{
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core || strcasecmp(core, "prescott") != 0)
        return;
    const char *better = best_coretype();
    if (!better)
        return;
    if (setenv("OPENBLAS_CORETYPE", better, 1) != 0)
        return;
    TD_LOG(TD_LOG_INFO, "openblas kernels", "detected=%s using=%s", core, better);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the generic kernels, which are correct, only slower. */
    unsetenv("OPENBLAS_CORETYPE");
    TD_LOG(TD_LOG_WARN, "openblas re-exec failed", "using=%s", core);
}

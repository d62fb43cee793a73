/*
 * blas.c - makes OpenBLAS use the right kernels on CPUs its build does not recognise.
 *
 * The daemon links one of two OpenBLAS builds (engine/td_blas.h): scipy-openblas32 (0.3.34,
 * NumPy's build, the default of scripts/build.sh) or Debian 12's 0.3.21. Both are
 * DYNAMIC_ARCH builds that read the same variables in the same place (OPENBLAS_CORETYPE,
 * OPENBLAS_NUM_THREADS; checked with strings on both libraries), so the logic below serves
 * both.
 *
 * OpenBLAS chooses its kernels once, in a constructor that runs before main(), from the CPU
 * model. Debian 12's OpenBLAS 0.3.21 predates Sapphire Rapids and similar parts; on them it
 * falls back to its generic "Prescott" kernels, 3-5x slower than the AVX2/AVX-512 ones the
 * CPU supports. The only way to choose kernels is the OPENBLAS_CORETYPE variable read by that
 * constructor, so when detection fell back to Prescott and the user did not choose a core
 * type, we set the one the CPU's features support and re-execute ourselves once.
 * scipy-openblas 0.3.34 recognises the same CPU (it reports SkylakeX there), so with it this
 * only matters on CPUs newer than the library.
 *
 * The same constructor reads OPENBLAS_NUM_THREADS. OpenBLAS's own threads spin in
 * sched_yield after each threaded call (about 0.1 s by default) and are woken for every GEMM
 * large enough to thread; the daemon issues many small GEMMs between which other kernels,
 * its own helper threads and the client need the cores (a training step of a small CNN
 * spent a quarter of its CPU in that scheduling). Unless the user chose a count, OpenBLAS
 * runs single-threaded and the engine cuts large products into blocks on its own threads
 * (td__gemm in engine/ops_linalg.c), which are already awake for the other kernels.
 * LAPACK calls on one large matrix (eigh, svd of 1024x1024), which the engine cannot cut
 * up, get the compute threads for their duration (td_lapack_set_threads), and only when the
 * daemon chose the count itself (TD_OPENBLAS_THREADS_AUTO, set for the re-executed image).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "td_blas.h"

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
    bool reexec = false;
    const char *core = openblas_get_corename();
    const char *better = NULL;
    if (!getenv("OPENBLAS_CORETYPE") && core && strcasecmp(core, "prescott") == 0)
        better = best_coretype();
    if (better && setenv("OPENBLAS_CORETYPE", better, 1) == 0) {
        TD_LOG(TD_LOG_INFO, "openblas kernels", "detected=%s using=%s", core, better);
        reexec = true;
    }
    if (!getenv("OPENBLAS_NUM_THREADS") && setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0 &&
        setenv("TD_OPENBLAS_THREADS_AUTO", "1", 1) == 0)
        reexec = true;
    if (!reexec)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernels and timeout we have, which are correct, only
     * slower. */
    if (better)
        unsetenv("OPENBLAS_CORETYPE");
    unsetenv("TD_OPENBLAS_THREADS_AUTO");
    TD_LOG(TD_LOG_WARN, "openblas re-exec failed", "using=%s", core ? core : "?");
}

bool td_blas_threads_auto(void)
{
    const char *v = getenv("TD_OPENBLAS_THREADS_AUTO");
    return v && strcmp(v, "1") == 0;
}

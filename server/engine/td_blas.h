/*
 * td_blas.h - the one place that includes the BLAS/LAPACK headers (CBLAS, LAPACKE and the
 * OpenBLAS extensions). Every engine and server file includes this instead of <cblas.h> or
 * <lapacke.h>.
 *
 * Two libraries are supported, chosen at configure time (docs/ARCHITECTURE.md):
 *  - TD_SCIPY_OPENBLAS (cmake -DTD_SCIPY_OPENBLAS_DIR=<scipy_openblas32 package dir>, which
 *    scripts/build.sh passes when build/venv has the wheel): the OpenBLAS build NumPy and
 *    SciPy ship, from PyPI's scipy-openblas32. Its exported symbols and the declarations in
 *    its headers carry the prefix scipy_ (scipy_cblas_dgemm, scipy_LAPACKE_dsyevd_work,
 *    scipy_openblas_set_num_threads), so it cannot clash with another BLAS in the process.
 *    Its headers offer no unprefixed aliases (its pkg-config file only passes
 *    -DBLAS_SYMBOL_PREFIX=scipy_ for NumPy's own macros), so the list below maps each
 *    unprefixed name the code uses to the library's name.
 *  - otherwise: Debian's OpenBLAS (pkg-config openblas) and LAPACKE (pkg-config lapacke),
 *    unprefixed.
 * The code is written against the unprefixed names. A name missing from the list below
 * leaves an implicit declaration under TD_SCIPY_OPENBLAS (an error with TD_WERROR, a link
 * error without), and the CTest test blas_names (tests/blas_names.cmake) fails whatever the
 * configured library: it compares the names used in server/, tests/ and bench/ with this
 * list.
 */
#ifndef TD_BLAS_H
#define TD_BLAS_H

#include <cblas.h>
#include <lapacke.h>

#if defined(TD_SCIPY_OPENBLAS) && TD_SCIPY_OPENBLAS
/* clang-format off */
#define LAPACKE_cgeev                scipy_LAPACKE_cgeev
#define LAPACKE_cgels                scipy_LAPACKE_cgels
#define LAPACKE_cgelsd               scipy_LAPACKE_cgelsd
#define LAPACKE_cgelss               scipy_LAPACKE_cgelss
#define LAPACKE_cgelsy               scipy_LAPACKE_cgelsy
#define LAPACKE_cgeqrf               scipy_LAPACKE_cgeqrf
#define LAPACKE_cgesdd_work          scipy_LAPACKE_cgesdd_work
#define LAPACKE_cgetrf               scipy_LAPACKE_cgetrf
#define LAPACKE_cgetrf_work          scipy_LAPACKE_cgetrf_work
#define LAPACKE_cgetri               scipy_LAPACKE_cgetri
#define LAPACKE_cgetrs               scipy_LAPACKE_cgetrs
#define LAPACKE_cgetrs_work          scipy_LAPACKE_cgetrs_work
#define LAPACKE_cheevd_work          scipy_LAPACKE_cheevd_work
#define LAPACKE_cpotrf               scipy_LAPACKE_cpotrf
#define LAPACKE_cungqr               scipy_LAPACKE_cungqr
#define LAPACKE_dgeev                scipy_LAPACKE_dgeev
#define LAPACKE_dgels                scipy_LAPACKE_dgels
#define LAPACKE_dgelsd               scipy_LAPACKE_dgelsd
#define LAPACKE_dgelss               scipy_LAPACKE_dgelss
#define LAPACKE_dgelsy               scipy_LAPACKE_dgelsy
#define LAPACKE_dgeqrf               scipy_LAPACKE_dgeqrf
#define LAPACKE_dgesdd_work          scipy_LAPACKE_dgesdd_work
#define LAPACKE_dgetrf               scipy_LAPACKE_dgetrf
#define LAPACKE_dgetrf_work          scipy_LAPACKE_dgetrf_work
#define LAPACKE_dgetri               scipy_LAPACKE_dgetri
#define LAPACKE_dgetrs               scipy_LAPACKE_dgetrs
#define LAPACKE_dgetrs_work          scipy_LAPACKE_dgetrs_work
#define LAPACKE_dorgqr               scipy_LAPACKE_dorgqr
#define LAPACKE_dpotrf               scipy_LAPACKE_dpotrf
#define LAPACKE_dsyevd_work          scipy_LAPACKE_dsyevd_work
#define LAPACKE_sgeev                scipy_LAPACKE_sgeev
#define LAPACKE_sgels                scipy_LAPACKE_sgels
#define LAPACKE_sgelsd               scipy_LAPACKE_sgelsd
#define LAPACKE_sgelss               scipy_LAPACKE_sgelss
#define LAPACKE_sgelsy               scipy_LAPACKE_sgelsy
#define LAPACKE_sgeqrf               scipy_LAPACKE_sgeqrf
#define LAPACKE_sgesdd_work          scipy_LAPACKE_sgesdd_work
#define LAPACKE_sgetrf               scipy_LAPACKE_sgetrf
#define LAPACKE_sgetrf_work          scipy_LAPACKE_sgetrf_work
#define LAPACKE_sgetri               scipy_LAPACKE_sgetri
#define LAPACKE_sgetrs               scipy_LAPACKE_sgetrs
#define LAPACKE_sgetrs_work          scipy_LAPACKE_sgetrs_work
#define LAPACKE_sorgqr               scipy_LAPACKE_sorgqr
#define LAPACKE_spotrf               scipy_LAPACKE_spotrf
#define LAPACKE_ssyevd_work          scipy_LAPACKE_ssyevd_work
#define LAPACKE_zgeev                scipy_LAPACKE_zgeev
#define LAPACKE_zgels                scipy_LAPACKE_zgels
#define LAPACKE_zgelsd               scipy_LAPACKE_zgelsd
#define LAPACKE_zgelss               scipy_LAPACKE_zgelss
#define LAPACKE_zgelsy               scipy_LAPACKE_zgelsy
#define LAPACKE_zgeqrf               scipy_LAPACKE_zgeqrf
#define LAPACKE_zgesdd_work          scipy_LAPACKE_zgesdd_work
#define LAPACKE_zgetrf               scipy_LAPACKE_zgetrf
#define LAPACKE_zgetrf_work          scipy_LAPACKE_zgetrf_work
#define LAPACKE_zgetri               scipy_LAPACKE_zgetri
#define LAPACKE_zgetrs               scipy_LAPACKE_zgetrs
#define LAPACKE_zgetrs_work          scipy_LAPACKE_zgetrs_work
#define LAPACKE_zheevd_work          scipy_LAPACKE_zheevd_work
#define LAPACKE_zpotrf               scipy_LAPACKE_zpotrf
#define LAPACKE_zungqr               scipy_LAPACKE_zungqr
#define cblas_cgemm                  scipy_cblas_cgemm
#define cblas_ctrsm                  scipy_cblas_ctrsm
#define cblas_dgemm                  scipy_cblas_dgemm
#define cblas_dtrsm                  scipy_cblas_dtrsm
#define cblas_sgemm                  scipy_cblas_sgemm
#define cblas_strsm                  scipy_cblas_strsm
#define cblas_zgemm                  scipy_cblas_zgemm
#define cblas_ztrsm                  scipy_cblas_ztrsm
#define openblas_get_corename        scipy_openblas_get_corename
#define openblas_set_num_threads     scipy_openblas_set_num_threads
/* clang-format on */
#endif

#endif /* TD_BLAS_H */

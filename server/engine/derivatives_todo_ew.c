/*
 * derivatives_todo_ew.c - placeholders for differentiable ops whose VJP/JVP are not written yet.
 * An entry without formulas makes td__ag_after_op refuse to record the op ("the derivative
 * is not implemented") and the generated gradient tests fail for it. Entries move into
 * derivatives_*.c as their formulas are written; the file goes when it is empty.
 */
#include "td_autograd.h"

const struct td_deriv td_deriv_neg = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_abs = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_sign = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_expm1 = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_log = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_log1p = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_log2 = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_log10 = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_sqrt = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_rsqrt = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_sin = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_cos = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_tan = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_asin = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_acos = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_atan = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_sinh = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_cosh = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_tanh = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_asinh = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_acosh = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_atanh = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_sigmoid = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_relu = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_floor = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_ceil = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_round = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_trunc = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_clamp = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_real = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_imag = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_conj = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_angle = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_cast = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_sub = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_div = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_remainder = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_pow = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_atan2 = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_maximum = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_minimum = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_where = {0, 0, NULL, NULL};

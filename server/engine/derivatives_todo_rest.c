/*
 * derivatives_todo_rest.c - placeholders for differentiable ops whose VJP/JVP are not written yet.
 * An entry without formulas makes td__ag_after_op refuse to record the op ("the derivative
 * is not implemented") and the generated gradient tests fail for it. Entries move into
 * derivatives_*.c as their formulas are written; the file goes when it is empty.
 */
#include "td_autograd.h"

const struct td_deriv td_deriv_mean = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_prod = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_amax = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_amin = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_var = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_std = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_logsumexp = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_cumsum = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_cumprod = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_matmul = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_reshape = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_view = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_permute = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_transpose = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_expand = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_broadcast_to = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_squeeze = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_unsqueeze = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_flatten = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_slice = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_select = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_narrow = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_cat = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_stack = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_split = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_chunk = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_flip = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_roll = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_tril = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_triu = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_contiguous = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_clone = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_gather = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_scatter = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_index_select = {0, 0, NULL, NULL};
const struct td_deriv td_deriv_masked_fill = {0, 0, NULL, NULL};

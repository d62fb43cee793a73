/*
 * derivatives_fft.c - VJPs and JVPs of the torch.fft ops (ops_fft.c).
 *
 * Every transform is linear, so its JVP is the op itself applied to the tangent. Its VJP is
 * the adjoint (PyTorch's complex convention: grad = J^H g):
 * - c2c (fft, ifft, fftn, ...): the adjoint of a DFT with norm p is the opposite-direction
 *   DFT with the swapped norm (backward <-> forward, ortho stays): for fft with norm
 *   backward, conj(fft(conj(g))) = n * ifft(g) = ifft(g, norm=forward). The zero-padding /
 *   truncation to s is undone afterwards (truncate, or append zeros).
 * - rfft (keeps the first n/2+1 outputs of the full DFT): zero-extend g to n, then the c2c
 *   adjoint; the engine keeps the real part for the real input.
 * - irfft (c2r of the Hermitian extension of x): the rfft of g with the swapped norm, with the
 *   entries that have a distinct conjugate partner in the full spectrum (k = 1 .. (n-1)/2)
 *   doubled, since each of them feeds two outputs of the extension.
 * - hfft(x) = irfft(conj x, norm swapped): conj of irfft's VJP; ihfft(x) = conj(rfft(x, norm
 *   swapped)): rfft's VJP of conj(g).
 * fftshift and ifftshift are permutations: each one's VJP is the other.
 * Formulas use td_gb_* calls only, so they are differentiable again (create_graph).
 */
#include <string.h>

#include "td_derivatives.h"

static const char *swap_norm(const char *n)
{
    if (!n || strcmp(n, "backward") == 0)
        return "forward";
    if (strcmp(n, "forward") == 0)
        return "backward";
    return "ortho";
}

/* The transformed dims (normalised) and their signal sizes, as the forward read them. */
static int fft_dims(const struct td_op_ctx *c, int64_t *dims, int64_t *s)
{
    const struct td_meta *m = &c->in_meta[0];
    enum td_op op = c->op;
    bool c2r = op == TD_OP_irfft || op == TD_OP_irfftn || op == TD_OP_irfft2 ||
               op == TD_OP_hfft;
    int nd = 0;
    if (op == TD_OP_fft || op == TD_OP_ifft || op == TD_OP_rfft || op == TD_OP_irfft ||
        op == TD_OP_hfft || op == TD_OP_ihfft) {
        int64_t d = td_arg_int(c, "dim");
        dims[0] = d < 0 ? d + m->ndim : d;
        s[0] = td_arg_has(c, "n") ? td_arg_int(c, "n") : -1;
        nd = 1;
    } else {
        int ns = 0, ndl = 0;
        const int64_t *sl = td_arg_has(c, "s") ? td_arg_ints(c, "s", &ns) : NULL;
        const int64_t *dl = td_arg_has(c, "dim") ? td_arg_ints(c, "dim", &ndl) : NULL;
        bool two = op == TD_OP_fft2 || op == TD_OP_ifft2 || op == TD_OP_rfft2 ||
                   op == TD_OP_irfft2;
        if (dl) {
            nd = ndl;
            for (int k = 0; k < nd; k++)
                dims[k] = dl[k] < 0 ? dl[k] + m->ndim : dl[k];
        } else {
            nd = sl ? ns : (two ? 2 : m->ndim);
            for (int k = 0; k < nd; k++)
                dims[k] = m->ndim - nd + k;
        }
        for (int k = 0; k < nd; k++)
            s[k] = sl ? sl[k] : -1;
    }
    for (int k = 0; k < nd; k++)
        if (s[k] == -1)
            s[k] = (c2r && k == nd - 1) ? 2 * (m->shape[dims[k]] - 1) : m->shape[dims[k]];
    return nd;
}

/* x resized along dim to len: truncated, or zero-extended at the end. */
static struct td_tensor *resize_dim(struct td_gb *b, struct td_tensor *x, int64_t dim,
                                    int64_t len)
{
    if (!x)
        return NULL;
    int64_t cur = x->shape[dim];
    if (cur == len)
        return x;
    if (cur > len)
        return narrow(b, x, dim, 0, len);
    struct td_meta zm;
    td_tensor_meta(x, &zm);
    zm.wrapped_number = false;
    zm.shape[dim] = len - cur;
    struct td_tensor *z = td_gb_zeros(b, &zm);
    struct td_tensor *in[2] = {x, z};
    struct td_attr_arg a = TD_A_INT("dim", dim);
    return td_gb_op(b, TD_OP_cat, 2, in, 1, &a);
}

/* A c2c n-d transform (fftn or ifftn) over dims with the given norm, sizes unchanged. */
static struct td_tensor *c2c(struct td_gb *b, bool inverse, struct td_tensor *x, int nd,
                             const int64_t *dims, const char *norm)
{
    struct td_attr_arg a[2] = {td_a_ints("dim", nd, dims), TD_A_STR("norm", norm)};
    return td_gb_op(b, inverse ? TD_OP_ifftn : TD_OP_fftn, 1, &x, 2, a);
}

static struct td_tensor *unpad(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *x,
                               int nd, const int64_t *dims)
{
    for (int k = 0; k < nd; k++)
        x = resize_dim(b, x, dims[k], c->in_meta[0].shape[dims[k]]);
    return x;
}

static void vjp_fft(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    int64_t dims[TD_MAX_NDIM], s[TD_MAX_NDIM];
    int nd = fft_dims(c, dims, s);
    const char *norm = td_arg_str(c, "norm") ? td_arg_str(c, "norm") : "backward";
    enum td_op op = c->op;
    struct td_tensor *g = v->grad[0], *r = NULL;
    if (op == TD_OP_fft || op == TD_OP_fftn || op == TD_OP_fft2 || op == TD_OP_ifft ||
        op == TD_OP_ifftn || op == TD_OP_ifft2) {
        bool fwd = op == TD_OP_fft || op == TD_OP_fftn || op == TD_OP_fft2;
        r = c2c(b, fwd, g, nd, dims, swap_norm(norm));
    } else if (op == TD_OP_rfft || op == TD_OP_rfftn || op == TD_OP_rfft2 ||
               op == TD_OP_ihfft) {
        const char *n2 = norm;
        if (op == TD_OP_ihfft) {
            g = td_gb_conj(b, g);
            n2 = swap_norm(norm);
        }
        g = resize_dim(b, g, dims[nd - 1], s[nd - 1]);
        r = c2c(b, true, g, nd, dims, swap_norm(n2));
    } else {
        /* c2r: irfft* (norm p: adjoint rfftn with swap(p)), hfft (adjoint rfft with p). */
        const char *n2 = op == TD_OP_hfft ? norm : swap_norm(norm);
        struct td_attr_arg a[3] = {td_a_ints("s", nd, s), td_a_ints("dim", nd, dims),
                                   TD_A_STR("norm", n2)};
        struct td_tensor *f = td_gb_op(b, TD_OP_rfftn, 1, &g, 3, a);
        int64_t n = s[nd - 1], half = n / 2 + 1, dl = dims[nd - 1];
        int64_t hi = (n + 1) / 2; /* entries 1 .. hi-1 are doubled */
        if (f && hi > 1) {
            struct td_tensor *parts[3];
            int np = 0;
            parts[np++] = narrow(b, f, dl, 0, 1);
            parts[np++] = td_gb_scale(b, narrow(b, f, dl, 1, hi - 1), 2.0);
            if (half > hi)
                parts[np++] = narrow(b, f, dl, hi, half - hi);
            struct td_attr_arg ca = TD_A_INT("dim", dl);
            f = td_gb_op(b, TD_OP_cat, np, parts, 1, &ca);
        }
        r = op == TD_OP_hfft ? td_gb_conj(b, f) : f;
    }
    v->grad_in[0] = unpad(b, c, r, nd, dims);
}

static void jvp_same(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = same_op(b, j->c, 1, j->tangent_in);
}

#define FFT_DERIV(name) const struct td_deriv td_deriv_##name = {0, 0, vjp_fft, jvp_same};
FFT_DERIV(fft)
FFT_DERIV(ifft)
FFT_DERIV(rfft)
FFT_DERIV(irfft)
FFT_DERIV(hfft)
FFT_DERIV(ihfft)
FFT_DERIV(fftn)
FFT_DERIV(ifftn)
FFT_DERIV(rfftn)
FFT_DERIV(irfftn)
FFT_DERIV(fft2)
FFT_DERIV(ifft2)
FFT_DERIV(rfft2)
FFT_DERIV(irfft2)

static void vjp_shift(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    struct td_attr_arg a[1];
    int na = 0;
    if (td_arg_has(c, "dim")) {
        int n;
        const int64_t *dl = td_arg_ints(c, "dim", &n);
        a[na++] = td_a_ints("dim", n, dl);
    }
    struct td_tensor *g = v->grad[0];
    v->grad_in[0] = td_gb_op(b, c->op == TD_OP_fftshift ? TD_OP_ifftshift : TD_OP_fftshift, 1,
                             &g, na, a);
}

const struct td_deriv td_deriv_fftshift = {0, 0, vjp_shift, jvp_same};
const struct td_deriv td_deriv_ifftshift = {0, 0, vjp_shift, jvp_same};

/*
 * autograd.c - recording of autograd nodes, the backward engine, forward-mode tangents and
 * the td_gb builder that derivative formulas are written with. See td_autograd.h for the
 * design and docs/AUTOGRAD.md for the long form.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

/* A tensor the node keeps for its VJP. Inputs are the tensor objects themselves (their
 * history is wanted for create_graph, and they cannot form a cycle with this node). Outputs
 * are kept as data-only views without autograd fields, since the output object points at
 * this node; unpacking rebuilds the link (PyTorch's SavedVariable does the same). */
struct saved {
    struct td_tensor *t;
    struct td_tensor *tangent;   /* outputs: their tangent when saved, for forward-over-reverse */
    uint64_t tangent_level;
    uint64_t version;
};

struct edge {
    struct td_ag_node *fn;    /* owned; the input's grad_fn */
    int output_nr;
    struct td_tensor *leaf;   /* owned; a leaf that requires grad */
};

struct td_ag_node {
    _Atomic int refcount;
    struct td_ag_session *sess;    /* NULL once the session ended */
    struct td_ag_node *prev, *next;
    enum td_op op;
    struct td_attr_value attrs[TD_MAX_ATTRS];  /* strings owned */
    int ninputs, noutputs;
    struct td_meta *in_meta;       /* [ninputs] */
    struct td_meta *out_meta;      /* [noutputs] */
    struct edge *edges;            /* [ninputs] */
    struct saved *saved_in;        /* [ninputs]; t NULL when not saved */
    struct saved *saved_out;       /* [noutputs] */
    bool released;                 /* saved tensors dropped by a backward without retain */
    /* backward scratch */
    int bw_index;                  /* -1 outside a backward */
};

struct td_gb {
    struct td_ag_session *s;
    bool grad_mode;
    bool fw;                   /* propagate tangents through the ops run here */
    struct td_ag_node *node;   /* whose saved tensors td_gb_saved_* read */
    bool history;              /* unpack saved tensors with their autograd history */
    struct td_error err;
    struct td_tensor **owned;
    int nowned, cap;
};

static bool dtype_differentiable(enum td_dtype dt)
{
    return td_dtype_is_floating(dt) || td_dtype_is_complex(dt);
}

/* ---------------------------------------------------------------------------------------
 * Meta and nodes.
 */
int td__ag_meta_ensure(struct td_tensor *t, struct td_error *err)
{
    if (t->ag)
        return 0;
    t->ag = td_calloc(1, sizeof *t->ag);
    if (!t->ag)
        return td_error_set(err, TD_ENOMEM, "autograd: out of memory");
    return 0;
}

static void node_release(struct td_ag_node *n);

void td__ag_meta_free(struct td_ag_meta *m)
{
    if (!m)
        return;
    node_release(m->grad_fn);
    td_tensor_release(m->grad);
    td_tensor_release(m->tangent);
    td_free(m);
}

bool td_ag_requires_grad(const struct td_tensor *t)
{
    return t && t->ag && t->ag->requires_grad;
}

bool td_ag_is_leaf(const struct td_tensor *t)
{
    return !t->ag || !t->ag->grad_fn;
}

struct td_tensor *td_ag_tangent(const struct td_ag_session *s, const struct td_tensor *t)
{
    if (!s || !s->fw_level || !t->ag || !t->ag->tangent || t->ag->tangent_level != s->fw_level)
        return NULL;
    return t->ag->tangent;
}

const char *td_ag_grad_fn_name(const struct td_tensor *t)
{
    if (!t->ag || !t->ag->grad_fn)
        return NULL;
    const struct td_op_info *info = td_op_info_get(t->ag->grad_fn->op);
    return info ? info->name : "?";
}

static struct td_ag_node *node_retain(struct td_ag_node *n)
{
    if (n)
        atomic_fetch_add(&n->refcount, 1);
    return n;
}

static void saved_clear(struct saved *sv)
{
    td_tensor_release(sv->t);
    td_tensor_release(sv->tangent);
    sv->t = NULL;
    sv->tangent = NULL;
}

/* Drops what the node holds (saved tensors, edges) but not the node. */
static void node_clear(struct td_ag_node *n)
{
    for (int i = 0; i < n->ninputs; i++) {
        saved_clear(&n->saved_in[i]);
        struct td_ag_node *fn = n->edges[i].fn;
        struct td_tensor *leaf = n->edges[i].leaf;
        n->edges[i].fn = NULL;
        n->edges[i].leaf = NULL;
        node_release(fn);
        td_tensor_release(leaf);
    }
    for (int k = 0; k < n->noutputs; k++)
        saved_clear(&n->saved_out[k]);
}

static void node_release(struct td_ag_node *n)
{
    if (!n || atomic_fetch_sub(&n->refcount, 1) != 1)
        return;
    if (n->sess) {
        if (n->prev)
            n->prev->next = n->next;
        else
            n->sess->nodes = n->next;
        if (n->next)
            n->next->prev = n->prev;
        n->sess->live_nodes--;
    }
    node_clear(n);
    for (int a = 0; a < TD_MAX_ATTRS; a++)
        if (n->attrs[a].type == TD_ATTR_STR)
            td_free(n->attrs[a].s);
    td_free(n->in_meta);
    td_free(n->out_meta);
    td_free(n->edges);
    td_free(n->saved_in);
    td_free(n->saved_out);
    td_free(n);
}

void td_ag_session_init(struct td_ag_session *s, struct td_account *account, struct td_rng *rng)
{
    memset(s, 0, sizeof *s);
    s->account = account;
    s->rng = rng;
}

void td_ag_session_fini(struct td_ag_session *s)
{
    /* Hold every node, clear them all (no node can go while held), then let go: nodes still
     * referenced by live tensors stay, unlinked from the session. */
    uint64_t n = s->live_nodes, i = 0;
    struct td_ag_node **all = n ? td_calloc(n, sizeof *all) : NULL;
    if (n && !all) {
        /* Without memory for the list, clear in place: clearing a node may free others, so
         * restart from the head after each clear. Every clear removes at least the edges of
         * one node, so this ends. */
        for (struct td_ag_node *p = s->nodes; p; p = p->next)
            p->released = true;
        struct td_ag_node *p;
        while ((p = s->nodes) != NULL) {
            s->nodes = p->next;
            if (p->next)
                p->next->prev = NULL;
            p->prev = p->next = NULL;
            p->sess = NULL;
            s->live_nodes--;
            node_retain(p);
            node_clear(p);
            node_release(p);
        }
        return;
    }
    for (struct td_ag_node *p = s->nodes; p && i < n; p = p->next)
        all[i++] = node_retain(p);
    for (uint64_t k = 0; k < i; k++) {
        all[k]->released = true;
        node_clear(all[k]);
    }
    for (uint64_t k = 0; k < i; k++) {
        struct td_ag_node *p = all[k];
        if (p->sess) {
            if (p->prev)
                p->prev->next = p->next;
            else
                s->nodes = p->next;
            if (p->next)
                p->next->prev = p->prev;
            p->prev = p->next = NULL;
            p->sess = NULL;
            s->live_nodes--;
        }
    }
    for (uint64_t k = 0; k < i; k++)
        node_release(all[k]);
    td_free(all);
    s->nodes = NULL;
    s->fw_level = 0;
}

int td_ag_enter_dual_level(struct td_ag_session *s, struct td_error *err)
{
    if (s->fw_level)
        return td_error_set(err, TD_EPRECOND,
                            "enter_dual_level: a dual level is already active (nested forward "
                            "AD levels are not supported, as in PyTorch)");
    s->fw_level = ++s->next_level;
    return 0;
}

int td_ag_exit_dual_level(struct td_ag_session *s, struct td_error *err)
{
    if (!s->fw_level)
        return td_error_set(err, TD_EPRECOND, "exit_dual_level: no dual level is active");
    s->fw_level = 0;
    return 0;
}

/* A new tensor object on t's storage and geometry, without autograd fields. */
static int alias_new(struct td_tensor *t, struct td_tensor **out, struct td_error *err)
{
    int rc = td_tensor_new_view(t, t->ndim, t->shape, t->strides, t->offset, out, err);
    if (!rc) {
        (*out)->dtype = t->dtype;
        (*out)->wrapped_number = t->wrapped_number;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * The builder.
 */
static void gb_init(struct td_gb *b, struct td_ag_session *s, bool grad_mode, bool fw)
{
    memset(b, 0, sizeof *b);
    b->s = s;
    b->grad_mode = grad_mode;
    b->fw = fw;
    td_error_clear(&b->err);
}

static void gb_end(struct td_gb *b)
{
    for (int i = 0; i < b->nowned; i++)
        td_tensor_release(b->owned[i]);
    td_free(b->owned);
    b->owned = NULL;
    b->nowned = b->cap = 0;
}

bool td_gb_ok(const struct td_gb *b)
{
    return b->err.status == 0;
}

bool td_gb_grad_mode(const struct td_gb *b)
{
    return b->grad_mode;
}

struct td_ag_session *td_gb_session(struct td_gb *b)
{
    return b->s;
}

struct td_tensor *td_gb_fail(struct td_gb *b, int status, const char *fmt, ...)
{
    if (b->err.status)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    b->err.status = status;
    vsnprintf(b->err.msg, sizeof b->err.msg, fmt, ap);
    va_end(ap);
    return NULL;
}

struct td_tensor *td_gb_adopt(struct td_gb *b, struct td_tensor *t)
{
    if (!t)
        return NULL;
    if (b->nowned == b->cap) {
        int cap = b->cap ? b->cap * 2 : 16;
        struct td_tensor **p = td_realloc(b->owned, (size_t)cap * sizeof *p);
        if (!p) {
            td_tensor_release(t);
            return td_gb_fail(b, TD_ENOMEM, "autograd: out of memory");
        }
        b->owned = p;
        b->cap = cap;
    }
    b->owned[b->nowned++] = t;
    return t;
}

static int after_op(struct td_ag_session *s, bool grad_mode, bool fw, const struct td_op_ctx *c,
                    struct td_tensor **out, struct td_error *err);

int td_gb_opn(struct td_gb *b, enum td_op op, int nin, struct td_tensor *const *in, int nattrs,
              const struct td_attr_arg *attrs, int nout, struct td_tensor **out)
{
    struct td_meta in_meta[64], planned[8];
    struct td_tensor *res[8] = {0};
    struct td_op_ctx c;
    struct td_error e;
    int rc;

    for (int k = 0; k < nout && k < 8; k++)
        out[k] = NULL;
    if (b->err.status)
        return b->err.status;
    if (nin > 64 || nout > 8 || nout < 0) {
        td_gb_fail(b, TD_EINTERNAL, "autograd: formula op with %d inputs / %d outputs", nin,
                   nout);
        return b->err.status;
    }
    for (int i = 0; i < nin; i++) {
        if (!in[i]) {
            td_gb_fail(b, TD_EINTERNAL, "autograd: formula passed no tensor as input %d of %s",
                       i, td_op_info_get(op)->name);
            return b->err.status;
        }
        td_tensor_meta(in[i], &in_meta[i]);
    }
    td_error_clear(&e);
    rc = td__op_prepare(op, nin, in_meta, nattrs, attrs, nout, &c, &e);
    if (!rc) {
        c.inputs = in;
        c.rng = b->s ? b->s->rng : NULL;
        c.account = b->s ? b->s->account : NULL;
        c.ag = b->s;
        c.grad_mode = b->grad_mode;
        rc = td__op_meta(&c, planned, &e);
    }
    if (!rc)
        rc = td__op_exec(&c, planned, res, &e);
    if (!rc) {
        rc = after_op(b->s, b->grad_mode, b->fw, &c, res, &e);
        if (rc)
            for (int k = 0; k < nout; k++)
                td_tensor_release(res[k]);
    }
    if (rc) {
        td_gb_fail(b, rc, "%s", e.msg);
        return rc;
    }
    for (int k = 0; k < nout; k++)
        out[k] = td_gb_adopt(b, res[k]);
    return b->err.status;
}

int td_ag_call(struct td_ag_session *s, bool grad_mode, enum td_op op, int nin,
               struct td_tensor *const *in, int nattrs, const struct td_attr_arg *attrs, int nout,
               struct td_tensor **out, struct td_error *err)
{
    struct td_gb b;
    gb_init(&b, s, grad_mode, s != NULL);
    int rc = td_gb_opn(&b, op, nin, in, nattrs, attrs, nout, out);
    if (rc)
        td_error_set(err, rc, "%s", b.err.msg);
    else
        for (int k = 0; k < nout; k++)
            td_tensor_retain(out[k]);
    gb_end(&b);
    return rc;
}

struct td_tensor *td_gb_op(struct td_gb *b, enum td_op op, int nin, struct td_tensor *const *in,
                           int nattrs, const struct td_attr_arg *attrs)
{
    struct td_tensor *out = NULL;
    if (td_gb_opn(b, op, nin, in, nattrs, attrs, 1, &out))
        return NULL;
    return out;
}

struct td_attr_arg td_a_ints(const char *name, int nints, const int64_t *ints)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_INTS}};
    if (nints > TD_MAX_INTS)
        nints = TD_MAX_INTS;
    a.value.nints = nints;
    for (int i = 0; i < nints; i++)
        a.value.ints[i] = ints[i];
    return a;
}

struct td_attr_arg td_a_scalar_f(const char *name, double v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_SCALAR}};
    a.value.scalar.kind = TD_SCALAR_FLOAT;
    a.value.scalar.re = v;
    return a;
}

struct td_attr_arg td_a_scalar_i(const char *name, int64_t v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_SCALAR}};
    a.value.scalar.kind = TD_SCALAR_INT;
    a.value.scalar.i = v;
    a.value.scalar.re = (double)v;
    return a;
}

struct td_attr_arg td_a_scalar_c(const char *name, double re, double im)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_SCALAR}};
    a.value.scalar.kind = TD_SCALAR_COMPLEX;
    a.value.scalar.re = re;
    a.value.scalar.im = im;
    return a;
}

struct td_tensor *td_gb_unary(struct td_gb *b, enum td_op op, struct td_tensor *x)
{
    return td_gb_op(b, op, 1, &x, 0, NULL);
}

struct td_tensor *td_gb_binary(struct td_gb *b, enum td_op op, struct td_tensor *x,
                               struct td_tensor *y)
{
    struct td_tensor *in[2] = {x, y};
    return td_gb_op(b, op, 2, in, 0, NULL);
}

struct td_tensor *td_gb_scalar(struct td_gb *b, double v)
{
    /* Held as float64 so that float64 formulas see v exactly (1/N, 2/(N-1)...); a wrapped
     * number promotes as the default float dtype whatever its storage (td_result_type). */
    struct td_attr_arg a[3] = {td_a_scalar_f("value", v), TD_A_BOOL("wrapped", true),
                               TD_A_DTYPE("dtype", TD_FLOAT64)};
    return td_gb_op(b, TD_OP_scalar_tensor, 0, NULL, 3, a);
}

struct td_tensor *td_gb_scale(struct td_gb *b, struct td_tensor *x, double v)
{
    if (!x)
        return td_gb_fail(b, TD_EINTERNAL, "autograd: scale of no tensor");
    return td_gb_binary(b, TD_OP_mul, x, td_gb_scalar(b, v));
}

struct td_tensor *td_gb_zeros(struct td_gb *b, const struct td_meta *m)
{
    struct td_attr_arg a[2] = {td_a_ints("shape", m->ndim, m->shape),
                               TD_A_DTYPE("dtype", m->dtype)};
    return td_gb_op(b, TD_OP_zeros, 0, NULL, 2, a);
}

struct td_tensor *td_gb_zeros_like(struct td_gb *b, struct td_tensor *x)
{
    return td_gb_unary(b, TD_OP_zeros_like, x);
}

struct td_tensor *td_gb_ones_like(struct td_gb *b, struct td_tensor *x)
{
    return td_gb_unary(b, TD_OP_ones_like, x);
}

struct td_tensor *td_gb_cast(struct td_gb *b, struct td_tensor *x, enum td_dtype dt)
{
    if (!x || x->dtype == dt)
        return x;
    struct td_attr_arg a = TD_A_DTYPE("dtype", dt);
    return td_gb_op(b, TD_OP_cast, 1, &x, 1, &a);
}

struct td_tensor *td_gb_reshape(struct td_gb *b, struct td_tensor *x, int ndim,
                                const int64_t *shape)
{
    struct td_attr_arg a = td_a_ints("shape", ndim, shape);
    return td_gb_op(b, TD_OP_reshape, 1, &x, 1, &a);
}

struct td_tensor *td_gb_expand(struct td_gb *b, struct td_tensor *x, int ndim,
                               const int64_t *shape)
{
    struct td_attr_arg a = td_a_ints("shape", ndim, shape);
    return td_gb_op(b, TD_OP_expand, 1, &x, 1, &a);
}

struct td_tensor *td_gb_sum(struct td_gb *b, struct td_tensor *x, int ndims, const int64_t *dims,
                            bool keepdim)
{
    struct td_attr_arg a[2] = {td_a_ints("dim", ndims, dims), TD_A_BOOL("keepdim", keepdim)};
    return td_gb_op(b, TD_OP_sum, 1, &x, 2, a);
}

struct td_tensor *td_gb_sum_to(struct td_gb *b, struct td_tensor *x, const struct td_meta *m)
{
    if (!x)
        return NULL;
    if (x->ndim == m->ndim && memcmp(x->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim) == 0)
        return x;
    int lead = x->ndim - m->ndim;
    int64_t dims[TD_MAX_NDIM];
    int nd = 0;
    if (lead < 0)
        return td_gb_fail(b, TD_EINTERNAL, "autograd: gradient has fewer dims (%d) than its "
                          "input (%d)", x->ndim, m->ndim);
    for (int d = 0; d < lead; d++)
        dims[nd++] = d;
    for (int d = 0; d < m->ndim; d++) {
        int64_t xs = x->shape[lead + d];
        if (m->shape[d] == 1 && xs != 1)
            dims[nd++] = lead + d;
        else if (m->shape[d] != xs) {
            char b1[96], b2[96];
            return td_gb_fail(b, TD_EINTERNAL, "autograd: gradient shape %s does not reduce to "
                              "input shape %s",
                              td__shape_str(x->shape, x->ndim, b1, sizeof b1),
                              td__shape_str(m->shape, m->ndim, b2, sizeof b2));
        }
    }
    struct td_tensor *r = x;
    if (nd)
        r = td_gb_sum(b, x, nd, dims, false);
    /* Size-1 dims of m that were summed away with keepdim false come back by reshape. */
    if (r && (r->ndim != m->ndim))
        r = td_gb_reshape(b, r, m->ndim, m->shape);
    return r;
}

struct td_tensor *td_gb_conj(struct td_gb *b, struct td_tensor *x)
{
    if (!x || !td_dtype_is_complex(x->dtype))
        return x;
    return td_gb_unary(b, TD_OP_conj, x);
}

static struct td_tensor *unpack(struct td_gb *b, struct saved *sv, bool is_output, int idx)
{
    struct td_ag_node *n = b->node;
    const char *name = td_op_info_get(n->op)->name;
    if (n->released)
        return td_gb_fail(b, TD_EPRECOND,
                          "%s: trying to backward through the graph a second time (or to "
                          "access saved tensors after they were freed); saved values are freed "
                          "by backward unless retain_graph=True is given",
                          name);
    if (!sv->t)
        return td_gb_fail(b, TD_EINTERNAL, "autograd: %s's derivative reads %s %d, which it "
                          "does not save", name, is_output ? "output" : "input", idx);
    uint64_t now = atomic_load(&sv->t->storage->version);
    if (now != sv->version)
        return td_gb_fail(b, TD_EPRECOND,
                          "one of the tensors needed for gradient computation has been modified "
                          "by an in-place operation: %s %d of %s is at version %llu; expected "
                          "version %llu",
                          is_output ? "output" : "input", idx, name, (unsigned long long)now,
                          (unsigned long long)sv->version);
    if (!is_output)
        return td_gb_adopt(b, td_tensor_retain(sv->t));
    /* An output: rebuild the link to this node (and its tangent) on a fresh object. */
    struct td_tensor *t = NULL;
    struct td_error e;
    td_error_clear(&e);
    if (alias_new(sv->t, &t, &e))
        return td_gb_fail(b, e.status, "%s", e.msg);
    bool hist = b->history && dtype_differentiable(t->dtype);
    bool tan = sv->tangent && b->s && b->s->fw_level && sv->tangent_level == b->s->fw_level;
    if ((hist || tan) && td__ag_meta_ensure(t, &e)) {
        td_tensor_release(t);
        return td_gb_fail(b, e.status, "%s", e.msg);
    }
    if (hist) {
        t->ag->requires_grad = true;
        t->ag->grad_fn = node_retain(n);
        t->ag->output_nr = idx;
    }
    if (tan) {
        t->ag->tangent = td_tensor_retain(sv->tangent);
        t->ag->tangent_level = sv->tangent_level;
    }
    return td_gb_adopt(b, t);
}

struct td_tensor *td_gb_saved_input(struct td_gb *b, int i)
{
    if (b->err.status)
        return NULL;
    if (!b->node || i < 0 || i >= b->node->ninputs)
        return td_gb_fail(b, TD_EINTERNAL, "autograd: saved input %d out of range", i);
    return unpack(b, &b->node->saved_in[i], false, i);
}

struct td_tensor *td_gb_saved_output(struct td_gb *b, int k)
{
    if (b->err.status)
        return NULL;
    if (!b->node || k < 0 || k >= b->node->noutputs)
        return td_gb_fail(b, TD_EINTERNAL, "autograd: saved output %d out of range", k);
    return unpack(b, &b->node->saved_out[k], true, k);
}

/* Makes g fit meta m: real part for a real m, m's dtype, m's shape (summing broadcast dims
 * or expanding). Returns the fitted tensor (owned by b) or NULL. */
static struct td_tensor *fit(struct td_gb *b, struct td_tensor *g, const struct td_meta *m,
                             bool expand)
{
    if (!g)
        return NULL;
    if (td_dtype_is_complex(g->dtype) && !td_dtype_is_complex(m->dtype))
        g = td_gb_unary(b, TD_OP_real, g);
    g = td_gb_cast(b, g, m->dtype);
    if (!g)
        return NULL;
    bool same = g->ndim == m->ndim &&
                memcmp(g->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim) == 0;
    if (same)
        return g;
    if (expand) {
        g = td_gb_expand(b, g, m->ndim, m->shape);
        return g;
    }
    return td_gb_sum_to(b, g, m);
}

/* ---------------------------------------------------------------------------------------
 * Recording.
 */
static int node_new(struct td_ag_session *s, const struct td_op_ctx *c, struct td_ag_node **out,
                    struct td_error *err)
{
    struct td_ag_node *n = td_calloc(1, sizeof *n);
    int ni = c->ninputs, no = c->noutputs;
    if (!n)
        goto oom;
    atomic_init(&n->refcount, 1);
    n->op = c->op;
    n->ninputs = ni;
    n->noutputs = no;
    n->bw_index = -1;
    n->in_meta = td_calloc((size_t)(ni ? ni : 1), sizeof *n->in_meta);
    n->edges = td_calloc((size_t)(ni ? ni : 1), sizeof *n->edges);
    n->saved_in = td_calloc((size_t)(ni ? ni : 1), sizeof *n->saved_in);
    n->out_meta = td_calloc((size_t)(no ? no : 1), sizeof *n->out_meta);
    n->saved_out = td_calloc((size_t)(no ? no : 1), sizeof *n->saved_out);
    if (!n->in_meta || !n->edges || !n->saved_in || !n->out_meta || !n->saved_out)
        goto oom;
    for (int a = 0; a < c->info->nattrs; a++) {
        n->attrs[a] = c->attrs[a];
        if (c->attrs[a].type == TD_ATTR_STR) {
            n->attrs[a].s = NULL;
            if (c->attrs[a].s && !(n->attrs[a].s = td_strdup(c->attrs[a].s))) {
                n->attrs[a].type = TD_ATTR_INT;
                goto oom;
            }
        }
    }
    memcpy(n->in_meta, c->in_meta, sizeof *n->in_meta * (size_t)ni);
    if (s) {
        n->sess = s;
        n->next = s->nodes;
        if (s->nodes)
            s->nodes->prev = n;
        s->nodes = n;
        s->live_nodes++;
    }
    *out = n;
    return 0;
oom:
    if (n)
        node_release(n);
    return td_error_set(err, TD_ENOMEM, "autograd: out of memory recording %s", c->info->name);
}

/* The ctx a formula sees for node n. */
static void node_ctx(const struct td_ag_node *n, struct td_op_ctx *c)
{
    memset(c, 0, sizeof *c);
    c->op = n->op;
    c->info = td_op_info_get(n->op);
    c->ninputs = n->ninputs;
    c->in_meta = n->in_meta;
    c->noutputs = n->noutputs;
    memcpy(c->attrs, n->attrs, sizeof c->attrs);
}

/* Computes the outputs' tangents with the op's JVP. n: the node just recorded for this op
 * (NULL when none); with grad mode on, the JVP then sees the outputs as fresh objects linked
 * to n, so a tangent built from an output (exp's t * exp(x)) is differentiable back through
 * the op — forward-over-reverse needs that — without the output itself entering the
 * tangent's history (which would make output -> tangent -> history -> output a cycle). */
static int tangents_compute(struct td_ag_session *s, bool grad_mode, const struct td_op_ctx *c,
                            const struct td_deriv *d, struct td_ag_node *n,
                            struct td_tensor **out, struct td_tensor **tan_out,
                            struct td_error *err)
{
    struct td_gb b;
    struct td_tensor *tin[64] = {0}, *pin[64] = {0}, *pout[8] = {0}, *tout[8] = {0};
    int rc = 0;
    if (c->ninputs > 64 || c->noutputs > 8)
        return td_error_set(err, TD_EUNIMPL, "%s: forward-mode AD supports at most 64 inputs "
                            "and 8 outputs", c->info->name);
    gb_init(&b, s, grad_mode, false);
    for (int i = 0; i < c->ninputs; i++) {
        struct td_tensor *x = c->inputs[i];
        pin[i] = x;
        if (!dtype_differentiable(x->dtype))
            continue;
        struct td_tensor *t = td_ag_tangent(s, x);
        tin[i] = t ? t : td_gb_zeros_like(&b, x);
    }
    for (int k = 0; k < c->noutputs; k++) {
        pout[k] = out[k];
        if (!n || !grad_mode || !dtype_differentiable(out[k]->dtype) || !td_gb_ok(&b))
            continue;
        struct td_tensor *linked = NULL;
        struct td_error e;
        td_error_clear(&e);
        if (alias_new(out[k], &linked, &e) || td__ag_meta_ensure(linked, &e)) {
            td_tensor_release(linked);
            td_gb_fail(&b, e.status, "%s", e.msg);
            continue;
        }
        linked->ag->requires_grad = true;
        linked->ag->grad_fn = node_retain(n);
        linked->ag->output_nr = k;
        pout[k] = td_gb_adopt(&b, linked);
    }
    struct td_op_ctx cc = *c;
    cc.inputs = pin;
    struct td_jvp j = {&cc, pin, pout, tin, tout};
    if (td_gb_ok(&b))
        d->jvp(&b, &j);
    for (int k = 0; k < c->noutputs && td_gb_ok(&b); k++) {
        struct td_meta m;
        td_tensor_meta(out[k], &m);
        m.wrapped_number = false;
        if (!dtype_differentiable(m.dtype))
            continue;
        struct td_tensor *t = tout[k] ? fit(&b, tout[k], &m, true) : td_gb_zeros(&b, &m);
        if (t && (t->ndim != m.ndim || memcmp(t->shape, m.shape, sizeof(int64_t) * (size_t)m.ndim)))
            td_gb_fail(&b, TD_EINTERNAL, "%s: tangent shape does not match the output",
                       c->info->name);
        else if (t)
            tan_out[k] = td_tensor_retain(t);
    }
    if (!td_gb_ok(&b)) {
        rc = td_error_set(err, b.err.status, "%s (forward AD): %s", c->info->name, b.err.msg);
        for (int k = 0; k < c->noutputs; k++) {
            td_tensor_release(tan_out[k]);
            tan_out[k] = NULL;
        }
    }
    gb_end(&b);
    return rc;
}

static int after_op(struct td_ag_session *s, bool grad_mode, bool fw, const struct td_op_ctx *c,
                    struct td_tensor **out, struct td_error *err)
{
    const struct td_deriv *d = td_op_deriv(c->op);
    bool any_rg = false, any_tan = false;
    struct td_tensor *tan[8] = {0};
    struct td_ag_node *n = NULL;
    int rc = 0;

    if (c->info->flags & TD_OPF_STATEFUL)
        return 0;
    if (!d) {
        /* A non-differentiable op on inputs that require grad: its floating outputs remember
         * the op, so asking for their gradient says why there is none. */
        bool rg = false;
        for (int i = 0; i < c->ninputs && grad_mode; i++)
            rg |= td_ag_requires_grad(c->inputs[i]);
        for (int k = 0; rg && k < c->noutputs; k++) {
            if (!dtype_differentiable(out[k]->dtype))
                continue;
            for (int i = 0; i < c->ninputs; i++)
                if (out[k] == c->inputs[i])
                    return 0;
            rc = td__ag_meta_ensure(out[k], err);
            if (rc)
                return rc;
            out[k]->ag->nondiff_op = (int)c->op + 1;
        }
        return 0;
    }
    for (int i = 0; i < c->ninputs; i++) {
        if (grad_mode && td_ag_requires_grad(c->inputs[i]))
            any_rg = true;
        if (fw && td_ag_tangent(s, c->inputs[i]))
            any_tan = true;
    }
    /* make_dual and dual_primal set (or drop) the tangent in their kernels. */
    if (c->op == TD_OP_make_dual || c->op == TD_OP_dual_primal)
        any_tan = false;
    if (!any_rg && !any_tan)
        return 0;
    if (c->noutputs > 8)
        return td_error_set(err, TD_EUNIMPL, "%s: autograd supports at most 8 outputs",
                            c->info->name);
    /* Outputs that are input objects themselves (a contiguous tensor's `contiguous`) get
     * their own object, so this op's autograd fields do not land on the input. */
    for (int k = 0; k < c->noutputs; k++) {
        bool shared = false;
        for (int i = 0; i < c->ninputs && !shared; i++)
            shared = out[k] == c->inputs[i];
        if (shared) {
            struct td_tensor *fresh = NULL;
            rc = alias_new(out[k], &fresh, err);
            if (rc)
                return rc;
            td_tensor_release(out[k]);
            out[k] = fresh;
        }
    }
    if (any_rg) {
        rc = node_new(s, c, &n, err);
        if (rc)
            goto out;
        for (int i = 0; i < c->ninputs; i++) {
            struct td_tensor *x = c->inputs[i];
            if (td_ag_requires_grad(x)) {
                if (x->ag->grad_fn) {
                    n->edges[i].fn = node_retain(x->ag->grad_fn);
                    n->edges[i].output_nr = x->ag->output_nr;
                } else {
                    n->edges[i].leaf = td_tensor_retain(x);
                }
            }
            if (d->save_in == TD_SAVE_ALL_INPUTS || (i < 32 && (d->save_in >> i) & 1u)) {
                n->saved_in[i].t = td_tensor_retain(x);
                n->saved_in[i].version = atomic_load(&x->storage->version);
            }
        }
        for (int k = 0; k < c->noutputs; k++) {
            td_tensor_meta(out[k], &n->out_meta[k]);
            if (k < 32 && (d->save_out >> k) & 1u) {
                rc = alias_new(out[k], &n->saved_out[k].t, err);
                if (rc)
                    goto out;
                n->saved_out[k].version = atomic_load(&out[k]->storage->version);
            }
        }
    }
    if (any_tan) {
        rc = tangents_compute(s, grad_mode, c, d, n, out, tan, err);
        if (rc)
            goto out;
        for (int k = 0; n && k < c->noutputs; k++)
            if (n->saved_out[k].t && tan[k]) {
                n->saved_out[k].tangent = td_tensor_retain(tan[k]);
                n->saved_out[k].tangent_level = s->fw_level;
            }
    }
    for (int k = 0; k < c->noutputs; k++) {
        bool diff = dtype_differentiable(out[k]->dtype);
        if (!diff || (!n && !tan[k]))
            continue;
        rc = td__ag_meta_ensure(out[k], err);
        if (rc)
            goto out;
    }
    for (int k = 0; k < c->noutputs; k++) {
        if (!dtype_differentiable(out[k]->dtype))
            continue;
        if (n) {
            out[k]->ag->requires_grad = true;
            out[k]->ag->grad_fn = node_retain(n);
            out[k]->ag->output_nr = k;
        }
        if (tan[k]) {
            out[k]->ag->tangent = tan[k];
            out[k]->ag->tangent_level = s->fw_level;
            tan[k] = NULL;
        }
    }
out:
    for (int k = 0; k < 8; k++)
        td_tensor_release(tan[k]);
    node_release(n);
    return rc;
}

int td__ag_after_op(struct td_ag_session *s, bool grad_mode, const struct td_op_ctx *c,
                    struct td_tensor **out, struct td_error *err)
{
    return after_op(s, grad_mode, s != NULL, c, out, err);
}

/* ---------------------------------------------------------------------------------------
 * Backward.
 */
struct bw {
    struct td_ag_session *s;
    struct td_ag_node **order;     /* topological: every node before the nodes it points to */
    int n, cap;
    struct td_tensor ***buf;       /* [n][noutputs] gradients flowing into each node output */
    bool *below;                   /* VJP must run: some wanted gradient lies beyond */
    bool *captured_at;             /* some capture is an output of this node */
    /* captures (autograd.grad) */
    int ncap;
    struct td_tensor *const *inputs;
    struct td_tensor **cap_grad;   /* [ncap] */
    bool accumulate;
    bool create_graph;
};

static int bw_push(struct bw *w, struct td_ag_node *n, struct td_error *err)
{
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        struct td_ag_node **p = td_realloc(w->order, (size_t)cap * sizeof *p);
        if (!p)
            return td_error_set(err, TD_ENOMEM, "backward: out of memory");
        w->order = p;
        w->cap = cap;
    }
    n->bw_index = w->n;
    w->order[w->n++] = n;
    return 0;
}

/* Collects the nodes reachable from the roots and sorts them (Kahn's algorithm on the
 * in-degrees within the reachable set). Nodes end with bw_index = position in w->order. */
static int bw_collect(struct bw *w, int nroots, struct td_tensor *const *roots,
                      struct td_error *err)
{
    struct td_ag_node **stack = NULL, **seen = NULL;
    int *indeg = NULL;
    int nseen = 0, capseen = 0, sp = 0, capst = 0, rc = 0;

    /* DFS marking with bw_index = -2 (seen); a list of seen nodes to reset on failure. */
#define PUSH_SEEN(x)                                                                        \
    do {                                                                                    \
        if (nseen == capseen) {                                                             \
            int nc = capseen ? capseen * 2 : 64;                                            \
            struct td_ag_node **np = td_realloc(seen, (size_t)nc * sizeof *np);             \
            struct td_ag_node **ns = td_realloc(stack, (size_t)nc * sizeof *ns);            \
            if (np)                                                                         \
                seen = np;                                                                  \
            if (ns)                                                                         \
                stack = ns;                                                                 \
            if (!np || !ns) {                                                               \
                rc = td_error_set(err, TD_ENOMEM, "backward: out of memory");               \
                goto out;                                                                   \
            }                                                                               \
            capseen = capst = nc;                                                           \
        }                                                                                   \
        (x)->bw_index = -2;                                                                 \
        seen[nseen++] = (x);                                                                \
        stack[sp++] = (x);                                                                  \
    } while (0)

    for (int r = 0; r < nroots; r++) {
        struct td_ag_node *fn = roots[r]->ag ? roots[r]->ag->grad_fn : NULL;
        if (fn && fn->bw_index == -1)
            PUSH_SEEN(fn);
    }
    while (sp > 0) {
        struct td_ag_node *n = stack[--sp];
        for (int i = 0; i < n->ninputs; i++) {
            struct td_ag_node *fn = n->edges[i].fn;
            if (fn && fn->bw_index == -1)
                PUSH_SEEN(fn);
        }
    }
    (void)capst;
    indeg = td_calloc((size_t)(nseen ? nseen : 1), sizeof *indeg);
    if (!indeg) {
        rc = td_error_set(err, TD_ENOMEM, "backward: out of memory");
        goto out;
    }
    /* Temporarily number seen nodes to index indeg. */
    for (int i = 0; i < nseen; i++)
        seen[i]->bw_index = -3 - i;
    for (int i = 0; i < nseen; i++)
        for (int e = 0; e < seen[i]->ninputs; e++)
            if (seen[i]->edges[e].fn)
                indeg[-3 - seen[i]->edges[e].fn->bw_index]++;
    sp = 0;
    for (int i = 0; i < nseen; i++)
        if (indeg[i] == 0)
            stack[sp++] = seen[i];
    while (sp > 0) {
        struct td_ag_node *n = stack[--sp];
        int idx = -3 - n->bw_index;
        (void)idx;
        rc = bw_push(w, n, err);
        if (rc)
            goto out;
        for (int e = 0; e < n->ninputs; e++) {
            struct td_ag_node *fn = n->edges[e].fn;
            if (fn && fn->bw_index <= -3) {
                int j = -3 - fn->bw_index;
                if (--indeg[j] == 0)
                    stack[sp++] = fn;
            }
        }
    }
out:
#undef PUSH_SEEN
    if (rc) {
        for (int i = 0; i < nseen; i++)
            seen[i]->bw_index = -1;
        for (int i = 0; i < w->n; i++)
            w->order[i]->bw_index = -1;
        w->n = 0;
    }
    td_free(stack);
    td_free(seen);
    td_free(indeg);
    return rc;
}

/* Index of the capture for leaf x or (fn, nr), or -1. */
static int find_capture(const struct bw *w, const struct td_tensor *leaf,
                        const struct td_ag_node *fn, int nr)
{
    for (int i = 0; i < w->ncap; i++) {
        const struct td_tensor *x = w->inputs[i];
        if (leaf) {
            if (x == leaf)
                return i;
        } else if (x->ag && x->ag->grad_fn == fn && x->ag->output_nr == nr) {
            return i;
        }
    }
    return -1;
}

/* acc = acc + g, built in b (recorded when create_graph). Takes nothing; *acc is an owned
 * reference replaced by an owned reference. */
static void accumulate(struct td_gb *b, struct td_tensor **acc, struct td_tensor *g)
{
    if (!g)
        return;
    if (!*acc) {
        *acc = td_tensor_retain(g);
        return;
    }
    struct td_tensor *sum = td_gb_binary(b, TD_OP_add, *acc, g);
    if (!sum)
        return;
    td_tensor_release(*acc);
    *acc = td_tensor_retain(sum);
}

/* Adds g into leaf x's .grad (PyTorch's AccumulateGrad). */
static void leaf_accumulate(struct td_gb *b, struct td_tensor *x, bool create_graph,
                            struct td_tensor *g)
{
    struct td_error e;
    td_error_clear(&e);
    if (!td_gb_ok(b) || !g)
        return;
    if (td__ag_meta_ensure(x, &e)) {
        td_gb_fail(b, e.status, "%s", e.msg);
        return;
    }
    struct td_tensor *old = x->ag->grad;
    if (!old) {
        struct td_tensor *ng;
        /* Keep g itself only when nothing else can see it; otherwise a later in-place
         * accumulation would show through another tensor. */
        if (create_graph || (atomic_load(&g->refcount) <= 2 &&
                             atomic_load(&g->storage->refcount) == 1 &&
                             td_tensor_is_contiguous(g) && !g->ag))
            ng = td_tensor_retain(g);
        else {
            ng = td_gb_unary(b, TD_OP_clone, g);
            if (!ng)
                return;
            td_tensor_retain(ng);
        }
        x->ag->grad = ng;
        return;
    }
    if (create_graph || old->ag || !td_tensor_is_contiguous(old) || old->dtype != g->dtype) {
        struct td_tensor *sum = td_gb_binary(b, TD_OP_add, old, g);
        if (!sum)
            return;
        if (!create_graph)
            sum = td_gb_cast(b, sum, old->dtype);
        x->ag->grad = td_tensor_retain(sum);
        td_tensor_release(old);
        return;
    }
    /* In place: old += g (elementwise, same index in and out, so aliasing is safe). */
    struct td_meta m[2];
    struct td_op_ctx c;
    struct td_tensor *in[2] = {old, g}, *o[1] = {old};
    td_tensor_meta(old, &m[0]);
    td_tensor_meta(g, &m[1]);
    int rc = td__op_prepare(TD_OP_add, 2, m, 0, NULL, 1, &c, &e);
    if (!rc) {
        c.inputs = in;
        c.account = b->s ? b->s->account : NULL;
        rc = td__op_cpu(&c, o, &e);
    }
    if (rc) {
        td_gb_fail(b, rc, "accumulating .grad: %s", e.msg);
        return;
    }
    atomic_fetch_add(&old->storage->version, 1);
}

static void bw_free(struct bw *w)
{
    for (int i = 0; i < w->n; i++) {
        struct td_ag_node *n = w->order[i];
        if (w->buf && w->buf[i]) {
            for (int k = 0; k < n->noutputs; k++)
                td_tensor_release(w->buf[i][k]);
            td_free(w->buf[i]);
        }
        n->bw_index = -1;
    }
    td_free(w->buf);
    td_free(w->below);
    td_free(w->captured_at);
    td_free(w->order);
}

/* Routes gradient g (owned by b) of the tensor behind edge-like (fn, nr, leaf). */
static void route(struct bw *w, struct td_gb *b, struct td_ag_node *fn, int nr,
                  struct td_tensor *leaf, struct td_tensor *g)
{
    if (!g || !td_gb_ok(b))
        return;
    if (fn) {
        if (fn->bw_index < 0)
            return;
        if (!w->accumulate && !w->below[fn->bw_index] && !w->captured_at[fn->bw_index])
            return;
        struct td_tensor **slot = &w->buf[fn->bw_index][nr];
        accumulate(b, slot, g);
        return;
    }
    if (!leaf)
        return;
    if (w->accumulate) {
        leaf_accumulate(b, leaf, w->create_graph, g);
        return;
    }
    int ci = find_capture(w, leaf, NULL, 0);
    if (ci >= 0)
        accumulate(b, &w->cap_grad[ci], g);
}

int td_ag_backward(struct td_ag_session *s, int nroots, struct td_tensor *const *roots,
                   struct td_tensor *const *grad_outputs, int ninputs,
                   struct td_tensor *const *inputs, bool retain_graph, bool create_graph,
                   bool allow_unused, struct td_tensor **grads_out, struct td_error *err)
{
    struct bw w;
    struct td_gb b;
    int rc = 0;
    memset(&w, 0, sizeof w);
    w.s = s;
    w.accumulate = ninputs == 0;
    w.create_graph = create_graph;
    w.ncap = ninputs;
    w.inputs = inputs;
    gb_init(&b, s, create_graph, true);

    if (nroots <= 0)
        return td_error_set(err, TD_EINVAL, "backward: no tensors to differentiate");
    for (int r = 0; r < nroots; r++) {
        if (!td_ag_requires_grad(roots[r])) {
            int nd = roots[r]->ag ? roots[r]->ag->nondiff_op : 0;
            const struct td_op_info *ni = nd ? td_op_info_get((enum td_op)(nd - 1)) : NULL;
            return td_error_set(err, TD_EINVAL,
                                "backward: element %d of tensors does not require grad and "
                                "does not have a grad_fn%s%s%s",
                                r, ni ? " (it is the output of " : "", ni ? ni->name : "",
                                ni ? ", which is not differentiable)" : "");
        }
        struct td_tensor *go = grad_outputs ? grad_outputs[r] : NULL;
        if (!go) {
            if (td_tensor_numel(roots[r]) != 1)
                return td_error_set(err, TD_EINVAL,
                                    "backward: grad can be implicitly created only for scalar "
                                    "outputs (element %d has %lld elements)",
                                    r, (long long)td_tensor_numel(roots[r]));
            if (td_dtype_is_complex(roots[r]->dtype))
                return td_error_set(err, TD_EINVAL,
                                    "backward: grad can be implicitly created only for real "
                                    "scalar outputs (element %d is %s)",
                                    r, td_dtype_name(roots[r]->dtype));
        } else if (go->ndim != roots[r]->ndim ||
                   memcmp(go->shape, roots[r]->shape, sizeof(int64_t) * (size_t)go->ndim)) {
            char b1[96], b2[96];
            return td_error_set(err, TD_EINVAL,
                                "backward: mismatch in shape: grad_output[%d] has a shape of %s "
                                "and output[%d] has a shape of %s",
                                r, td__shape_str(go->shape, go->ndim, b1, sizeof b1), r,
                                td__shape_str(roots[r]->shape, roots[r]->ndim, b2, sizeof b2));
        }
    }
    for (int i = 0; i < ninputs; i++)
        if (!td_ag_requires_grad(inputs[i]))
            return td_error_set(err, TD_EINVAL,
                                "grad: input %d does not require grad (one of the differentiated "
                                "tensors does not require grad)",
                                i);

    rc = bw_collect(&w, nroots, roots, err);
    if (rc)
        goto out;
    w.buf = td_calloc((size_t)(w.n ? w.n : 1), sizeof *w.buf);
    w.below = td_calloc((size_t)(w.n ? w.n : 1), sizeof *w.below);
    w.captured_at = td_calloc((size_t)(w.n ? w.n : 1), sizeof *w.captured_at);
    w.cap_grad = grads_out;
    for (int i = 0; i < ninputs; i++)
        grads_out[i] = NULL;
    if (!w.buf || !w.below || !w.captured_at) {
        rc = td_error_set(err, TD_ENOMEM, "backward: out of memory");
        goto out;
    }
    for (int i = 0; i < w.n; i++) {
        w.buf[i] = td_calloc((size_t)(w.order[i]->noutputs ? w.order[i]->noutputs : 1),
                             sizeof **w.buf);
        if (!w.buf[i]) {
            rc = td_error_set(err, TD_ENOMEM, "backward: out of memory");
            goto out;
        }
    }
    /* Which nodes must run: in reverse topological order (children first). */
    for (int i = w.n - 1; i >= 0; i--) {
        struct td_ag_node *n = w.order[i];
        if (w.accumulate) {
            w.below[i] = true;
            continue;
        }
        for (int k = 0; k < n->noutputs; k++)
            if (find_capture(&w, NULL, n, k) >= 0)
                w.captured_at[i] = true;
        for (int e = 0; e < n->ninputs && !w.below[i]; e++) {
            struct td_ag_node *fn = n->edges[e].fn;
            if (fn && fn->bw_index >= 0 && (w.below[fn->bw_index] || w.captured_at[fn->bw_index]))
                w.below[i] = true;
            if (n->edges[e].leaf && find_capture(&w, n->edges[e].leaf, NULL, 0) >= 0)
                w.below[i] = true;
        }
    }
    /* Seed. */
    for (int r = 0; r < nroots && td_gb_ok(&b); r++) {
        struct td_tensor *g = grad_outputs ? grad_outputs[r] : NULL;
        if (!g)
            g = td_gb_ones_like(&b, roots[r]);
        else if (g->ag && !create_graph) {
            struct td_tensor *plain = NULL;
            if (alias_new(g, &plain, err) == 0)
                g = td_gb_adopt(&b, plain);
            else
                td_gb_fail(&b, err->status, "%s", err->msg);
        }
        struct td_ag_node *fn = roots[r]->ag->grad_fn;
        if (fn) {
            route(&w, &b, fn, roots[r]->ag->output_nr, NULL, g);
        } else {
            route(&w, &b, NULL, 0, roots[r], g);
        }
    }
    for (int i = 0; i < w.n && td_gb_ok(&b); i++) {
        struct td_ag_node *n = w.order[i];
        struct td_tensor **gbuf = w.buf[i];
        if (w.captured_at[i])
            for (int k = 0; k < n->noutputs; k++) {
                int ci = find_capture(&w, NULL, n, k);
                if (ci >= 0 && gbuf[k])
                    accumulate(&b, &w.cap_grad[ci], gbuf[k]);
            }
        if (!w.below[i])
            continue;
        bool any = false;
        for (int k = 0; k < n->noutputs; k++)
            any |= gbuf[k] != NULL;
        if (!any)
            continue;
        const struct td_deriv *d = td_op_deriv(n->op);
        struct td_op_ctx c;
        struct td_tensor *gout[8] = {0}, *gin[64] = {0};
        bool needs[64] = {0};
        if (n->ninputs > 64 || n->noutputs > 8 || !d || !d->vjp) {
            td_gb_fail(&b, TD_EINTERNAL, "backward: %s cannot be differentiated here",
                       td_op_info_get(n->op)->name);
            break;
        }
        node_ctx(n, &c);
        for (int k = 0; k < n->noutputs; k++) {
            if (!dtype_differentiable(n->out_meta[k].dtype))
                continue;
            gout[k] = gbuf[k] ? gbuf[k] : td_gb_zeros(&b, &n->out_meta[k]);
        }
        for (int e = 0; e < n->ninputs; e++) {
            struct td_ag_node *fn = n->edges[e].fn;
            if (fn)
                needs[e] = fn->bw_index >= 0 &&
                           (w.accumulate || w.below[fn->bw_index] || w.captured_at[fn->bw_index]);
            else if (n->edges[e].leaf)
                needs[e] = w.accumulate || find_capture(&w, n->edges[e].leaf, NULL, 0) >= 0;
        }
        struct td_vjp v = {&c, n->out_meta, gout, needs, gin};
        struct td_ag_node *saved_node = b.node;
        b.node = n;
        b.history = create_graph;
        d->vjp(&b, &v);
        b.node = saved_node;
        if (!td_gb_ok(&b))
            break;
        for (int e = 0; e < n->ninputs && td_gb_ok(&b); e++) {
            if (!needs[e] || !gin[e])
                continue;
            struct td_meta m = n->in_meta[e];
            m.wrapped_number = false;
            struct td_tensor *g = fit(&b, gin[e], &m, false);
            route(&w, &b, n->edges[e].fn, n->edges[e].output_nr, n->edges[e].leaf, g);
        }
        /* This node's incoming gradients are spent. */
        for (int k = 0; k < n->noutputs; k++) {
            td_tensor_release(gbuf[k]);
            gbuf[k] = NULL;
        }
    }
    if (!td_gb_ok(&b)) {
        rc = td_error_set(err, b.err.status, "backward: %s", b.err.msg);
        goto out;
    }
    if (!retain_graph)
        for (int i = 0; i < w.n; i++)
            if (w.below[i]) {
                w.order[i]->released = true;
                for (int e = 0; e < w.order[i]->ninputs; e++)
                    saved_clear(&w.order[i]->saved_in[e]);
                for (int k = 0; k < w.order[i]->noutputs; k++)
                    saved_clear(&w.order[i]->saved_out[k]);
            }
    for (int i = 0; i < ninputs; i++) {
        if (grads_out[i]) {
            struct td_meta m;
            td_tensor_meta(inputs[i], &m);
            m.wrapped_number = false;
            struct td_tensor *g = fit(&b, grads_out[i], &m, false);
            if (g != grads_out[i]) {
                td_tensor_release(grads_out[i]);
                grads_out[i] = td_tensor_retain(g);
            }
        }
        if (!grads_out[i] && !allow_unused) {
            rc = td_error_set(err, TD_EINVAL,
                              "grad: input %d was not used in the graph (set allow_unused=True "
                              "if this is intended)",
                              i);
            goto out;
        }
    }
    if (!td_gb_ok(&b))
        rc = td_error_set(err, b.err.status, "backward: %s", b.err.msg);
out:
    if (rc)
        for (int i = 0; i < ninputs; i++) {
            td_tensor_release(grads_out[i]);
            grads_out[i] = NULL;
        }
    bw_free(&w);
    gb_end(&b);
    return rc;
}

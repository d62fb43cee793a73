/*
 * ops.c - the op table built from ops.def, attribute schemas, request validation shared by
 * td_op_call and the graph planner, and the attribute accessors kernels use.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

struct op_row {
    const char *spec;
    td_meta_fn meta;
    td_cpu_fn cpu;
    const struct td_deriv *deriv;
};

static const struct op_row op_rows[TD_OP_COUNT] = {
#define TD_OP(name, min_in, max_in, n_out, dtypes, flags, grad, attrs, doc) \
    {(attrs), meta_##name, cpu_##name, TD_GRAD_##grad(name)},
#include "ops.def"
#undef TD_OP
};

static struct td_op_info op_infos[TD_OP_COUNT] = {
#define TD_OP(name, min_in, max_in, n_out, dtypes, flags, grad, attrs, doc) \
    {#name, (min_in), (max_in), (n_out), (dtypes), (flags), (doc), 0, {{0}}, {{0}}},
#include "ops.def"
#undef TD_OP
};

/* Parsed names and default texts live here; the schema points into it. */
#define NAME_MAX_LEN 32
#define DEFAULT_MAX_LEN 32
static char attr_names[TD_OP_COUNT][TD_MAX_ATTRS][NAME_MAX_LEN];
static char attr_defaults[TD_OP_COUNT][TD_MAX_ATTRS][DEFAULT_MAX_LEN];

static const char *const attr_type_names[TD_ATTR_TYPE_COUNT] = {
    "int", "float", "bool", "str", "ints", "dtype", "scalar",
};

const char *td_attr_type_name(enum td_attr_type t)
{
    return (t >= 0 && t < TD_ATTR_TYPE_COUNT) ? attr_type_names[t] : "?";
}

static int parse_dtype_name(const char *s, enum td_dtype *out)
{
    for (int d = 0; d < TD_DTYPE_COUNT; d++) {
        if (strcmp(s, td_dtype_name((enum td_dtype)d)) == 0) {
            *out = (enum td_dtype)d;
            return 0;
        }
    }
    return -1;
}

/* Parses a default text of the given type into v. Returns 0 or -1. */
static int parse_default(enum td_attr_type type, const char *text, struct td_attr_value *v)
{
    char *end = NULL;
    switch (type) {
    case TD_ATTR_INT:
        v->i = strtoll(text, &end, 10);
        return (*text && !*end) ? 0 : -1;
    case TD_ATTR_FLOAT:
        v->f = strtod(text, &end);
        return (*text && !*end) ? 0 : -1;
    case TD_ATTR_BOOL:
        if (strcmp(text, "true") == 0)
            v->b = true;
        else if (strcmp(text, "false") == 0)
            v->b = false;
        else
            return -1;
        return 0;
    case TD_ATTR_STR:
        /* The schema's default text outlives every op call, so pointing at it is safe. */
        v->s = (char *)text;
        return 0;
    case TD_ATTR_DTYPE:
        return parse_dtype_name(text, &v->dtype);
    case TD_ATTR_SCALAR:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            v->scalar.kind = TD_SCALAR_BOOL;
            v->scalar.i = text[0] == 't';
            v->scalar.re = (double)v->scalar.i;
            return 0;
        }
        if (strpbrk(text, ".eEni")) {
            v->scalar.kind = TD_SCALAR_FLOAT;
            v->scalar.re = strtod(text, &end);
        } else {
            v->scalar.kind = TD_SCALAR_INT;
            v->scalar.i = strtoll(text, &end, 10);
            v->scalar.re = (double)v->scalar.i;
        }
        v->scalar.im = 0;
        return (*text && !*end) ? 0 : -1;
    case TD_ATTR_INTS:
        v->nints = 0;
        return strcmp(text, "[]") == 0 ? 0 : -1;
    default:
        return -1;
    }
}

static int parse_spec(int op, struct td_error *err)
{
    struct td_op_info *info = &op_infos[op];
    const char *p = op_rows[op].spec;
    info->nattrs = 0;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[NAME_MAX_LEN + DEFAULT_MAX_LEN + 16];
        if (len >= sizeof item || info->nattrs >= TD_MAX_ATTRS)
            goto bad;
        memcpy(item, p, len);
        item[len] = '\0';
        char *colon = strchr(item, ':');
        if (!colon || colon == item || (size_t)(colon - item) >= NAME_MAX_LEN)
            goto bad;
        *colon = '\0';
        char *type = colon + 1;
        char *deflt = NULL;
        bool optional = false;
        char *eq = strchr(type, '=');
        if (eq) {
            *eq = '\0';
            deflt = eq + 1;
            if (strlen(deflt) >= DEFAULT_MAX_LEN)
                goto bad;
        } else {
            size_t tl = strlen(type);
            if (tl && type[tl - 1] == '?') {
                type[tl - 1] = '\0';
                optional = true;
            }
        }
        int t;
        for (t = 0; t < TD_ATTR_TYPE_COUNT; t++)
            if (strcmp(type, attr_type_names[t]) == 0)
                break;
        if (t == TD_ATTR_TYPE_COUNT)
            goto bad;
        int k = info->nattrs;
        struct td_attr_schema *sc = &info->attrs[k];
        struct td_attr_value *dv = &info->defaults[k];
        strcpy(attr_names[op][k], item);
        memset(dv, 0, sizeof *dv);
        dv->type = (enum td_attr_type)t;
        sc->name = attr_names[op][k];
        sc->type = (enum td_attr_type)t;
        sc->required = !deflt && !optional;
        sc->has_default = deflt != NULL;
        if (deflt) {
            strcpy(attr_defaults[op][k], deflt);
            sc->default_text = attr_defaults[op][k];
            if (parse_default(sc->type, sc->default_text, dv))
                goto bad;
            dv->present = true;
        } else {
            sc->default_text = "";
        }
        for (int j = 0; j < k; j++)
            if (strcmp(info->attrs[j].name, sc->name) == 0)
                goto bad;
        info->nattrs++;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
bad:
    return td_error_set(err, TD_EINTERNAL, "ops.def: malformed attribute spec for %s: \"%s\"",
                        info->name, op_rows[op].spec);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static struct td_error init_err;

static void init_table(void)
{
    td_error_clear(&init_err);
    for (int op = 0; op < TD_OP_COUNT; op++) {
        if (parse_spec(op, &init_err))
            return;
        /* A differentiable row must come with both formulas: the engine relies on it, so a
         * missing one stops the daemon at start-up instead of failing a user's backward. */
        const struct td_deriv *d = op_rows[op].deriv;
        if (d && (!d->vjp || !d->jvp)) {
            td_error_set(&init_err, TD_EINTERNAL, "ops.def: %s is differentiable (D) but its "
                         "td_deriv lacks a %s", op_infos[op].name, d->vjp ? "JVP" : "VJP");
            return;
        }
    }
}

int td_ops_init(struct td_error *err)
{
    pthread_once(&init_once, init_table);
    if (init_err.status) {
        if (err)
            *err = init_err;
        return init_err.status;
    }
    return 0;
}

const struct td_op_info *td_op_info_get(enum td_op op)
{
    if ((int)op < 0 || op >= TD_OP_COUNT)
        return NULL;
    return &op_infos[op];
}

int td_op_lookup(const char *name, enum td_op *out)
{
    if (!name)
        return TD_ENOTFOUND;
    for (int op = 0; op < TD_OP_COUNT; op++) {
        if (strcmp(op_infos[op].name, name) == 0) {
            *out = (enum td_op)op;
            return 0;
        }
    }
    return TD_ENOTFOUND;
}

const char *td_op_flag_names(uint32_t flags, char *buf, size_t n)
{
    static const char *const names[] = {"elementwise", "promote", "int_to_float", "reduction",
                                        "scan",        "creation", "random",      "view",
                                        "stateful"};
    size_t len = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    for (size_t b = 0; b < sizeof names / sizeof names[0]; b++) {
        if (!(flags & (1u << b)))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? "," : "", names[b]);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    return buf;
}

/* ---------------------------------------------------------------------------------------
 * Attribute access.
 */
static int attr_index(const struct td_op_ctx *c, const char *name)
{
    for (int k = 0; k < c->info->nattrs; k++)
        if (strcmp(c->info->attrs[k].name, name) == 0)
            return k;
    /* A wrong name is a bug in the kernel, never caused by a request. */
    assert(!"td_arg: attribute name not in the op's schema");
    abort();
}

bool td_arg_has(const struct td_op_ctx *c, const char *name)
{
    return c->attrs[attr_index(c, name)].present;
}

int64_t td_arg_int(const struct td_op_ctx *c, const char *name)
{
    return c->attrs[attr_index(c, name)].i;
}

double td_arg_float(const struct td_op_ctx *c, const char *name)
{
    return c->attrs[attr_index(c, name)].f;
}

bool td_arg_bool(const struct td_op_ctx *c, const char *name)
{
    return c->attrs[attr_index(c, name)].b;
}

const char *td_arg_str(const struct td_op_ctx *c, const char *name)
{
    const struct td_attr_value *v = &c->attrs[attr_index(c, name)];
    return v->present ? v->s : NULL;
}

const int64_t *td_arg_ints(const struct td_op_ctx *c, const char *name, int *n)
{
    const struct td_attr_value *v = &c->attrs[attr_index(c, name)];
    if (n)
        *n = v->present ? v->nints : 0;
    return v->ints;
}

enum td_dtype td_arg_dtype(const struct td_op_ctx *c, const char *name)
{
    return c->attrs[attr_index(c, name)].dtype;
}

const struct td_scalar *td_arg_scalar(const struct td_op_ctx *c, const char *name)
{
    return &c->attrs[attr_index(c, name)].scalar;
}

/* ---------------------------------------------------------------------------------------
 * Validation.
 */

/* Converts a request value into the schema's type where the conversion is lossless and
 * natural (int for float, int/float/bool for scalar, one int for ints). Returns 0 or -1. */
static int coerce_attr(enum td_attr_type want, const struct td_attr_value *in,
                       struct td_attr_value *out)
{
    *out = *in;
    out->type = want;
    out->present = true;
    if (in->type == want)
        return 0;
    switch (want) {
    case TD_ATTR_FLOAT:
        if (in->type == TD_ATTR_INT) {
            out->f = (double)in->i;
            return 0;
        }
        return -1;
    case TD_ATTR_SCALAR:
        memset(&out->scalar, 0, sizeof out->scalar);
        if (in->type == TD_ATTR_INT) {
            out->scalar.kind = TD_SCALAR_INT;
            out->scalar.i = in->i;
            out->scalar.re = (double)in->i;
            return 0;
        }
        if (in->type == TD_ATTR_FLOAT) {
            out->scalar.kind = TD_SCALAR_FLOAT;
            out->scalar.re = in->f;
            return 0;
        }
        if (in->type == TD_ATTR_BOOL) {
            out->scalar.kind = TD_SCALAR_BOOL;
            out->scalar.i = in->b;
            out->scalar.re = in->b;
            return 0;
        }
        return -1;
    case TD_ATTR_INTS:
        if (in->type == TD_ATTR_INT) {
            out->nints = 1;
            out->ints[0] = in->i;
            return 0;
        }
        return -1;
    default:
        return -1;
    }
}

int td__op_prepare(enum td_op op, int ninputs, const struct td_meta *in_meta, int nattrs,
                   const struct td_attr_arg *attrs, int noutputs, struct td_op_ctx *c,
                   struct td_error *err)
{
    int rc = td_ops_init(err);
    if (rc)
        return rc;
    const struct td_op_info *info = td_op_info_get(op);
    if (!info)
        return td_error_set(err, TD_EINVAL, "unknown op %d", (int)op);
    const char *name = info->name;
    memset(c, 0, sizeof *c);
    c->op = op;
    c->info = info;
    c->ninputs = ninputs;
    c->in_meta = in_meta;
    c->noutputs = noutputs;

    if (ninputs < info->min_inputs || (info->max_inputs >= 0 && ninputs > info->max_inputs)) {
        if (info->max_inputs == info->min_inputs)
            return td_error_set(err, TD_EINVAL, "%s: expects %d input%s, got %d", name,
                                info->min_inputs, info->min_inputs == 1 ? "" : "s", ninputs);
        if (info->max_inputs < 0)
            return td_error_set(err, TD_EINVAL, "%s: expects at least %d inputs, got %d", name,
                                info->min_inputs, ninputs);
        return td_error_set(err, TD_EINVAL, "%s: expects %d to %d inputs, got %d", name,
                            info->min_inputs, info->max_inputs, ninputs);
    }
    if (info->num_outputs >= 0 && noutputs != info->num_outputs)
        return td_error_set(err, TD_EINVAL, "%s: produces %d output%s, %d requested", name,
                            info->num_outputs, info->num_outputs == 1 ? "" : "s", noutputs);
    /* Ops of a fixed count may have none (copy_); a variable count may be 0 only for the
     * stateful ops that define it so (backward into .grad). */
    if (noutputs < 0 || noutputs > TD__MAX_NODE_OUTPUTS ||
        (noutputs == 0 && info->num_outputs != 0 && !(info->flags & TD_OPF_STATEFUL)))
        return td_error_set(err, TD_EINVAL, "%s: %d outputs requested (1 to %d allowed)", name,
                            noutputs, TD__MAX_NODE_OUTPUTS);

    /* Elementwise and promoting ops check every input; others (indexing) the first. */
    int ncheck = (info->flags & (TD_OPF_ELEMENTWISE | TD_OPF_PROMOTE)) ? ninputs
                                                                       : (ninputs ? 1 : 0);
    for (int k = 0; k < ninputs; k++) {
        const struct td_meta *m = &in_meta[k];
        if (!td_dtype_valid(m->dtype))
            return td_error_set(err, TD_EINVAL, "%s: input %d has invalid dtype %d", name, k,
                                (int)m->dtype);
        if (m->ndim < 0 || m->ndim > TD_MAX_NDIM)
            return td_error_set(err, TD_EINVAL, "%s: input %d has ndim %d", name, k, m->ndim);
        if (k < ncheck && !(info->dtypes & TD_DTM(m->dtype)))
            return td_error_set(err, TD_EINVAL, "%s: dtype %s not supported", name,
                                td_dtype_name(m->dtype));
    }

    bool seen[TD_MAX_ATTRS] = {false};
    for (int k = 0; k < info->nattrs; k++)
        c->attrs[k] = info->defaults[k];
    for (int a = 0; a < nattrs; a++) {
        const struct td_attr_arg *arg = &attrs[a];
        const char *an = arg->name ? arg->name : "";
        int k;
        for (k = 0; k < info->nattrs; k++)
            if (strcmp(info->attrs[k].name, an) == 0)
                break;
        if (k == info->nattrs)
            return td_error_set(err, TD_EINVAL, "%s: unknown attribute '%s'", name, an);
        if (seen[k])
            return td_error_set(err, TD_EINVAL, "%s: duplicate attribute '%s'", name, an);
        seen[k] = true;
        const struct td_attr_schema *sc = &info->attrs[k];
        struct td_attr_value v;
        if (coerce_attr(sc->type, &arg->value, &v))
            return td_error_set(err, TD_EINVAL, "%s: attribute '%s' must be %s, got %s", name,
                                an, td_attr_type_name(sc->type),
                                td_attr_type_name(arg->value.type));
        switch (sc->type) {
        case TD_ATTR_INTS:
            if (v.nints < 0 || v.nints > TD_MAX_INTS)
                return td_error_set(err, TD_EINVAL,
                                    "%s: attribute '%s' has %d values (at most %d)", name, an,
                                    v.nints, TD_MAX_INTS);
            break;
        case TD_ATTR_DTYPE:
            if (!td_dtype_valid(v.dtype))
                return td_error_set(err, TD_EINVAL, "%s: attribute '%s': invalid dtype %d",
                                    name, an, (int)v.dtype);
            break;
        case TD_ATTR_STR:
            if (!v.s)
                return td_error_set(err, TD_EINVAL, "%s: attribute '%s' has no string", name,
                                    an);
            break;
        case TD_ATTR_SCALAR:
            if ((int)v.scalar.kind < TD_SCALAR_BOOL || v.scalar.kind > TD_SCALAR_COMPLEX)
                return td_error_set(err, TD_EINVAL, "%s: attribute '%s': invalid scalar kind",
                                    name, an);
            if (v.scalar.kind == TD_SCALAR_BOOL)
                v.scalar.i = v.scalar.i != 0;
            if (v.scalar.kind == TD_SCALAR_BOOL || v.scalar.kind == TD_SCALAR_INT) {
                v.scalar.re = (double)v.scalar.i;
                v.scalar.im = 0;
            } else if (v.scalar.kind == TD_SCALAR_FLOAT) {
                v.scalar.im = 0;
            }
            break;
        default:
            break;
        }
        c->attrs[k] = v;
    }
    for (int k = 0; k < info->nattrs; k++)
        if (info->attrs[k].required && !c->attrs[k].present)
            return td_error_set(err, TD_EINVAL, "%s: missing required attribute '%s'", name,
                                info->attrs[k].name);
    return 0;
}

int td__op_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    for (int k = 0; k < c->noutputs; k++)
        td__meta_set(&out[k], TD_FLOAT32, 0, NULL);
    int rc = op_rows[c->op].meta(c, out, err);
    if (rc)
        return rc;
    /* Every kernel relies on its output metas being sane; check them once here. */
    for (int k = 0; k < c->noutputs; k++) {
        rc = td_shape_check(out[k].shape, out[k].ndim, out[k].dtype, c->info->name, NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}

int td__op_cpu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return op_rows[c->op].cpu(c, out, err);
}

int td__op_exec(const struct td_op_ctx *c, const struct td_meta *planned,
                struct td_tensor **out, struct td_error *err)
{
    int rc = 0;
    int n = c->noutputs;
    for (int k = 0; k < n; k++)
        out[k] = NULL;
    if (!(c->info->flags & TD_OPF_VIEW)) {
        /* empty/empty_like are zero-filled so no stale memory crosses sessions. */
        bool zero = c->op == TD_OP_empty || c->op == TD_OP_empty_like;
        for (int k = 0; k < n; k++) {
            rc = td_tensor_new(&planned[k], zero, c->account, &out[k], err);
            if (rc)
                goto out;
        }
    }
    rc = td__op_cpu(c, out, err);
    if (rc)
        goto out;
    for (int k = 0; k < n; k++) {
        struct td_meta m;
        if (!out[k] && (c->info->flags & TD_OPF_STATEFUL))
            continue;   /* undefined (None): no .grad, no tangent, an unused input */
        if (!out[k]) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: kernel produced no output %d",
                              c->info->name, k);
            goto out;
        }
        td_tensor_meta(out[k], &m);
        if (!td__meta_equal(&m, &planned[k])) {
            char s1[256], s2[256];
            rc = td_error_set(err, TD_EINTERNAL,
                              "%s: output %d is %s%s but the plan said %s%s", c->info->name, k,
                              td_dtype_name(m.dtype), td__shape_str(m.shape, m.ndim, s1, sizeof s1),
                              td_dtype_name(planned[k].dtype),
                              td__shape_str(planned[k].shape, planned[k].ndim, s2, sizeof s2));
            goto out;
        }
        out[k]->wrapped_number = planned[k].wrapped_number;
    }
out:
    if (rc) {
        for (int k = 0; k < n; k++) {
            td_tensor_release(out[k]);
            out[k] = NULL;
        }
    }
    return rc;
}

int td_op_call(enum td_op op, int ninputs, struct td_tensor *const *inputs, int nattrs,
               const struct td_attr_arg *attrs, int noutputs, struct td_tensor **out,
               struct td_rng *rng, struct td_account *account, struct td_error *err)
{
    struct td_meta *in_meta = NULL;
    struct td_meta *planned = NULL;
    struct td_tensor **res = NULL;
    struct td_op_ctx c;
    int rc = 0;

    if (ninputs < 0 || ninputs > 1024 || noutputs < 0 || noutputs > TD__MAX_NODE_OUTPUTS)
        return td_error_set(err, TD_EINVAL, "op call: %d inputs, %d outputs", ninputs,
                            noutputs);
    in_meta = td_calloc((size_t)(ninputs ? ninputs : 1), sizeof *in_meta);
    planned = td_calloc((size_t)(noutputs ? noutputs : 1), sizeof *planned);
    res = td_calloc((size_t)(noutputs ? noutputs : 1), sizeof *res);
    if (!in_meta || !planned || !res) {
        rc = td_error_set(err, TD_ENOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < ninputs; k++)
        td_tensor_meta(inputs[k], &in_meta[k]);
    rc = td__op_prepare(op, ninputs, in_meta, nattrs, attrs, noutputs, &c, err);
    if (rc)
        goto out;
    c.inputs = inputs;
    c.rng = rng;
    c.account = account;
    rc = td__op_meta(&c, planned, err);
    if (rc)
        goto out;
    rc = td__op_exec(&c, planned, res, err);
    if (rc)
        goto out;
    for (int k = 0; k < noutputs; k++)
        out[k] = res[k];
out:
    td_free(in_meta);
    td_free(planned);
    td_free(res);
    return rc;
}

int td__meta_broadcast(const struct td_op_ctx *c, enum td_dtype dt, struct td_meta *out,
                       struct td_error *err)
{
    const struct td_meta *ms[TD_ITER_MAX];
    int n = c->ninputs;
    if (n > TD_ITER_MAX)
        return td_error_set(err, TD_EINVAL, "%s: too many inputs", c->info->name);
    for (int k = 0; k < n; k++)
        ms[k] = &c->in_meta[k];
    int nd;
    int64_t shape[TD_MAX_NDIM];
    int rc = td_broadcast_shapes(c->info->name, n, ms, &nd, shape, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, nd, shape);
    return 0;
}

int td__tensor_dense(const struct td_meta *m, struct td_tensor *t, struct td_account *account,
                     struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *r = NULL;
    int rc = td_tensor_new(m, false, account, &r, err);
    if (rc)
        return rc;
    if (td_tensor_numel(r) > 0 && (rc = td_tensor_copy(r, t, err)) != 0) {
        td_tensor_release(r);
        return rc;
    }
    *out = r;
    return 0;
}

int td__as_dtype(struct td_tensor *t, enum td_dtype dt, struct td_account *account,
                 struct td_tensor **out, struct td_error *err)
{
    if (t->dtype == dt) {
        *out = td_tensor_retain(t);
        return 0;
    }
    struct td_meta m;
    td__meta_set(&m, dt, t->ndim, t->shape);
    return td__tensor_dense(&m, t, account, out, err);
}

const struct td_deriv *td_op_deriv(enum td_op op)
{
    return (op >= 0 && op < TD_OP_COUNT) ? op_rows[op].deriv : NULL;
}

/*
 * rundecode.c - RunRequest -> struct td_graph. Every count is checked against its limit
 * before the array it sizes is allocated, every enum and list length is range checked, and
 * op names are resolved through the op table. The engine then validates arity, attr names
 * and types, dtypes and shapes with the meta functions.
 */
#include <inttypes.h>
#include <string.h>

#include "server.h"
#include "tensord.pb-c.h"

#define MAX_NODE_INPUTS 4096
#define MAX_NODE_OUTPUTS 4096
#define MAX_NAME_LEN 64
#define MAX_STR_LEN 4096
#define MAX_DISCARD (1u << 20)

static int decode_attr(int n, const char *opname, const Tensord__V1__Attr *a,
                       struct td_attr_arg *out, struct td_error *err)
{
    const char *name = a->name ? a->name : "";
    if (strlen(name) > MAX_NAME_LEN)
        return td_error_set(err, TD_EINVAL, "node %d (%s): attr name longer than %d bytes", n,
                            opname, MAX_NAME_LEN);
    out->name = name;
    struct td_attr_value *v = &out->value;
    memset(v, 0, sizeof *v);
    v->present = true;
    switch (a->value_case) {
    case TENSORD__V1__ATTR__VALUE_I:
        v->type = TD_ATTR_INT;
        v->i = a->i;
        return 0;
    case TENSORD__V1__ATTR__VALUE_F:
        v->type = TD_ATTR_FLOAT;
        v->f = a->f;
        return 0;
    case TENSORD__V1__ATTR__VALUE_B:
        v->type = TD_ATTR_BOOL;
        v->b = a->b != 0;
        return 0;
    case TENSORD__V1__ATTR__VALUE_S:
        if (strlen(a->s) > MAX_STR_LEN)
            return td_error_set(err, TD_EINVAL, "node %d (%s): attr '%s' string longer than %d "
                                "bytes", n, opname, name, MAX_STR_LEN);
        v->type = TD_ATTR_STR;
        v->s = a->s;
        return 0;
    case TENSORD__V1__ATTR__VALUE_INTS: {
        size_t cnt = a->ints ? a->ints->n_values : 0;
        if (cnt > TD_MAX_INTS)
            return td_error_set(err, TD_EINVAL, "node %d (%s): attr '%s' has %zu ints, at most "
                                "%d", n, opname, name, cnt, TD_MAX_INTS);
        v->type = TD_ATTR_INTS;
        v->nints = (int)cnt;
        for (size_t k = 0; k < cnt; k++)
            v->ints[k] = a->ints->values[k];
        return 0;
    }
    case TENSORD__V1__ATTR__VALUE_DTYPE:
        if (!td_dtype_valid((int64_t)a->dtype))
            return td_error_set(err, TD_EINVAL, "node %d (%s): attr '%s' dtype %d out of range",
                                n, opname, name, (int)a->dtype);
        v->type = TD_ATTR_DTYPE;
        v->dtype = (enum td_dtype)a->dtype;
        return 0;
    case TENSORD__V1__ATTR__VALUE_SCALAR: {
        const Tensord__V1__Scalar *s = a->scalar;
        v->type = TD_ATTR_SCALAR;
        switch (s ? s->value_case : TENSORD__V1__SCALAR__VALUE__NOT_SET) {
        case TENSORD__V1__SCALAR__VALUE_B:
            v->scalar.kind = TD_SCALAR_BOOL;
            v->scalar.i = s->b ? 1 : 0;
            v->scalar.re = (double)v->scalar.i;
            return 0;
        case TENSORD__V1__SCALAR__VALUE_I:
            v->scalar.kind = TD_SCALAR_INT;
            v->scalar.i = s->i;
            v->scalar.re = (double)s->i;
            return 0;
        case TENSORD__V1__SCALAR__VALUE_F:
            v->scalar.kind = TD_SCALAR_FLOAT;
            v->scalar.re = s->f;
            return 0;
        case TENSORD__V1__SCALAR__VALUE_C:
            v->scalar.kind = TD_SCALAR_COMPLEX;
            v->scalar.re = s->c ? s->c->re : 0.0;
            v->scalar.im = s->c ? s->c->im : 0.0;
            return 0;
        default:
            return td_error_set(err, TD_EINVAL, "node %d (%s): attr '%s' scalar has no value", n,
                                opname, name);
        }
    }
    default:
        return td_error_set(err, TD_EINVAL, "node %d (%s): attr '%s' has no value", n, opname,
                            name);
    }
}

int td_run_decode(const void *reqp, uint64_t max_nodes, struct td_graph *g, struct td_error *err)
{
    const Tensord__V1__RunRequest *req = reqp;
    memset(g, 0, sizeof *g);
    if (req->n_nodes > max_nodes)
        return td_error_set(err, TD_ELIMIT, "run: %zu nodes exceed max_graph_nodes %" PRIu64,
                            req->n_nodes, max_nodes);
    if (req->n_discard > MAX_DISCARD)
        return td_error_set(err, TD_ELIMIT, "run: %zu discard ids exceed the limit %u",
                            req->n_discard, MAX_DISCARD);
    if (req->n_nodes > 0) {
        g->nodes = td_calloc(req->n_nodes, sizeof *g->nodes);
        if (!g->nodes)
            return td_error_set(err, TD_ENOMEM, "run: out of memory for %zu nodes", req->n_nodes);
    }
    int rc = 0;
    for (size_t i = 0; i < req->n_nodes; i++) {
        const Tensord__V1__Node *n = req->nodes[i];
        struct td_node *d = &g->nodes[i];
        const char *op = n->op ? n->op : "";
        g->nnodes = (int)i + 1;
        if (strlen(op) > MAX_NAME_LEN) {
            rc = td_error_set(err, TD_EINVAL, "node %zu: op name longer than %d bytes", i,
                              MAX_NAME_LEN);
            goto fail;
        }
        if (td_op_lookup(op, &d->op) != 0) {
            rc = td_error_set(err, TD_ENOTFOUND, "node %zu: unknown op '%s'", i, op);
            goto fail;
        }
        if (n->n_inputs > MAX_NODE_INPUTS || n->n_outputs > MAX_NODE_OUTPUTS) {
            rc = td_error_set(err, TD_ELIMIT, "node %zu (%s): %zu inputs and %zu outputs, at "
                              "most %d each", i, op, n->n_inputs, n->n_outputs, MAX_NODE_INPUTS);
            goto fail;
        }
        if (n->n_attrs > TD_MAX_ATTRS) {
            rc = td_error_set(err, TD_EINVAL, "node %zu (%s): %zu attrs, at most %d", i, op,
                              n->n_attrs, TD_MAX_ATTRS);
            goto fail;
        }
        d->ninputs = (int)n->n_inputs;
        d->inputs = n->inputs;
        d->noutputs = (int)n->n_outputs;
        d->outputs = n->outputs;
        d->no_grad = n->no_grad;
        if (n->n_attrs > 0) {
            d->attrs = td_calloc(n->n_attrs, sizeof *d->attrs);
            if (!d->attrs) {
                rc = td_error_set(err, TD_ENOMEM, "run: out of memory");
                goto fail;
            }
        }
        for (size_t k = 0; k < n->n_attrs; k++) {
            rc = decode_attr((int)i, op, n->attrs[k], &d->attrs[k], err);
            if (rc != 0)
                goto fail;
            d->nattrs++;
        }
    }
    g->ndiscard = (int)req->n_discard;
    g->discard = req->discard;
    return 0;
fail:
    td_run_graph_free(g);
    return rc;
}

void td_run_graph_free(struct td_graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        td_free(g->nodes[i].attrs);
    td_free(g->nodes);
    memset(g, 0, sizeof *g);
}

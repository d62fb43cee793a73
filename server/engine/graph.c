/*
 * graph.c - planning (validation with the meta functions against a simulated id table) and
 * execution of request graphs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

/* One produced id: which node makes it and where its meta sits in the outs array. */
struct produced {
    uint64_t id;
    int node;
    int slot; /* index into the flat outs array */
};

static int cmp_produced(const void *a, const void *b)
{
    const struct produced *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->slot < y->slot ? -1 : (x->slot > y->slot);
}

/* First index in the sorted array with id >= key. */
static size_t lower_bound(const struct produced *p, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].id < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const char *node_op_name(const struct td_node *nd)
{
    const struct td_op_info *info = td_op_info_get(nd->op);
    return info ? info->name : "?";
}

/* Rewrites err's message with the "node N (op): " prefix. */
static int node_error(struct td_error *err, int i, const struct td_node *nd,
                      const struct td_error *inner)
{
    return td_error_set(err, inner->status, "node %d (%s): %s", i, node_op_name(nd),
                        inner->msg);
}

static const char *planned_op_name(const struct td_graph *g, int node)
{
    return node_op_name(&g->nodes[node]);
}

/* The work estimate of one planned node (see td_graph_plan's contract). Doubles, since only
 * the magnitude matters and logical sizes of views may be far beyond 64 bits' products. */
static double node_work(const struct td_node *nd, const struct td_meta *in,
                        const struct td_graph_output *out)
{
    const struct td_op_info *info = td_op_info_get(nd->op);
    double w = 0;
    /* Views touch no elements; the copies some of them make (reshape, contiguous) are bounded
     * by the memory they allocate. */
    if (!info || (info->flags & TD_OPF_VIEW))
        return 0;
    for (int k = 0; k < nd->ninputs; k++)
        w += (double)td_shape_numel(in[k].shape, in[k].ndim);
    for (int k = 0; k < nd->noutputs; k++)
        w += (double)td_shape_numel(out[k].meta.shape, out[k].meta.ndim);
    if (nd->op == TD_OP_matmul && nd->ninputs == 2 && nd->noutputs == 1 && in[0].ndim > 0) {
        double k = (double)in[0].shape[in[0].ndim - 1];
        w += (double)td_shape_numel(out[0].meta.shape, out[0].meta.ndim) * k / 32.0;
    }
    return w;
}

int td_graph_plan(const struct td_graph *g, const struct td_idtable_ops *tab, void *tabself,
                  struct td_graph_output **outs, int *nouts, uint64_t *bytes_planned,
                  struct td_error *err)
{
    struct td_graph_output *res = NULL;
    struct produced *prod = NULL;
    struct td_meta *in_meta = NULL;
    struct td_error inner;
    size_t total = 0, max_in = 1;
    uint64_t bytes = 0;
    double work = 0;
    int rc = 0;

    td_error_clear(&inner);
    rc = td_ops_init(err);
    if (rc)
        return rc;
    if (g->nnodes < 0 || (g->nnodes > 0 && !g->nodes) || g->ndiscard < 0 ||
        (g->ndiscard > 0 && !g->discard))
        return td_error_set(err, TD_EINVAL, "graph: malformed (%d nodes, %d discards)",
                            g->nnodes, g->ndiscard);
    for (int i = 0; i < g->nnodes; i++) {
        const struct td_node *nd = &g->nodes[i];
        if (nd->ninputs < 0 || nd->noutputs < 0 || nd->nattrs < 0 ||
            (nd->ninputs && !nd->inputs) || (nd->noutputs && !nd->outputs) ||
            (nd->nattrs && !nd->attrs))
            return td_error_set(err, TD_EINVAL, "node %d: malformed", i);
        if (!td_add_size(total, (size_t)nd->noutputs, &total) || total > INT32_MAX)
            return td_error_set(err, TD_EINVAL, "graph: too many outputs");
        if ((size_t)nd->ninputs > max_in)
            max_in = (size_t)nd->ninputs;
    }

    res = td_calloc(total ? total : 1, sizeof *res);
    prod = td_calloc(total ? total : 1, sizeof *prod);
    in_meta = td_calloc(max_in, sizeof *in_meta);
    if (!res || !prod || !in_meta) {
        rc = td_error_set(err, TD_ENOMEM, "graph: out of memory while planning");
        goto out;
    }
    size_t slot = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].noutputs; k++, slot++)
            prod[slot] = (struct produced){g->nodes[i].outputs[k], i, (int)slot};
    qsort(prod, total, sizeof *prod, cmp_produced);

    slot = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const struct td_node *nd = &g->nodes[i];
        struct td_op_ctx c;

        for (int k = 0; k < nd->ninputs; k++) {
            uint64_t id = nd->inputs[k];
            size_t p = lower_bound(prod, total, id);
            if (p < total && prod[p].id == id && prod[p].node < i) {
                in_meta[k] = res[prod[p].slot].meta;
                continue;
            }
            struct td_tensor *t = tab->get(tabself, id);
            if (t) {
                td_tensor_meta(t, &in_meta[k]);
                continue;
            }
            if (p < total && prod[p].id == id) {
                rc = td_error_set(err, TD_EINVAL,
                                  "node %d (%s): input %d refers to id %llu, which node %d "
                                  "produces later",
                                  i, node_op_name(nd), k, (unsigned long long)id, prod[p].node);
                goto out;
            }
            rc = td_error_set(err, TD_ENOTFOUND, "node %d (%s): unknown id %llu", i,
                              node_op_name(nd), (unsigned long long)id);
            goto out;
        }
        rc = td__op_prepare(nd->op, nd->ninputs, in_meta, nd->nattrs, nd->attrs, nd->noutputs,
                            &c, &inner);
        if (!rc) {
            struct td_meta *tmp = td_calloc((size_t)nd->noutputs, sizeof *tmp);
            if (!tmp) {
                rc = td_error_set(err, TD_ENOMEM, "graph: out of memory while planning");
                goto out;
            }
            rc = td__op_meta(&c, tmp, &inner);
            for (int k = 0; !rc && k < nd->noutputs; k++) {
                res[slot + (size_t)k].id = nd->outputs[k];
                res[slot + (size_t)k].meta = tmp[k];
            }
            td_free(tmp);
        }
        if (rc) {
            rc = node_error(err, i, nd, &inner);
            goto out;
        }
        for (int k = 0; k < nd->noutputs; k++) {
            uint64_t id = nd->outputs[k];
            if (tab->get(tabself, id)) {
                rc = td_error_set(err, TD_EEXIST, "node %d (%s): output id %llu is already live",
                                  i, node_op_name(nd), (unsigned long long)id);
                goto out;
            }
            size_t p = lower_bound(prod, total, id);
            /* The first producer in node order is prod[p]; this output is a repeat unless
             * it is that very slot. */
            if (prod[p].slot != (int)(slot + (size_t)k)) {
                rc = td_error_set(err, TD_EEXIST,
                                  "node %d (%s): output id %llu is already produced by node "
                                  "%d (%s)",
                                  i, node_op_name(nd), (unsigned long long)id, prod[p].node,
                                  planned_op_name(g, prod[p].node));
                goto out;
            }
            if (!(c.info->flags & TD_OPF_VIEW)) {
                const struct td_meta *m = &res[slot + (size_t)k].meta;
                uint64_t nb = (uint64_t)td_shape_numel(m->shape, m->ndim) *
                              td_dtype_size(m->dtype);
                if (__builtin_add_overflow(bytes, nb, &bytes)) {
                    rc = td_error_set(err, TD_EINVAL, "graph: planned bytes overflow");
                    goto out;
                }
            }
        }
        work += node_work(nd, in_meta, &res[slot]);
        if (g->max_work && work > (double)g->max_work) {
            rc = td_error_set(err, TD_ELIMIT,
                              "node %d (%s): the graph needs about %.3g element operations, "
                              "more than this daemon's max_graph_work of %llu",
                              i, node_op_name(nd), work, (unsigned long long)g->max_work);
            goto out;
        }
        slot += (size_t)nd->noutputs;
    }
    for (int d = 0; d < g->ndiscard; d++) {
        uint64_t id = g->discard[d];
        size_t p = lower_bound(prod, total, id);
        if ((p < total && prod[p].id == id) || tab->get(tabself, id))
            continue;
        rc = td_error_set(err, TD_ENOTFOUND, "discard: unknown id %llu", (unsigned long long)id);
        goto out;
    }
    *outs = res;
    res = NULL;
    *nouts = (int)total;
    *bytes_planned = bytes;
out:
    td_free(res);
    td_free(prod);
    td_free(in_meta);
    return rc;
}

int td_graph_run(const struct td_graph *g, const struct td_idtable_ops *tab, void *tabself,
                 struct td_rng *rng, struct td_account *account, struct td_graph_output **outs,
                 int *nouts, uint64_t *bytes_planned, struct td_error *err)
{
    return td_graph_run_stoppable(g, tab, tabself, rng, account, NULL, NULL, outs, nouts,
                                  bytes_planned, err);
}

int td_graph_run_stoppable(const struct td_graph *g, const struct td_idtable_ops *tab,
                           void *tabself, struct td_rng *rng, struct td_account *account,
                           td_graph_stop_fn stop, void *stop_arg, struct td_graph_output **outs,
                           int *nouts, uint64_t *bytes_planned, struct td_error *err)
{
    struct td_graph_output *plan = NULL;
    struct td_meta *in_meta = NULL, *planned = NULL;
    struct td_tensor **inputs = NULL, **res = NULL;
    struct td_error inner;
    int nplan = 0, done_nodes = 0, inserted_in_node = 0;
    size_t max_in = 1, max_out = 1;
    uint64_t bytes = 0;
    uint64_t rng_offset = rng ? rng->offset : 0;
    int rc;

    td_error_clear(&inner);
    rc = td_graph_plan(g, tab, tabself, &plan, &nplan, &bytes, err);
    if (rc)
        return rc;
    for (int i = 0; i < g->nnodes; i++) {
        if ((size_t)g->nodes[i].ninputs > max_in)
            max_in = (size_t)g->nodes[i].ninputs;
        if ((size_t)g->nodes[i].noutputs > max_out)
            max_out = (size_t)g->nodes[i].noutputs;
    }
    in_meta = td_calloc(max_in, sizeof *in_meta);
    inputs = td_calloc(max_in, sizeof *inputs);
    planned = td_calloc(max_out, sizeof *planned);
    res = td_calloc(max_out, sizeof *res);
    if (!in_meta || !inputs || !planned || !res) {
        rc = td_error_set(err, TD_ENOMEM, "graph: out of memory");
        goto out;
    }

    size_t slot = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const struct td_node *nd = &g->nodes[i];
        struct td_op_ctx c;
        inserted_in_node = 0;
        if (stop && (rc = stop(stop_arg, i, err)) != 0)
            goto out;
        for (int k = 0; k < nd->ninputs; k++) {
            inputs[k] = tab->get(tabself, nd->inputs[k]);
            if (!inputs[k]) {
                rc = td_error_set(err, TD_EINVAL,
                                  "node %d (%s): input %d (id %llu) is None: the node that "
                                  "should have produced it left it undefined",
                                  i, node_op_name(nd), k, (unsigned long long)nd->inputs[k]);
                goto out;
            }
            td_tensor_meta(inputs[k], &in_meta[k]);
        }
        for (int k = 0; k < nd->noutputs; k++)
            planned[k] = plan[slot + (size_t)k].meta;
        rc = td__op_prepare(nd->op, nd->ninputs, in_meta, nd->nattrs, nd->attrs, nd->noutputs,
                            &c, &inner);
        if (!rc) {
            c.inputs = inputs;
            c.rng = rng;
            c.account = account;
            c.ag = g->ag;
            c.grad_mode = !nd->no_grad;
            rc = td__op_exec(&c, planned, res, &inner);
            if (!rc && g->ag) {
                rc = td__ag_after_op(g->ag, !nd->no_grad, &c, res, &inner);
                if (rc)
                    for (int k = 0; k < nd->noutputs; k++) {
                        td_tensor_release(res[k]);
                        res[k] = NULL;
                    }
            }
        }
        if (rc) {
            rc = node_error(err, i, nd, &inner);
            goto out;
        }
        for (int k = 0; k < nd->noutputs; k++) {
            struct td_graph_output *po = &plan[slot + (size_t)k];
            if (!res[k]) {
                po->undefined = true;
                continue;
            }
            po->requires_grad = td_ag_requires_grad(res[k]);
            rc = tab->put(tabself, nd->outputs[k], res[k], &inner);
            if (rc) {
                for (int j = k; j < nd->noutputs; j++)
                    td_tensor_release(res[j]);
                rc = node_error(err, i, nd, &inner);
                goto out;
            }
            res[k] = NULL;
            inserted_in_node++;
        }
        slot += (size_t)nd->noutputs;
        done_nodes++;
    }
    for (int d = 0; d < g->ndiscard; d++)
        (void)tab->remove(tabself, g->discard[d]);
    *outs = plan;
    plan = NULL;
    *nouts = nplan;
    *bytes_planned = bytes;
out:
    if (rc) {
        /* Roll back: remove every output this graph inserted. */
        for (int i = 0; i < done_nodes; i++)
            for (int k = 0; k < g->nodes[i].noutputs; k++)
                (void)tab->remove(tabself, g->nodes[i].outputs[k]);
        if (done_nodes < g->nnodes)
            for (int k = 0; k < inserted_in_node; k++)
                (void)tab->remove(tabself, g->nodes[done_nodes].outputs[k]);
        /* ... and the counters random ops consumed, so a retried graph draws the same
         * numbers it would have drawn had this one never been sent. */
        if (rng)
            rng->offset = rng_offset;
    }
    td_free(plan);
    td_free(in_meta);
    td_free(inputs);
    td_free(planned);
    td_free(res);
    return rc;
}

void td_graph_fini(struct td_graph *g)
{
    if (!g)
        return;
    for (int i = 0; g->nodes && i < g->nnodes; i++) {
        struct td_node *nd = &g->nodes[i];
        td_free(nd->inputs);
        td_free(nd->outputs);
        for (int a = 0; nd->attrs && a < nd->nattrs; a++) {
            td_free((void *)nd->attrs[a].name);
            if (nd->attrs[a].value.type == TD_ATTR_STR)
                td_free(nd->attrs[a].value.s);
        }
        td_free(nd->attrs);
    }
    td_free(g->nodes);
    td_free(g->discard);
    memset(g, 0, sizeof *g);
}

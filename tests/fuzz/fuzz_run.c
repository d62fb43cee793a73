/*
 * fuzz_run.c - libFuzzer target for Run: arbitrary bytes decoded as a RunRequest (protobuf-c,
 * with the server's allocator), td_run_decode into a td_graph, td_graph_plan against a
 * session's id table holding a few live tensors of different dtypes and shapes (one of them
 * non-contiguous, one empty, one 0-d), and, when the plan succeeds and is small, td_graph_run.
 *
 * Checks besides "no crash, leak or UB": the plan has one output per node output with a
 * valid meta; a run that succeeds leaves every non-discarded output live with exactly the
 * planned dtype and shape and removes the discarded ones; a run that fails leaves the table
 * as it was; after the session is freed its account holds no bytes (no leaked reference).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "td_internal.h"
#include "tensord.pb-c.h"

#define MAX_NODES 64
#define MAX_RUN_BYTES (1u << 20)   /* planned output bytes under which the graph runs */
#define MAX_RUN_WORK 2e6           /* element visits (estimated) under which it runs */
#define MAX_RUN_OUTPUTS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct td_config cfg;
static struct td_server srv;
static bool verbose;   /* TD_FUZZ_VERBOSE=1: say how far each input got (corpus upkeep) */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_run: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* A live tensor of the fixture table: id, dtype and shape. */
struct fixture {
    uint64_t id;
    enum td_dtype dtype;
    int ndim;
    int64_t shape[3];
    bool transposed;   /* stored as the transpose of a contiguous tensor: non-contiguous */
};

static const struct fixture fixtures[] = {
    {1, TD_FLOAT32, 2, {2, 3}, false},
    {2, TD_INT64, 1, {3}, false},
    {3, TD_BOOL, 2, {2, 3}, false},
    {4, TD_COMPLEX64, 2, {2, 2}, false},
    {5, TD_FLOAT64, 0, {0}, false},
    {6, TD_UINT8, 2, {4, 1}, false},
    {7, TD_FLOAT16, 2, {0, 3}, false},
    {8, TD_INT32, 2, {3, 2}, true},
    {9, TD_INT64, 2, {2, 3}, false},
    {10, TD_BFLOAT16, 1, {3}, false},
};
#define NFIX (sizeof fixtures / sizeof fixtures[0])

static void fixture_add(struct td_session *s, const struct fixture *f)
{
    struct td_error err;
    struct td_meta m;
    memset(&m, 0, sizeof m);
    m.dtype = f->dtype;
    m.ndim = f->ndim;
    for (int i = 0; i < f->ndim; i++)
        m.shape[i] = f->shape[f->transposed ? f->ndim - 1 - i : i];
    struct td_tensor *t = NULL;
    if (td_tensor_new(&m, true, &s->account, &t, &err) != 0)
        die("fixture", err.msg);
    int64_t n = td_tensor_numel(t);
    size_t isz = td_dtype_size(f->dtype);
    for (int64_t i = 0; i < n; i++) {
        char *p = (char *)td_tensor_data(t) + i * (int64_t)isz;
        /* Small values with both signs, and 0/1 for the int64 index tensor (id 9). */
        double v = f->id == 9 ? (double)(i % 2) : (double)(i % 5) - 1.5 * (double)(i % 2);
        if (td_dtype_is_complex(f->dtype))
            td__store_c128(p, f->dtype, v + 0.5 * I * (double)i);
        else
            td__store_f64(p, f->dtype, v);
    }
    if (f->transposed) {
        int64_t shape[2] = {f->shape[0], f->shape[1]};
        int64_t strides[2] = {t->strides[1], t->strides[0]};
        struct td_tensor *v = NULL;
        if (td_tensor_new_view(t, 2, shape, strides, 0, &v, &err) != 0)
            die("fixture view", err.msg);
        td_tensor_release(t);
        t = v;
    }
    uint64_t nb = td_tensor_nbytes(t);
    if (td_idtable_insert(&s->ids, f->id, t, nb, nb) != 0)
        die("fixture insert", NULL);
}

static bool meta_valid(const struct td_meta *m)
{
    if (!td_dtype_valid((int64_t)m->dtype) || m->ndim < 0 || m->ndim > TD_MAX_NDIM)
        return false;
    for (int i = 0; i < m->ndim; i++)
        if (m->shape[i] < 0)
            return false;
    return true;
}

static double meta_numel(const struct td_meta *m)
{
    double n = 1;
    for (int i = 0; i < m->ndim; i++)
        n *= (double)m->shape[i];
    return n;
}

/* Where an id's meta comes from while estimating: a fixture or an earlier node's output. */
static const struct td_meta *find_meta(uint64_t id, const struct td_graph_output *outs,
                                       int nouts, const struct td_meta *fix)
{
    for (int i = 0; i < nouts; i++)
        if (outs[i].id == id)
            return &outs[i].meta;
    for (size_t i = 0; i < NFIX; i++)
        if (fixtures[i].id == id)
            return &fix[i];
    return NULL;
}

/* Estimated element visits of running g: inputs plus outputs per node, and m*k*n for matmul.
 * Views make big logical shapes from small storage, so planned bytes alone do not bound
 * the work. */
static double estimate_work(const struct td_graph *g, const struct td_graph_output *outs,
                            const struct td_meta *fix)
{
    double work = 0;
    int slot = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const struct td_node *nd = &g->nodes[i];
        double out_numel = 0;
        for (int k = 0; k < nd->noutputs; k++)
            out_numel += meta_numel(&outs[slot + k].meta);
        work += out_numel;
        for (int k = 0; k < nd->ninputs; k++) {
            const struct td_meta *m = find_meta(nd->inputs[k], outs, slot, fix);
            if (!m)
                die("planned input without a meta", NULL);
            work += meta_numel(m);
            if (nd->op == TD_OP_matmul && k == 0)
                work += out_numel * (m->ndim ? (double)m->shape[m->ndim - 1] : 1.0);
        }
        slot += nd->noutputs;
    }
    return work;
}

static bool is_discarded(const struct td_graph *g, uint64_t id)
{
    for (int d = 0; d < g->ndiscard; d++)
        if (g->discard[d] == id)
            return true;
    return false;
}

static bool is_fixture(uint64_t id)
{
    for (size_t i = 0; i < NFIX; i++)
        if (fixtures[i].id == id)
            return true;
    return false;
}

static void check_run(const struct td_graph *g, struct td_session *s,
                      const struct td_graph_output *plan, int nplan)
{
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    td_error_clear(&err);
    int rc = td_graph_run(g, &td_session_table_ops, s, &s->rng, &s->account, &outs, &nouts,
                          &bytes, &err);
    if (verbose)
        fprintf(stderr, "fuzz_run: run: %s\n", rc ? err.msg : "ok");
    if (rc != 0) {
        if (err.msg[0] == '\0')
            die("run failed without a message", NULL);
        /* A failed graph leaves the table as it found it. */
        if (s->ids.count != NFIX)
            die("a failed run left ids behind", err.msg);
        for (size_t i = 0; i < NFIX; i++)
            if (!td_idtable_find(&s->ids, fixtures[i].id))
                die("a failed run removed a fixture", err.msg);
        return;
    }
    if (nouts != nplan)
        die("run and plan disagree on the output count", NULL);
    for (int i = 0; i < nouts; i++) {
        if (outs[i].id != plan[i].id || !td__meta_equal(&outs[i].meta, &plan[i].meta))
            die("run and plan disagree on an output", NULL);
        struct td_idtable_entry *e = td_idtable_find(&s->ids, outs[i].id);
        if (outs[i].undefined) {
            /* None (a tensor without .grad, an unused input of backward): never created. */
            if (e)
                die("an undefined output is live", NULL);
            continue;
        }
        if (is_discarded(g, outs[i].id)) {
            if (e)
                die("a discarded output is still live", NULL);
            continue;
        }
        if (!e)
            die("an output is not live after the run", NULL);
        struct td_meta m;
        td_tensor_meta(e->tensor, &m);
        if (!td__meta_equal(&m, &outs[i].meta))
            die("a live output does not match its planned meta", NULL);
    }
    for (int d = 0; d < g->ndiscard; d++)
        if (is_fixture(g->discard[d]) && td_idtable_find(&s->ids, g->discard[d]))
            die("a discarded fixture is still live", NULL);
    td_free(outs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct td_meta fix_meta[NFIX];
    static bool init;
    if (!init) {
        struct td_error err;
        if (td_ops_init(&err) != 0)
            die("td_ops_init", err.msg);
        cfg.max_session_ids = 4096;
        cfg.max_graph_nodes = MAX_NODES;
        srv.cfg = &cfg;
        srv.max_session_bytes = 64u << 20;
        atomic_init(&srv.next_session_id, 1);
        for (size_t i = 0; i < NFIX; i++) {
            memset(&fix_meta[i], 0, sizeof fix_meta[i]);
            fix_meta[i].dtype = fixtures[i].dtype;
            fix_meta[i].ndim = fixtures[i].ndim;
            memcpy(fix_meta[i].shape, fixtures[i].shape, sizeof fixtures[i].shape);
        }
        const char *v = getenv("TD_FUZZ_VERBOSE");
        verbose = v && *v == '1';
        init = true;
    }
    Tensord__V1__RunRequest *req = tensord__v1__run_request__unpack(&td_pb_allocator, size,
                                                                    data);
    if (!req)
        return 0;
    struct td_session s;
    td_session_init(&s, &srv);
    s.rng.seed = 12345;
    for (size_t i = 0; i < NFIX; i++)
        fixture_add(&s, &fixtures[i]);

    struct td_graph g;
    struct td_error err;
    td_error_clear(&err);
    int rc = td_run_decode(req, MAX_NODES, &g, &err);
    if (verbose && rc != 0)
        fprintf(stderr, "fuzz_run: decode: %s\n", err.msg);
    if (rc != 0) {
        if (err.msg[0] == '\0')
            die("decode failed without a message", NULL);
        goto out;
    }
    struct td_graph_output *plan = NULL;
    int nplan = 0;
    uint64_t planned = 0;
    rc = td_graph_plan(&g, &td_session_table_ops, &s, &plan, &nplan, &planned, &err);
    if (verbose)
        fprintf(stderr, "fuzz_run: plan: %s\n", rc ? err.msg : "ok");
    if (rc != 0) {
        if (err.msg[0] == '\0')
            die("plan failed without a message", NULL);
    } else {
        int total = 0;
        for (int i = 0; i < g.nnodes; i++)
            total += g.nodes[i].noutputs;
        if (nplan != total)
            die("plan output count differs from the nodes' outputs", NULL);
        for (int i = 0; i < nplan; i++)
            if (!meta_valid(&plan[i].meta))
                die("plan produced an invalid meta", NULL);
        if (planned < MAX_RUN_BYTES && nplan <= MAX_RUN_OUTPUTS &&
            estimate_work(&g, plan, fix_meta) < MAX_RUN_WORK) {
            g.ag = &s.ag;   /* as the Run handler does: autograd ops see the session */
            check_run(&g, &s, plan, nplan);
        }
        td_free(plan);
    }
    td_run_graph_free(&g);
out:
    td_session_fini(&s);
    if (atomic_load(&s.account.bytes) != 0)
        die("the session's account still holds bytes after every id was freed", NULL);
    protobuf_c_message_free_unpacked(&req->base, &td_pb_allocator);
    return 0;
}

/*
 * test_graph.c - the op table's parsed schema, and graph planning/running against a tiny
 * in-test id table: unknown ids, ids produced later, live or duplicated outputs, shape
 * errors, rollback of failed graphs, discards and graph_fini.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "td_internal.h"
#include "leakcheck.h"

#define V(...) ((const double[]){__VA_ARGS__})
#define S(...) ((const int64_t[]){__VA_ARGS__})


/* ---------------------------------------------------------------------------------------
 * The id table.
 */
#define TAB_MAX 32

struct tab {
    uint64_t ids[TAB_MAX];
    struct td_tensor *t[TAB_MAX];
    int n;
    int cap; /* puts beyond cap fail with TD_ELIMIT */
};

static struct td_tensor *tab_get(void *self, uint64_t id)
{
    struct tab *tb = self;
    for (int i = 0; i < tb->n; i++)
        if (tb->ids[i] == id)
            return tb->t[i];
    return NULL;
}

static int tab_put(void *self, uint64_t id, struct td_tensor *t, struct td_error *err)
{
    struct tab *tb = self;
    if (tab_get(self, id))
        return td_error_set(err, TD_EEXIST, "id %llu exists", (unsigned long long)id);
    if (tb->n >= tb->cap)
        return td_error_set(err, TD_ELIMIT, "table full");
    tb->ids[tb->n] = id;
    tb->t[tb->n] = t;
    tb->n++;
    return 0;
}

static int tab_remove(void *self, uint64_t id)
{
    struct tab *tb = self;
    for (int i = 0; i < tb->n; i++) {
        if (tb->ids[i] == id) {
            td_tensor_release(tb->t[i]);
            tb->n--;
            tb->ids[i] = tb->ids[tb->n];
            tb->t[i] = tb->t[tb->n];
            return 0;
        }
    }
    return TD_ENOTFOUND;
}

static const struct td_idtable_ops tab_ops = {tab_get, tab_put, tab_remove};

static struct tab table;

static int setup(void **state)
{
    memset(&table, 0, sizeof table);
    table.cap = TAB_MAX;
    return leak_setup(state);
}

static int teardown(void **state)
{
    while (table.n)
        (void)tab_remove(&table, table.ids[0]);
    return leak_teardown(state);
}

static struct td_tensor *mk(enum td_dtype dt, int ndim, const int64_t *shape, const double *vals)
{
    struct td_meta m;
    struct td_tensor *t = NULL;
    struct td_error err;
    td__meta_set(&m, dt, ndim, shape);
    assert_int_equal(td_tensor_new(&m, false, NULL, &t, &err), 0);
    for (int64_t i = 0; i < td_tensor_numel(t); i++)
        td__store_f64((char *)td_tensor_data(t) + i * (int64_t)td_dtype_size(dt), dt,
                      vals ? vals[i] : (double)i);
    return t;
}

static void live(uint64_t id, struct td_tensor *t)
{
    struct td_error err;
    assert_int_equal(tab_put(&table, id, t, &err), 0);
}

/* Node builders: arrays live in the caller's compound literals. */
#define NODE(opname, ins, outs, ats)                                                       \
    ((struct td_node){TD_OP_##opname, (int)(sizeof(ins) / sizeof(uint64_t)), (uint64_t *)(ins), \
                      (int)(sizeof(outs) / sizeof(uint64_t)), (uint64_t *)(outs),         \
                      (int)(sizeof(ats) / sizeof(struct td_attr_arg)),                    \
                      (struct td_attr_arg *)(ats), false})

static uint64_t no_ids[1];
static struct td_attr_arg no_attrs[1];
#define NODE0(opname, ins, outs) \
    ((struct td_node){TD_OP_##opname, (int)(sizeof(ins) / sizeof(uint64_t)), (uint64_t *)(ins), \
                      (int)(sizeof(outs) / sizeof(uint64_t)), (uint64_t *)(outs), 0, no_attrs, false})

static struct td_attr_arg shape_attr(int n, const int64_t *v)
{
    struct td_attr_arg a = {"shape", {.type = TD_ATTR_INTS, .nints = n}};
    for (int i = 0; i < n; i++)
        a.value.ints[i] = v[i];
    return a;
}

/* Plans g and expects failure with status want and exactly message msg. */
static void plan_fails(struct td_graph *g, int want, const char *msg)
{
    struct td_graph_output *outs = NULL;
    int nouts = -1;
    uint64_t bytes = 7;
    struct td_error err;
    int n_before = table.n;
    int rc = td_graph_plan(g, &tab_ops, &table, &outs, &nouts, &bytes, &err);
    assert_int_equal(rc, want);
    assert_null(outs);
    assert_int_equal(nouts, -1);
    assert_int_equal(bytes, 7);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("message \"%s\", want \"%s\"", err.msg, msg);
    /* run fails the same way and leaves the table as it was */
    struct td_rng rng = {1, 0};
    rc = td_graph_run(g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err);
    assert_int_equal(rc, want);
    assert_string_equal(err.msg, msg);
    assert_int_equal(table.n, n_before);
}

/* ---------------------------------------------------------------------------------------
 * The op table.
 */
static void test_op_table(void **state)
{
    (void)state;
    enum td_op op;
    assert_int_equal(td_op_lookup("add", &op), 0);
    assert_int_equal(op, TD_OP_add);
    assert_int_equal(td_op_lookup("nope", &op), TD_ENOTFOUND);
    assert_null(td_op_info_get(TD_OP_COUNT));

    const struct td_op_info *full = td_op_info_get(TD_OP_full);
    assert_string_equal(full->name, "full");
    assert_int_equal(full->nattrs, 3);
    assert_string_equal(full->attrs[0].name, "shape");
    assert_int_equal(full->attrs[0].type, TD_ATTR_INTS);
    assert_true(full->attrs[0].required);
    assert_string_equal(full->attrs[1].name, "fill_value");
    assert_int_equal(full->attrs[1].type, TD_ATTR_SCALAR);
    assert_string_equal(full->attrs[2].name, "dtype");
    assert_false(full->attrs[2].required);
    assert_false(full->attrs[2].has_default);
    assert_string_equal(full->attrs[2].default_text, "");

    const struct td_op_info *ri = td_op_info_get(TD_OP_randint);
    assert_string_equal(ri->attrs[0].name, "low");
    assert_true(ri->attrs[0].has_default);
    assert_string_equal(ri->attrs[0].default_text, "0");
    assert_true(ri->defaults[0].present);
    assert_int_equal(ri->defaults[0].i, 0);
    assert_int_equal(ri->defaults[3].dtype, TD_INT64);

    const struct td_op_info *var = td_op_info_get(TD_OP_var);
    assert_int_equal(var->attrs[1].type, TD_ATTR_FLOAT);
    assert_true(var->defaults[1].f == 1.0);
    const struct td_op_info *sum = td_op_info_get(TD_OP_sum);
    assert_int_equal(sum->attrs[1].type, TD_ATTR_BOOL);
    assert_false(sum->defaults[1].b);
    assert_int_equal(td_op_info_get(TD_OP_scalar_tensor)->attrs[2].type, TD_ATTR_BOOL);

    const struct td_op_info *neg = td_op_info_get(TD_OP_neg);
    assert_int_equal(neg->nattrs, 0);
    assert_int_equal(neg->min_inputs, 1);
    assert_int_equal(td_op_info_get(TD_OP_cat)->max_inputs, -1);
    assert_int_equal(td_op_info_get(TD_OP_split)->num_outputs, -1);

    assert_string_equal(td_attr_type_name(TD_ATTR_SCALAR), "scalar");
    assert_string_equal(td_attr_type_name(TD_ATTR_INTS), "ints");
    char buf[128];
    assert_string_equal(td_op_flag_names(TD_OPF_ELEMENTWISE | TD_OPF_PROMOTE, buf, sizeof buf),
                        "elementwise,promote");
    assert_string_equal(td_op_flag_names(0, buf, sizeof buf), "");
    assert_string_equal(
        td_op_flag_names(td_op_info_get(TD_OP_rand)->flags, buf, sizeof buf), "creation,random");
    /* Every row parsed: every op has a name that looks itself up. */
    for (int i = 0; i < TD_OP_COUNT; i++) {
        assert_int_equal(td_op_lookup(td_op_info_get((enum td_op)i)->name, &op), 0);
        assert_int_equal(op, i);
    }
}

/* ---------------------------------------------------------------------------------------
 * Planning and running.
 */
static void test_plan_and_run(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 2, S(2, 3), NULL)); /* 0..5 */
    uint64_t o0[] = {1}, o1[] = {2}, o2[] = {3}, i1[] = {1, 10}, i2[] = {2, 2};
    struct td_attr_arg a0[] = {shape_attr(2, S(2, 3))};
    struct td_node nodes[] = {NODE(ones, no_ids, o0, a0), NODE0(add, i1, o1),
                              NODE0(mul, i2, o2)};
    nodes[0].ninputs = 0;
    uint64_t discard[] = {1};
    struct td_graph g = {3, nodes, 1, discard, 0, NULL};

    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    assert_int_equal(td_graph_plan(&g, &tab_ops, &table, &outs, &nouts, &bytes, &err), 0);
    assert_int_equal(nouts, 3);
    assert_int_equal(bytes, 72);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(outs[i].id, (uint64_t)i + 1);
        assert_int_equal(outs[i].meta.dtype, TD_FLOAT32);
        assert_int_equal(outs[i].meta.ndim, 2);
        assert_int_equal(outs[i].meta.shape[1], 3);
    }
    td_free(outs);
    assert_int_equal(table.n, 1); /* planning touches nothing */

    struct td_rng rng = {1, 0};
    assert_int_equal(
        td_graph_run(&g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err), 0);
    assert_int_equal(nouts, 3);
    td_free(outs);
    assert_int_equal(table.n, 3);
    assert_null(tab_get(&table, 1)); /* discarded */
    struct td_tensor *r = tab_get(&table, 3);
    assert_non_null(r);
    for (int i = 0; i < 6; i++)
        assert_true(((float *)td_tensor_data(r))[i] == (float)((1 + i) * (1 + i)));
}

static void test_empty_graph(void **state)
{
    (void)state;
    struct td_graph g = {0, NULL, 0, NULL, 0, NULL};
    struct td_graph_output *outs = NULL;
    int nouts = -1;
    uint64_t bytes = 5;
    struct td_error err;
    assert_int_equal(td_graph_plan(&g, &tab_ops, &table, &outs, &nouts, &bytes, &err), 0);
    assert_int_equal(nouts, 0);
    assert_int_equal(bytes, 0);
    td_free(outs);
}

static void test_unknown_id(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 1, S(3), NULL));
    uint64_t in[] = {10, 7}, out[] = {5};
    struct td_node nodes[] = {NODE0(add, in, out)};
    struct td_graph g = {1, nodes, 0, NULL, 0, NULL};
    plan_fails(&g, TD_ENOTFOUND, "node 0 (add): unknown id 7");
}

static void test_later_producer(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 1, S(3), NULL));
    uint64_t in[] = {10, 7}, out[] = {5}, out1[] = {8}, out2[] = {7};
    struct td_attr_arg a[] = {shape_attr(1, S(3))};
    struct td_node nodes[] = {NODE0(add, in, out), NODE(zeros, no_ids, out1, a),
                              NODE(ones, no_ids, out2, a)};
    nodes[1].ninputs = nodes[2].ninputs = 0;
    struct td_graph g = {3, nodes, 0, NULL, 0, NULL};
    plan_fails(&g, TD_EINVAL, "node 0 (add): input 1 refers to id 7, which node 2 produces later");
}

static void test_output_live(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 1, S(3), NULL));
    uint64_t in[] = {10}, out[] = {10};
    struct td_node nodes[] = {NODE0(neg, in, out)};
    struct td_graph g = {1, nodes, 0, NULL, 0, NULL};
    plan_fails(&g, TD_EEXIST, "node 0 (neg): output id 10 is already live");
}

static void test_output_twice(void **state)
{
    (void)state;
    uint64_t o[] = {4};
    struct td_attr_arg a[] = {shape_attr(1, S(3))};
    struct td_node nodes[] = {NODE(ones, no_ids, o, a), NODE(zeros, no_ids, o, a)};
    nodes[0].ninputs = nodes[1].ninputs = 0;
    struct td_graph g = {2, nodes, 0, NULL, 0, NULL};
    plan_fails(&g, TD_EEXIST, "node 1 (zeros): output id 4 is already produced by node 0 (ones)");
}

static void test_shape_mismatch(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 2, S(2, 3), NULL));
    live(11, mk(TD_FLOAT32, 1, S(4), NULL));
    uint64_t o0[] = {1}, o1[] = {2}, i0[] = {10}, i1[] = {1, 11};
    struct td_node nodes[] = {NODE0(exp, i0, o0), NODE0(add, i1, o1)};
    struct td_graph g = {2, nodes, 0, NULL, 0, NULL};
    plan_fails(&g, TD_EINVAL, "node 1 (add): add: shapes [2,3] and [4] cannot broadcast");
    /* an arity error gets the same prefix */
    struct td_node n2[] = {NODE0(add, i0, o0)};
    struct td_graph g2 = {1, n2, 0, NULL, 0, NULL};
    plan_fails(&g2, TD_EINVAL, "node 0 (add): add: expects 2 inputs, got 1");
    struct td_node n3[] = {NODE0(add, i0, o0)};
    n3[0].op = (enum td_op)9999;
    struct td_graph g3 = {1, n3, 0, NULL, 0, NULL};
    plan_fails(&g3, TD_EINVAL, "node 0 (?): unknown op 9999");
}

/* A node that fails while running (data-dependent) leaves no trace in the table. */
static void test_run_failure_rolls_back(void **state)
{
    (void)state;
    live(20, mk(TD_INT32, 1, S(2), V(1, 0)));
    uint64_t o0[] = {1}, o1[] = {2}, o2[] = {3}, i1[] = {1, 1}, i2[] = {2, 20};
    struct td_attr_arg a0[] = {shape_attr(1, S(2)),
                               {"dtype", {.type = TD_ATTR_DTYPE, .dtype = TD_INT32}}};
    struct td_node nodes[] = {NODE(ones, no_ids, o0, a0), NODE0(add, i1, o1),
                              NODE0(floor_divide, i2, o2)};
    nodes[0].ninputs = 0;
    struct td_graph g = {3, nodes, 0, NULL, 0, NULL};
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    assert_int_equal(td_graph_plan(&g, &tab_ops, &table, &outs, &nouts, &bytes, &err), 0);
    td_free(outs);
    outs = NULL;
    struct td_rng rng = {1, 0};
    uint64_t blocks = td_alloc_live_blocks();
    assert_int_equal(td_graph_run(&g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err),
                     TD_EINVAL);
    assert_string_equal(err.msg, "node 2 (floor_divide): floor_divide: integer division by zero");
    assert_null(outs);
    assert_int_equal(table.n, 1);
    assert_null(tab_get(&table, 1));
    assert_null(tab_get(&table, 2));
    assert_int_equal(td_alloc_live_blocks(), blocks);
}

/* A one-element tensor expanded to 2^40 elements and summed costs no memory but hours of
 * compute: the work bound refuses it at planning time. Work here: expand is a view (0),
 * sum reads 2^40 and writes 1, so about 1.1e12 element operations. */
static void test_work_limit(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 1, S(1), V(2)));
    uint64_t o0[] = {1}, o1[] = {2}, i0[] = {10}, i1[] = {1};
    struct td_attr_arg a0[] = {shape_attr(2, S(1 << 20, 1 << 20))};
    struct td_node nodes[] = {NODE(expand, i0, o0, a0), NODE0(sum, i1, o1)};
    struct td_graph g = {2, nodes, 0, NULL, UINT64_C(1) << 36, NULL};
    plan_fails(&g, TD_ELIMIT,
               "node 1 (sum): the graph needs about 1.1e+12 element operations, more than this "
               "daemon's max_graph_work of 68719476736");

    /* Under the bound (and with no bound) the same graph plans. */
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    g.max_work = UINT64_C(1) << 42;
    assert_int_equal(td_graph_plan(&g, &tab_ops, &table, &outs, &nouts, &bytes, &err), 0);
    td_free(outs);
    g.max_work = 0;
    assert_int_equal(td_graph_plan(&g, &tab_ops, &table, &outs, &nouts, &bytes, &err), 0);
    td_free(outs);

    /* matmul counts its multiply-adds / 32: [64,64] @ [64,64] is 4096*3 + 4096*64/32. */
    live(11, mk(TD_FLOAT32, 2, S(64, 64), NULL));
    uint64_t i2[] = {11, 11}, o2[] = {3};
    struct td_node mm[] = {NODE0(matmul, i2, o2)};
    struct td_graph gm = {1, mm, 0, NULL, 4096 * 3 + 4096 * 2, NULL};
    assert_int_equal(td_graph_plan(&gm, &tab_ops, &table, &outs, &nouts, &bytes, &err), 0);
    td_free(outs);
    gm.max_work -= 1;
    assert_int_equal(td_graph_plan(&gm, &tab_ops, &table, &outs, &nouts, &bytes, &err),
                     TD_ELIMIT);
}

/* A failed graph also gives back the generator counters its random nodes consumed. */
static void test_run_failure_restores_rng(void **state)
{
    (void)state;
    live(20, mk(TD_INT32, 1, S(2), V(1, 0)));
    uint64_t o0[] = {1}, o1[] = {2}, i1[] = {20, 20};
    struct td_attr_arg a0[] = {shape_attr(1, S(8))};
    struct td_node nodes[] = {NODE(rand, no_ids, o0, a0), NODE0(floor_divide, i1, o1)};
    nodes[0].ninputs = 0;
    struct td_graph g = {2, nodes, 0, NULL, 0, NULL};
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    struct td_rng rng = {5, 100};
    assert_int_equal(td_graph_run(&g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err),
                     TD_EINVAL);
    assert_int_equal(rng.offset, 100);
    assert_null(tab_get(&table, 1));
}

/* The table refusing a put (its own limit) also rolls back what the graph inserted. */
static void test_put_failure_rolls_back(void **state)
{
    (void)state;
    table.cap = 2;
    live(10, mk(TD_FLOAT32, 1, S(3), NULL));
    uint64_t o0[] = {1}, o1[] = {2}, in[] = {10};
    struct td_attr_arg a[] = {shape_attr(1, S(2))};
    struct td_node nodes[] = {NODE0(neg, in, o0), NODE(ones, no_ids, o1, a)};
    nodes[1].ninputs = 0;
    struct td_graph g = {2, nodes, 0, NULL, 0, NULL};
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    struct td_rng rng = {1, 0};
    assert_int_equal(td_graph_run(&g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err),
                     TD_ELIMIT);
    assert_string_equal(err.msg, "node 1 (ones): table full");
    assert_int_equal(table.n, 1);
    assert_null(tab_get(&table, 1));
}

static void test_discard(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT64, 1, S(2), V(1, 4)));
    uint64_t o0[] = {1}, o1[] = {2}, i0[] = {10}, i1[] = {1};
    struct td_node nodes[] = {NODE0(sqrt, i0, o0), NODE0(neg, i1, o1)};
    uint64_t discard[] = {1, 10};
    struct td_graph g = {2, nodes, 2, discard, 0, NULL};
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    struct td_rng rng = {1, 0};
    assert_int_equal(td_graph_run(&g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err),
                     0);
    td_free(outs);
    assert_int_equal(table.n, 1);
    struct td_tensor *r = tab_get(&table, 2);
    assert_true(((double *)td_tensor_data(r))[0] == -1.0);
    assert_true(((double *)td_tensor_data(r))[1] == -2.0);

    uint64_t d2[] = {99};
    uint64_t i3[] = {2}, o3[] = {3};
    struct td_node n2[] = {NODE0(neg, i3, o3)};
    struct td_graph g2 = {1, n2, 1, d2, 0, NULL};
    plan_fails(&g2, TD_ENOTFOUND, "discard: unknown id 99");
}

static void test_random_and_views(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 2, S(2, 3), NULL));
    uint64_t o0[] = {1}, o1[] = {2}, i1[] = {10};
    struct td_attr_arg a0[] = {shape_attr(1, S(8))};
    struct td_attr_arg a1[] = {shape_attr(2, S(3, 2))};
    struct td_node nodes[] = {NODE(rand, no_ids, o0, a0), NODE(reshape, i1, o1, a1)};
    nodes[0].ninputs = 0;
    struct td_graph g = {2, nodes, 0, NULL, 0, NULL};
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t bytes = 0;
    struct td_error err;
    struct td_rng rng = {5, 100};
    assert_int_equal(td_graph_run(&g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err),
                     0);
    td_free(outs);
    assert_int_equal(bytes, 32); /* the reshape view is not counted */
    assert_int_equal(rng.offset, 102);
    struct td_tensor *v = tab_get(&table, 2);
    assert_int_equal(v->ndim, 2);
    assert_int_equal(v->shape[0], 3);
    assert_int_equal(v->shape[1], 2);
}

/* Fail the n-th allocation, n = 1, 2, ..., until the graph runs: every failure is
 * TD_ENOMEM, names its node, and leaves the table and the allocator as they were. */
static void test_graph_faults(void **state)
{
    (void)state;
    live(10, mk(TD_FLOAT32, 2, S(2, 3), NULL));
    uint64_t o0[] = {1}, o1[] = {2}, o2[] = {3}, i1[] = {1, 10}, i2[] = {2, 10};
    struct td_attr_arg a0[] = {shape_attr(1, S(3))};
    struct td_node nodes[] = {NODE(ones, no_ids, o0, a0), NODE0(add, i1, o1),
                              NODE0(mul, i2, o2)};
    nodes[0].ninputs = 0;
    uint64_t discard[] = {1};
    struct td_graph g = {3, nodes, 1, discard, 0, NULL};
    uint64_t blocks = td_alloc_live_blocks();
    int n;
    for (n = 1; n < 500; n++) {
        struct td_graph_output *outs = NULL;
        int nouts = 0;
        uint64_t bytes = 0;
        struct td_error err;
        struct td_rng rng = {1, 0};
        td_alloc_fail_after(n);
        int rc = td_graph_run(&g, &tab_ops, &table, &rng, NULL, &outs, &nouts, &bytes, &err);
        td_alloc_fail_after(0);
        if (rc == 0) {
            td_free(outs);
            break;
        }
        assert_int_equal(rc, TD_ENOMEM);
        assert_null(outs);
        assert_int_equal(table.n, 1);
        if (td_alloc_live_blocks() != blocks)
            fail_msg("fail_after(%d): %lld blocks leaked (%s)", n,
                     (long long)(td_alloc_live_blocks() - blocks), err.msg);
    }
    assert_true(n > 3 && n < 500);
    assert_int_equal(table.n, 3);
    struct td_tensor *r = tab_get(&table, 3);
    for (int i = 0; i < 6; i++)
        assert_true(((float *)td_tensor_data(r))[i] == (float)((1 + i) * i));
}

/* td_graph_fini frees what a decoder allocated with td_malloc. */
static void test_graph_fini(void **state)
{
    (void)state;
    struct td_graph g;
    g.nnodes = 2;
    g.nodes = td_calloc(2, sizeof *g.nodes);
    for (int i = 0; i < 2; i++) {
        struct td_node *nd = &g.nodes[i];
        nd->op = TD_OP_div;
        nd->ninputs = 2;
        nd->inputs = td_calloc(2, sizeof(uint64_t));
        nd->noutputs = 1;
        nd->outputs = td_calloc(1, sizeof(uint64_t));
        nd->nattrs = 1;
        nd->attrs = td_calloc(1, sizeof(struct td_attr_arg));
        nd->attrs[0].name = td_strdup("rounding_mode");
        nd->attrs[0].value.type = TD_ATTR_STR;
        nd->attrs[0].value.s = td_strdup("floor");
    }
    g.ndiscard = 1;
    g.discard = td_calloc(1, sizeof(uint64_t));
    td_graph_fini(&g);
    assert_int_equal(g.nnodes, 0);
    assert_null(g.nodes);
    td_graph_fini(&g); /* idempotent on a finished graph */
}

int main(void)
{
    struct td_error err;
    if (td_ops_init(&err)) {
        fprintf(stderr, "td_ops_init: %s\n", err.msg);
        return 1;
    }
    (void)no_ids;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_op_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_and_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shape_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_failure_restores_rng, setup, teardown),
        cmocka_unit_test_setup_teardown(test_work_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_and_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_fini, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

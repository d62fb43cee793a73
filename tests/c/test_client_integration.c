/*
 * test_client_integration.c - libtensord-client against a real tensord daemon.
 *
 * Usage: test_client_integration PATH_TO_TENSORD
 *
 * Starts the daemon on a private Unix socket and on tcp://127.0.0.1:0 with a small
 * --max-frame-data (4096) so that chunking is exercised, then runs every test over both
 * transports, each test on its own connection (its own session). Expected values are
 * computed by hand in the test, never taken from the daemon. At the end the daemon gets
 * SIGTERM and must exit with status 0.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "td_spawn.h"
#include <tensord/client.h>

#define SMALL_FRAME_DATA 4096

static const char *g_addr;   /* the transport the current group runs on */

/* Fails the current test with the client's message when rc is not 0. */
#define CHECK_OK(c, expr)                                                                 \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        if (rc_ != 0)                                                                     \
            fail_msg("%s -> %d (%s): %s", #expr, rc_, td_client_strerror(rc_),            \
                     (c) ? td_client_errmsg(c) : "");                                     \
    } while (0)

static td_client *connect_or_fail(void)
{
    td_client *c = NULL;
    char err[512] = "";
    int rc = td_client_connect_opts(g_addr, NULL, &c, err, sizeof err);
    if (rc)
        fail_msg("connect %s: %s (%s)", g_addr, td_client_strerror(rc), err);
    return c;
}

/* Deterministic pseudo-random bytes (xorshift), independent of anything under test. */
static void fill_bytes(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)(x >> 7);
    }
}

/* ---------------------------------------------------------------------------------------
 * Handshake and stats.
 */
static void test_handshake(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    assert_int_equal(td_client_max_frame_data(c), SMALL_FRAME_DATA);
    assert_true(strlen(td_client_server_version(c)) > 0);
    struct td_client_stats st;
    CHECK_OK(c, td_client_stats(c, &st));
    assert_int_equal(st.session_id, td_client_session_id(c));
    assert_int_equal(st.session_tensors, 0);
    assert_true(st.server_sessions >= 1);
    /* A second connection is a different session. */
    td_client *c2 = connect_or_fail();
    assert_true(td_client_session_id(c2) != td_client_session_id(c));
    td_client_close(c2);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * Put/Get of every dtype, plus 0-d and empty tensors.
 */
static void test_put_get_dtypes(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    static const size_t sizes[TD_CLIENT_DTYPE_COUNT] = {1, 1, 1, 2, 4, 8, 2, 2, 4, 8, 8, 16};
    for (int dt = 0; dt < TD_CLIENT_DTYPE_COUNT; dt++) {
        assert_int_equal(td_client_dtype_size(dt), sizes[dt]);
        const int64_t shape[2] = {3, 5};
        size_t nbytes = 15 * sizes[dt];
        unsigned char in[15 * 16], out[15 * 16 + 8];
        fill_bytes(in, nbytes, 1234u + (uint32_t)dt);
        if (dt == TD_CLIENT_BOOL)
            for (size_t i = 0; i < nbytes; i++)
                in[i] &= 1;
        uint64_t id = td_client_new_id(c);
        CHECK_OK(c, td_client_put(c, id, dt, 2, shape, in, nbytes));
        memset(out, 0xAB, sizeof out);
        struct td_client_tensor_info info;
        CHECK_OK(c, td_client_get(c, id, out, sizeof out, &info));
        assert_int_equal(info.dtype, dt);
        assert_int_equal(info.ndim, 2);
        assert_int_equal(info.shape[0], 3);
        assert_int_equal(info.shape[1], 5);
        assert_int_equal(info.nbytes, nbytes);
        if (memcmp(in, out, nbytes) != 0)
            fail_msg("dtype %s: bytes differ after the round trip", td_client_dtype_name(dt));
        /* The bytes after the tensor are untouched. */
        assert_int_equal(out[nbytes], 0xAB);
    }
    /* 0-d float64. */
    double v = -2.75, w = 0;
    uint64_t id0 = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, id0, TD_CLIENT_FLOAT64, 0, NULL, &v, sizeof v));
    struct td_client_tensor_info info;
    CHECK_OK(c, td_client_get(c, id0, &w, sizeof w, &info));
    assert_int_equal(info.ndim, 0);
    assert_int_equal(info.nbytes, 8);
    assert_true(w == -2.75);
    /* Empty 0x3 int32. */
    const int64_t eshape[2] = {0, 3};
    uint64_t ide = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, ide, TD_CLIENT_INT32, 2, eshape, NULL, 0));
    int32_t small[4];
    CHECK_OK(c, td_client_get(c, ide, small, sizeof small, &info));
    assert_int_equal(info.nbytes, 0);
    assert_int_equal(info.shape[0], 0);
    assert_int_equal(info.shape[1], 3);
    /* Mismatched nbytes is refused locally. */
    assert_int_equal(td_client_put(c, id0, TD_CLIENT_FLOAT32, 0, NULL, &v, 8), TD_CLIENT_EUSAGE);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * A graph: matmul, add, sum(dim), reshape, cast.
 */
static void get_f32(td_client *c, uint64_t id, float *out, size_t n)
{
    struct td_client_tensor_info info;
    CHECK_OK(c, td_client_get(c, id, out, n * sizeof *out, &info));
    assert_int_equal(info.dtype, TD_CLIENT_FLOAT32);
    assert_int_equal(info.nbytes, n * sizeof *out);
}

static void test_graph(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    const float a[6] = {1, 2, 3, 4, 5, 6};        /* 2x3 */
    const float b[6] = {7, 8, 9, 10, 11, 12};     /* 3x2 */
    const float e[4] = {0.5f, -1, 2, 100};        /* 2x2 */
    const int64_t sa[2] = {2, 3}, sb[2] = {3, 2}, se[2] = {2, 2};
    uint64_t ia = td_client_new_id(c), ib = td_client_new_id(c), ie = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, ia, TD_CLIENT_FLOAT32, 2, sa, a, sizeof a));
    CHECK_OK(c, td_client_put(c, ib, TD_CLIENT_FLOAT32, 2, sb, b, sizeof b));
    CHECK_OK(c, td_client_put(c, ie, TD_CLIENT_FLOAT32, 2, se, e, sizeof e));

    uint64_t ic = td_client_new_id(c), id = td_client_new_id(c), is = td_client_new_id(c);
    uint64_t ir = td_client_new_id(c), ik = td_client_new_id(c), ix = td_client_new_id(c);
    td_client_graph *g;
    CHECK_OK(c, td_client_graph_new(&g));
    uint64_t in_mm[2] = {ia, ib}, in_add[2] = {ic, ie}, in_sub[2] = {ia, ia};
    CHECK_OK(c, td_client_graph_node(g, "matmul", in_mm, 2, &ic, 1));
    CHECK_OK(c, td_client_graph_node(g, "add", in_add, 2, &id, 1));
    CHECK_OK(c, td_client_graph_node(g, "sum", &id, 1, &is, 1));
    const int64_t dim1[1] = {1};
    CHECK_OK(c, td_client_graph_attr_ints(g, "dim", dim1, 1));
    CHECK_OK(c, td_client_graph_node(g, "reshape", &id, 1, &ir, 1));
    const int64_t four[1] = {4};
    CHECK_OK(c, td_client_graph_attr_ints(g, "shape", four, 1));
    CHECK_OK(c, td_client_graph_node(g, "cast", &ir, 1, &ik, 1));
    CHECK_OK(c, td_client_graph_attr_dtype(g, "dtype", TD_CLIENT_INT32));
    /* x = a - 2.5 * a = -1.5 * a (a scalar attribute). */
    CHECK_OK(c, td_client_graph_node(g, "sub", in_sub, 2, &ix, 1));
    CHECK_OK(c, td_client_graph_attr_scalar_float(g, "alpha", 2.5));
    CHECK_OK(c, td_client_graph_discard(g, ic));

    struct td_client_tensor_info outs[8];
    size_t nouts = 0;
    CHECK_OK(c, td_client_run(c, g, outs, 8, &nouts));
    /* Every output but the discarded matmul result, in node order. */
    assert_int_equal(nouts, 5);
    assert_int_equal(outs[0].id, id);
    assert_int_equal(outs[0].ndim, 2);
    assert_int_equal(outs[0].shape[0], 2);
    assert_int_equal(outs[0].shape[1], 2);
    assert_int_equal(outs[1].id, is);
    assert_int_equal(outs[1].ndim, 1);
    assert_int_equal(outs[1].shape[0], 2);
    assert_int_equal(outs[2].id, ir);
    assert_int_equal(outs[2].ndim, 1);
    assert_int_equal(outs[2].shape[0], 4);
    assert_int_equal(outs[3].id, ik);
    assert_int_equal(outs[3].dtype, TD_CLIENT_INT32);
    assert_int_equal(outs[3].nbytes, 16);
    assert_int_equal(outs[4].id, ix);

    /* a @ b = [[58, 64], [139, 154]]; + e = [[58.5, 63], [141, 254]]. */
    float d[4], s[2], r[4], x[6];
    get_f32(c, id, d, 4);
    const float d_ref[4] = {58.5f, 63, 141, 254};
    for (int i = 0; i < 4; i++)
        assert_float_equal(d[i], d_ref[i], 1e-4);
    get_f32(c, is, s, 2);
    assert_float_equal(s[0], 121.5, 1e-4);
    assert_float_equal(s[1], 395, 1e-4);
    get_f32(c, ir, r, 4);
    for (int i = 0; i < 4; i++)
        assert_float_equal(r[i], d_ref[i], 1e-4);
    int32_t k[4];
    struct td_client_tensor_info info;
    CHECK_OK(c, td_client_get(c, ik, k, sizeof k, &info));
    assert_int_equal(info.dtype, TD_CLIENT_INT32);
    assert_int_equal(k[0], 58);   /* float to int truncates */
    assert_int_equal(k[1], 63);
    assert_int_equal(k[2], 141);
    assert_int_equal(k[3], 254);
    get_f32(c, ix, x, 6);
    for (int i = 0; i < 6; i++)
        assert_float_equal(x[i], -1.5 * (i + 1), 1e-5);
    /* The discarded temporary is gone. */
    float tmp[4];
    assert_int_equal(td_client_get(c, ic, tmp, sizeof tmp, NULL), TD_CLIENT_ENOTFOUND);

    /* Plan only: shapes and bytes without compute, nothing created. */
    td_client_graph_clear(g);
    uint64_t ip = td_client_new_id(c);
    CHECK_OK(c, td_client_graph_node(g, "matmul", in_mm, 2, &ip, 1));
    uint64_t planned = 0;
    CHECK_OK(c, td_client_plan(c, g, outs, 8, &nouts, &planned));
    assert_int_equal(nouts, 1);
    assert_int_equal(outs[0].nbytes, 16);
    assert_int_equal(planned, 16);
    assert_int_equal(td_client_get(c, ip, tmp, sizeof tmp, NULL), TD_CLIENT_ENOTFOUND);
    td_client_graph_free(g);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * Errors: the right code, a readable message, and the session goes on.
 */
static void assert_still_usable(td_client *c)
{
    const int64_t shape[1] = {3};
    const int16_t v[3] = {7, -8, 9};
    int16_t w[3] = {0, 0, 0};
    uint64_t id = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, id, TD_CLIENT_INT16, 1, shape, v, sizeof v));
    CHECK_OK(c, td_client_get(c, id, w, sizeof w, NULL));
    assert_memory_equal(v, w, sizeof v);
}

/* Autograd through the C client: a leaf marked requires_grad_, y = sum(x * x * w),
 * autograd.grad-style backward (one gradient output per tensor to differentiate), the
 * no_grad flag, and None outputs (a tensor without .grad). Hand-computed: dy/dx = 2 x w. */
static void test_autograd(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    const double x[3] = {1, -2, 0.5}, w[3] = {3, 4, -1};
    const int64_t s3[1] = {3};
    uint64_t ix = td_client_new_id(c), iw = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, ix, TD_CLIENT_FLOAT64, 1, s3, x, sizeof x));
    CHECK_OK(c, td_client_put(c, iw, TD_CLIENT_FLOAT64, 1, s3, w, sizeof w));
    uint64_t ixx = td_client_new_id(c), ip = td_client_new_id(c), iy = td_client_new_id(c);
    uint64_t ig = td_client_new_id(c), iq = td_client_new_id(c), inone = td_client_new_id(c);
    td_client_graph *g;
    CHECK_OK(c, td_client_graph_new(&g));
    uint64_t in_xx[2] = {ix, ix}, in_p[2] = {ixx, iw}, in_bw[2] = {iy, ix}, in_q[2] = {ix, iw};
    CHECK_OK(c, td_client_graph_node(g, "requires_grad_", &ix, 1, NULL, 0));
    CHECK_OK(c, td_client_graph_node(g, "mul", in_xx, 2, &ixx, 1));
    CHECK_OK(c, td_client_graph_node(g, "mul", in_p, 2, &ip, 1));
    CHECK_OK(c, td_client_graph_node(g, "sum", &ip, 1, &iy, 1));
    CHECK_OK(c, td_client_graph_node(g, "backward", in_bw, 2, &ig, 1));
    CHECK_OK(c, td_client_graph_attr_int(g, "nroots", 1));
    CHECK_OK(c, td_client_graph_node(g, "mul", in_q, 2, &iq, 1));
    CHECK_OK(c, td_client_graph_no_grad(g, 1));
    CHECK_OK(c, td_client_graph_node(g, "grad", &ix, 1, &inone, 1));
    struct td_client_tensor_info outs[8];
    size_t nouts = 0;
    CHECK_OK(c, td_client_run(c, g, outs, 8, &nouts));
    assert_int_equal(nouts, 6);
    assert_int_equal(outs[0].id, ixx);
    assert_true(outs[0].requires_grad);
    assert_true(outs[2].requires_grad);            /* y */
    assert_int_equal(outs[3].id, ig);
    assert_false(outs[3].undefined);
    assert_false(outs[4].requires_grad);           /* made under no_grad */
    assert_int_equal(outs[5].id, inone);
    assert_true(outs[5].undefined);                /* autograd.grad left .grad alone */
    double gx[3];
    struct td_client_tensor_info info;
    CHECK_OK(c, td_client_get(c, ig, gx, sizeof gx, &info));
    for (int i = 0; i < 3; i++)
        assert_true(gx[i] == 2 * x[i] * w[i]);
    /* The undefined id was never created. */
    assert_int_equal(td_client_get(c, inone, gx, sizeof gx, &info), TD_CLIENT_ENOTFOUND);
    td_client_graph_free(g);
    td_client_close(c);
}

static void test_errors(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    td_client_graph *g;
    CHECK_OK(c, td_client_graph_new(&g));
    const int64_t s23[2] = {2, 3};
    const float a[6] = {1, 2, 3, 4, 5, 6};
    uint64_t ia = td_client_new_id(c), ib = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, ia, TD_CLIENT_FLOAT32, 2, s23, a, sizeof a));
    CHECK_OK(c, td_client_put(c, ib, TD_CLIENT_FLOAT32, 2, s23, a, sizeof a));

    /* Unknown op: the daemon does not find it (NOT_FOUND, like an unknown id). */
    uint64_t out = td_client_new_id(c);
    CHECK_OK(c, td_client_graph_node(g, "no_such_op", &ia, 1, &out, 1));
    int rc = td_client_run(c, g, NULL, 0, NULL);
    if (rc != TD_CLIENT_ENOTFOUND)
        fail_msg("unknown op gave %d (%s): %s", rc, td_client_strerror(rc), td_client_errmsg(c));
    print_message("unknown op: %d (%s): %s\n", rc, td_client_strerror(rc), td_client_errmsg(c));
    assert_non_null(strstr(td_client_errmsg(c), "no_such_op"));
    assert_still_usable(c);

    /* Unknown id, in a Get and as a graph input. */
    float buf[6];
    assert_int_equal(td_client_get(c, 987654321, buf, sizeof buf, NULL), TD_CLIENT_ENOTFOUND);
    assert_true(strlen(td_client_errmsg(c)) > 0);
    td_client_graph_clear(g);
    uint64_t bad_in[2] = {ia, 987654321};
    CHECK_OK(c, td_client_graph_node(g, "add", bad_in, 2, &out, 1));
    assert_int_equal(td_client_run(c, g, NULL, 0, NULL), TD_CLIENT_ENOTFOUND);
    assert_non_null(strstr(td_client_errmsg(c), "987654321"));
    assert_still_usable(c);

    /* Shape mismatch: (2x3) @ (2x3). */
    td_client_graph_clear(g);
    uint64_t mm[2] = {ia, ib};
    CHECK_OK(c, td_client_graph_node(g, "matmul", mm, 2, &out, 1));
    assert_int_equal(td_client_run(c, g, NULL, 0, NULL), TD_CLIENT_EINVAL);
    print_message("shape mismatch: %s\n", td_client_errmsg(c));
    assert_non_null(strstr(td_client_errmsg(c), "matmul"));
    assert_int_equal(td_client_plan(c, g, NULL, 0, NULL, NULL), TD_CLIENT_EINVAL);
    /* Nothing of the failed graph was created. */
    assert_int_equal(td_client_get(c, out, buf, sizeof buf, NULL), TD_CLIENT_ENOTFOUND);
    assert_still_usable(c);

    /* A missing required attribute. */
    td_client_graph_clear(g);
    CHECK_OK(c, td_client_graph_node(g, "reshape", &ia, 1, &out, 1));
    assert_int_equal(td_client_run(c, g, NULL, 0, NULL), TD_CLIENT_EINVAL);
    assert_non_null(strstr(td_client_errmsg(c), "shape"));
    assert_still_usable(c);

    /* Local argument checks never reach the daemon and leave the session alone. */
    assert_int_equal(td_client_put(c, ia, 99, 2, s23, a, sizeof a), TD_CLIENT_EUSAGE);
    assert_int_equal(td_client_graph_attr_int(NULL, "x", 1), TD_CLIENT_EUSAGE);
    assert_still_usable(c);
    td_client_graph_free(g);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * Chunked transfer: 1 MiB through frames of 4096 data bytes.
 */
static void test_chunked(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    const size_t n = (1u << 20) / sizeof(float);
    float *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    assert_non_null(in);
    assert_non_null(out);
    int64_t expect_sum = 0;
    for (size_t i = 0; i < n; i++) {
        in[i] = (float)(i % 7);
        expect_sum += (int64_t)(i % 7);
    }
    const int64_t shape[2] = {512, 512};
    uint64_t id = td_client_new_id(c);
    uint64_t sent0, sent1;
    td_client_io_counters(c, &sent0, NULL);
    CHECK_OK(c, td_client_put(c, id, TD_CLIENT_FLOAT32, 2, shape, in, n * sizeof *in));
    td_client_io_counters(c, &sent1, NULL);
    /* 256 frames went out, each with a header: more than the data itself. */
    assert_true(sent1 - sent0 > (1u << 20) + 256 * 40);
    memset(out, 0, n * sizeof *out);
    struct td_client_tensor_info info;
    CHECK_OK(c, td_client_get(c, id, out, n * sizeof *out, &info));
    assert_int_equal(info.nbytes, 1u << 20);
    assert_int_equal(info.shape[0], 512);
    if (memcmp(in, out, n * sizeof *in) != 0)
        fail_msg("1 MiB chunked round trip differs");

    /* A buffer one byte short: EBUFFER, info filled, session fine. */
    memset(&info, 0, sizeof info);
    assert_int_equal(td_client_get(c, id, out, n * sizeof *out - 1, &info), TD_CLIENT_EBUFFER);
    assert_int_equal(info.nbytes, 1u << 20);
    assert_still_usable(c);

    /* The chunked tensor is whole in the daemon: its sum is exact in float32. */
    td_client_graph *g;
    CHECK_OK(c, td_client_graph_new(&g));
    uint64_t is = td_client_new_id(c);
    CHECK_OK(c, td_client_graph_node(g, "sum", &id, 1, &is, 1));
    CHECK_OK(c, td_client_run(c, g, NULL, 0, NULL));
    float s = 0;
    CHECK_OK(c, td_client_get(c, is, &s, sizeof s, &info));
    assert_int_equal(info.ndim, 0);
    assert_float_equal(s, (double)expect_sum, 0.5);
    td_client_graph_free(g);
    free(in);
    free(out);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * Free.
 */
static void test_free_ids(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    const int64_t shape[1] = {4};
    const int32_t v[4] = {1, 2, 3, 4};
    uint64_t ids[2] = {td_client_new_id(c), td_client_new_id(c)};
    CHECK_OK(c, td_client_put(c, ids[0], TD_CLIENT_INT32, 1, shape, v, sizeof v));
    CHECK_OK(c, td_client_put(c, ids[1], TD_CLIENT_INT32, 1, shape, v, sizeof v));
    struct td_client_stats st;
    CHECK_OK(c, td_client_stats(c, &st));
    assert_int_equal(st.session_tensors, 2);
    assert_int_equal(st.session_bytes, 32);
    uint64_t freed = 99;
    CHECK_OK(c, td_client_free(c, ids, 2, &freed));
    assert_int_equal(freed, 2);
    int32_t w[4];
    assert_int_equal(td_client_get(c, ids[0], w, sizeof w, NULL), TD_CLIENT_ENOTFOUND);
    assert_int_equal(td_client_get(c, ids[1], w, sizeof w, NULL), TD_CLIENT_ENOTFOUND);
    CHECK_OK(c, td_client_stats(c, &st));
    assert_int_equal(st.session_tensors, 0);
    assert_int_equal(st.session_bytes, 0);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * Pipelining: several runs in flight, waited for out of order, one of them failing.
 */
static void test_pipelined(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    const int64_t shape[1] = {3};
    const double x[3] = {1, -2, 4.5};
    uint64_t ix = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, ix, TD_CLIENT_FLOAT64, 1, shape, x, sizeof x));
    enum { N = 6 };
    td_client_graph *g[N];
    uint64_t outs[N], calls[N];
    /* out_k = x + k * x (add with alpha k), so each value identifies its call; call 3
     * names a missing input and fails. */
    for (int k = 0; k < N; k++) {
        CHECK_OK(c, td_client_graph_new(&g[k]));
        outs[k] = td_client_new_id(c);
        uint64_t in[2] = {ix, k == 3 ? 55555555 : ix};
        CHECK_OK(c, td_client_graph_node(g[k], "add", in, 2, &outs[k], 1));
        CHECK_OK(c, td_client_graph_attr_scalar_int(g[k], "alpha", k));
    }
    for (int k = 0; k < N; k++)
        CHECK_OK(c, td_client_run_async(c, g[k], &calls[k]));
    assert_int_equal(td_client_pending(c), N);
    for (int k = N - 1; k >= 0; k--) {
        struct td_client_tensor_info info[2];
        size_t n = 0;
        int rc = td_client_wait(c, calls[k], info, 2, &n);
        if (k == 3) {
            assert_int_equal(rc, TD_CLIENT_ENOTFOUND);
            assert_non_null(strstr(td_client_errmsg(c), "55555555"));
            continue;
        }
        if (rc)
            fail_msg("call %d: %s: %s", k, td_client_strerror(rc), td_client_errmsg(c));
        assert_int_equal(n, 1);
        assert_int_equal(info[0].id, outs[k]);
        assert_int_equal(info[0].shape[0], 3);
    }
    assert_int_equal(td_client_pending(c), 0);
    assert_int_equal(td_client_wait(c, calls[0], NULL, 0, NULL), TD_CLIENT_EUSAGE);
    for (int k = 0; k < N; k++) {
        if (k == 3)
            continue;
        double y[3];
        CHECK_OK(c, td_client_get(c, outs[k], y, sizeof y, NULL));
        for (int i = 0; i < 3; i++)
            assert_float_equal(y[i], x[i] * (1 + k), 1e-12);
    }
    for (int k = 0; k < N; k++)
        td_client_graph_free(g[k]);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * The op table: list_ops, and every op planned through the C client.
 */
static const struct td_client_op_info *find_op(const struct td_client_op_info *ops, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    return NULL;
}

static void test_list_ops(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    struct td_client_op_info *ops = NULL;
    size_t n = 0;
    CHECK_OK(c, td_client_list_ops(c, &ops, &n));
    assert_true(n > 100);
    const struct td_client_op_info *mm = find_op(ops, n, "matmul");
    assert_non_null(mm);
    assert_int_equal(mm->min_inputs, 2);
    assert_int_equal(mm->max_inputs, 2);
    assert_int_equal(mm->num_outputs, 1);
    const struct td_client_op_info *sum = find_op(ops, n, "sum");
    assert_non_null(sum);
    int has_dim = 0;
    for (int i = 0; i < sum->nattrs; i++)
        if (strcmp(sum->attrs[i].name, "dim") == 0 && strcmp(sum->attrs[i].type, "ints") == 0)
            has_dim = 1;
    assert_true(has_dim);
    assert_non_null(strstr(sum->flags, "reduction"));
    assert_int_equal(sum->ndtypes, TD_CLIENT_DTYPE_COUNT);
    const struct td_client_op_info *cat = find_op(ops, n, "cat");
    assert_non_null(cat);
    assert_int_equal(cat->max_inputs, -1);
    /* Names are unique. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(ops[i].name, ops[j].name) == 0)
                fail_msg("op %s listed twice", ops[i].name);
    td_client_ops_free(ops);
    td_client_close(c);
}

/* Required attribute values for sample graphs: by (op, name), then by name alone. */
enum sample_kind { S_INT, S_INTS, S_SCALAR_INT, S_SCALAR_FLOAT, S_DTYPE };
struct sample_attr {
    const char *op;         /* NULL: any op */
    const char *name;
    enum sample_kind kind;
    int64_t v[2];
    int nv;
};

static const struct sample_attr sample_attrs[] = {
    {"reshape", "shape", S_INTS, {3, 2}, 2},
    {"view", "shape", S_INTS, {6, 0}, 1},
    {"permute", "dims", S_INTS, {1, 0}, 2},
    {"logsumexp", "dim", S_INTS, {1, 0}, 1},
    {"arange", "end", S_SCALAR_INT, {5, 0}, 1},
    {"linspace", "start", S_SCALAR_INT, {0, 0}, 1},
    {"linspace", "end", S_SCALAR_FLOAT, {1, 0}, 1},
    {"backward", "nroots", S_INT, {1, 0}, 1},
    {"im2col", "kernel_size", S_INTS, {1, 0}, 1},              /* on the [1,1,2,3] sample */
    {"col2im", "kernel_size", S_INTS, {2, 1}, 2},              /* [2,3]: 1 channel, L = 3 */
    {"col2im", "output_size", S_INTS, {4, 1}, 2},
    {"conv2d_backward_input", "input_size", S_INTS, {3, 5}, 2}, /* [1,1,2,3] g and w */
    {"conv2d_backward_weight", "kernel_size", S_INTS, {1, 0}, 1},
    {"max_pool2d", "kernel_size", S_INTS, {1, 0}, 1},
    {"max_pool2d_backward", "input_size", S_INTS, {2, 3}, 2},
    {"avg_pool2d", "kernel_size", S_INTS, {1, 0}, 1},
    {"avg_pool2d_backward", "kernel_size", S_INTS, {1, 0}, 1},
    {"avg_pool2d_backward", "input_size", S_INTS, {2, 3}, 2},
    {"embedding_backward", "num_weights", S_INT, {2, 0}, 1},
    {"layer_norm", "normalized_shape", S_INTS, {3, 0}, 1},
    {"sgd_step", "nparams", S_INT, {1, 0}, 1},
    {"sgd_step", "lr", S_INT, {1, 0}, 1},
    {"adam_step", "nparams", S_INT, {1, 0}, 1},
    {"adam_step", "lr", S_INT, {1, 0}, 1},
    {"adam_step", "step", S_INT, {1, 0}, 1},
    {"polygamma", "n", S_INT, {1, 0}, 1},
    {"multigammaln", "p", S_INT, {1, 0}, 1},
    {"solve_triangular", "upper", S_INT, {1, 0}, 1},
    {"matrix_power", "n", S_INT, {3, 0}, 1},
    {"nonzero", "count", S_INT, {6, 0}, 1},
    {"unique", "count", S_INT, {1, 0}, 1},
    {NULL, "size", S_INTS, {4, 6}, 2},             /* upsample_*: [1,1,2,3] -> [1,1,4,6] */
    {NULL, "input_size", S_INTS, {1, 1}, 2},       /* upsample_*_backward, adaptive_avg_pool */
    {"adaptive_avg_pool", "output_size", S_INTS, {1, 1}, 2},
    {NULL, "shape", S_INTS, {2, 3}, 2},     /* creation ops, expand, broadcast_to */
    {NULL, "dims", S_INTS, {0, 0}, 1},      /* flip */
    {NULL, "shifts", S_INTS, {1, 0}, 1},    /* roll */
    {NULL, "dim", S_INT, {0, 0}, 1},
    {NULL, "dim0", S_INT, {0, 0}, 1},
    {NULL, "dim1", S_INT, {1, 0}, 1},
    {NULL, "index", S_INT, {1, 0}, 1},
    {NULL, "start", S_INT, {0, 0}, 1},      /* narrow (linspace's is a scalar) */
    {NULL, "length", S_INT, {1, 0}, 1},
    {NULL, "n", S_INT, {3, 0}, 1},
    {NULL, "steps", S_INT, {4, 0}, 1},
    {NULL, "high", S_INT, {9, 0}, 1},
    {NULL, "chunks", S_INT, {2, 0}, 1},
    {NULL, "dtype", S_DTYPE, {TD_CLIENT_FLOAT64, 0}, 1},
    {NULL, "fill_value", S_SCALAR_FLOAT, {0, 0}, 1},
    {NULL, "value", S_SCALAR_INT, {7, 0}, 1},
    {NULL, "end", S_SCALAR_INT, {5, 0}, 1},
};

/* Optional attributes a sample must still set (one of a set is required). */
static const struct sample_attr sample_extra[] = {
    {"clamp", "min", S_SCALAR_FLOAT, {0, 0}, 1},
    {"split", "split_size", S_INT, {1, 0}, 1},
    {"tensorinv", "ind", S_INT, {1, 0}, 1},       /* [2,2]: prod(shape[:1]) = prod(shape[1:]) */
};

/* Required string attributes: (op, name, value). */
static const char *const sample_strs[][3] = {
    {"einsum", "equation", "ij->ji"},
};

static const char *lookup_sample_str(const char *op, const char *name)
{
    for (size_t i = 0; i < sizeof sample_strs / sizeof sample_strs[0]; i++)
        if (strcmp(sample_strs[i][0], op) == 0 && strcmp(sample_strs[i][1], name) == 0)
            return sample_strs[i][2];
    return NULL;
}

static int add_sample_attr(td_client_graph *g, const struct sample_attr *s, const char *name,
                           const char *type)
{
    if (s->kind == S_INTS || strcmp(type, "ints") == 0)
        return td_client_graph_attr_ints(g, name, s->v, (size_t)s->nv);
    if (strcmp(type, "scalar") == 0) {
        if (s->kind == S_SCALAR_FLOAT)
            return td_client_graph_attr_scalar_float(g, name, (double)s->v[0] + 0.5);
        return td_client_graph_attr_scalar_int(g, name, s->v[0]);
    }
    if (strcmp(type, "dtype") == 0)
        return td_client_graph_attr_dtype(g, name, (int)s->v[0]);
    if (strcmp(type, "float") == 0)
        return td_client_graph_attr_float(g, name, (double)s->v[0]);
    if (strcmp(type, "bool") == 0)
        return td_client_graph_attr_bool(g, name, (int)s->v[0]);
    return td_client_graph_attr_int(g, name, s->v[0]);
}

static const struct sample_attr *lookup_sample(const char *op, const char *name,
                                               const char *type)
{
    for (size_t i = 0; i < sizeof sample_attrs / sizeof sample_attrs[0]; i++) {
        const struct sample_attr *s = &sample_attrs[i];
        if (strcmp(s->name, name) != 0 || (s->op && strcmp(s->op, op) != 0))
            continue;
        /* A name-only row matches only its own kind (dim:int vs dim:ints). */
        if (!s->op && s->kind == S_INTS && strcmp(type, "ints") != 0)
            continue;
        if (!s->op && s->kind == S_INT && strcmp(type, "int") != 0)
            continue;
        return s;
    }
    return NULL;
}

/* Tensors every sample graph draws from: one [2,3] tensor per dtype, a [3,2] one per dtype
 * (matmul's right side), int64 index tensors and a bool mask. */
struct sample_inputs {
    uint64_t x23[TD_CLIENT_DTYPE_COUNT];
    uint64_t x32[TD_CLIENT_DTYPE_COUNT];
    uint64_t x22[TD_CLIENT_DTYPE_COUNT];   /* [2,2] (square-matrix linalg ops) */
    uint64_t x2[TD_CLIENT_DTYPE_COUNT];    /* [2] (outer, tensorsolve's B, Householder tau) */
    uint64_t piv;       /* int32 [2] = {1, 2} (lu_solve's pivots) */
    uint64_t idx23;     /* int64 [2,3] of zeros */
    uint64_t idx2;      /* int64 [2] = {1, 0} */
    uint64_t mask;      /* bool [2,3] */
    uint64_t x4;        /* float32 [1,1,2,3] (conv and pooling) */
    uint64_t idx4;      /* int64 [1,1,2,3] of zeros (max_pool2d_backward) */
};

static void upload_samples(td_client *c, struct sample_inputs *si)
{
    unsigned char buf[6 * 16];
    const int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s2[1] = {2};
    for (int dt = 0; dt < TD_CLIENT_DTYPE_COUNT; dt++) {
        size_t isz = td_client_dtype_size(dt);
        /* Small positive values (1) in every dtype: bytes of the number 1 set per dtype. */
        memset(buf, 0, sizeof buf);
        for (int i = 0; i < 6; i++) {
            unsigned char *p = buf + (size_t)i * isz;
            switch (dt) {
            case TD_CLIENT_FLOAT16: p[1] = 0x3c; break;             /* 1.0 */
            case TD_CLIENT_BFLOAT16: p[1] = 0x3f; p[0] = 0x80; break;
            case TD_CLIENT_FLOAT32: case TD_CLIENT_COMPLEX64: p[3] = 0x3f; p[2] = 0x80; break;
            case TD_CLIENT_FLOAT64: case TD_CLIENT_COMPLEX128: p[7] = 0x3f; p[6] = 0xf0; break;
            default: p[0] = 1; break;
            }
        }
        si->x23[dt] = td_client_new_id(c);
        si->x32[dt] = td_client_new_id(c);
        CHECK_OK(c, td_client_put(c, si->x23[dt], dt, 2, s23, buf, 6 * isz));
        CHECK_OK(c, td_client_put(c, si->x32[dt], dt, 2, s32, buf, 6 * isz));
        const int64_t s22[2] = {2, 2};
        si->x22[dt] = td_client_new_id(c);
        CHECK_OK(c, td_client_put(c, si->x22[dt], dt, 2, s22, buf, 4 * isz));
        si->x2[dt] = td_client_new_id(c);
        CHECK_OK(c, td_client_put(c, si->x2[dt], dt, 1, s2, buf, 2 * isz));
    }
    const int64_t zeros[6] = {0, 0, 0, 0, 0, 0}, idx2[2] = {1, 0};
    const unsigned char mask[6] = {1, 0, 1, 0, 1, 0};
    si->idx23 = td_client_new_id(c);
    si->idx2 = td_client_new_id(c);
    si->mask = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, si->idx23, TD_CLIENT_INT64, 2, s23, zeros, sizeof zeros));
    CHECK_OK(c, td_client_put(c, si->idx2, TD_CLIENT_INT64, 1, s2, idx2, sizeof idx2));
    CHECK_OK(c, td_client_put(c, si->mask, TD_CLIENT_BOOL, 2, s23, mask, sizeof mask));
    const int32_t piv[2] = {1, 2};
    si->piv = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, si->piv, TD_CLIENT_INT32, 1, s2, piv, sizeof piv));
    const int64_t s4[4] = {1, 1, 2, 3};
    const float f4[6] = {1, 2, 3, 4, 5, 6};
    si->x4 = td_client_new_id(c);
    si->idx4 = td_client_new_id(c);
    CHECK_OK(c, td_client_put(c, si->x4, TD_CLIENT_FLOAT32, 4, s4, f4, sizeof f4));
    CHECK_OK(c, td_client_put(c, si->idx4, TD_CLIENT_INT64, 4, s4, zeros, sizeof zeros));
}

static int pick_dtype(const struct td_client_op_info *op)
{
    static const int pref[] = {TD_CLIENT_FLOAT32, TD_CLIENT_FLOAT64, TD_CLIENT_INT64,
                               TD_CLIENT_INT32, TD_CLIENT_COMPLEX64, TD_CLIENT_BOOL};
    for (size_t p = 0; p < sizeof pref / sizeof pref[0]; p++)
        for (int i = 0; i < op->ndtypes; i++)
            if (op->dtypes[i] == pref[p])
                return pref[p];
    return op->ndtypes ? op->dtypes[0] : TD_CLIENT_FLOAT32;
}

/* Builds a minimal graph applying op; returns the number of outputs expected. */
static size_t build_sample(td_client *c, td_client_graph *g, const struct td_client_op_info *op,
                           const struct sample_inputs *si)
{
    int dt = pick_dtype(op);
    uint64_t in[3];
    size_t nin = op->min_inputs > 0 ? (size_t)op->min_inputs : 0;
    if (nin > 3)
        fail_msg("op %s needs %zu inputs; the sample table knows at most 3", op->name, nin);
    for (size_t i = 0; i < nin; i++)
        in[i] = si->x23[dt];
    static const char *const square_ops[] = {
        "inv", "solve", "det", "slogdet", "cholesky", "eigh", "eigvalsh", "solve_triangular",
        "inv_ex", "solve_ex", "cholesky_ex", "eig", "eigvals", "matrix_power", "matrix_exp",
        "cond", "lu_solve", "tensorsolve", "tensorinv"};
    for (size_t q = 0; q < sizeof square_ops / sizeof square_ops[0]; q++)
        if (strcmp(op->name, square_ops[q]) == 0)
            for (size_t i = 0; i < nin; i++)
                in[i] = si->x22[dt];
    if (strcmp(op->name, "matmul") == 0 || strcmp(op->name, "multi_dot") == 0)
        in[1] = si->x32[dt];
    else if (strcmp(op->name, "outer") == 0)
        in[0] = in[1] = si->x2[dt];
    else if (strcmp(op->name, "tensorsolve") == 0)
        in[1] = si->x2[dt];
    else if (strcmp(op->name, "lu_solve") == 0)
        in[1] = si->piv;
    else if (strcmp(op->name, "householder_product") == 0) {
        in[0] = si->x32[dt];
        in[1] = si->x2[dt];
    }
    else if (strcmp(op->name, "gather") == 0 || strcmp(op->name, "scatter") == 0)
        in[1] = si->idx23;
    else if (strcmp(op->name, "index_select") == 0)
        in[1] = si->idx2;
    else if (strcmp(op->name, "masked_fill") == 0)
        in[1] = si->mask;
    else if (strcmp(op->name, "where") == 0)
        in[0] = si->mask;
    else if (strcmp(op->name, "embedding") == 0)
        in[1] = si->idx23;
    else if (strcmp(op->name, "embedding_backward") == 0 || strcmp(op->name, "nll_loss") == 0)
        in[1] = si->idx2;
    if (dt == TD_CLIENT_FLOAT32 &&
        (strcmp(op->name, "conv2d") == 0 || strcmp(op->name, "im2col") == 0 ||
         strcmp(op->name, "conv2d_backward_input") == 0 ||
         strcmp(op->name, "conv2d_backward_weight") == 0 ||
         strcmp(op->name, "max_pool2d") == 0 || strcmp(op->name, "avg_pool2d") == 0 ||
         strcmp(op->name, "avg_pool2d_backward") == 0 ||
         strcmp(op->name, "max_pool2d_backward") == 0 ||
         strncmp(op->name, "upsample_", 9) == 0 || strncmp(op->name, "adaptive_avg", 12) == 0)) {
        for (size_t i = 0; i < nin; i++)
            in[i] = si->x4;
        if (strcmp(op->name, "max_pool2d_backward") == 0)
            in[1] = si->idx4;
    }
    size_t nout = op->num_outputs >= 0 ? (size_t)op->num_outputs : 2;
    if (strcmp(op->name, "backward") == 0)
        nout = 0;   /* one root, nothing to differentiate: accumulate into .grad */
    uint64_t out[4];
    if (nout > 4)
        fail_msg("op %s has %zu outputs", op->name, nout);
    for (size_t i = 0; i < nout; i++)
        out[i] = td_client_new_id(c);
    td_client_graph_clear(g);
    CHECK_OK(c, td_client_graph_node(g, op->name, in, nin, out, nout));
    for (int a = 0; a < op->nattrs; a++) {
        const struct td_client_attr_schema *as = &op->attrs[a];
        if (!as->required)
            continue;
        const char *str = lookup_sample_str(op->name, as->name);
        if (str) {
            CHECK_OK(c, td_client_graph_attr_str(g, as->name, str));
            continue;
        }
        const struct sample_attr *s = lookup_sample(op->name, as->name, as->type);
        if (!s)
            fail_msg("op %s: no sample value for required attr %s:%s", op->name, as->name,
                     as->type);
        CHECK_OK(c, add_sample_attr(g, s, as->name, as->type));
    }
    for (size_t i = 0; i < sizeof sample_extra / sizeof sample_extra[0]; i++)
        if (strcmp(sample_extra[i].op, op->name) == 0)
            CHECK_OK(c, add_sample_attr(g, &sample_extra[i], sample_extra[i].name, "?"));
    return nout;
}

static void test_plan_every_op(void **state)
{
    (void)state;
    td_client *c = connect_or_fail();
    struct td_client_op_info *ops = NULL;
    size_t n = 0;
    CHECK_OK(c, td_client_list_ops(c, &ops, &n));
    struct sample_inputs si;
    upload_samples(c, &si);
    td_client_graph *g;
    CHECK_OK(c, td_client_graph_new(&g));
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        size_t expect = build_sample(c, g, &ops[i], &si);
        struct td_client_tensor_info outs[4];
        size_t nouts = 0;
        uint64_t planned = 0;
        int rc = td_client_plan(c, g, outs, 4, &nouts, &planned);
        if (rc) {
            print_error("plan %s failed: %s: %s\n", ops[i].name, td_client_strerror(rc),
                        td_client_errmsg(c));
            failures++;
        } else if (nouts != expect) {
            print_error("plan %s: %zu outputs, expected %zu\n", ops[i].name, nouts, expect);
            failures++;
        }
    }
    if (failures)
        fail_msg("%d of %zu ops could not be planned through the C client", failures, n);
    print_message("planned all %zu ops through the C client\n", n);
    /* Planning created nothing: only the uploaded samples are live. */
    struct td_client_stats st;
    CHECK_OK(c, td_client_stats(c, &st));
    assert_int_equal(st.session_tensors, 4 * TD_CLIENT_DTYPE_COUNT + 6);
    td_client_graph_free(g);
    td_client_ops_free(ops);
    td_client_close(c);
}

/* ---------------------------------------------------------------------------------------
 * Local behaviour that needs no daemon.
 */
static void test_local(void **state)
{
    (void)state;
    assert_int_equal(TD_CLIENT_EINVAL, -3);
    assert_int_equal(TD_CLIENT_ENOTFOUND, -5);
    assert_int_equal(TD_CLIENT_EUNAUTH, -16);
    assert_true(TD_CLIENT_EIO < -100);
    assert_string_equal(td_client_strerror(TD_CLIENT_ENOTFOUND), "not found");
    assert_string_equal(td_client_strerror(TD_CLIENT_ECLOSED), "connection closed");
    assert_string_equal(td_client_strerror(12345), "unknown status");
    assert_string_equal(td_client_dtype_name(TD_CLIENT_BFLOAT16), "bfloat16");
    assert_int_equal(td_client_dtype_size(TD_CLIENT_COMPLEX128), 16);
    assert_int_equal(td_client_dtype_size(12), 0);
    td_client *c = NULL;
    char err[256];
    assert_int_equal(td_client_connect_opts("http://x", NULL, &c, err, sizeof err),
                     TD_CLIENT_EADDR);
    assert_int_equal(td_client_connect_opts("tcp://127.0.0.1", NULL, &c, err, sizeof err),
                     TD_CLIENT_EADDR);
    assert_int_equal(td_client_connect_opts("unix:///nonexistent/dir/s.sock", NULL, &c, err,
                                            sizeof err),
                     TD_CLIENT_EIO);
    assert_null(c);
    td_client_graph *g;
    assert_int_equal(td_client_graph_new(&g), 0);
    assert_int_equal(td_client_graph_attr_int(g, "dim", 0), TD_CLIENT_EUSAGE); /* no node */
    uint64_t id = 1;
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(td_client_graph_node(g, longname, &id, 1, &id, 1), TD_CLIENT_EUSAGE);
    assert_int_equal(td_client_graph_node(g, "neg", &id, 1, &id, 1), 0);
    int64_t many[17] = {0};
    assert_int_equal(td_client_graph_attr_ints(g, "shape", many, 17), TD_CLIENT_EUSAGE);
    td_client_graph_free(g);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH_TO_TENSORD\n", argv[0]);
        return 2;
    }
    const struct CMUnitTest local[] = {cmocka_unit_test(test_local)};
    int failed = cmocka_run_group_tests_name("local", local, NULL, NULL);

    struct td_daemon d;
    char mfd[32];
    snprintf(mfd, sizeof mfd, "%d", SMALL_FRAME_DATA);
    const char *extra[] = {"--max-frame-data", mfd, "--log-level", "warn", NULL};
    if (td_spawn_daemon(argv[1], extra, &d) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake),   cmocka_unit_test(test_put_get_dtypes),
        cmocka_unit_test(test_graph),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_autograd),
        cmocka_unit_test(test_chunked),     cmocka_unit_test(test_free_ids),
        cmocka_unit_test(test_pipelined),   cmocka_unit_test(test_list_ops),
        cmocka_unit_test(test_plan_every_op),
    };
    g_addr = d.unix_addr;
    failed += cmocka_run_group_tests_name("unix", tests, NULL, NULL);
    g_addr = d.tcp_addr;
    failed += cmocka_run_group_tests_name("tcp", tests, NULL, NULL);

    int status = td_spawn_stop(&d);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "daemon did not exit cleanly on SIGTERM (wait status %d)\n", status);
        failed++;
    } else {
        printf("daemon exited with status 0 on SIGTERM\n");
    }
    return failed ? 1 : 0;
}

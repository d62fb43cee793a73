/*
 * test_optim_ops.c - sgd_step and adam_step (ops_optim.c) over three steps against the
 * update rules of torch.optim.SGD and torch.optim.Adam/AdamW written out here in float64:
 * momentum, dampening, nesterov, weight decay, maximize; Adam with bias correction, AdamW's
 * decoupled decay, amsgrad. Also: parameters without .grad are skipped, versions are
 * bumped, views and float32 parameters are updated, and bad inputs are refused before any
 * write.
 */
#include <math.h>
#include <string.h>

#include "agtest.h"
#include "optest.h"

#define N 4
#define STEPS 3

/* The gradient of step s (deterministic, sign-changing). */
static double grad_at(int s, int i)
{
    return sin(1.3 * i + 0.7 * s) * (1 + 0.5 * i) - 0.2;
}

static const double P0[N] = {0.5, -1.0, 2.0, 0.25};

static void set_grad(struct td_tensor *p, int s, enum td_dtype dt)
{
    double g[N];
    for (int i = 0; i < N; i++)
        g[i] = grad_at(s, i);
    struct td_tensor *gt = mk(dt, 1, SHAPE(N), g);
    struct td_tensor *in[2] = {p, gt};
    struct td_error err;
    assert_int_equal(td_ag_call(&sess, false, TD_OP_set_grad, 2, in, 0, NULL, 0, NULL, &err), 0);
    td_tensor_release(gt);
}

static struct td_tensor *param(enum td_dtype dt)
{
    struct td_tensor *p = mk(dt, 1, SHAPE(N), P0);
    struct td_error err;
    assert_int_equal(td__ag_meta_ensure(p, &err), 0);
    p->ag->requires_grad = true;
    return p;
}

struct sgd_cfg {
    double lr, mom, damp, wd;
    bool nesterov, maximize;
};

static void sgd_ref(const struct sgd_cfg *c, double *p)
{
    double buf[N] = {0};
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < N; i++) {
            double g = grad_at(s, i);
            if (c->maximize)
                g = -g;
            g += c->wd * p[i];
            if (c->mom != 0) {
                buf[i] = s == 0 ? g : c->mom * buf[i] + (1 - c->damp) * g;
                g = c->nesterov ? g + c->mom * buf[i] : buf[i];
            }
            p[i] -= c->lr * g;
        }
}

static void run_sgd(const struct sgd_cfg *c)
{
    struct td_tensor *p = param(TD_FLOAT64);
    struct td_tensor *buf = mk(TD_FLOAT64, 1, SHAPE(N), VALS(0, 0, 0, 0));
    struct td_tensor *in[2] = {p, buf};
    struct td_error err;
    for (int s = 0; s < STEPS; s++) {
        set_grad(p, s, TD_FLOAT64);
        uint64_t v0 = p->storage->version;
        struct td_attr_arg a[8] = {a_int("nparams", 1), a_float("lr", c->lr),
                                   a_float("momentum", c->mom), a_float("dampening", c->damp),
                                   a_float("weight_decay", c->wd),
                                   a_bool("nesterov", c->nesterov),
                                   a_bool("maximize", c->maximize), a_bool("first_step", s == 0)};
        int rc = td_op_call(TD_OP_sgd_step, c->mom != 0 ? 2 : 1, in, 8, a, 0, NULL, NULL, NULL,
                            &err);
        if (rc)
            fail_msg("sgd_step: %s", err.msg);
        assert_int_equal(p->storage->version, v0 + 1);
    }
    double want[N];
    memcpy(want, P0, sizeof want);
    sgd_ref(c, want);
    expect_vals_tol(p, TD_FLOAT64, 1, SHAPE(N), want, 1e-14);
    td_tensor_release(buf);
    td_tensor_release(p);
}

static void test_sgd(void **state)
{
    (void)state;
    const struct sgd_cfg cfgs[] = {
        {0.1, 0, 0, 0, false, false},     {0.1, 0.9, 0, 0, false, false},
        {0.05, 0.9, 0.3, 0, false, false}, {0.1, 0.8, 0, 0, true, false},
        {0.1, 0, 0, 0.01, false, false},  {0.1, 0.9, 0.1, 0.02, false, true},
        {0.2, 0.5, 0, 0.1, true, true},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        run_sgd(&cfgs[i]);
}

struct adam_cfg {
    double lr, b1, b2, eps, wd;
    bool amsgrad, decoupled, maximize;
};

static void adam_ref(const struct adam_cfg *c, double *p)
{
    double m[N] = {0}, v[N] = {0}, vmax[N] = {0};
    for (int s = 0; s < STEPS; s++) {
        int t = s + 1;
        for (int i = 0; i < N; i++) {
            double g = grad_at(s, i);
            if (c->maximize)
                g = -g;
            if (c->decoupled)
                p[i] *= 1 - c->lr * c->wd;
            else
                g += c->wd * p[i];
            m[i] = c->b1 * m[i] + (1 - c->b1) * g;
            v[i] = c->b2 * v[i] + (1 - c->b2) * g * g;
            double mhat = m[i] / (1 - pow(c->b1, t));
            double vv = v[i];
            if (c->amsgrad) {
                vmax[i] = fmax(vmax[i], v[i]);
                vv = vmax[i];
            }
            double vhat = vv / (1 - pow(c->b2, t));
            p[i] -= c->lr * mhat / (sqrt(vhat) + c->eps);
        }
    }
}

static void run_adam(const struct adam_cfg *c, enum td_dtype dt)
{
    struct td_tensor *p = param(dt);
    static const double z[N] = {0};
    struct td_tensor *in[4] = {p, mk(dt, 1, SHAPE(N), z), mk(dt, 1, SHAPE(N), z),
                               mk(dt, 1, SHAPE(N), z)};
    struct td_error err;
    for (int s = 0; s < STEPS; s++) {
        set_grad(p, s, dt);
        struct td_attr_arg a[10] = {
            a_int("nparams", 1),      a_float("lr", c->lr),
            a_float("beta1", c->b1),  a_float("beta2", c->b2),
            a_float("eps", c->eps),   a_float("weight_decay", c->wd),
            a_bool("amsgrad", c->amsgrad), a_bool("decoupled_weight_decay", c->decoupled),
            a_bool("maximize", c->maximize), a_int("step", s + 1)};
        uint64_t v1 = in[1]->storage->version;
        int rc = td_op_call(TD_OP_adam_step, c->amsgrad ? 4 : 3, in, 10, a, 0, NULL, NULL, NULL,
                            &err);
        if (rc)
            fail_msg("adam_step: %s", err.msg);
        assert_int_equal(in[1]->storage->version, v1 + 1);
    }
    double want[N];
    memcpy(want, P0, sizeof want);
    adam_ref(c, want);
    expect_vals_tol(p, dt, 1, SHAPE(N), want, dt == TD_FLOAT64 ? 1e-13 : 1e-5);
    for (int i = 0; i < 4; i++)
        td_tensor_release(in[i]);
}

static void test_adam(void **state)
{
    (void)state;
    const struct adam_cfg cfgs[] = {
        {1e-2, 0.9, 0.999, 1e-8, 0, false, false, false},
        {5e-2, 0.8, 0.99, 1e-6, 0.1, false, false, false},
        {5e-2, 0.8, 0.99, 1e-6, 0.1, false, true, false},
        {1e-1, 0.9, 0.9, 1e-8, 0, true, false, false},
        {1e-1, 0.9, 0.9, 1e-8, 0.05, true, true, true},
        {1e-2, 0.3, 0.5, 1e-3, 0.2, false, false, true},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        run_adam(&cfgs[i], TD_FLOAT64);
        run_adam(&cfgs[i], TD_FLOAT32);
    }
}

/* A parameter without .grad is skipped; a strided view and a bfloat16 parameter are
 * updated where they lie. */
static void test_skip_and_layouts(void **state)
{
    (void)state;
    struct td_error err;
    struct td_tensor *a = param(TD_FLOAT64), *b = param(TD_FLOAT64);
    struct td_tensor *ba = mk(TD_FLOAT64, 1, SHAPE(N), VALS(1, 1, 1, 1));
    struct td_tensor *bb = mk(TD_FLOAT64, 1, SHAPE(N), VALS(7, 7, 7, 7));
    set_grad(a, 0, TD_FLOAT64);
    struct td_tensor *in[4] = {a, b, ba, bb};
    struct td_attr_arg at[3] = {a_int("nparams", 2), a_float("lr", 0.5),
                                a_float("momentum", 0.5)};
    assert_int_equal(td_op_call(TD_OP_sgd_step, 4, in, 3, at, 0, NULL, NULL, NULL, &err), 0);
    double want[N], wb[N];
    for (int i = 0; i < N; i++) {
        wb[i] = 0.5 * 1 + grad_at(0, i);
        want[i] = P0[i] - 0.5 * wb[i];
    }
    expect_vals_tol(a, TD_FLOAT64, 1, SHAPE(N), want, 1e-15);
    expect_vals_tol(ba, TD_FLOAT64, 1, SHAPE(N), wb, 1e-15);
    expect_vals(b, TD_FLOAT64, 1, SHAPE(N), P0);
    expect_vals(bb, TD_FLOAT64, 1, SHAPE(N), VALS(7, 7, 7, 7));

    /* Every other element of an 8-element storage. */
    struct td_tensor *base = mk(TD_FLOAT64, 1, SHAPE(8), VALS(1, 100, 2, 100, 3, 100, 4, 100));
    struct td_attr_arg sl[2] = {a_int("dim", 0), a_int("step", 2)};
    struct td_tensor *view = run1(TD_OP_slice, 1, &base, 2, sl);
    assert_false(td_tensor_is_contiguous(view));
    set_grad(view, 1, TD_FLOAT64);
    struct td_attr_arg at1[2] = {a_int("nparams", 1), a_float("lr", 1)};
    assert_int_equal(td_op_call(TD_OP_sgd_step, 1, &view, 2, at1, 0, NULL, NULL, NULL, &err), 0);
    double wv[8] = {1 - grad_at(1, 0), 100, 2 - grad_at(1, 1), 100,
                    3 - grad_at(1, 2), 100, 4 - grad_at(1, 3), 100};
    expect_vals_tol(base, TD_FLOAT64, 1, SHAPE(8), wv, 1e-15);

    struct td_tensor *h = param(TD_BFLOAT16);
    set_grad(h, 0, TD_BFLOAT16);
    assert_int_equal(td_op_call(TD_OP_sgd_step, 1, &h, 2, at1, 0, NULL, NULL, NULL, &err), 0);
    for (int i = 0; i < N; i++)
        want[i] = td_bf16_to_f32(td_f32_to_bf16((float)P0[i])) -
                  td_bf16_to_f32(td_f32_to_bf16((float)grad_at(0, i)));
    expect_vals_tol(h, TD_BFLOAT16, 1, SHAPE(N), want, 1e-2);
    struct td_tensor *all[] = {a, b, ba, bb, base, view, h};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        td_tensor_release(all[i]);
}

static void test_errors(void **state)
{
    (void)state;
    struct td_tensor *p = param(TD_FLOAT64), *q = mk(TD_FLOAT64, 1, SHAPE(3), VALS(0, 0, 0));
    struct td_tensor *pi = mk(TD_INT64, 1, SHAPE(N), VALS(1, 2, 3, 4));
    set_grad(p, 0, TD_FLOAT64);
    struct td_tensor *in[4] = {p, q, q, q};
    struct td_attr_arg at[3] = {a_int("nparams", 1), a_float("lr", 0.1),
                                a_float("momentum", 0.9)};
    /* Buffer count and shape. */
    run_fail(TD_OP_sgd_step, 1, in, 3, at, 0, TD_EINVAL, "expected 2 per parameter");
    run_fail(TD_OP_sgd_step, 2, in, 3, at, 0, TD_EINVAL, "momentum buffer 0");
    struct td_attr_arg nes[3] = {a_int("nparams", 1), a_float("lr", 0.1),
                                 a_bool("nesterov", true)};
    run_fail(TD_OP_sgd_step, 1, in, 3, nes, 0, TD_EINVAL, "nesterov");
    struct td_attr_arg neg[2] = {a_int("nparams", 1), a_float("lr", -1)};
    run_fail(TD_OP_sgd_step, 1, in, 2, neg, 0, TD_EINVAL, "lr");
    struct td_tensor *ini[1] = {pi};
    struct td_attr_arg ok[2] = {a_int("nparams", 1), a_float("lr", 0.1)};
    run_fail(TD_OP_sgd_step, 1, ini, 2, ok, 0, TD_EINVAL, "dtype");
    struct td_attr_arg ad[3] = {a_int("nparams", 1), a_float("lr", 0.1), a_int("step", 0)};
    struct td_tensor *m = mk(TD_FLOAT64, 1, SHAPE(N), VALS(0, 0, 0, 0));
    struct td_tensor *ain[3] = {p, m, m};
    run_fail(TD_OP_adam_step, 3, ain, 3, ad, 0, TD_EINVAL, "step must be >= 1");
    ad[2] = a_int("step", 1);
    ain[2] = q;
    run_fail(TD_OP_adam_step, 3, ain, 3, ad, 0, TD_EINVAL, "exp_avg_sq 0");
    struct td_attr_arg ams[4] = {a_int("nparams", 1), a_float("lr", 0.1), a_int("step", 1),
                                 a_bool("amsgrad", true)};
    ain[2] = m;
    run_fail(TD_OP_adam_step, 3, ain, 4, ams, 0, TD_EINVAL, "expected 4 per parameter");
    expect_vals(p, TD_FLOAT64, 1, SHAPE(N), P0);
    fault_loop(TD_OP_adam_step, 3, ain, 3, ad, 0);
    td_tensor_release(m);
    td_tensor_release(pi);
    td_tensor_release(q);
    td_tensor_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_sgd),
        AG_TEST(test_adam),
        AG_TEST(test_skip_and_layouts),
        AG_TEST(test_errors),
    };
    return AG_RUN_TESTS(tests);
}

/*
 * td_autograd.h - reverse- and forward-mode automatic differentiation in the engine.
 *
 * Design (docs/AUTOGRAD.md has the long form):
 * - A tensor that requires grad carries a td_ag_meta: its producing node (grad_fn) or, for a
 *   leaf, its accumulated .grad; and, in forward mode, its tangent at the active dual level.
 * - Running a differentiable op (ops.def column `grad` = D) on inputs that require grad, with
 *   grad mode on, records a td_ag_node: the op and its attributes, edges to the inputs'
 *   nodes (or leaves), and the tensors its VJP needs (td_deriv.save_in / save_out), each with
 *   the storage version it had when saved.
 * - Backward walks the nodes from the roots in dependency order and calls each op's VJP.
 *   VJPs are written with the td_gb_* builder, which runs ops through the same recording
 *   path, so with create_graph the gradient computation is itself recorded and can be
 *   differentiated again (higher order).
 * - Forward mode: after an op runs, if an input has a tangent at the session's dual level,
 *   the op's JVP computes the outputs' tangents (with the same builder).
 * - Complex numbers follow PyTorch: for a real loss L of z = x + iy the gradient is
 *   dL/dx + i dL/dy (the conjugate Wirtinger derivative times 2), so a VJP of a holomorphic f
 *   is grad * conj(f'(z)).
 *
 * Thread: a session's graphs run one at a time, so one session's autograd state is touched
 * by one thread at a time; nothing here is shared between sessions.
 */
#ifndef TD_AUTOGRAD_H
#define TD_AUTOGRAD_H

#include "td_ops.h"

struct td_ag_node;
struct td_gb;

/* Per-session autograd state (embedded in the server's session). */
struct td_ag_session {
    struct td_account *account;
    struct td_rng *rng;
    uint64_t fw_level;          /* id of the active dual level; 0 when none is active */
    uint64_t next_level;        /* last level id handed out */
    struct td_ag_node *nodes;   /* every live node of the session (teardown breaks cycles) */
    uint64_t live_nodes;
};

/* Autograd fields of one tensor object (td_tensor.ag; NULL when all would be empty). */
struct td_ag_meta {
    bool requires_grad;
    struct td_ag_node *grad_fn;  /* owned reference; NULL for a leaf */
    int output_nr;               /* which output of grad_fn this tensor is */
    struct td_tensor *grad;      /* owned; a leaf's accumulated gradient */
    struct td_tensor *tangent;   /* owned; forward-mode tangent at level tangent_level */
    uint64_t tangent_level;
    int nondiff_op;              /* op + 1 when a non-differentiable op (grad N) made this
                                    from inputs that require grad; 0 otherwise */
};

/* ---------------------------------------------------------------------------------------
 * Derivative formulas (one td_deriv_<name> per `D` row of ops.def).
 */
/* What a VJP sees. grad[k] is the gradient flowing into output k: never NULL for outputs of
 * a floating or complex dtype (zeros when that output received none), NULL for others.
 * The VJP writes grad_in[i] for each input with needs[i] (a tensor from the builder, or NULL
 * for a zero gradient). The engine then makes each result match its input: complex results
 * for a real input keep the real part, the dtype is cast to the input's, and a broadcast
 * shape is summed down to the input's shape. */
struct td_vjp {
    const struct td_op_ctx *c;          /* the forward op: attrs and c->in_meta; no inputs */
    const struct td_meta *out_meta;     /* [c->noutputs] */
    struct td_tensor *const *grad;      /* [c->noutputs] */
    const bool *needs;                  /* [c->ninputs] */
    struct td_tensor **grad_in;         /* [c->ninputs], NULL-initialised */
};

/* What a JVP sees. tangent_in[i] is input i's tangent (zeros when it has none) for inputs of
 * a floating or complex dtype, NULL for others. primal_in are the op's inputs (with their
 * reverse-mode history); primal_out are its outputs BEFORE the engine links them to their
 * node, so a tangent built from primal_out cannot be differentiated back to the inputs.
 * Formulas that need the output in a differentiable tangent (forward-over-reverse,
 * td_gb_grad_mode true) recompute it from primal_in. The JVP writes tangent_out[k] for every floating or complex
 * output (NULL = zero); the engine casts it to the output's dtype (real part for a real
 * output) and broadcasts it to the output's shape. */
struct td_jvp {
    const struct td_op_ctx *c;          /* attrs, c->inputs = primal_in */
    struct td_tensor *const *primal_in;
    struct td_tensor *const *primal_out;
    struct td_tensor *const *tangent_in;
    struct td_tensor **tangent_out;     /* [c->noutputs], NULL-initialised */
};

typedef void (*td_vjp_fn)(struct td_gb *b, struct td_vjp *v);
typedef void (*td_jvp_fn)(struct td_gb *b, struct td_jvp *j);

#define TD_SAVE_ALL_INPUTS 0xffffffffu

/* One op's derivative: which tensors backward needs (bit i of save_in = input i, all inputs
 * for TD_SAVE_ALL_INPUTS; bit k of save_out = output k), the VJP and the JVP.
 * Only saved tensors may be read in the VJP (td_gb_saved_input/output); asking for another
 * is an internal error, which the generated tests catch. */
struct td_deriv {
    uint32_t save_in;
    uint32_t save_out;
    td_vjp_fn vjp;
    td_jvp_fn jvp;
};

#define TD_GRAD_D(name) &td_deriv_##name
#define TD_GRAD_N(name) NULL
#define TD_DECL_GRAD_D(name) extern const struct td_deriv td_deriv_##name;
#define TD_DECL_GRAD_N(name)
#define TD_OP(name, min_in, max_in, n_out, dtypes, flags, grad, attrs, doc) \
    TD_DECL_GRAD_##grad(name)
#include "ops.def"
#undef TD_OP

/* Returns: the op's derivative, or NULL for a non-differentiable op. */
const struct td_deriv *td_op_deriv(enum td_op op);

/* ---------------------------------------------------------------------------------------
 * The builder: how formulas compute. A scope owns every tensor its calls return (released by
 * td_gb_end), runs ops with the scope's grad mode (recording nodes when on) and propagates
 * tangents when forward mode is on for it. After the first failure every call returns NULL
 * and does nothing, so a formula is written without checks and the caller looks at the
 * scope's status once.
 */
/* Runs op on in[0..nin) with attrs; returns output 0 (owned by the scope) or NULL after a
 * failure. Ops with several outputs: td_gb_opn. */
struct td_tensor *td_gb_op(struct td_gb *b, enum td_op op, int nin, struct td_tensor *const *in,
                           int nattrs, const struct td_attr_arg *attrs);
/* Same for nout outputs written to out[] (all NULL after a failure). Returns 0 or status. */
int td_gb_opn(struct td_gb *b, enum td_op op, int nin, struct td_tensor *const *in, int nattrs,
              const struct td_attr_arg *attrs, int nout, struct td_tensor **out);
/* Fails the scope with a message (formulas use it for unsupported cases). Returns NULL. */
struct td_tensor *td_gb_fail(struct td_gb *b, int status, const char *fmt, ...) TD_PRINTF(3, 4);
bool td_gb_ok(const struct td_gb *b);
/* The scope records what it runs (create_graph, or a JVP under grad mode): formulas whose
 * cheap form is exact only to first order pick their differentiable form then. */
bool td_gb_grad_mode(const struct td_gb *b);
/* Hands t (owned by the caller) to the scope, which releases it at the end. Returns t. */
struct td_tensor *td_gb_adopt(struct td_gb *b, struct td_tensor *t);
/* The session, account and generator the scope runs with (for formulas needing them). */
struct td_ag_session *td_gb_session(struct td_gb *b);

/* Saved tensors of the node being differentiated (VJP only). With create_graph they carry
 * their autograd history, so the gradient is differentiable with respect to them.
 * Fails the scope (TD_EPRECOND) when the tensor was modified in place since it was saved, or
 * (TD_EINTERNAL) when the op's td_deriv does not save it. */
struct td_tensor *td_gb_saved_input(struct td_gb *b, int i);
struct td_tensor *td_gb_saved_output(struct td_gb *b, int k);

/* Attribute literals for td_gb_op: TD_A_INT("dim", 1) and so on. */
#define TD_A_INT(n, v) ((struct td_attr_arg){(n), {.type = TD_ATTR_INT, .i = (v)}})
#define TD_A_FLOAT(n, v) ((struct td_attr_arg){(n), {.type = TD_ATTR_FLOAT, .f = (v)}})
#define TD_A_BOOL(n, v) ((struct td_attr_arg){(n), {.type = TD_ATTR_BOOL, .b = (v)}})
#define TD_A_STR(n, v) ((struct td_attr_arg){(n), {.type = TD_ATTR_STR, .s = (char *)(v)}})
#define TD_A_DTYPE(n, v) ((struct td_attr_arg){(n), {.type = TD_ATTR_DTYPE, .dtype = (v)}})
/* Copies nints values from ints. */
struct td_attr_arg td_a_ints(const char *name, int nints, const int64_t *ints);
struct td_attr_arg td_a_scalar_f(const char *name, double v);
struct td_attr_arg td_a_scalar_i(const char *name, int64_t v);
struct td_attr_arg td_a_scalar_c(const char *name, double re, double im);

/* Conveniences over td_gb_op. */
struct td_tensor *td_gb_unary(struct td_gb *b, enum td_op op, struct td_tensor *x);
struct td_tensor *td_gb_binary(struct td_gb *b, enum td_op op, struct td_tensor *x,
                               struct td_tensor *y);
/* x * v where v is a Python-like float (does not promote x's dtype). */
struct td_tensor *td_gb_scale(struct td_gb *b, struct td_tensor *x, double v);
/* A 0-d wrapped-number tensor of value v (weak in promotion). */
struct td_tensor *td_gb_scalar(struct td_gb *b, double v);
struct td_tensor *td_gb_zeros(struct td_gb *b, const struct td_meta *m);
struct td_tensor *td_gb_zeros_like(struct td_gb *b, struct td_tensor *x);
struct td_tensor *td_gb_ones_like(struct td_gb *b, struct td_tensor *x);
struct td_tensor *td_gb_cast(struct td_gb *b, struct td_tensor *x, enum td_dtype dt);
struct td_tensor *td_gb_reshape(struct td_gb *b, struct td_tensor *x, int ndim,
                                const int64_t *shape);
struct td_tensor *td_gb_expand(struct td_gb *b, struct td_tensor *x, int ndim,
                               const int64_t *shape);
/* Sums x over broadcast dimensions so that its shape is m's (x broadcast from m's shape).
 * Returns x itself when the shapes already agree. */
struct td_tensor *td_gb_sum_to(struct td_gb *b, struct td_tensor *x, const struct td_meta *m);
/* sum over dims (keepdim as given). */
struct td_tensor *td_gb_sum(struct td_gb *b, struct td_tensor *x, int ndims, const int64_t *dims,
                            bool keepdim);
/* conj for complex x; x itself otherwise (no op recorded). */
struct td_tensor *td_gb_conj(struct td_gb *b, struct td_tensor *x);

/* ---------------------------------------------------------------------------------------
 * The engine's side: meta lifetime, recording, backward, forward mode.
 */
void td_ag_session_init(struct td_ag_session *s, struct td_account *account,
                        struct td_rng *rng);
/* Drops every node's saved tensors and edges (breaking the cycles a create_graph .grad can
 * form with its own history), then waits for nothing: the nodes go when their last
 * reference does. Call before releasing the session's tensors. */
void td_ag_session_fini(struct td_ag_session *s);

/* Called by td_tensor_release when the last reference goes. */
void td__ag_meta_free(struct td_ag_meta *m);
/* t requires grad (a leaf marked so, or the output of a recorded node). */
bool td_ag_requires_grad(const struct td_tensor *t);
bool td_ag_is_leaf(const struct td_tensor *t);
/* The tangent of t at the session's active dual level, borrowed, or NULL. */
struct td_tensor *td_ag_tangent(const struct td_ag_session *s, const struct td_tensor *t);
/* Name of t's grad_fn ("MulBackward0"-like: "mul_backward"), NULL for leaves. */
const char *td_ag_grad_fn_name(const struct td_tensor *t);

/* After op c ran on c->inputs producing out[0..c->noutputs): records the node when grad_mode
 * and some input requires grad and the op is differentiable, and computes tangents when
 * forward mode is active and some input has one. out[] tensors may be replaced by fresh
 * tensor objects sharing their storage (an output that aliases an input must not share the
 * input's autograd fields). Returns: 0 or a status (out[] still owned by the caller). */
int td__ag_after_op(struct td_ag_session *s, bool grad_mode, const struct td_op_ctx *c,
                    struct td_tensor **out, struct td_error *err) TD_WUR;

/* Backward from roots[0..nroots) with grad_outputs (an entry NULL: ones, allowed only for a
 * root with one element). inputs == NULL (ninputs 0): accumulate into the .grad of every leaf
 * reached (torch.autograd.backward). Otherwise compute the gradient of each inputs[i] into
 * grads_out[i] (owned; NULL when unused and allow_unused, an error otherwise) and touch no
 * .grad (torch.autograd.grad). retain_graph keeps saved tensors for another backward;
 * create_graph records the gradient computation. Returns: 0 or a status. */
int td_ag_backward(struct td_ag_session *s, int nroots, struct td_tensor *const *roots,
                   struct td_tensor *const *grad_outputs, int ninputs,
                   struct td_tensor *const *inputs, bool retain_graph, bool create_graph,
                   bool allow_unused, struct td_tensor **grads_out, struct td_error *err) TD_WUR;

/* Starts a dual level (nested levels are refused like PyTorch's). Returns 0 or TD_EPRECOND. */
int td_ag_enter_dual_level(struct td_ag_session *s, struct td_error *err) TD_WUR;
/* Ends it: every tangent of that level becomes unreachable and is freed lazily. */
int td_ag_exit_dual_level(struct td_ag_session *s, struct td_error *err) TD_WUR;

/* Runs op eagerly with autograd (recording when grad_mode, tangents at the active level):
 * what a one-node graph does, without an id table (unit tests, the engine itself).
 * Returns: 0 with out[0..nout) owned, or a status. */
int td_ag_call(struct td_ag_session *s, bool grad_mode, enum td_op op, int nin,
               struct td_tensor *const *in, int nattrs, const struct td_attr_arg *attrs, int nout,
               struct td_tensor **out, struct td_error *err) TD_WUR;

/* Makes sure t has a td_ag_meta. Returns 0 or TD_ENOMEM. */
int td__ag_meta_ensure(struct td_tensor *t, struct td_error *err) TD_WUR;

#endif

/*
 * td_ops.h - the op table, attributes, graphs and their execution.
 *
 * The table itself is ops.def; this header expands it into the op enum and declares the
 * per-op functions every row requires (meta_<name>, cpu_<name>).
 */
#ifndef TD_OPS_H
#define TD_OPS_H

#include "td_core.h"

struct td_ag_session;

enum td_op_flags {
    TD_OPF_ELEMENTWISE = 1 << 0,  /* inputs broadcast, output has the broadcast shape */
    TD_OPF_PROMOTE = 1 << 1,      /* inputs promote to a common dtype (td_result_type) */
    TD_OPF_INT_TO_FLOAT = 1 << 2, /* bool/integer inputs compute in float32 (default dtype) */
    TD_OPF_REDUCTION = 1 << 3,
    TD_OPF_SCAN = 1 << 4,
    TD_OPF_CREATION = 1 << 5,
    TD_OPF_RANDOM = 1 << 6,       /* consumes counters of the session's generator */
    TD_OPF_VIEW = 1 << 7,         /* the kernel creates its outputs (views or copies) itself */
    /* Reads or changes autograd state or writes a live tensor in place (backward, copy_,
     * optimizer steps). Its effects are not rolled back when a later node of the graph fails,
     * and (with TD_OPF_VIEW) it may leave an output undefined (None: no .grad, no tangent). */
    TD_OPF_STATEFUL = 1 << 8,
};

enum td_op {
#define TD_OP(name, min_in, max_in, n_out, dtypes, flags, grad, attrs, doc) TD_OP_##name,
#include "ops.def"
#undef TD_OP
    TD_OP_COUNT
};

/* ---------------------------------------------------------------------------------------
 * Attributes.
 */
enum td_attr_type {
    TD_ATTR_INT,
    TD_ATTR_FLOAT,
    TD_ATTR_BOOL,
    TD_ATTR_STR,
    TD_ATTR_INTS,
    TD_ATTR_DTYPE,
    TD_ATTR_SCALAR,
    TD_ATTR_TYPE_COUNT
};

enum td_scalar_kind { TD_SCALAR_BOOL, TD_SCALAR_INT, TD_SCALAR_FLOAT, TD_SCALAR_COMPLEX };

/* A Python-like number: its kind decides the dtype it implies (bool, int64, float32 default,
 * complex64 default) and its value is held exactly enough for every dtype. */
struct td_scalar {
    enum td_scalar_kind kind;
    int64_t i;     /* BOOL (0/1) and INT */
    double re, im; /* FLOAT (re) and COMPLEX; for BOOL/INT re = (double)i */
};

#define TD_MAX_INTS TD_MAX_NDIM   /* longest int list attribute (shape, dims) */

struct td_attr_value {
    enum td_attr_type type;
    bool present;          /* given by the request or filled from the schema's default */
    int64_t i;
    double f;
    bool b;
    char *s;               /* owned by the graph */
    int nints;
    int64_t ints[TD_MAX_INTS];
    enum td_dtype dtype;
    struct td_scalar scalar;
};

#define TD_MAX_ATTRS 12   /* adam_step has 10 */

struct td_attr_schema {
    const char *name;
    enum td_attr_type type;
    bool required;
    bool has_default;
    const char *default_text;  /* as written in ops.def, "" when none */
};

/* The parsed form of one ops.def row. */
struct td_op_info {
    const char *name;
    int min_inputs, max_inputs, num_outputs;
    uint32_t dtypes;
    uint32_t flags;
    const char *doc;
    int nattrs;
    struct td_attr_schema attrs[TD_MAX_ATTRS];
    struct td_attr_value defaults[TD_MAX_ATTRS];
};

/* Parses the attr specs of every row. Call once at startup, before any other td_op_* call.
 * Returns: 0, or TD_EINTERNAL when ops.def has a malformed spec (a programming error). */
int td_ops_init(struct td_error *err) TD_WUR;
/* Returns: the row of op, or NULL when op is out of range. */
const struct td_op_info *td_op_info_get(enum td_op op);
/* Looks an op up by its wire name. Returns: 0 or TD_ENOTFOUND. */
int td_op_lookup(const char *name, enum td_op *out) TD_WUR;
const char *td_attr_type_name(enum td_attr_type t);   /* "int", "ints", ... */
const char *td_op_flag_names(uint32_t flags, char *buf, size_t n); /* "elementwise,promote" */

/* ---------------------------------------------------------------------------------------
 * What an op implementation sees.
 */
struct td_op_ctx {
    enum td_op op;
    const struct td_op_info *info;
    int ninputs;
    const struct td_meta *in_meta;     /* [ninputs]; always set */
    struct td_tensor *const *inputs;   /* [ninputs]; NULL during meta-only validation */
    int noutputs;                      /* as requested by the node */
    struct td_attr_value attrs[TD_MAX_ATTRS];  /* schema order; defaults filled */
    struct td_rng *rng;                /* session generator (random ops) */
    struct td_account *account;        /* memory is charged here */
    struct td_ag_session *ag;          /* session autograd state; NULL outside a session */
    bool grad_mode;                    /* record autograd nodes (false under no_grad) */
};

/* Attribute access by name (names are the ones in ops.def; a wrong name is a bug and
 * asserts). Return the default when absent; *_has tells whether a value is present. */
bool td_arg_has(const struct td_op_ctx *c, const char *name);
int64_t td_arg_int(const struct td_op_ctx *c, const char *name);
double td_arg_float(const struct td_op_ctx *c, const char *name);
bool td_arg_bool(const struct td_op_ctx *c, const char *name);
const char *td_arg_str(const struct td_op_ctx *c, const char *name);  /* NULL when absent */
const int64_t *td_arg_ints(const struct td_op_ctx *c, const char *name, int *n);
enum td_dtype td_arg_dtype(const struct td_op_ctx *c, const char *name);
const struct td_scalar *td_arg_scalar(const struct td_op_ctx *c, const char *name);

/* meta_<op>: computes output metas (dtype, shape) from input metas and attrs, checking every
 * constraint a kernel relies on. Writes out[0..noutputs). For ops whose output count depends
 * on attrs (n_out -1) it checks that c->noutputs matches and fails otherwise.
 * Returns: 0 or a status with err's message naming the op. */
typedef int (*td_meta_fn)(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err);
/* cpu_<op>: computes. For ops without TD_OPF_VIEW the engine has allocated out[] from the
 * metas (contiguous) and the kernel fills them; with TD_OPF_VIEW the kernel sets out[k] to an
 * owned tensor whose meta equals the planned one. Returns: 0 or a status (err filled). */
typedef int (*td_cpu_fn)(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err);

#define TD_OP(name, min_in, max_in, n_out, dtypes, flags, grad, attrs, doc)             \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err); \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err);
#include "ops.def"
#undef TD_OP

/* Runs op on concrete inputs outside any graph (unit tests, the engine itself).
 * attrs/nattrs: name-value pairs as in a request. Validates exactly like a graph node.
 * Returns: 0 or a status; on success out[0..noutputs) are owned tensors. */
struct td_attr_arg {
    const char *name;
    struct td_attr_value value;   /* type + the matching field; `present` ignored */
};
int td_op_call(enum td_op op, int ninputs, struct td_tensor *const *inputs, int nattrs,
               const struct td_attr_arg *attrs, int noutputs, struct td_tensor **out,
               struct td_rng *rng, struct td_account *account, struct td_error *err) TD_WUR;

/* ---------------------------------------------------------------------------------------
 * Graphs: what a Run request carries, decoded and range-checked by the server.
 */
struct td_node {
    enum td_op op;
    int ninputs;
    uint64_t *inputs;          /* session ids */
    int noutputs;
    uint64_t *outputs;         /* session ids chosen by the client */
    int nattrs;
    struct td_attr_arg *attrs;
    bool no_grad;              /* run without recording autograd nodes (torch.no_grad) */
};

struct td_graph {
    int nnodes;
    struct td_node *nodes;
    int ndiscard;
    uint64_t *discard;
    /* Bound on the graph's estimated work in element operations; 0: unbounded. A view can
     * give a one-element tensor a huge logical shape (expand), so memory limits alone do not
     * bound how long a small request computes. See td_graph_plan. */
    uint64_t max_work;
    /* The session's autograd state (td_autograd.h); NULL runs without autograd. */
    struct td_ag_session *ag;
};

/* The id -> tensor table a graph reads and writes (the session's). The server implements it;
 * the engine only calls through it. get returns a borrowed tensor or NULL; put takes
 * ownership on success (and fails with TD_EEXIST / TD_ELIMIT); remove releases. */
struct td_idtable_ops {
    struct td_tensor *(*get)(void *self, uint64_t id);
    int (*put)(void *self, uint64_t id, struct td_tensor *t, struct td_error *err);
    int (*remove)(void *self, uint64_t id);
};

struct td_graph_output {
    uint64_t id;
    struct td_meta meta;
    /* Set by td_graph_run: the node left this output undefined (None, e.g. a tensor without
     * .grad), so the id was not created; or the output requires grad. */
    bool undefined;
    bool requires_grad;
};

/* Validates the whole graph with the meta functions before anything is computed: op arity,
 * dtypes, attrs, shapes, that every input id is live or produced by an EARLIER node, that no
 * output id is live or produced twice. On success fills outs (one per node output, in node
 * order; caller frees with td_free) and *bytes_planned.
 * Work estimate: each node that is not a view counts the logical elements of its inputs and
 * outputs, and matmul
 * adds its multiply-adds / 32 (BLAS performs ~32 of them in the time a generic kernel takes
 * per element). Over g->max_work the graph is refused with TD_ELIMIT before anything runs.
 * Returns: 0 or a status whose message names the node ("node 3 (matmul): ..."). */
int td_graph_plan(const struct td_graph *g, const struct td_idtable_ops *tab, void *tabself,
                  struct td_graph_output **outs, int *nouts, uint64_t *bytes_planned,
                  struct td_error *err) TD_WUR;
/* Plans then runs the graph, inserting each node's outputs into the table as it goes and
 * removing the discard ids at the end. On failure after some nodes ran, the outputs already
 * inserted are removed again and rng->offset is restored, so a failed graph leaves the table
 * and the generator as it found them.
 * Thread: one graph per table at a time; distinct tables may run concurrently. */
int td_graph_run(const struct td_graph *g, const struct td_idtable_ops *tab, void *tabself,
                 struct td_rng *rng, struct td_account *account, struct td_graph_output **outs,
                 int *nouts, uint64_t *bytes_planned, struct td_error *err) TD_WUR;
/* Cancellation and deadlines: called before each node with the node's index; a nonzero
 * status (err filled) ends the graph there. */
typedef int (*td_graph_stop_fn)(void *arg, int node, struct td_error *err);
/* td_graph_run, asking stop(stop_arg, node, err) before each node: a nonzero status ends the
 * graph there, rolled back exactly like any failed graph (outputs removed, rng restored). A
 * node already running is not interrupted. stop NULL: td_graph_run. */
int td_graph_run_stoppable(const struct td_graph *g, const struct td_idtable_ops *tab,
                           void *tabself, struct td_rng *rng, struct td_account *account,
                           td_graph_stop_fn stop, void *stop_arg, struct td_graph_output **outs,
                           int *nouts, uint64_t *bytes_planned, struct td_error *err) TD_WUR;
/* Frees everything the server's decoder allocated inside g (node arrays, attr strings) with
 * td_free; g itself is caller storage. */
void td_graph_fini(struct td_graph *g);

#endif

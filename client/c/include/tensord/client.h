/*
 * tensord/client.h - libtensord-client, the C client of the tensord daemon.
 *
 * A td_client is one connection (one daemon session). Tensors live in the daemon and are
 * named by 64-bit ids the client picks (td_client_new_id). Work is sent as a graph of op
 * nodes (td_client_graph) and run with td_client_run, or planned (shapes and dtypes checked,
 * nothing computed) with td_client_plan.
 *
 * Errors: every fallible function returns 0 or a negative TD_CLIENT_E* code. Codes -1..-16
 * are the daemon's gRPC status codes negated (the reply's message is in td_client_errmsg);
 * codes below -100 are local (I/O, protocol, memory, address, size). Out-parameters are
 * written only on success unless a function says otherwise.
 *
 * Threads: a td_client and a td_client_graph may be used by one thread at a time; distinct
 * clients are independent.
 *
 * Wire format: docs/PROTOCOL.md and proto/tensord.proto of the tensord sources.
 */
#ifndef TENSORD_CLIENT_H
#define TENSORD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; everything declared here is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#if defined(__GNUC__)
#define TD_CLIENT_WUR __attribute__((warn_unused_result))
#else
#define TD_CLIENT_WUR
#endif

/* X(NAME, value, text). -1..-16 mirror gRPC canonical codes; below -100 are local. */
#define TD_CLIENT_ERRNO_MAP(X)                                                      \
    X(ECANCELLED, -1, "cancelled")                                                  \
    X(EUNKNOWN, -2, "unknown error")                                                \
    X(EINVAL, -3, "invalid argument")                                               \
    X(EDEADLINE, -4, "deadline exceeded")                                           \
    X(ENOTFOUND, -5, "not found")                                                   \
    X(EEXIST, -6, "already exists")                                                 \
    X(EPERM, -7, "permission denied")                                               \
    X(EEXHAUSTED, -8, "resource exhausted")                                         \
    X(EPRECOND, -9, "failed precondition")                                          \
    X(EABORTED, -10, "aborted")                                                     \
    X(ERANGE, -11, "out of range")                                                  \
    X(EUNIMPL, -12, "unimplemented")                                                \
    X(EINTERNAL, -13, "internal error")                                             \
    X(EUNAVAIL, -14, "unavailable")                                                 \
    X(EDATALOSS, -15, "data loss")                                                  \
    X(EUNAUTH, -16, "unauthenticated")                                              \
    X(EIO, -101, "i/o error")                                                       \
    X(ECLOSED, -102, "connection closed")                                           \
    X(EPROTO, -103, "protocol error")                                               \
    X(ENOMEM, -104, "out of memory")                                                \
    X(EADDR, -105, "bad address")                                                   \
    X(ETOOBIG, -106, "too big")                                                     \
    X(EBUFFER, -107, "buffer too small")                                            \
    X(EUSAGE, -108, "invalid use of the client library")

enum td_client_errno {
    TD_CLIENT_OK = 0,
#define TD_CLIENT__E(name, val, text) TD_CLIENT_##name = (val),
    TD_CLIENT_ERRNO_MAP(TD_CLIENT__E)
#undef TD_CLIENT__E
};

/* Element types; values equal the wire enum tensord.v1.DType. */
enum td_client_dtype {
    TD_CLIENT_BOOL = 0,
    TD_CLIENT_UINT8 = 1,
    TD_CLIENT_INT8 = 2,
    TD_CLIENT_INT16 = 3,
    TD_CLIENT_INT32 = 4,
    TD_CLIENT_INT64 = 5,
    TD_CLIENT_FLOAT16 = 6,
    TD_CLIENT_BFLOAT16 = 7,
    TD_CLIENT_FLOAT32 = 8,
    TD_CLIENT_FLOAT64 = 9,
    TD_CLIENT_COMPLEX64 = 10,
    TD_CLIENT_COMPLEX128 = 11,
    TD_CLIENT_DTYPE_COUNT = 12
};

#define TD_CLIENT_MAX_NDIM 16

typedef struct td_client td_client;
typedef struct td_client_graph td_client_graph;

/* What the daemon says about a tensor. */
struct td_client_tensor_info {
    uint64_t id;
    int dtype;                             /* enum td_client_dtype */
    int ndim;
    int64_t shape[TD_CLIENT_MAX_NDIM];
    uint64_t nbytes;
    int undefined;       /* the op left this output None (no .grad, unused input): no id */
    int requires_grad;   /* the output carries autograd history in the daemon */
};

/* Connection options; zero-initialise and set what you need. */
struct td_client_options {
    const char *client_name; /* NULL: "libtensord-client" */
    const char *auth_token;  /* NULL: none */
    uint64_t seed;           /* session RNG seed; 0 lets the daemon pick */
};

/* Returns: static text for a status code ("not found"); "unknown status" otherwise. */
const char *td_client_strerror(int code);

/* Returns: the size in bytes of one element of dtype, or 0 when dtype is out of range. */
size_t td_client_dtype_size(int dtype);

/* Returns: the dtype's lower-case name ("float32"), or "?" when dtype is out of range. */
const char *td_client_dtype_name(int dtype);

/* Connects to a daemon and performs the handshake.
 * address: "unix:///absolute/path" or "tcp://host:port" (host may be a name, an IPv4
 * address, or an IPv6 address in brackets).
 * Returns: 0 and *out set, or TD_CLIENT_EADDR (unparsable address), TD_CLIENT_EIO (cannot
 * connect), TD_CLIENT_ENOMEM, TD_CLIENT_EPROTO, or the daemon's refusal (e.g. EUNAUTH).
 * On failure a message is available through td_client_strerror only (no client exists).
 * Ownership: *out is owned by the caller and released with td_client_close. */
int td_client_connect(const char *address, td_client **out) TD_CLIENT_WUR;

/* td_client_connect with options (client name, auth token, RNG seed). opts may be NULL.
 * errbuf, when non-NULL, receives a message on failure (errbuf_size bytes, NUL-terminated).
 * Returns and Ownership: as td_client_connect. */
int td_client_connect_opts(const char *address, const struct td_client_options *opts,
                           td_client **out, char *errbuf, size_t errbuf_size) TD_CLIENT_WUR;

/* Closes the connection; the daemon frees everything the session held. Replies of calls
 * still outstanding are lost. NULL is allowed. */
void td_client_close(td_client *c);

/* Returns: the message of the last failed call on c: the daemon's text when the error came
 * from the daemon ("node 2 (matmul): inner dims 3 != 4"), else a local description.
 * Ownership: borrowed; valid until the next call on c. */
const char *td_client_errmsg(const td_client *c);

/* Limits and identity announced by the daemon in the handshake. */
uint64_t td_client_max_frame_data(const td_client *c);
uint64_t td_client_session_id(const td_client *c);
/* Returns: the daemon's version string (borrowed, lives as long as c). */
const char *td_client_server_version(const td_client *c);

/* Returns: a fresh tensor id for this session (a counter starting at 1; never 0). */
uint64_t td_client_new_id(td_client *c);

/* Totals of bytes this client has sent and received on its socket (headers included).
 * Useful to size benchmark comparisons. Either pointer may be NULL. */
void td_client_io_counters(const td_client *c, uint64_t *sent, uint64_t *received);

/* Uploads a C-contiguous, little-endian tensor as id (replacing any tensor of that id).
 * shape has ndim entries (ndim <= TD_CLIENT_MAX_NDIM); nbytes must equal
 * numel * td_client_dtype_size(dtype). Tensors larger than td_client_max_frame_data are
 * sent as several chunks, pipelined. data is sent straight from the caller's buffer.
 * Returns: 0, TD_CLIENT_EUSAGE (bad arguments), a daemon error (e.g. EEXHAUSTED), or an
 * I/O error. */
int td_client_put(td_client *c, uint64_t id, int dtype, int ndim, const int64_t *shape,
                  const void *data, uint64_t nbytes) TD_CLIENT_WUR;

/* Downloads tensor id into buf (C order), in chunks when it exceeds max_frame_data; bytes
 * are read from the socket straight into buf. info (may be NULL) receives dtype, shape and
 * nbytes. The size is learnt from the first reply, so a buffer that turns out too small
 * costs one transfer of up to max_frame_data bytes, which are dropped.
 * Returns: 0; TD_CLIENT_EBUFFER when bufsize < nbytes (then info IS filled, so the caller
 * can size a buffer, and buf's content is unspecified); a daemon error (ENOTFOUND for an
 * unknown id); or an I/O error. */
int td_client_get(td_client *c, uint64_t id, void *buf, uint64_t bufsize,
                  struct td_client_tensor_info *info) TD_CLIENT_WUR;

/* Frees tensors by id. freed (may be NULL) receives how many ids named live tensors.
 * Returns: 0, a daemon error, or an I/O error. */
int td_client_free(td_client *c, const uint64_t *ids, size_t n, uint64_t *freed) TD_CLIENT_WUR;

/* ---- graphs ---------------------------------------------------------------------------
 * A graph is built on the client and may be run many times. Nodes name their inputs and
 * outputs by id; an input is a live tensor or an output of an earlier node. */

/* Returns: 0 and *out, or TD_CLIENT_ENOMEM. Ownership: free with td_client_graph_free. */
int td_client_graph_new(td_client_graph **out) TD_CLIENT_WUR;
/* Frees a graph. NULL is allowed. */
void td_client_graph_free(td_client_graph *g);
/* Empties a graph (nodes, attrs, discards) keeping its memory for reuse. */
void td_client_graph_clear(td_client_graph *g);

/* Appends a node applying op (its wire name, e.g. "matmul", at most 63 bytes) to inputs,
 * producing outputs. The td_client_graph_attr_* functions then add attributes to this
 * node (the last one added).
 * Returns: 0, TD_CLIENT_EUSAGE (op too long, NULL arrays with non-zero counts),
 * TD_CLIENT_ENOMEM. */
int td_client_graph_node(td_client_graph *g, const char *op, const uint64_t *inputs,
                         size_t nin, const uint64_t *outputs, size_t nout) TD_CLIENT_WUR;

/* Attributes of the last node. name is at most 63 bytes. Each returns 0,
 * TD_CLIENT_EUSAGE (no node yet, name or value too long, more than TD_CLIENT_MAX_NDIM ints),
 * or TD_CLIENT_ENOMEM. */
int td_client_graph_attr_int(td_client_graph *g, const char *name, int64_t v) TD_CLIENT_WUR;
int td_client_graph_attr_float(td_client_graph *g, const char *name, double v) TD_CLIENT_WUR;
int td_client_graph_attr_bool(td_client_graph *g, const char *name, int v) TD_CLIENT_WUR;
/* v at most 511 bytes. */
int td_client_graph_attr_str(td_client_graph *g, const char *name, const char *v) TD_CLIENT_WUR;
int td_client_graph_attr_ints(td_client_graph *g, const char *name, const int64_t *v,
                              size_t n) TD_CLIENT_WUR;
int td_client_graph_attr_dtype(td_client_graph *g, const char *name, int dtype) TD_CLIENT_WUR;
/* Scalars (Python-like numbers: their kind decides the dtype they imply). */
int td_client_graph_attr_scalar_int(td_client_graph *g, const char *name,
                                    int64_t v) TD_CLIENT_WUR;
int td_client_graph_attr_scalar_float(td_client_graph *g, const char *name,
                                      double v) TD_CLIENT_WUR;
int td_client_graph_attr_scalar_complex(td_client_graph *g, const char *name, double re,
                                        double im) TD_CLIENT_WUR;
int td_client_graph_attr_scalar_bool(td_client_graph *g, const char *name,
                                     int v) TD_CLIENT_WUR;

/* Runs the last node without recording autograd history (torch.no_grad) when no_grad is
 * non-zero. Returns: 0 or TD_CLIENT_EUSAGE (no node yet). */
int td_client_graph_no_grad(td_client_graph *g, int no_grad) TD_CLIENT_WUR;

/* Marks id as a temporary: the daemon frees it after the graph ran and does not report it.
 * Returns: 0 or TD_CLIENT_ENOMEM. */
int td_client_graph_discard(td_client_graph *g, uint64_t id) TD_CLIENT_WUR;

/* Runs graph g and waits for the reply. outs (may be NULL when max_outs is 0) receives up to
 * max_outs outputs (every node output not discarded, in node order); *nouts (may be NULL)
 * receives the total count, which may exceed max_outs.
 * Returns: 0, a daemon error (the graph is rejected as a whole; errmsg names the node), or
 * an I/O error. */
int td_client_run(td_client *c, const td_client_graph *g, struct td_client_tensor_info *outs,
                  size_t max_outs, size_t *nouts) TD_CLIENT_WUR;

/* Validates g with the daemon's meta functions without computing: outputs as for
 * td_client_run; bytes_planned (may be NULL) receives the memory the outputs need.
 * Returns: as td_client_run. */
int td_client_plan(td_client *c, const td_client_graph *g, struct td_client_tensor_info *outs,
                   size_t max_outs, size_t *nouts, uint64_t *bytes_planned) TD_CLIENT_WUR;

/* Pipelining: sends g without waiting and returns its call id in *call_id. Any number of
 * calls may be outstanding; the daemon runs them in order. Collect each with
 * td_client_wait (in any order; replies that arrive for other calls are kept until
 * waited for). Errors of the graph itself are reported by td_client_wait.
 * Returns: 0, TD_CLIENT_ENOMEM, or an I/O error. */
int td_client_run_async(td_client *c, const td_client_graph *g, uint64_t *call_id) TD_CLIENT_WUR;

/* Waits for the reply of call_id (from td_client_run_async); outs/max_outs/nouts as for
 * td_client_run.
 * Returns: the call's status (0 or a daemon error), TD_CLIENT_EUSAGE when call_id is not
 * outstanding, or an I/O error. */
int td_client_wait(td_client *c, uint64_t call_id, struct td_client_tensor_info *outs,
                   size_t max_outs, size_t *nouts) TD_CLIENT_WUR;

/* Returns: how many calls sent with td_client_run_async have not been waited for. */
size_t td_client_pending(const td_client *c);

/* ---- introspection --------------------------------------------------------------------- */

#define TD_CLIENT_MAX_ATTRS 16

struct td_client_attr_schema {
    char name[64];
    char type[16];          /* int, float, bool, str, ints, dtype, scalar */
    int required;
    char default_value[64]; /* textual, "" when none */
};

struct td_client_op_info {
    char name[64];
    int min_inputs;
    int max_inputs;         /* -1: variadic */
    int num_outputs;        /* -1: decided by attrs (split, chunk) */
    int nattrs;
    struct td_client_attr_schema attrs[TD_CLIENT_MAX_ATTRS];
    int ndtypes;
    int dtypes[TD_CLIENT_DTYPE_COUNT]; /* input dtypes the op accepts */
    char flags[128];        /* comma-separated: "elementwise,promote" */
    char doc[256];          /* truncated when longer */
};

/* Fetches the daemon's op table.
 * Returns: 0 with *ops (an array of *n entries), a daemon error, TD_CLIENT_ENOMEM, or an
 * I/O error. Ownership: *ops is the caller's, freed with td_client_ops_free. */
int td_client_list_ops(td_client *c, struct td_client_op_info **ops, size_t *n) TD_CLIENT_WUR;
void td_client_ops_free(struct td_client_op_info *ops);

struct td_client_stats {
    uint64_t session_id;
    uint64_t session_tensors;
    uint64_t session_bytes;
    uint64_t server_sessions;
    uint64_t server_bytes;
    uint64_t calls_total;
    uint64_t errors_total;
    char server_version[64];
};

/* Fetches session and server counters. Returns: 0, a daemon error, or an I/O error. */
int td_client_stats(td_client *c, struct td_client_stats *out) TD_CLIENT_WUR;

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* TENSORD_CLIENT_H */

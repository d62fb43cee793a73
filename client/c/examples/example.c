/*
 * example.c - libtensord-client in a nutshell: upload two float32 matrices, run
 * C = A @ B + D in one graph, download C, and check it against values computed by hand.
 *
 * Usage: td_client_example ADDRESS   (unix:///path/to/socket or tcp://127.0.0.1:PORT)
 * Exit status: 0 when the result matches, 1 otherwise.
 */
#include <math.h>
#include <stdio.h>

#include <tensord/client.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s unix:///path | tcp://host:port\n", argv[0]);
        return 2;
    }
    /* A is 2x3, B is 3x2, D is 2x2. */
    const float a[6] = {1, 2, 3, 4, 5, 6};
    const float b[6] = {7, 8, 9, 10, 11, 12};
    const float d[4] = {0.5f, -1, 2, 100};
    /* A @ B = [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]]
     *       = [[58, 64], [139, 154]]; plus D: */
    const float expect[4] = {58.5f, 63, 141, 254};
    const int64_t sa[2] = {2, 3}, sb[2] = {3, 2}, sd[2] = {2, 2};

    td_client *c = NULL;
    td_client_graph *g = NULL;
    char err[256];
    int status = 1;
    int rc = td_client_connect_opts(argv[1], NULL, &c, err, sizeof err);
    if (rc) {
        fprintf(stderr, "connect %s: %s (%s)\n", argv[1], td_client_strerror(rc), err);
        return 1;
    }
    uint64_t ia = td_client_new_id(c), ib = td_client_new_id(c), id = td_client_new_id(c);
    uint64_t iab = td_client_new_id(c), ic = td_client_new_id(c);
    if ((rc = td_client_put(c, ia, TD_CLIENT_FLOAT32, 2, sa, a, sizeof a)) ||
        (rc = td_client_put(c, ib, TD_CLIENT_FLOAT32, 2, sb, b, sizeof b)) ||
        (rc = td_client_put(c, id, TD_CLIENT_FLOAT32, 2, sd, d, sizeof d)))
        goto fail;

    uint64_t mm_in[2] = {ia, ib}, add_in[2] = {iab, id};
    if ((rc = td_client_graph_new(&g)) ||
        (rc = td_client_graph_node(g, "matmul", mm_in, 2, &iab, 1)) ||
        (rc = td_client_graph_node(g, "add", add_in, 2, &ic, 1)) ||
        (rc = td_client_graph_discard(g, iab)))
        goto fail;
    struct td_client_tensor_info out[2];
    size_t nout = 0;
    if ((rc = td_client_run(c, g, out, 2, &nout)))
        goto fail;

    float result[4];
    struct td_client_tensor_info info;
    if ((rc = td_client_get(c, ic, result, sizeof result, &info)))
        goto fail;
    if (info.dtype != TD_CLIENT_FLOAT32 || info.ndim != 2 || info.shape[0] != 2 ||
        info.shape[1] != 2) {
        fprintf(stderr, "result has dtype %s ndim %d, expected float32 2x2\n",
                td_client_dtype_name(info.dtype), info.ndim);
        goto out;
    }
    printf("A @ B + D =\n");
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        printf("  [%8.2f %8.2f]\n", (double)result[2 * i], (double)result[2 * i + 1]);
        for (int j = 0; j < 2; j++)
            if (fabsf(result[2 * i + j] - expect[2 * i + j]) > 1e-4f)
                bad = 1;
    }
    if (bad) {
        fprintf(stderr, "mismatch: expected [[58.5, 63], [141, 254]]\n");
        goto out;
    }
    printf("ok (graph reported %zu output(s))\n", nout);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "error: %s: %s\n", td_client_strerror(rc), td_client_errmsg(c));
out:
    td_client_graph_free(g);
    td_client_close(c);
    return status;
}

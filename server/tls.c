/*
 * tls.c - TLS for the TCP listeners with OpenSSL 3 (Debian's libssl: a maintained library
 * with timely security updates from the distribution).
 *
 * With --tls-cert and --tls-key every TCP connection speaks TLS; Unix sockets stay plain
 * (local, guarded by file permissions). Each connection gets an SSL object on its accepted
 * non-blocking fd. The server side of the handshake (SSL_accept) runs from the connection's
 * poll events before any frame is read; --auth-timeout also bounds it. Afterwards conn.c reads
 * and writes through td_tls_recv / td_tls_sendv, which answer like recv / sendmsg do, so the
 * framing, the output queue and the worker hand-off above stay the same.
 *
 * Writes: SSL_MODE_ENABLE_PARTIAL_WRITE lets SSL_write return after part of the buffer, like
 * a short sendmsg. When SSL_write cannot finish a record it keeps the encrypted record and
 * wants the same plaintext again (at least as long): the output queue does that, retrying
 * from its `sent` offset, possibly from the queued copy of a reply that was first offered
 * from the caller's memory, hence SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER. Small pieces (frame
 * header, protobuf body) are gathered into a per-connection buffer so that they travel in
 * one record.
 *
 * Reads: SSL_read returns at most one record, and plaintext may stay buffered in the SSL
 * object while the socket itself is drained; conn.c therefore reads until -EAGAIN and asks
 * td_tls_pending before it waits for a poll event. read_ahead stays off so that no whole
 * record can sit undecrypted in OpenSSL's buffer without a poll event to follow.
 *
 * Renegotiation is refused (SSL_OP_NO_RENEGOTIATION), so SSL_write never needs to read;
 * SSL_read may need to write (an alert, a TLS 1.3 key update) and then sets
 * c->tls_read_wants_write so that the loop waits for UV_WRITABLE before reading again. A
 * peer that closes TCP without close_notify is a plain end of stream
 * (SSL_OP_IGNORE_UNEXPECTED_EOF): the framing already detects truncated frames.
 */
#include "tls.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "log.h"
#include "metrics.h"
#include "server.h"

#define TLS_WBUF_SIZE 16384        /* one record of plaintext */
#define TLS_WRITE_MAX (1 << 20)    /* plaintext offered to one SSL_write from a big buffer */

/* Formats the oldest queued OpenSSL error of this thread into buf and clears the queue.
 * Returns: buf. */
static const char *ssl_err_text(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "no detail from OpenSSL");
    ERR_clear_error();
    return buf;
}

/* Checks that path can be opened for reading, for an error message that names the file and
 * the system's reason before OpenSSL's. Returns: 0 or -1 (logged). */
static int check_readable(const char *opt, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "option=%s file=\"%s\" err=\"%s\"", opt, path,
               strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

int td_tls_init(struct td_server *srv)
{
    const struct td_config *cfg = srv->cfg;
    char why[256];
    srv->tls_ctx = NULL;
    if (!cfg->tls_cert)
        return 0;
    if (check_readable("tls-cert", cfg->tls_cert) != 0 ||
        check_readable("tls-key", cfg->tls_key) != 0 ||
        (cfg->tls_client_ca && check_readable("tls-client-ca", cfg->tls_client_ca) != 0))
        return -1;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "err=\"%s\"", ssl_err_text(why, sizeof why));
        return -1;
    }
    bool v13 = strcmp(cfg->tls_min_version, "1.3") == 0;
    if (!SSL_CTX_set_min_proto_version(ctx, v13 ? TLS1_3_VERSION : TLS1_2_VERSION)) {
        TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "option=tls-min-version err=\"%s\"",
               ssl_err_text(why, sizeof why));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* No session resumption: sessions are long-lived connections, and no tickets means no
     * post-handshake messages for the client to read. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "option=tls-cert file=\"%s\" err=\"cannot "
               "load a PEM certificate chain: %s\"", cfg->tls_cert,
               ssl_err_text(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "option=tls-key file=\"%s\" cert=\"%s\" "
               "err=\"cannot load the PEM private key, or it does not match the certificate: "
               "%s\"", cfg->tls_key, cfg->tls_cert, ssl_err_text(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "option=tls-key file=\"%s\" cert=\"%s\" "
               "err=\"the private key does not match the certificate: %s\"", cfg->tls_key,
               cfg->tls_cert, ssl_err_text(why, sizeof why));
        goto fail;
    }
    if (cfg->tls_ciphers && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
        TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "option=tls-ciphers value=\"%s\" err=\"%s\"",
               cfg->tls_ciphers, ssl_err_text(why, sizeof why));
        goto fail;
    }
    if (cfg->tls_client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
            if (names)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            TD_LOG(TD_LOG_ERROR, "cannot set up TLS", "option=tls-client-ca file=\"%s\" "
                   "err=\"cannot load PEM CA certificates: %s\"", cfg->tls_client_ca,
                   ssl_err_text(why, sizeof why));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);   /* takes names */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x && X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
        TD_LOG(TD_LOG_WARN, "TLS certificate has expired", "file=\"%s\" err=\"clients that "
               "verify it will refuse to connect\"", cfg->tls_cert);
    TD_LOG(TD_LOG_INFO, "TLS enabled on TCP listeners", "cert=\"%s\" min_version=%s "
           "client_certificates=%s", cfg->tls_cert, cfg->tls_min_version,
           cfg->tls_client_ca ? "required" : "not-requested");
    srv->tls_ctx = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

void td_tls_fini(struct td_server *srv)
{
    SSL_CTX_free(srv->tls_ctx);
    srv->tls_ctx = NULL;
}

int td_tls_conn_init(struct td_conn *c)
{
    ERR_clear_error();
    SSL *s = SSL_new(c->srv->tls_ctx);
    uint8_t *wbuf = td_malloc(TLS_WBUF_SIZE);
    if (!s || !wbuf || SSL_set_fd(s, c->fd) != 1 || pthread_mutex_init(&c->tls_mu, NULL) != 0) {
        char why[256];
        TD_LOG(TD_LOG_WARN, "connection refused", "peer=%s reason=tls err=\"cannot set up the "
               "connection's TLS state: %s\"", c->peer, ssl_err_text(why, sizeof why));
        SSL_free(s);
        td_free(wbuf);
        return -1;
    }
    SSL_set_accept_state(s);
    c->tls = s;
    c->tls_wbuf = wbuf;
    c->tls_hs_events = UV_READABLE;
    c->tls_failed = false;
    atomic_init(&c->tls_read_wants_write, false);
    return 0;
}

void td_tls_conn_fini(struct td_conn *c)
{
    if (!c->tls)
        return;
    SSL_free(c->tls);
    c->tls = NULL;
    td_free(c->tls_wbuf);
    c->tls_wbuf = NULL;
    pthread_mutex_destroy(&c->tls_mu);
}

int td_tls_handshake(struct td_conn *c)
{
    char why[256] = "";
    pthread_mutex_lock(&c->tls_mu);
    ERR_clear_error();
    errno = 0;
    int r = SSL_accept(c->tls);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->tls, r);
    int sys = errno;
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        c->tls_failed = true;
        if (e == SSL_ERROR_SSL)
            ssl_err_text(why, sizeof why);
        else if (sys != 0)
            snprintf(why, sizeof why, "%s", strerror(sys));
        else
            snprintf(why, sizeof why, "the client closed the connection");
        long vr = SSL_get_verify_result(c->tls);
        if (vr != X509_V_OK) {
            size_t len = strlen(why);
            snprintf(why + len, sizeof why - len, " (client certificate: %s)",
                     X509_verify_cert_error_string(vr));
        }
    }
    const char *version = e == SSL_ERROR_NONE ? SSL_get_version(c->tls) : "";
    const char *cipher = e == SSL_ERROR_NONE ? SSL_get_cipher_name(c->tls) : "";
    pthread_mutex_unlock(&c->tls_mu);
    switch (e) {
    case SSL_ERROR_NONE:
        c->tls_hs_events = 0;
        TD_LOG(TD_LOG_DEBUG, "TLS handshake done", "peer=%s version=%s cipher=%s", c->peer,
               version, cipher);
        return 1;
    case SSL_ERROR_WANT_READ:
        c->tls_hs_events = UV_READABLE;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        c->tls_hs_events = UV_WRITABLE;
        return 0;
    default:
        td_metrics_disconnected(c->srv, "tls");
        TD_LOG(e == SSL_ERROR_SSL ? TD_LOG_WARN : TD_LOG_INFO, "TLS handshake failed",
               "peer=%s err=\"%s\"", c->peer, why);
        return -1;
    }
}

ssize_t td_tls_recv(struct td_conn *c, void *buf, size_t len)
{
    int want = len > INT_MAX ? INT_MAX : (int)len;
    char why[256] = "";
    pthread_mutex_lock(&c->tls_mu);
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->tls, buf, want);
    int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->tls, r);
    int sys = errno;
    if (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL) {
        c->tls_failed = true;
        if (e == SSL_ERROR_SSL)
            ssl_err_text(why, sizeof why);
    }
    pthread_mutex_unlock(&c->tls_mu);
    switch (e) {
    case SSL_ERROR_NONE:
        return r;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        atomic_store(&c->tls_read_wants_write, true);
        return -EAGAIN;
    case SSL_ERROR_SYSCALL:
        return sys != 0 ? -sys : -EPIPE;
    default:
        TD_LOG(TD_LOG_WARN, "TLS read failed", "peer=%s session=%" PRIu64 " err=\"%s\"",
               c->peer, c->sess->id, why);
        return -EPROTO;
    }
}

ssize_t td_tls_sendv(struct td_conn *c, const struct iovec *iov, int n)
{
    const void *p;
    size_t len;
    if (n <= 0)
        return 0;
    if (n == 1 || iov[0].iov_len >= TLS_WBUF_SIZE) {
        /* Straight from the caller's memory (big Get data: no copy). */
        p = iov[0].iov_base;
        len = iov[0].iov_len < TLS_WRITE_MAX ? iov[0].iov_len : TLS_WRITE_MAX;
    } else {
        len = 0;
        for (int i = 0; i < n && len < TLS_WBUF_SIZE; i++) {
            size_t k = iov[i].iov_len;
            if (k > TLS_WBUF_SIZE - len)
                k = TLS_WBUF_SIZE - len;
            memcpy(c->tls_wbuf + len, iov[i].iov_base, k);
            len += k;
        }
        p = c->tls_wbuf;
    }
    if (len == 0)
        return 0;
    char why[256] = "";
    pthread_mutex_lock(&c->tls_mu);
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(c->tls, p, (int)len);
    int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->tls, r);
    int sys = errno;
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
        c->tls_failed = true;
        if (e == SSL_ERROR_SSL)
            ssl_err_text(why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", sys ? strerror(sys) : "connection closed");
    }
    pthread_mutex_unlock(&c->tls_mu);
    if (e == SSL_ERROR_NONE)
        return r;
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
        return 0;
    TD_LOG(TD_LOG_DEBUG, "TLS write failed", "peer=%s session=%" PRIu64 " err=\"%s\"", c->peer,
           c->sess->id, why);
    return -1;
}

size_t td_tls_pending(struct td_conn *c)
{
    pthread_mutex_lock(&c->tls_mu);
    int n = SSL_pending(c->tls);
    pthread_mutex_unlock(&c->tls_mu);
    return n > 0 ? (size_t)n : 0;
}

void td_tls_shutdown(struct td_conn *c)
{
    pthread_mutex_lock(&c->tls_mu);
    if (!c->tls_failed && SSL_is_init_finished(c->tls) &&
        !(SSL_get_shutdown(c->tls) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(c->tls);    /* non-blocking, once: whatever the socket takes */
        ERR_clear_error();
    }
    pthread_mutex_unlock(&c->tls_mu);
}

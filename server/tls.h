/*
 * tls.h - TLS for the TCP listeners (OpenSSL 3): the server's SSL_CTX built from the config,
 * and per connection the SSL object behind conn.c's I/O seam (conn_recv / conn_sendv), which
 * turns SSL_read / SSL_write results into the "n bytes / would block / EOF / error" answers
 * that read() and sendmsg() give on plain connections.
 *
 * Threads: the read-state owner (the loop or a worker) reads while a worker may write, and
 * OpenSSL lets one thread at a time use an SSL object, so every function below that takes a
 * connection holds c->tls_mu for its SSL call only. Lock order: c->mu before c->tls_mu.
 */
#ifndef TD_SRV_TLS_H
#define TD_SRV_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct td_server;
struct td_conn;

/* Builds srv->tls_ctx when the config names --tls-cert and --tls-key: loads the chain and the
 * key (and checks that they match), the --tls-client-ca bundle (then client certificates are
 * required), --tls-min-version and --tls-ciphers. Leaves srv->tls_ctx NULL when TLS is off.
 * Returns: 0, or -1 with an error logged that names the option and the file.
 * Thread: start-up, before the loop runs. */
int td_tls_init(struct td_server *srv);
/* Frees srv->tls_ctx (NULL is fine). */
void td_tls_fini(struct td_server *srv);

/* Gives connection c (its fd already set) an SSL object in the accept state; the handshake
 * then runs from the poll events (td_tls_handshake) before any frame is read.
 * Returns: 0 or -1 (out of memory, logged). Thread: loop. */
int td_tls_conn_init(struct td_conn *c);
/* Frees c's SSL object and buffers. Thread: the last reference holder. */
void td_tls_conn_fini(struct td_conn *c);

/* Advances the server side of the handshake (non-blocking SSL_accept).
 * Returns: 1 done (c->tls_hs_events 0), 0 in progress (c->tls_hs_events holds the poll
 * events it waits for), -1 failed: logged with the peer and counted as a "tls" disconnect;
 * the caller closes c. Thread: loop. */
int td_tls_handshake(struct td_conn *c);

/* Reads up to len plaintext bytes (SSL_read). Returns: bytes read (> 0), 0 at the end of the
 * stream (close_notify or the peer's TCP FIN), -EAGAIN when no whole record is buffered or
 * readable, or another negative errno (-EPROTO for a TLS error, logged). Thread: the
 * read-state owner. */
ssize_t td_tls_recv(struct td_conn *c, void *buf, size_t len);
/* Writes a prefix of the iovecs (SSL_write; small pieces are gathered into one record).
 * After a 0 return the caller must offer the same bytes again (at least as many), as the
 * output queue does by retrying from its `sent` offset. Returns: bytes written, 0 when the
 * socket would block, -1 on a failed connection. Thread: any, under c->mu. */
ssize_t td_tls_sendv(struct td_conn *c, const struct iovec *iov, int n);
/* Returns: plaintext bytes decrypted and buffered in c's SSL object but not yet read: the
 * socket may be drained while these wait, so no poll event announces them. Thread: any. */
size_t td_tls_pending(struct td_conn *c);
/* Sends close_notify once, without waiting for anything (best effort; skipped before the
 * handshake finished and after a fatal TLS error). Thread: loop, under c->mu. */
void td_tls_shutdown(struct td_conn *c);

#endif

/*
 * TLS for the peer transport (--peer-cert-file, --peer-key-file,
 * --peer-trusted-ca-file, --peer-client-cert-auth, --peer-cert-allowed-cn),
 * with OpenSSL over memory BIOs: peer.c owns the sockets and the libuv
 * loop, this module only turns bytes into bytes. Ciphertext read from a
 * socket is fed in (srv_peer_tls_feed); plaintext comes out
 * (srv_peer_tls_read); plaintext to send goes in (srv_peer_tls_write) and the
 * ciphertext to write to the socket is taken out (srv_peer_tls_pending,
 * srv_peer_tls_take). Nothing here blocks or touches a file descriptor.
 *
 * A member dialling a peer is the TLS client: it verifies the peer's
 * certificate against --peer-trusted-ca-file (the system's CAs without it)
 * and the host of the peer's URL against the certificate's subjectAltName
 * (an IP address against IP SANs, a name against DNS SANs), and presents its
 * own certificate as the client certificate. A member accepting on an
 * https:// listen-peer-url is the TLS server; with --peer-client-cert-auth
 * it requires a client certificate that verifies against the same CAs (no
 * host check: a client certificate names a member, not the address it
 * dials from), and with --peer-cert-allowed-cn one with that Common Name.
 *
 * The files are read and checked at start (srv_peer_tls_load), so a bad
 * file stops moord with the flag and the file named; when any of them
 * changes later (a rotated Secret), the next connection reloads them all
 * (srv_peer_tls_reload). TLS 1.2 or newer; no session resumption
 * (connections are long-lived).
 *
 * Threading: a context and its sessions are used on one thread (the loop).
 */
#ifndef MOOR_SERVER_PEER_TLS_H
#define MOOR_SERVER_PEER_TLS_H

#include "server/config.h"

#include <stddef.h>

struct srv_peer_tls_ctx;
struct srv_peer_tls;

/* Whether this member needs peer TLS material: one of its own peer URLs is
 * https, or --peer-cert-file is given (to dial https peers). */
int srv_peer_tls_needed(const struct srv_config *cfg);

/*
 * Reads and checks cfg's peer certificate, key and CA files: readable PEM,
 * the key unencrypted and matching the certificate, the CA file holding at
 * least one certificate. Returns 0 with *out (free with srv_peer_tls_ctx_free),
 * or MOOR_EINVAL / MOOR_ENOMEM / -errno with one line in err naming the flag
 * and the file; nothing is left allocated then.
 */
int srv_peer_tls_load(const struct srv_config *cfg, struct srv_peer_tls_ctx **out, char *err,
                      size_t errlen);

/*
 * At most once a second: when the certificate, key or CA file changed
 * since it was read, reads them all again and, if they load, uses them for
 * the sessions made from now on (sessions already made keep theirs).
 * 0: nothing changed; 1: reloaded; -1: changed but not usable, the
 * previous material kept (no retry until the files change again). msg
 * says what happened in the last two cases.
 */
int srv_peer_tls_reload(struct srv_peer_tls_ctx *ctx, char *msg, size_t msglen);

/* Frees a context; its sessions must have been freed before. NULL is fine. */
void srv_peer_tls_ctx_free(struct srv_peer_tls_ctx *ctx);

/*
 * A session for one connection: `server` 1 for an accepted connection, 0
 * for a dialled one, whose certificate must name `host` (copied; the host
 * of the peer's URL). 0, or MOOR_ENOMEM. The session keeps a pointer to ctx.
 */
int srv_peer_tls_new(struct srv_peer_tls_ctx *ctx, int server, const char *host,
                     struct srv_peer_tls **out);

/* Frees a session; NULL is fine. */
void srv_peer_tls_free(struct srv_peer_tls *s);

/* Ciphertext read from the socket (copied). 0 or MOOR_ENOMEM. */
int srv_peer_tls_feed(struct srv_peer_tls *s, const void *data, size_t len);

/* Advances the handshake with what was fed: 1 done (the peer verified), 0
 * more input needed, -EPROTO failed (srv_peer_tls_error says why). Send
 * what srv_peer_tls_pending then holds, whatever the result. */
int srv_peer_tls_handshake(struct srv_peer_tls *s);

/* Plaintext that arrived: up to cap bytes into buf. >0 bytes read, 0 none
 * for now, -EPROTO on an alert, a closure or garbage (see srv_peer_tls_error).
 * Only after the handshake is done. */
int srv_peer_tls_read(struct srv_peer_tls *s, void *buf, size_t cap);

/* Encrypts len bytes (all of them: the output side is a growing memory
 * buffer, bounded by what the caller writes before taking it). 0 or
 * -EPROTO. Only after the handshake is done. */
int srv_peer_tls_write(struct srv_peer_tls *s, const void *data, size_t len);

/* Ciphertext waiting to be written to the socket, in bytes. */
size_t srv_peer_tls_pending(const struct srv_peer_tls *s);

/* Moves up to cap bytes of that ciphertext into buf; returns how many. */
size_t srv_peer_tls_take(struct srv_peer_tls *s, void *buf, size_t cap);

/* Why the last call failed (a short sentence; valid until the next call). */
const char *srv_peer_tls_error(const struct srv_peer_tls *s);

#endif

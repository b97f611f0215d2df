/*
 * TLS material for moord's client listener (--cert-file, --key-file,
 * --trusted-ca-file, --client-cert-auth), read and checked once at start,
 * and the per-connection checks the HTTP server makes with GnuTLS, the TLS
 * library libmicrohttpd is built on in Debian.
 *
 * Reading everything up front means a missing, unreadable or malformed file,
 * or a key that does not belong to the certificate, stops moord at start
 * with a message naming the file, instead of failing each handshake later.
 *
 * The certificate and key are reloaded when their files change (a
 * Kubernetes Secret rotated under a running pod): each handshake looks at
 * the files' identity and time at most once a second, and a new pair that
 * reads, parses and matches is used from the next handshake on; a bad one
 * is logged and the pair in use kept. The trusted CAs are read at start
 * only.
 */
#ifndef MOOR_SERVER_TLS_H
#define MOOR_SERVER_TLS_H

#include "common/log.h"
#include "server/config.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdint.h>

/* The limit on each PEM file read: a chain or CA bundle larger than this is
 * refused at start. */
#define SRV_TLS_MAX_FILE_BYTES (1u << 20)

struct srv_tls_pair; /* a parsed certificate chain and key (tls.c) */

struct srv_file_id {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
};

/* What srv_tls_load read: the certificate and key parsed (pairs), the CA
 * PEM text, NUL-terminated, as libmicrohttpd takes it (NULL without
 * --trusted-ca-file). Owned by the struct; srv_tls_free. */
struct srv_tls_creds {
	char *ca_pem;
	int client_cert_auth;
	/* reloading: the files, what they were when last read, the pairs
	 * (newest first; older ones are kept, a handshake may still use them) */
	const char *cert_file, *key_file;
	struct srv_file_id cert_id, key_id;
	uint64_t checked_ms;
	struct srv_tls_pair *pairs;
	const struct moor_logger *log;
};

/* Whether any listen-client-url is https (the files are needed only then). */
int srv_tls_needed(const struct srv_config *cfg);

/*
 * Reads and checks cfg's cert, key and CA files: each must be readable PEM
 * that GnuTLS parses (a certificate list, a private key, a CA list with at
 * least one certificate) and the key must match the certificate. Returns 0
 * with `out` filled, or MOOR_EINVAL / MOOR_ENOMEM / -errno with one line in
 * err naming the flag and the file; nothing is left allocated then.
 */
int srv_tls_load(const struct srv_config *cfg, struct srv_tls_creds *out, char *err, size_t errlen);

/* Frees what srv_tls_load filled; safe on a zeroed struct and twice. */
void srv_tls_free(struct srv_tls_creds *c);

/* Makes `c` (loaded, outliving the server) the credentials that
 * srv_tls_cert_callback serves, reloads logged to `log`; one set per
 * process. */
void srv_tls_serve(struct srv_tls_creds *c, const struct moor_logger *log);

/* libmicrohttpd's MHD_OPTION_HTTPS_CERT_CALLBACK (a GnuTLS
 * gnutls_certificate_retrieve_function2): the current pair, after
 * reloading it if its files changed. On the loop thread only. */
int srv_tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned int *pcert_length,
                          gnutls_privkey_t *pkey);

/*
 * For a connection of a listener with client-cert-auth, before its
 * handshake: makes the handshake require a client certificate and verify it
 * against the trusted CAs, so a client without one, or with one from another
 * CA, fails the handshake. `session` is the connection's gnutls_session_t.
 */
void srv_tls_session_require_client_cert(void *session);

/*
 * After the handshake: 0 when the peer presented a certificate that verifies
 * against the trusted CAs, else MOOR_EINVAL with the reason in `why`. A
 * second guard behind the handshake's own check.
 */
int srv_tls_session_peer_verified(void *session, char *why, size_t whylen);

#endif

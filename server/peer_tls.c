/*
 * Peer TLS with OpenSSL over two memory BIOs (see peer_tls.h): the files
 * read and checked at start, then one SSL object per connection that
 * peer.c feeds with what the socket read and drains into what the socket
 * writes.
 */
#include "server/peer_tls.h"

#include "common/clock.h"
#include "common/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct srv_peer_tls_ctx {
	SSL_CTX *ssl;
	int client_cert_auth;
	char allowed_cn[256];
	/* reloading: the flags it was made from (a copy) */
	struct srv_config *cfg;
	struct file_id ids[3]; /* cert, key, CA */
	uint64_t checked_ms;
};

struct srv_peer_tls {
	struct srv_peer_tls_ctx *ctx;
	SSL *ssl;
	BIO *rbio; /* socket -> SSL */
	BIO *wbio; /* SSL -> socket */
	int server;
	char err[640];
};

int srv_peer_tls_needed(const struct srv_config *cfg)
{
	for (int i = 0; i < cfg->listen_peer_urls.n; i++)
		if (cfg->listen_peer_urls.url[i].tls)
			return 1;
	for (int i = 0; i < cfg->initial_advertise_peer_urls.n; i++)
		if (cfg->initial_advertise_peer_urls.url[i].tls)
			return 1;
	return cfg->peer_cert_file[0] != '\0';
}

/* The first error OpenSSL queued, as text ("" when none). */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "";
}

/* A key file must never make OpenSSL ask a terminal for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

static int check_readable(const char *flag, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: cannot read: %s", flag, path, strerror(errno));
		return rc;
	}
	fclose(f);
	return 0;
}

static int load_key(const struct srv_config *cfg, SSL_CTX *ssl, char *err, size_t errlen)
{
	BIO *b = BIO_new_file(cfg->peer_key_file, "rb");
	EVP_PKEY *key;
	int ok;

	if (!b)
		return MOOR_ENOMEM;
	key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!key) {
		snprintf(err, errlen, "--peer-key-file %s: not an unencrypted PEM private key (%s)",
		         cfg->peer_key_file, ossl_reason());
		return MOOR_EINVAL;
	}
	ERR_clear_error();
	ok = SSL_CTX_use_PrivateKey(ssl, key) == 1 && SSL_CTX_check_private_key(ssl) == 1;
	EVP_PKEY_free(key);
	if (!ok) {
		snprintf(err, errlen,
		         "--peer-cert-file %s and --peer-key-file %s: the key does not match the "
		         "certificate",
		         cfg->peer_cert_file, cfg->peer_key_file);
		return MOOR_EINVAL;
	}
	return 0;
}

/* What a file is now (all zero when it cannot be looked at). */
static struct file_id id_of(const char *path)
{
	struct file_id id = {0};
	struct stat st;

	if (path[0] && stat(path, &st) == 0) {
		id.dev = st.st_dev;
		id.ino = st.st_ino;
		id.size = st.st_size;
		id.mtime = st.st_mtim;
	}
	return id;
}

static void ids_of(const struct srv_config *cfg, struct file_id ids[3])
{
	ids[0] = id_of(cfg->peer_cert_file);
	ids[1] = id_of(cfg->peer_key_file);
	ids[2] = id_of(cfg->peer_trusted_ca_file);
}

static bool same_ids(const struct file_id *a, const struct file_id *b)
{
	for (int i = 0; i < 3; i++)
		if (a[i].dev != b[i].dev || a[i].ino != b[i].ino || a[i].size != b[i].size ||
		    a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
		    a[i].mtime.tv_nsec != b[i].mtime.tv_nsec)
			return false;
	return true;
}

int srv_peer_tls_reload(struct srv_peer_tls_ctx *ctx, char *msg, size_t msglen)
{
	struct srv_peer_tls_ctx *fresh = NULL;
	struct file_id now_ids[3];
	char err[512];
	uint64_t now = moor_clock_mono_ms();

	if (!ctx->cfg || now - ctx->checked_ms < 1000)
		return 0;
	ctx->checked_ms = now;
	ids_of(ctx->cfg, now_ids);
	if (same_ids(now_ids, ctx->ids))
		return 0;
	memcpy(ctx->ids, now_ids, sizeof ctx->ids); /* no retry until the next change */
	if (srv_peer_tls_load(ctx->cfg, &fresh, err, sizeof err) != 0) {
		snprintf(msg, msglen,
		         "the peer TLS files changed but cannot be used (%s): keeping "
		         "the previous ones",
		         err);
		return -1;
	}
	SSL_CTX_free(ctx->ssl); /* sessions made from it hold their own reference */
	ctx->ssl = fresh->ssl;
	fresh->ssl = NULL;
	srv_peer_tls_ctx_free(fresh);
	snprintf(msg, msglen,
	         "reloaded --peer-cert-file %s, --peer-key-file %s%s%s: new "
	         "connections use them",
	         ctx->cfg->peer_cert_file, ctx->cfg->peer_key_file,
	         ctx->cfg->peer_trusted_ca_file[0] ? " and --peer-trusted-ca-file " : "",
	         ctx->cfg->peer_trusted_ca_file);
	return 1;
}

int srv_peer_tls_load(const struct srv_config *cfg, struct srv_peer_tls_ctx **out, char *err,
                      size_t errlen)
{
	struct srv_peer_tls_ctx *c = calloc(1, sizeof *c);
	int rc;

	if (!c)
		goto nomem;
	c->client_cert_auth = cfg->peer_client_cert_auth;
	snprintf(c->allowed_cn, sizeof c->allowed_cn, "%s", cfg->peer_cert_allowed_cn);
	c->cfg = malloc(sizeof *c->cfg);
	if (!c->cfg)
		goto nomem;
	memcpy(c->cfg, cfg, sizeof *cfg);
	ids_of(cfg, c->ids); /* before reading: a change meanwhile is seen later */
	c->checked_ms = moor_clock_mono_ms();
	ERR_clear_error();
	c->ssl = SSL_CTX_new(TLS_method());
	if (!c->ssl)
		goto nomem;
	SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
	SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(c->ssl, 0);
	SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET);
	SSL_CTX_set_default_passwd_cb(c->ssl, no_passphrase);
	if (cfg->peer_cert_file[0]) {
		rc = check_readable("--peer-cert-file", cfg->peer_cert_file, err, errlen);
		if (rc)
			goto fail;
		if (SSL_CTX_use_certificate_chain_file(c->ssl, cfg->peer_cert_file) != 1) {
			snprintf(err, errlen, "--peer-cert-file %s: not a PEM certificate (%s)",
			         cfg->peer_cert_file, ossl_reason());
			rc = MOOR_EINVAL;
			goto fail;
		}
		rc = check_readable("--peer-key-file", cfg->peer_key_file, err, errlen);
		if (rc)
			goto fail;
		rc = load_key(cfg, c->ssl, err, errlen);
		if (rc == MOOR_ENOMEM)
			goto nomem;
		if (rc)
			goto fail;
	}
	if (cfg->peer_trusted_ca_file[0]) {
		rc = check_readable("--peer-trusted-ca-file", cfg->peer_trusted_ca_file, err,
		                    errlen);
		if (rc)
			goto fail;
		ERR_clear_error();
		if (SSL_CTX_load_verify_locations(c->ssl, cfg->peer_trusted_ca_file, NULL) != 1) {
			snprintf(err, errlen,
			         "--peer-trusted-ca-file %s: not a PEM certificate bundle (%s)",
			         cfg->peer_trusted_ca_file,
			         *ossl_reason() ? ossl_reason() : "no certificate found");
			rc = MOOR_EINVAL;
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
		snprintf(err, errlen,
		         "cannot load the system's CA certificates (%s); give "
		         "--peer-trusted-ca-file",
		         ossl_reason());
		rc = MOOR_EINVAL;
		goto fail;
	}
	ERR_clear_error();
	*out = c;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory reading the peer TLS files");
	rc = MOOR_ENOMEM;
fail:
	ERR_clear_error();
	srv_peer_tls_ctx_free(c);
	return rc;
}

void srv_peer_tls_ctx_free(struct srv_peer_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->cfg);
	free(ctx);
}

int srv_peer_tls_new(struct srv_peer_tls_ctx *ctx, int server, const char *host,
                     struct srv_peer_tls **out)
{
	struct srv_peer_tls *s = calloc(1, sizeof *s);
	unsigned char ip[16];

	if (!s)
		return MOOR_ENOMEM;
	s->ctx = ctx;
	s->server = server;
	ERR_clear_error();
	s->ssl = SSL_new(ctx->ssl);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (!s->ssl || !s->rbio || !s->wbio) {
		SSL_free(s->ssl);
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		free(s);
		ERR_clear_error();
		return MOOR_ENOMEM;
	}
	BIO_set_mem_eof_return(s->rbio, -1); /* empty means "wait", not EOF */
	BIO_set_mem_eof_return(s->wbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio); /* the SSL owns both now */
	if (server) {
		SSL_set_accept_state(s->ssl);
		SSL_set_verify(s->ssl,
		               ctx->client_cert_auth
		                   ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
		                   : SSL_VERIFY_NONE,
		               NULL);
	} else {
		SSL_set_connect_state(s->ssl);
		SSL_set_verify(s->ssl, SSL_VERIFY_PEER, NULL);
		if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host) != 1)
				goto fail;
		} else if (SSL_set1_host(s->ssl, host) != 1 ||
		           SSL_set_tlsext_host_name(s->ssl, host) != 1) {
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	SSL_free(s->ssl); /* and the BIOs */
	free(s);
	ERR_clear_error();
	return MOOR_ENOMEM;
}

void srv_peer_tls_free(struct srv_peer_tls *s)
{
	if (!s)
		return;
	SSL_free(s->ssl);
	free(s);
}

int srv_peer_tls_feed(struct srv_peer_tls *s, const void *data, size_t len)
{
	while (len > 0) {
		int n = BIO_write(s->rbio, data, len > INT_MAX ? INT_MAX : (int)len);
		if (n <= 0) {
			snprintf(s->err, sizeof s->err, "out of memory");
			return MOOR_ENOMEM;
		}
		data = (const char *)data + n;
		len -= (size_t)n;
	}
	return 0;
}

/* Why `what` failed: OpenSSL's first queued reason, the certificate check's
 * verdict when there is one, or how the connection ended. */
static void set_error(struct srv_peer_tls *s, const char *what, int ret)
{
	int e = SSL_get_error(s->ssl, ret);
	long v = SSL_get_verify_result(s->ssl);
	const char *reason = ossl_reason();

	if (!*reason)
		reason = e == SSL_ERROR_ZERO_RETURN ? "the peer closed the TLS session"
		         : e == SSL_ERROR_SYSCALL   ? "unexpected end of the TLS stream"
		                                    : "TLS protocol error";
	if (v != X509_V_OK)
		snprintf(s->err, sizeof s->err, "%s: %s (%s)", what, reason,
		         X509_verify_cert_error_string(v));
	else
		snprintf(s->err, sizeof s->err, "%s: %s", what, reason);
	ERR_clear_error();
}

/* --peer-cert-allowed-cn: the client certificate's Common Name. */
static int check_cn(struct srv_peer_tls *s)
{
	X509 *peer;
	char cn[128] = "";

	if (!s->server || !s->ctx->allowed_cn[0])
		return 0;
	peer = SSL_get1_peer_certificate(s->ssl);
	if (peer) {
		if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
		                              sizeof cn) < 0)
			cn[0] = '\0';
		X509_free(peer);
	}
	if (strcmp(cn, s->ctx->allowed_cn) == 0)
		return 0;
	snprintf(s->err, sizeof s->err,
	         "TLS handshake failed: client certificate CN \"%s\" is not the "
	         "--peer-cert-allowed-cn \"%s\"",
	         cn, s->ctx->allowed_cn);
	return -EPROTO;
}

int srv_peer_tls_handshake(struct srv_peer_tls *s)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r == 1)
		return check_cn(s) == 0 ? 1 : -EPROTO;
	if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
		return 0;
	set_error(s, "TLS handshake failed", r);
	return -EPROTO;
}

int srv_peer_tls_read(struct srv_peer_tls *s, void *buf, size_t cap)
{
	int r;

	ERR_clear_error();
	r = SSL_read(s->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	if (r > 0)
		return r;
	if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
		return 0;
	set_error(s, "TLS read failed", r);
	return -EPROTO;
}

int srv_peer_tls_write(struct srv_peer_tls *s, const void *data, size_t len)
{
	while (len > 0) {
		int r;
		ERR_clear_error();
		r = SSL_write(s->ssl, data, len > INT_MAX ? INT_MAX : (int)len);
		if (r <= 0) {
			set_error(s, "TLS write failed", r);
			return -EPROTO;
		}
		data = (const char *)data + r;
		len -= (size_t)r;
	}
	return 0;
}

size_t srv_peer_tls_pending(const struct srv_peer_tls *s)
{
	return BIO_ctrl_pending(s->wbio);
}

size_t srv_peer_tls_take(struct srv_peer_tls *s, void *buf, size_t cap)
{
	int n = BIO_read(s->wbio, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	return n > 0 ? (size_t)n : 0;
}

const char *srv_peer_tls_error(const struct srv_peer_tls *s)
{
	return s->err[0] ? s->err : "no error";
}

/*
 * Client TLS for moord (see tls.h): the PEM files read and checked at start
 * with GnuTLS, and the client-certificate checks made on each connection of
 * a listener with --client-cert-auth.
 */
#include "server/tls.h"

#include "common/clock.h"
#include "common/error.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

static int file_id(const char *path, struct srv_file_id *id);

int srv_tls_needed(const struct srv_config *cfg)
{
	for (int i = 0; i < cfg->listen_client_urls.n; i++)
		if (cfg->listen_client_urls.url[i].tls)
			return 1;
	return 0;
}

/* The whole file, NUL-terminated, into *out (caller frees). */
static int read_file(const char *flag, const char *path, char **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t len = 0, n;
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: cannot read: %s", flag, path, strerror(-rc));
		return rc;
	}
	buf = malloc(SRV_TLS_MAX_FILE_BYTES + 1);
	if (!buf) {
		fclose(f);
		return MOOR_ENOMEM;
	}
	while ((n = fread(buf + len, 1, SRV_TLS_MAX_FILE_BYTES + 1 - len, f)) > 0)
		len += n;
	if (ferror(f)) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s %s: cannot read: %s", flag, path, strerror(-rc));
		goto fail;
	}
	if (len > SRV_TLS_MAX_FILE_BYTES) {
		rc = MOOR_EINVAL;
		snprintf(err, errlen, "%s %s: larger than %u bytes", flag, path,
		         SRV_TLS_MAX_FILE_BYTES);
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	*out = buf;
	return 0;
fail:
	fclose(f);
	free(buf);
	return rc;
}

static gnutls_datum_t datum(const char *pem)
{
	gnutls_datum_t d = {(unsigned char *)(uintptr_t)pem, (unsigned)strlen(pem)};
	return d;
}

/* A PEM list of certificates; 0 certificates is an error. */
static int check_certs(const char *flag, const char *path, const char *pem, char *err,
                       size_t errlen)
{
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0;
	gnutls_datum_t d = datum(pem);
	int g = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM, 0);

	if (g < 0 || n == 0) {
		snprintf(err, errlen, "%s %s: not a PEM certificate (%s)", flag, path,
		         g < 0 ? gnutls_strerror(g) : "no certificate found");
		return MOOR_EINVAL;
	}
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return 0;
}

static int check_key(const char *path, const char *pem, char *err, size_t errlen)
{
	gnutls_x509_privkey_t key;
	gnutls_datum_t d = datum(pem);
	int g;

	if (gnutls_x509_privkey_init(&key) < 0)
		return MOOR_ENOMEM;
	g = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN);
	gnutls_x509_privkey_deinit(key);
	if (g < 0) {
		snprintf(err, errlen, "--key-file %s: not an unencrypted PEM private key (%s)",
		         path, gnutls_strerror(g));
		return MOOR_EINVAL;
	}
	return 0;
}

/* ---- the pair served ---- */

#define MAX_CHAIN 16

struct srv_tls_pair {
	struct srv_tls_pair *older;
	gnutls_pcert_st pcerts[MAX_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
};

static void pair_free(struct srv_tls_pair *p)
{
	for (unsigned i = 0; i < p->n; i++)
		gnutls_pcert_deinit(&p->pcerts[i]);
	if (p->key)
		gnutls_privkey_deinit(p->key);
	free(p);
}

/* The pair from PEM texts; the key must match the first certificate. */
static int pair_parse(const char *cert_pem, const char *key_pem, struct srv_tls_pair **out,
                      char *why, size_t whylen)
{
	struct srv_tls_pair *p = calloc(1, sizeof *p);
	gnutls_datum_t cd = datum(cert_pem), kd = datum(key_pem);
	gnutls_certificate_credentials_t cred;
	unsigned n = MAX_CHAIN;
	int g;

	if (!p)
		return MOOR_ENOMEM;
	/* the key belongs to the certificate: GnuTLS checks it on loading both */
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		free(p);
		return MOOR_ENOMEM;
	}
	g = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(cred);
	if (g >= 0)
		g = gnutls_pcert_list_import_x509_raw(p->pcerts, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
	if (g >= 0) {
		p->n = n;
		g = gnutls_privkey_init(&p->key);
	}
	if (g >= 0)
		g = gnutls_privkey_import_x509_raw(p->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (g < 0) {
		snprintf(why, whylen, "%s",
		         g == GNUTLS_E_CERTIFICATE_KEY_MISMATCH
		             ? "the key does not match the certificate"
		             : gnutls_strerror(g));
		pair_free(p);
		return MOOR_EINVAL;
	}
	*out = p;
	return 0;
}

int srv_tls_load(const struct srv_config *cfg, struct srv_tls_creds *out, char *err, size_t errlen)
{
	char *cert = NULL, *key = NULL;
	char why[256];
	int rc;

	memset(out, 0, sizeof *out);
	out->client_cert_auth = cfg->client_cert_auth;
	out->cert_file = cfg->cert_file;
	out->key_file = cfg->key_file;
	/* the files as they are before reading: a change during the read is
	 * seen by the first reload check */
	file_id(cfg->cert_file, &out->cert_id);
	file_id(cfg->key_file, &out->key_id);
	rc = read_file("--cert-file", cfg->cert_file, &cert, err, errlen);
	if (rc)
		goto fail;
	rc = check_certs("--cert-file", cfg->cert_file, cert, err, errlen);
	if (rc)
		goto fail;
	rc = read_file("--key-file", cfg->key_file, &key, err, errlen);
	if (rc)
		goto fail;
	rc = check_key(cfg->key_file, key, err, errlen);
	if (rc)
		goto fail;
	rc = pair_parse(cert, key, &out->pairs, why, sizeof why);
	if (rc == MOOR_EINVAL)
		snprintf(err, errlen, "--cert-file %s and --key-file %s: %s", cfg->cert_file,
		         cfg->key_file, why);
	if (rc)
		goto fail;
	if (cfg->trusted_ca_file[0]) {
		rc =
		    read_file("--trusted-ca-file", cfg->trusted_ca_file, &out->ca_pem, err, errlen);
		if (rc)
			goto fail;
		rc = check_certs("--trusted-ca-file", cfg->trusted_ca_file, out->ca_pem, err,
		                 errlen);
		if (rc)
			goto fail;
	}
	free(cert);
	free(key);
	return 0;
fail:
	if (rc == MOOR_ENOMEM)
		snprintf(err, errlen, "out of memory reading the TLS files");
	free(cert);
	free(key);
	srv_tls_free(out);
	return rc;
}

/* ---- reloading ---- */

static int file_id(const char *path, struct srv_file_id *id)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -errno;
	id->dev = (uint64_t)st.st_dev;
	id->ino = (uint64_t)st.st_ino;
	id->size = (uint64_t)st.st_size;
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

static bool same_id(const struct srv_file_id *a, const struct srv_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

/* One set of credentials per process: the callback has no context. */
static struct srv_tls_creds *served;

void srv_tls_serve(struct srv_tls_creds *c, const struct moor_logger *log)
{
	c->log = log;
	c->checked_ms = moor_clock_mono_ms();
	served = c;
}

/* At most once a second: when either file changed since it was read,
 * reads both and, if they make a pair, serves it from now on. */
static void maybe_reload(struct srv_tls_creds *c)
{
	struct srv_file_id cid, kid;
	struct srv_tls_pair *p = NULL;
	char *cert = NULL, *key = NULL;
	char why[256];
	uint64_t now = moor_clock_mono_ms();

	if (!c->cert_file || !c->key_file || now - c->checked_ms < 1000)
		return;
	c->checked_ms = now;
	if (file_id(c->cert_file, &cid) != 0 || file_id(c->key_file, &kid) != 0)
		return; /* mid-rotation, or gone: keep serving what we have */
	if (same_id(&cid, &c->cert_id) && same_id(&kid, &c->key_id))
		return;
	c->cert_id = cid; /* whatever comes of it: no retry until the next change */
	c->key_id = kid;
	if (read_file("--cert-file", c->cert_file, &cert, why, sizeof why) != 0 ||
	    read_file("--key-file", c->key_file, &key, why, sizeof why) != 0 ||
	    pair_parse(cert, key, &p, why, sizeof why) != 0) {
		moor_log(c->log, MOOR_LOG_WARN, "tls",
		         "--cert-file %s or --key-file %s changed but cannot be used (%s): "
		         "serving the previous certificate",
		         c->cert_file, c->key_file, why);
	} else {
		p->older = c->pairs;
		c->pairs = p;
		moor_log(c->log, MOOR_LOG_INFO, "tls",
		         "reloaded --cert-file %s and --key-file %s: new connections get the new "
		         "certificate",
		         c->cert_file, c->key_file);
	}
	free(cert);
	free(key);
}

int srv_tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned int *pcert_length,
                          gnutls_privkey_t *pkey)
{
	(void)session;
	(void)req_ca_rdn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!served || !served->pairs)
		return -1;
	maybe_reload(served);
	*pcert = served->pairs->pcerts;
	*pcert_length = served->pairs->n;
	*pkey = served->pairs->key;
	return 0;
}

void srv_tls_free(struct srv_tls_creds *c)
{
	if (served == c)
		served = NULL;
	while (c->pairs) {
		struct srv_tls_pair *p = c->pairs;
		c->pairs = p->older;
		pair_free(p);
	}
	free(c->ca_pem);
	c->ca_pem = NULL;
}

void srv_tls_session_require_client_cert(void *session)
{
	gnutls_session_t s = session;

	gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	/* no host name: a client certificate names a client, not a host */
	gnutls_session_set_verify_cert(s, NULL, 0);
}

int srv_tls_session_peer_verified(void *session, char *why, size_t whylen)
{
	gnutls_session_t s = session;
	unsigned status = 0, n = 0;
	int g;

	if (!gnutls_certificate_get_peers(s, &n) || n == 0) {
		snprintf(why, whylen, "no client certificate");
		return MOOR_EINVAL;
	}
	g = gnutls_certificate_verify_peers2(s, &status);
	if (g < 0) {
		snprintf(why, whylen, "client certificate not verified: %s", gnutls_strerror(g));
		return MOOR_EINVAL;
	}
	if (status != 0) {
		gnutls_datum_t txt;
		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt,
		                                                 0) == 0) {
			snprintf(why, whylen, "client certificate refused: %s", txt.data);
			gnutls_free(txt.data);
		} else {
			snprintf(why, whylen, "client certificate refused (status 0x%x)", status);
		}
		return MOOR_EINVAL;
	}
	return 0;
}

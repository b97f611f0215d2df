/*
 * Client TLS for moord (see tls.h): the PEM files read and checked at start
 * with GnuTLS, and the client-certificate checks made on each connection of
 * a listener with --client-cert-auth.
 */
#include "server/tls.h"

#include "common/error.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The key must belong to the certificate: GnuTLS checks it when both are
 * loaded into one credentials structure, as libmicrohttpd will do. */
static int check_pair(const struct srv_config *cfg, const struct srv_tls_creds *c, char *err,
                      size_t errlen)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t cd = datum(c->cert_pem), kd = datum(c->key_pem);
	int g;

	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return MOOR_ENOMEM;
	g = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(cred);
	if (g < 0) {
		snprintf(err, errlen, "--cert-file %s and --key-file %s: %s", cfg->cert_file,
		         cfg->key_file,
		         g == GNUTLS_E_CERTIFICATE_KEY_MISMATCH
		             ? "the key does not match the certificate"
		             : gnutls_strerror(g));
		return MOOR_EINVAL;
	}
	return 0;
}

int srv_tls_load(const struct srv_config *cfg, struct srv_tls_creds *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof *out);
	out->client_cert_auth = cfg->client_cert_auth;
	rc = read_file("--cert-file", cfg->cert_file, &out->cert_pem, err, errlen);
	if (rc)
		goto fail;
	rc = check_certs("--cert-file", cfg->cert_file, out->cert_pem, err, errlen);
	if (rc)
		goto fail;
	rc = read_file("--key-file", cfg->key_file, &out->key_pem, err, errlen);
	if (rc)
		goto fail;
	rc = check_key(cfg->key_file, out->key_pem, err, errlen);
	if (rc)
		goto fail;
	rc = check_pair(cfg, out, err, errlen);
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
	return 0;
fail:
	if (rc == MOOR_ENOMEM)
		snprintf(err, errlen, "out of memory reading the TLS files");
	srv_tls_free(out);
	return rc;
}

void srv_tls_free(struct srv_tls_creds *c)
{
	free(c->cert_pem);
	free(c->key_pem);
	free(c->ca_pem);
	c->cert_pem = c->key_pem = c->ca_pem = NULL;
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

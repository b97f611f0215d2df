/*
 * The TLS relay of moor-watch-probe (see probe_tls.h).
 */
#include "tests/cluster/probe_tls.h"

#include <gnutls/gnutls.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct relay {
	int net, app;
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_all(gnutls_session_t s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = gnutls_record_send(s, p, n);
		if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void *relay_run(void *arg)
{
	struct relay *r = arg;
	char buf[16384];

	for (;;) {
		struct pollfd p[2] = {{.fd = r->net, .events = POLLIN},
		                      {.fd = r->app, .events = POLLIN}};
		if (gnutls_record_check_pending(r->s) > 0)
			p[0].revents = POLLIN; /* already decrypted: no need to wait */
		else if (poll(p, 2, -1) < 0)
			break;
		if (p[0].revents) {
			ssize_t n = gnutls_record_recv(r->s, buf, sizeof buf);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n <= 0 || write_all(r->app, buf, (size_t)n) != 0)
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(r->app, buf, sizeof buf);
			if (n <= 0 || send_all(r->s, buf, (size_t)n) != 0)
				break;
		}
	}
	close(r->app);
	gnutls_deinit(r->s);
	gnutls_certificate_free_credentials(r->cred);
	close(r->net);
	free(r);
	return NULL;
}

int probe_tls_wrap(int net, const struct probe_tls *t)
{
	struct relay *r = calloc(1, sizeof *r);
	int pair[2], g;
	pthread_t th;

	if (!r)
		goto fail;
	r->net = net;
	if (gnutls_certificate_allocate_credentials(&r->cred) < 0)
		goto fail;
	if (gnutls_certificate_set_x509_trust_file(r->cred, t->ca_file, GNUTLS_X509_FMT_PEM) <= 0) {
		fprintf(stderr, "probe: no CA certificate in %s\n", t->ca_file);
		goto fail;
	}
	if (t->cert_file && (g = gnutls_certificate_set_x509_key_file(
	                         r->cred, t->cert_file, t->key_file, GNUTLS_X509_FMT_PEM)) < 0) {
		fprintf(stderr, "probe: %s / %s: %s\n", t->cert_file, t->key_file,
		        gnutls_strerror(g));
		goto fail;
	}
	gnutls_init(&r->s, GNUTLS_CLIENT);
	gnutls_set_default_priority(r->s);
	gnutls_credentials_set(r->s, GNUTLS_CRD_CERTIFICATE, r->cred);
	gnutls_session_set_verify_cert(r->s, NULL, 0);
	gnutls_transport_set_int(r->s, net);
	do
		g = gnutls_handshake(r->s);
	while (g < 0 && !gnutls_error_is_fatal(g));
	if (g < 0) {
		fprintf(stderr, "probe: TLS handshake: %s\n", gnutls_strerror(g));
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
		goto fail;
	r->app = pair[1];
	if (pthread_create(&th, NULL, relay_run, r) != 0) {
		close(pair[0]);
		close(pair[1]);
		goto fail;
	}
	pthread_detach(th);
	return pair[0];
fail:
	if (r) {
		if (r->s)
			gnutls_deinit(r->s);
		if (r->cred)
			gnutls_certificate_free_credentials(r->cred);
		free(r);
	}
	close(net);
	return -1;
}

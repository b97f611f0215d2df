/*
 * TLS for moor-watch-probe: turns a connected TCP socket into a plain
 * descriptor whose bytes a thread relays over a GnuTLS session, so the probe
 * reads and writes (and polls) the same way with and without TLS.
 */
#ifndef MOOR_TESTS_CLUSTER_PROBE_TLS_H
#define MOOR_TESTS_CLUSTER_PROBE_TLS_H

/* TLS settings: ca_file verifies the server's chain (no host name check:
 * the probe dials an address); cert_file and key_file, when not NULL, are
 * the client's certificate. */
struct probe_tls {
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
};

/*
 * Makes the handshake on `net` (a connected, blocking socket) and returns
 * the probe's end of a socketpair whose other end a detached thread relays
 * to and from the session; the thread closes both when either side ends.
 * On a failed handshake prints why and returns -1 (net closed).
 */
int probe_tls_wrap(int net, const struct probe_tls *t);

#endif

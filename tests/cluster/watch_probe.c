/*
 * moor-watch-probe: checks the bidirectional watch stream of moord
 * (POST /v3/watch with "Upgrade: moor-watch/1", then WatchRequest frames
 * in and WatchResponse frames out on one connection) against a running
 * member: two watches created on one stream, one cancelled while the other
 * goes on, a third created later from the past (catch-up), a progress
 * request. Writes go through plain HTTP requests to the same member.
 * Prints one line per check and "N passed, N failed".
 *
 *   moor-watch-probe HOST PORT [CA_FILE [CERT_FILE KEY_FILE]]
 *
 * With CA_FILE every connection is TLS (https), verified against it, with
 * the client certificate when one is given.
 */
#include "common/buf.h"
#include "proto/rpc.pb-c.h"
#include "tests/cluster/probe_tls.h"

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *host;
static int port, passed, failed;
static struct probe_tls tls; /* ca_file NULL: plain http */

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		exit(2);
	}
	if (tls.ca_file && (fd = probe_tls_wrap(fd, &tls)) < 0)
		exit(2);
	return fd;
}

/* A JSON call through its own short HTTP request; the response in `resp`. */
static void call(const char *path, const char *json, char *resp, size_t rlen)
{
	char req[512];
	int fd = dial(), n, body;
	ssize_t r, got = 0;

	body = snprintf(req + 256, 256, "%s", json);
	n = snprintf(req, 256,
	             "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	             "Content-Length: %d\r\n\r\n",
	             path, body);
	memmove(req + n, req + 256, (size_t)body);
	if (write(fd, req, (size_t)(n + body)) != n + body)
		exit(2);
	while ((r = read(fd, resp + got, rlen - 1 - (size_t)got)) > 0)
		got += r;
	close(fd);
	resp[got] = '\0';
}

/* A put through its own short HTTP request; returns the header revision. */
static long put(const char *key_b64, const char *val_b64)
{
	char req[512], resp[4096];
	int fd = dial(), n, body;
	ssize_t r, got = 0;
	const char *p;

	body = snprintf(req + 256, 256, "{\"key\":\"%s\",\"value\":\"%s\"}", key_b64, val_b64);
	n = snprintf(req, 256,
	             "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	             "Content-Length: %d\r\n\r\n",
	             body);
	memmove(req + n, req + 256, (size_t)body);
	if (write(fd, req, (size_t)(n + body)) != n + body)
		exit(2);
	while ((r = read(fd, resp + got, sizeof resp - 1 - (size_t)got)) > 0)
		got += r;
	close(fd);
	resp[got] = '\0';
	p = strstr(resp, "\"revision\":\"");
	return p ? atol(p + 12) : -1;
}

static int sock;
static uint8_t inbuf[1 << 20];
static size_t inlen;

static void send_req(const Etcdserverpb__WatchRequest *r)
{
	size_t len = etcdserverpb__watch_request__get_packed_size(r);
	uint8_t *b = malloc(4 + len);
	moor_put_be32(b, (uint32_t)len);
	etcdserverpb__watch_request__pack(r, b + 4);
	if (write(sock, b, 4 + len) != (ssize_t)(4 + len))
		exit(2);
	free(b);
}

static void create(const char *key, long start, long id)
{
	Etcdserverpb__WatchRequest r = ETCDSERVERPB__WATCH_REQUEST__INIT;
	Etcdserverpb__WatchCreateRequest c = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	c.key.data = (uint8_t *)key;
	c.key.len = strlen(key);
	c.start_revision = start;
	c.watch_id = id;
	r.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	r.create_request = &c;
	send_req(&r);
}

static void cancel(long id)
{
	Etcdserverpb__WatchRequest r = ETCDSERVERPB__WATCH_REQUEST__INIT;
	Etcdserverpb__WatchCancelRequest c = ETCDSERVERPB__WATCH_CANCEL_REQUEST__INIT;
	c.watch_id = id;
	r.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST;
	r.cancel_request = &c;
	send_req(&r);
}

static void progress(void)
{
	Etcdserverpb__WatchRequest r = ETCDSERVERPB__WATCH_REQUEST__INIT;
	Etcdserverpb__WatchProgressRequest pr = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
	r.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
	r.progress_request = &pr;
	send_req(&r);
}

/* The next response, or NULL after timeout_ms without one. */
static Etcdserverpb__WatchResponse *next_resp(int timeout_ms)
{
	for (;;) {
		if (inlen >= 4) {
			uint32_t n = moor_get_be32(inbuf);
			if (inlen >= 4 + n) {
				Etcdserverpb__WatchResponse *r =
				    etcdserverpb__watch_response__unpack(NULL, n, inbuf + 4);
				memmove(inbuf, inbuf + 4 + n, inlen - 4 - n);
				inlen -= 4 + n;
				if (!r) {
					fprintf(stderr, "undecodable WatchResponse\n");
					exit(2);
				}
				return r;
			}
		}
		struct pollfd p = {.fd = sock, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			return NULL;
		ssize_t got = read(sock, inbuf + inlen, sizeof inbuf - inlen);
		if (got <= 0)
			return NULL;
		inlen += (size_t)got;
	}
}

/* Reads responses until one for `id` with an event of value `want` (or a
 * response matching `pred`), collecting whether any response for `other`
 * arrived meanwhile. */
static int wait_value(long id, const char *want, long other, int *saw_other)
{
	Etcdserverpb__WatchResponse *r;
	int found = 0;

	while (!found && (r = next_resp(5000)) != NULL) {
		if (r->watch_id == other && r->n_events)
			*saw_other = 1;
		for (size_t i = 0; i < r->n_events && r->watch_id == id; i++)
			if (r->events[i]->kv->value.len == strlen(want) &&
			    memcmp(r->events[i]->kv->value.data, want, strlen(want)) == 0)
				found = 1;
		etcdserverpb__watch_response__free_unpacked(r, NULL);
	}
	return found;
}

int main(int argc, char **argv)
{
	char head[1024];
	ssize_t got;
	Etcdserverpb__WatchResponse *r;
	int saw_b = 0, created = 0, canceled = 0, progressed = 0;
	long rev_b1;

	if (argc != 3 && argc != 4 && argc != 6) {
		fprintf(stderr,
		        "usage: moor-watch-probe HOST PORT [CA_FILE [CERT_FILE KEY_FILE]]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* a refused connection fails a write, not the probe */
	host = argv[1];
	port = atoi(argv[2]);
	if (argc >= 4)
		tls.ca_file = argv[3];
	if (argc == 6) {
		tls.cert_file = argv[4];
		tls.key_file = argv[5];
	}
	sock = dial();
	snprintf(head, sizeof head,
	         "POST /v3/watch HTTP/1.1\r\nHost: x\r\nUpgrade: moor-watch/1\r\n"
	         "Connection: Upgrade\r\nContent-Type: application/x-protobuf\r\n"
	         "Content-Length: 0\r\n\r\n");
	if (write(sock, head, strlen(head)) != (ssize_t)strlen(head))
		return 2;
	/* the 101 and its headers, up to the blank line */
	size_t hl = 0;
	while (hl < sizeof head - 1 && (got = read(sock, head + hl, 1)) == 1) {
		hl++;
		if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[hl] = '\0';
	check(strncmp(head, "HTTP/1.1 101", 12) == 0, "the member switches protocols (101)");
	check(strstr(head, "moor-watch/1") != NULL, "... to moor-watch/1");

	create("a", 0, 1);
	create("b", 0, 2);
	for (int i = 0; i < 2 && (r = next_resp(5000)); i++) {
		created += r->created && (r->watch_id == 1 || r->watch_id == 2);
		etcdserverpb__watch_response__free_unpacked(r, NULL);
	}
	check(created == 2, "two watches are created on one stream");

	put("YQ==", "MQ==");          /* a=1 */
	rev_b1 = put("Yg==", "MQ=="); /* b=1 */
	check(wait_value(1, "1", -100, &saw_b), "watch 1 sees a=1");
	saw_b = 0;
	check(wait_value(2, "1", -100, &saw_b), "watch 2 sees b=1");

	cancel(2);
	while ((r = next_resp(5000)) != NULL) {
		int done = r->watch_id == 2 && r->canceled;
		canceled |= done;
		etcdserverpb__watch_response__free_unpacked(r, NULL);
		if (done)
			break;
	}
	check(canceled, "cancelling watch 2 is answered with canceled");
	put("Yg==", "Mg=="); /* b=2: watch 2 is gone */
	put("YQ==", "Mg=="); /* a=2 */
	saw_b = 0;
	check(wait_value(1, "2", 2, &saw_b), "watch 1 goes on (a=2)");
	check(!saw_b, "watch 2 gets nothing after it was cancelled");

	create("b", rev_b1, 3); /* from the past: catch-up */
	saw_b = 0;
	check(wait_value(3, "2", -100, &saw_b),
	      "a watch created later catches up from history (b=2)");
	progress();
	while ((r = next_resp(5000)) != NULL) {
		int p = r->watch_id == -1 && r->header && r->header->revision > 0;
		progressed |= p;
		etcdserverpb__watch_response__free_unpacked(r, NULL);
		if (p)
			break;
	}
	check(progressed, "a progress request is answered with watch_id -1 and the revision");
	close(sock);

	/* the keep-alive stream */
	char resp[4096];
	call("/v3/lease/grant", "{\"TTL\":\"30\",\"ID\":\"4242\"}", resp, sizeof resp);
	check(strstr(resp, "\"ID\":\"4242\"") != NULL, "a lease is granted");
	sock = dial();
	snprintf(head, sizeof head,
	         "POST /v3/lease/keepalive HTTP/1.1\r\nHost: x\r\nUpgrade: moor-keepalive/1\r\n"
	         "Connection: Upgrade\r\nContent-Length: 0\r\n\r\n");
	if (write(sock, head, strlen(head)) != (ssize_t)strlen(head))
		return 2;
	hl = 0;
	while (hl < sizeof head - 1 && read(sock, head + hl, 1) == 1) {
		hl++;
		if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[hl] = '\0';
	check(strncmp(head, "HTTP/1.1 101", 12) == 0, "the keep-alive stream is upgraded");
	int renewed = 0, gone = 0;
	for (int round = 0; round < 4; round++) {
		Etcdserverpb__LeaseKeepAliveRequest ka =
		    ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
		uint8_t fb[64];
		if (round == 3)
			call("/v3/lease/revoke", "{\"ID\":\"4242\"}", resp, sizeof resp);
		ka.id = 4242;
		size_t len = etcdserverpb__lease_keep_alive_request__pack(&ka, fb + 4);
		moor_put_be32(fb, (uint32_t)len);
		if (write(sock, fb, 4 + len) != (ssize_t)(4 + len))
			return 2;
		/* one response frame */
		inlen = 0;
		for (;;) {
			struct pollfd p = {.fd = sock, .events = POLLIN};
			if (inlen >= 4 && inlen >= 4 + moor_get_be32(inbuf))
				break;
			if (poll(&p, 1, 5000) <= 0)
				break;
			ssize_t g = read(sock, inbuf + inlen, sizeof inbuf - inlen);
			if (g <= 0)
				break;
			inlen += (size_t)g;
		}
		if (inlen < 4 || inlen < 4 + moor_get_be32(inbuf))
			break;
		Etcdserverpb__LeaseKeepAliveResponse *kr =
		    etcdserverpb__lease_keep_alive_response__unpack(NULL, moor_get_be32(inbuf),
		                                                    inbuf + 4);
		if (kr && kr->id == 4242 && kr->ttl == 30 && round < 3)
			renewed++;
		if (kr && round == 3 && kr->ttl == 0)
			gone = 1;
		if (kr)
			etcdserverpb__lease_keep_alive_response__free_unpacked(kr, NULL);
	}
	check(renewed == 3, "three keep-alives on one stream each answer the TTL");
	check(gone, "after the lease is revoked a keep-alive answers TTL 0");
	close(sock);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

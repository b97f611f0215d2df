/*
 * The peer transport between transports in one process on 127.0.0.1: order,
 * batching, reconnection, and every kind of bad peer (garbage, a wrong
 * cluster id, an oversized frame, an undecodable frame); then the same over
 * TLS, and every kind of TLS mismatch (plain against TLS both ways, another
 * CA, no client certificate, a certificate for another address or Common
 * Name). The certificates are made by the openssl command in a temporary
 * directory when the TLS tests start. Waits are bounded loops over the
 * libuv loop, never bare sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "proto/raft.pb-c.h"
#include "server/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLUSTER 0xC1u

struct node {
	struct srv_peer_transport *t;
	uint64_t id;
	unsigned port;
	uint64_t received;
	uint64_t from_last;
	uint32_t next_seq; /* the sequence number expected next */
	int out_of_order;
	int reject_frames; /* on_frame returns non-zero */
	int up[8];         /* on_peer_state by peer id */
	uint64_t hello_from;
	char hello_url[256];
	uint64_t cluster_learned;
	struct srv_peer_tls_ctx *tls; /* set before node_start: an https listener */
	uint64_t removed;             /* is_removed answers yes for this id */
	uint64_t gone_by;             /* on_gone */
	unsigned hello_timeout_ms;    /* 0: the default */
	int plain_listener;           /* with tls set: listen on http anyway */
};

static uv_loop_t loop;

static int on_frame(void *ctx, uint64_t from, const uint8_t *d, size_t n)
{
	struct node *nd = ctx;

	if (nd->reject_frames)
		return -1;
	nd->received++;
	nd->from_last = from;
	if (n >= 4) {
		uint32_t seq = moor_get_be32(d);
		if (seq != nd->next_seq)
			nd->out_of_order++;
		nd->next_seq = seq + 1;
	}
	return 0;
}

static void on_hello(void *ctx, uint64_t from, const char *url)
{
	struct node *nd = ctx;
	nd->hello_from = from;
	snprintf(nd->hello_url, sizeof nd->hello_url, "%s", url);
}

static void on_cluster(void *ctx, uint64_t cluster)
{
	struct node *nd = ctx;
	nd->cluster_learned = cluster;
}

static void on_state(void *ctx, uint64_t id, int up)
{
	struct node *nd = ctx;
	if (id < 8)
		nd->up[id] = up;
}

static int is_removed(void *ctx, uint64_t from)
{
	struct node *nd = ctx;
	return nd->removed != 0 && from == nd->removed;
}

static void on_gone(void *ctx, uint64_t by)
{
	struct node *nd = ctx;
	nd->gone_by = by;
}

static void node_start(struct node *nd, uint64_t id, unsigned port, uint64_t cluster)
{
	struct srv_url_list l = {.n = 1};
	struct srv_peer_config cfg = {
	    .cluster_id = cluster,
	    .self_id = id,
	    .bind_host = "127.0.0.1",
	    .max_frame_bytes = 1 << 20,
	    .on_frame = on_frame,
	    .on_peer_state = on_state,
	    .on_hello = on_hello,
	    .on_cluster_id = on_cluster,
	    .is_removed = is_removed,
	    .on_gone = on_gone,
	    .tls = nd->tls,
	    .hello_timeout_ms = nd->hello_timeout_ms,
	    .ctx = nd,
	};
	char self_url[64];
	char err[256];

	snprintf(self_url, sizeof self_url, "http://127.0.0.%u:2380", (unsigned)(id % 200) + 1);
	cfg.self_url = self_url;
	nd->id = id;
	/* Filled by hand: srv_url_parse refuses port 0, the test wants any. */
	snprintf(l.url[0].host, sizeof l.url[0].host, "127.0.0.1");
	l.url[0].port = (uint16_t)port;
	l.url[0].tls = nd->tls != NULL && !nd->plain_listener;
	assert_int_equal(srv_peer_transport_start(&loop, &cfg, &l, &nd->t, err, sizeof err), 0);
	nd->port = srv_peer_transport_port(nd->t, 0);
	assert_true(nd->port > 0);
}

static void node_stop(struct node *nd)
{
	srv_peer_transport_stop(nd->t);
	nd->t = NULL;
}

/* a dials b at scheme://127.0.0.1:port */
static void dial(struct node *a, const struct node *b, const char *scheme)
{
	struct srv_url u;
	char s[64];

	snprintf(s, sizeof s, "%s://127.0.0.1:%u", scheme, b->port);
	assert_int_equal(srv_url_parse(s, &u), 0);
	assert_int_equal(srv_peer_add(a->t, b->id, &u), 0);
}

static void connect_to(struct node *a, const struct node *b)
{
	struct srv_url u;
	char s[64];

	snprintf(s, sizeof s, "%s://127.0.0.1:%u", b->tls && !b->plain_listener ? "https" : "http",
	         b->port);
	assert_int_equal(srv_url_parse(s, &u), 0);
	assert_int_equal(srv_peer_add(a->t, b->id, &u), 0);
}

static void on_guard(uv_timer_t *t)
{
	(void)t; /* only wakes uv_run up */
}

/* Runs the loop until cond(arg) holds, for at most ~10 s of loop turns. */
static int run_until(int (*cond)(void *), void *arg)
{
	uv_timer_t guard;
	uv_timer_init(&loop, &guard);
	for (int i = 0; i < 2000 && !cond(arg); i++) {
		uv_timer_start(&guard, on_guard, 5, 0);
		uv_run(&loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return cond(arg);
}

struct want {
	struct node *n;
	uint64_t count;
	uint64_t peer;
};

static int got_frames(void *arg)
{
	struct want *w = arg;
	return w->n->received >= w->count;
}

static int is_up(void *arg)
{
	struct want *w = arg;
	return srv_peer_connected(w->n->t, w->peer);
}

static int is_down(void *arg)
{
	struct want *w = arg;
	return !srv_peer_connected(w->n->t, w->peer);
}

static void drain(void)
{
	for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
		uv_run(&loop, UV_RUN_NOWAIT);
}

static void send_seq(struct node *from, uint64_t to, uint32_t seq, size_t len)
{
	uint8_t buf[4096] = {0};
	moor_put_be32(buf, seq);
	assert_int_equal(srv_peer_send(from->t, to, buf, len), 0);
}

static void frames_arrive_in_order_and_many_share_one_write(void **state)
{
	struct node a = {0}, b = {0};
	struct srv_peer_stats st;

	(void)state;
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	connect_to(&a, &b);
	connect_to(&b, &a);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	assert_true(run_until(is_up, &(struct want){.n = &b, .peer = 1}));
	assert_int_equal(a.up[2], 1);
	for (uint32_t i = 0; i < 5000; i++)
		send_seq(&a, 2, i, 100);
	for (uint32_t i = 0; i < 10; i++)
		send_seq(&b, 1, i, 8);
	assert_true(run_until(got_frames, &(struct want){.n = &b, .count = 5000}));
	assert_true(run_until(got_frames, &(struct want){.n = &a, .count = 10}));
	assert_int_equal(b.out_of_order, 0);
	assert_int_equal(b.from_last, 1);
	assert_int_equal(a.from_last, 2);
	srv_peer_transport_stats(a.t, &st);
	assert_int_equal(st.frames_sent, 5000 + 1); /* + the hello */
	assert_true(st.writes < 100);               /* many frames per write */
	node_stop(&a);
	node_stop(&b);
	drain();
}

static void a_lost_peer_is_redialled_and_sends_meanwhile_are_refused(void **state)
{
	struct node a = {0}, b = {0}, b2 = {0};
	unsigned port;
	uint8_t x[4] = {0};

	(void)state;
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	port = b.port;
	connect_to(&a, &b);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	node_stop(&b);
	assert_true(run_until(is_down, &(struct want){.n = &a, .peer = 2}));
	assert_int_equal(a.up[2], 0);
	assert_int_equal(srv_peer_send(a.t, 2, x, 4), MOOR_EUNAVAILABLE);
	assert_int_equal(srv_peer_send(a.t, 9, x, 4), MOOR_ENOTFOUND);
	node_start(&b2, 2, port, CLUSTER);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	send_seq(&a, 2, 0, 16);
	assert_true(run_until(got_frames, &(struct want){.n = &b2, .count = 1}));
	node_stop(&a);
	node_stop(&b2);
	drain();
}

static int raw_connect(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int raw_closed(void *arg)
{
	int fd = *(int *)arg;
	char c;
	ssize_t r = recv(fd, &c, 1, 0);
	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static size_t hello(uint8_t *out, uint64_t cluster, uint64_t from, uint64_t to)
{
	Moorraftpb__PeerHello h = MOORRAFTPB__PEER_HELLO__INIT;
	h.version = SRV_PEER_PROTO_VERSION;
	h.cluster_id = cluster;
	h.from = from;
	h.to = to;
	size_t n = moorraftpb__peer_hello__pack(&h, out + 4);
	moor_put_be32(out, (uint32_t)n);
	return n + 4;
}

static void bad_peers_are_cut_off_and_the_member_keeps_serving(void **state)
{
	struct node a = {0}, b = {0};
	uint8_t buf[256];
	struct srv_peer_stats st;
	int fd;

	(void)state;
	node_start(&b, 2, 0, CLUSTER);
	node_start(&a, 1, 0, CLUSTER);

	/* Garbage instead of a hello. */
	fd = raw_connect(b.port);
	assert_int_equal(write(fd, "GET / HTTP/1.1\r\n\r\n", 18), 18);
	assert_true(run_until(raw_closed, &fd));
	close(fd);

	/* A hello from another cluster. */
	fd = raw_connect(b.port);
	size_t n = hello(buf, CLUSTER + 1, 7, 2);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_true(run_until(raw_closed, &fd));
	close(fd);

	/* A hello for another member. */
	fd = raw_connect(b.port);
	n = hello(buf, CLUSTER, 7, 3);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_true(run_until(raw_closed, &fd));
	close(fd);

	/* A good hello, then a frame over the limit. */
	fd = raw_connect(b.port);
	n = hello(buf, CLUSTER, 7, 2);
	moor_put_be32(buf + n, (1u << 20) + 1);
	assert_int_equal(write(fd, buf, n + 4), (ssize_t)(n + 4));
	assert_true(run_until(raw_closed, &fd));
	close(fd);
	assert_int_equal(b.received, 0);
	srv_peer_transport_stats(b.t, &st);
	/* The HTTP garbage read as a length is over the limit; the two wrong
	 * hellos are counted as refused. */
	assert_int_equal(st.connections_refused, 2);

	/* A frame the member cannot decode closes the connection; the sender
	 * redials and later frames get through. */
	connect_to(&a, &b);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	b.reject_frames = 1;
	send_seq(&a, 2, 0, 8);
	assert_true(run_until(is_down, &(struct want){.n = &a, .peer = 2}));
	b.reject_frames = 0;
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	b.next_seq = 1;
	send_seq(&a, 2, 1, 8);
	assert_true(run_until(got_frames, &(struct want){.n = &b, .count = 1}));
	assert_int_equal(b.out_of_order, 0);
	node_stop(&a);
	node_stop(&b);
	drain();
}

static void a_full_queue_refuses_instead_of_growing(void **state)
{
	struct node a = {0}, b = {0};
	struct srv_url_list l = {.n = 1};
	struct srv_peer_config cfg = {
	    .cluster_id = CLUSTER,
	    .self_id = 1,
	    .max_queue_frames = 4,
	    .on_frame = on_frame,
	    .ctx = &a,
	};
	char err[256];
	uint8_t x[8] = {0};
	int refused = 0;

	(void)state;
	node_start(&b, 2, 0, CLUSTER);
	snprintf(l.url[0].host, sizeof l.url[0].host, "127.0.0.1");
	assert_int_equal(srv_peer_transport_start(&loop, &cfg, &l, &a.t, err, sizeof err), 0);
	connect_to(&a, &b);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	/* No loop turn between sends: the first goes out in one write, the
	 * rest queue up to the bound and then are refused. */
	for (int i = 0; i < 100; i++)
		refused += srv_peer_send(a.t, 2, x, sizeof x) == MOOR_EUNAVAILABLE;
	assert_true(refused >= 100 - 4 - 1);
	assert_int_equal(srv_peer_send(a.t, 2, x, (1u << 24) + 1), MOOR_ETOOLARGE);
	node_stop(&a);
	node_stop(&b);
	drain();
}

static int hello_seen(void *arg)
{
	return ((struct node *)arg)->hello_from != 0;
}

/* A member joining an existing cluster knows neither the cluster's id nor
 * its own: it takes a hello addressed to whatever id, learns the cluster
 * and the caller's URL from it, dials nobody; once told its id, it takes
 * only hellos addressed to that id. */
static void a_joining_member_learns_who_called_and_then_only_answers_to_its_id(void **state)
{
	struct node a = {0}, j = {0};
	struct srv_url u;
	uint8_t buf[256];
	char s[64];
	int fd;

	(void)state;
	node_start(&a, 1, 0, CLUSTER);
	node_start(&j, 0, 0, 0);
	snprintf(s, sizeof s, "http://127.0.0.1:%u", a.port);
	assert_int_equal(srv_url_parse(s, &u), 0);
	assert_int_equal(srv_peer_add(j.t, 1, &u), MOOR_EINVAL); /* no id: no dials */
	snprintf(s, sizeof s, "http://127.0.0.1:%u", j.port);
	assert_int_equal(srv_url_parse(s, &u), 0);
	assert_int_equal(srv_peer_add(a.t, 7, &u), 0); /* the leader calls member 7 */
	assert_true(run_until(hello_seen, &j));
	assert_int_equal(j.hello_from, 1);
	assert_int_equal(j.cluster_learned, CLUSTER);
	assert_string_equal(j.hello_url, "http://127.0.0.2:2380");
	send_seq(&a, 7, 0, 16);
	assert_true(run_until(got_frames, &(struct want){.n = &j, .count = 1}));
	assert_int_equal(j.from_last, 1);

	srv_peer_set_self(j.t, 7);
	fd = raw_connect(j.port);
	size_t n = hello(buf, CLUSTER, 3, 8); /* for an id it did not take */
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_true(run_until(raw_closed, &fd));
	close(fd);
	snprintf(s, sizeof s, "http://127.0.0.1:%u", a.port);
	assert_int_equal(srv_url_parse(s, &u), 0);
	assert_int_equal(srv_peer_add(j.t, 1, &u), 0); /* now it may dial back */
	assert_true(run_until(is_up, &(struct want){.n = &j, .peer = 1}));
	node_stop(&a);
	node_stop(&j);
	drain();
}

/* ---- TLS ---- */

static char pki[64]; /* the temporary directory of the test certificates */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* NAME.pem and NAME.key, signed by CA, for the IP address SAN. */
static void pki_sign(const char *name, const char *ca, const char *ip)
{
	sh("cd %s && printf 'subjectAltName=IP:%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' "
	   ">%s.ext && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	   "-keyout %s.key -out %s.csr -subj /CN=%s >>openssl.log 2>&1 && openssl x509 -req -in "
	   "%s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s.pem -days 2 -extfile %s.ext "
	   ">>openssl.log 2>&1",
	   pki, ip, name, name, name, name, name, ca, ca, name, name);
}

static int pki_setup(void **state)
{
	(void)state;
	snprintf(pki, sizeof pki, "/tmp/moor-peer-tls.XXXXXX");
	if (!mkdtemp(pki))
		return -1;
	for (int i = 0; i < 2; i++)
		sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		   "-nodes -keyout %s.key -out %s.pem -days 2 -subj /CN=%s >>openssl.log 2>&1",
		   pki, i ? "other-ca" : "ca", i ? "other-ca" : "ca", i ? "other-ca" : "ca");
	pki_sign("m1", "ca", "127.0.0.1");
	pki_sign("m2", "ca", "127.0.0.1");
	pki_sign("elsewhere", "ca", "127.0.0.9");
	pki_sign("stranger", "other-ca", "127.0.0.1");
	return 0;
}

static int pki_teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", pki);
	return 0;
}

/* A context from the test certificates: NAME's certificate and key (none
 * when NULL), trusting CA, optionally requiring client certificates (with
 * that Common Name when cn is not NULL). */
static struct srv_peer_tls_ctx *tls_ctx(const char *name, const char *ca, int cca, const char *cn)
{
	static struct srv_config cfg;
	struct srv_peer_tls_ctx *ctx = NULL;
	char err[512] = "";

	memset(&cfg, 0, sizeof cfg);
	if (name) {
		snprintf(cfg.peer_cert_file, sizeof cfg.peer_cert_file, "%s/%s.pem", pki, name);
		snprintf(cfg.peer_key_file, sizeof cfg.peer_key_file, "%s/%s.key", pki, name);
	}
	snprintf(cfg.peer_trusted_ca_file, sizeof cfg.peer_trusted_ca_file, "%s/%s.pem", pki, ca);
	cfg.peer_client_cert_auth = cca;
	if (cn)
		snprintf(cfg.peer_cert_allowed_cn, sizeof cfg.peer_cert_allowed_cn, "%s", cn);
	if (srv_peer_tls_load(&cfg, &ctx, err, sizeof err) != 0)
		fail_msg("srv_peer_tls_load: %s", err);
	return ctx;
}

static int tls_failed(void *arg)
{
	struct srv_peer_stats st;
	srv_peer_transport_stats(((struct node *)arg)->t, &st);
	return st.tls_failures > 0;
}

static int gone_seen(void *arg)
{
	return ((struct node *)arg)->gone_by != 0;
}

static void frames_flow_both_ways_in_order_over_tls(void **state)
{
	struct node a = {0}, b = {0};
	struct srv_peer_stats st;
	static uint8_t big[200 * 1024];

	(void)state;
	a.tls = tls_ctx("m1", "ca", 1, NULL);
	b.tls = tls_ctx("m2", "ca", 1, NULL);
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	connect_to(&a, &b);
	connect_to(&b, &a);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	assert_true(run_until(is_up, &(struct want){.n = &b, .peer = 1}));
	for (uint32_t i = 0; i < 5000; i++)
		send_seq(&a, 2, i, 100);
	for (uint32_t i = 0; i < 10; i++)
		send_seq(&b, 1, i, 8);
	assert_true(run_until(got_frames, &(struct want){.n = &b, .count = 5000}));
	assert_true(run_until(got_frames, &(struct want){.n = &a, .count = 10}));
	/* frames larger than a TLS record (16 KiB) and than a read */
	for (uint32_t i = 5000; i < 5020; i++) {
		moor_put_be32(big, i);
		assert_int_equal(srv_peer_send(a.t, 2, big, sizeof big), 0);
		if (i % 5 == 4)
			assert_true(run_until(got_frames,
			                      &(struct want){.n = &b, .count = (uint64_t)i + 1}));
	}
	assert_int_equal(b.out_of_order, 0);
	assert_int_equal(a.out_of_order, 0);
	assert_int_equal(b.from_last, 1);
	assert_int_equal(a.from_last, 2);
	assert_string_equal(b.hello_url, "http://127.0.0.2:2380");
	srv_peer_transport_stats(a.t, &st);
	assert_int_equal(st.frames_sent, 5020 + 1); /* + the hello */
	assert_true(st.writes < 200);               /* many frames per write */
	assert_int_equal(st.tls_failures, 0);
	node_stop(&a);
	node_stop(&b);
	drain();
	srv_peer_tls_ctx_free(a.tls);
	srv_peer_tls_ctx_free(b.tls);
}

static void a_lost_tls_peer_is_redialled_and_a_removed_one_is_told_so(void **state)
{
	struct node a = {0}, b = {0}, b2 = {0};
	struct srv_peer_tls_ctx *ca = tls_ctx("m1", "ca", 1, NULL);

	(void)state;
	a.tls = b.tls = b2.tls = ca;
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	connect_to(&a, &b);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	b2.removed = 1; /* the next incarnation of 2 says 1 was removed */
	node_start(&b2, 2, 0, CLUSTER);
	node_stop(&b);
	assert_true(run_until(is_down, &(struct want){.n = &a, .peer = 2}));
	connect_to(&a, &b2);
	assert_true(run_until(gone_seen, &a));
	assert_int_equal(a.gone_by, 2);
	assert_int_equal(b2.received, 0);
	node_stop(&a);
	node_stop(&b2);
	drain();
	srv_peer_tls_ctx_free(ca);
}

/* Runs the loop for ~ms milliseconds. */
static int never(void *arg)
{
	(void)arg;
	return 0;
}

static void run_for(int turns)
{
	uv_timer_t guard;
	uv_timer_init(&loop, &guard);
	for (int i = 0; i < turns; i++) {
		uv_timer_start(&guard, on_guard, 5, 0);
		uv_run(&loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	(void)never;
}

static void plain_and_tls_do_not_talk_to_each_other(void **state)
{
	struct node a = {0}, b = {0}, c = {0};
	struct srv_peer_stats st;

	(void)state;
	b.tls = tls_ctx("m2", "ca", 1, NULL);
	c.tls = tls_ctx("m1", "ca", 1, NULL);
	node_start(&a, 1, 0, CLUSTER); /* plain */
	node_start(&b, 2, 0, CLUSTER); /* TLS listener */
	node_start(&c, 3, 0, CLUSTER); /* TLS, dials a plain port with https */
	/* plain TCP to the TLS port: the hello is no ClientHello */
	dial(&a, &b, "http");
	assert_true(run_until(tls_failed, &b));
	/* TLS to the plain port: the ClientHello is no frame */
	dial(&c, &a, "https");
	assert_true(run_until(tls_failed, &c));
	run_for(50);
	assert_int_equal(b.received, 0);
	assert_int_equal(a.received, 0);
	assert_int_equal(b.hello_from, 0);
	assert_int_equal(a.hello_from, 0);
	assert_false(srv_peer_connected(c.t, 1));
	srv_peer_transport_stats(a.t, &st);
	assert_int_equal(st.frames_received, 0);
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
	drain();
	srv_peer_tls_ctx_free(b.tls);
	srv_peer_tls_ctx_free(c.tls);
}

/* Per URL, as etcd: a member with TLS material dials an https peer with TLS
 * and an http one plain, whatever its own listener is. */
static void a_mixed_pair_talks_tls_one_way_and_plain_the_other(void **state)
{
	struct node a = {0}, b = {0};
	struct srv_peer_stats st;

	(void)state;
	a.tls = tls_ctx("m1", "ca", 1, NULL);
	a.plain_listener = 1;
	b.tls = tls_ctx("m2", "ca", 1, NULL);
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	connect_to(&a, &b); /* https */
	connect_to(&b, &a); /* http */
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	assert_true(run_until(is_up, &(struct want){.n = &b, .peer = 1}));
	for (uint32_t i = 0; i < 100; i++) {
		send_seq(&a, 2, i, 64);
		send_seq(&b, 1, i, 64);
	}
	assert_true(run_until(got_frames, &(struct want){.n = &b, .count = 100}));
	assert_true(run_until(got_frames, &(struct want){.n = &a, .count = 100}));
	assert_int_equal(a.out_of_order + b.out_of_order, 0);
	srv_peer_transport_stats(a.t, &st);
	assert_int_equal(st.tls_failures, 0);
	srv_peer_transport_stats(b.t, &st);
	assert_int_equal(st.tls_failures, 0);
	node_stop(&a);
	node_stop(&b);
	drain();
	srv_peer_tls_ctx_free(a.tls);
	srv_peer_tls_ctx_free(b.tls);
}

/* A peer port that accepts (the kernel's backlog) and never answers the
 * ClientHello: the dialler gives up after SRV_PEER_TLS_HANDSHAKE_MS. */
static void a_tls_handshake_without_an_answer_is_given_up(void **state)
{
	struct node a = {0}, mute = {.id = 2};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof sa;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	uint64_t t0;

	(void)state;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	mute.port = ntohs(sa.sin_port);
	a.tls = tls_ctx("m1", "ca", 1, NULL);
	node_start(&a, 1, 0, CLUSTER);
	uv_update_time(&loop);
	t0 = uv_now(&loop);
	dial(&a, &mute, "https");
	assert_true(run_until(tls_failed, &a));
	uv_update_time(&loop);
	assert_true(uv_now(&loop) - t0 >= SRV_PEER_TLS_HANDSHAKE_MS);
	assert_false(srv_peer_connected(a.t, 2));
	node_stop(&a);
	drain();
	close(lfd);
	srv_peer_tls_ctx_free(a.tls);
}

/* The dialler refuses b's certificate: a refusal with a reason, redialled,
 * never up, nothing delivered. */
static void refused_server_certificate(const char *b_cert, const char *b_ca)
{
	struct node a = {0}, b = {0};

	a.tls = tls_ctx("m1", "ca", 1, NULL);
	b.tls = tls_ctx(b_cert, b_ca, 0, NULL);
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	connect_to(&a, &b);
	assert_true(run_until(tls_failed, &a));
	run_for(50);
	assert_false(srv_peer_connected(a.t, 2));
	assert_int_equal(a.up[2], 0);
	assert_int_equal(b.hello_from, 0);
	assert_int_equal(b.received, 0);
	node_stop(&a);
	node_stop(&b);
	drain();
	srv_peer_tls_ctx_free(a.tls);
	srv_peer_tls_ctx_free(b.tls);
}

static void a_certificate_from_another_ca_is_refused(void **state)
{
	(void)state;
	refused_server_certificate("stranger", "other-ca");
}

static void a_certificate_for_another_address_is_refused(void **state)
{
	(void)state;
	refused_server_certificate("elsewhere", "ca");
}

/* b requires client certificates: a dialler with the wrong one (or none)
 * is cut off during or right after its handshake and delivers nothing. */
static void refused_client(const char *a_cert, const char *allowed_cn)
{
	struct node a = {0}, b = {0};

	a.tls = tls_ctx(a_cert, "ca", 0, NULL);
	b.tls = tls_ctx("m2", "ca", 1, allowed_cn);
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	connect_to(&a, &b);
	assert_true(run_until(tls_failed, &b));
	run_for(50);
	assert_int_equal(b.hello_from, 0);
	assert_int_equal(b.received, 0);
	node_stop(&a);
	node_stop(&b);
	drain();
	srv_peer_tls_ctx_free(a.tls);
	srv_peer_tls_ctx_free(b.tls);
}

static void a_client_without_a_certificate_is_refused_when_one_is_required(void **state)
{
	(void)state;
	refused_client(NULL, NULL);
}

static void a_client_certificate_from_another_ca_is_refused(void **state)
{
	(void)state;
	refused_client("stranger", NULL);
}

static void a_client_certificate_with_another_common_name_is_refused(void **state)
{
	struct node a = {0}, b = {0};

	(void)state;
	refused_client("elsewhere", "m1");
	/* and the allowed name is taken */
	a.tls = tls_ctx("m1", "ca", 0, NULL);
	b.tls = tls_ctx("m2", "ca", 1, "m1");
	node_start(&a, 1, 0, CLUSTER);
	node_start(&b, 2, 0, CLUSTER);
	connect_to(&a, &b);
	assert_true(run_until(is_up, &(struct want){.n = &a, .peer = 2}));
	send_seq(&a, 2, 0, 16);
	assert_true(run_until(got_frames, &(struct want){.n = &b, .count = 1}));
	node_stop(&a);
	node_stop(&b);
	drain();
	srv_peer_tls_ctx_free(a.tls);
	srv_peer_tls_ctx_free(b.tls);
}

/* A connection to a TLS port that never starts its handshake, and one to a
 * plain port that never sends its hello, are cut after hello_timeout_ms. */
static void connections_that_say_nothing_are_cut_after_the_hello_timeout(void **state)
{
	struct node p = {.hello_timeout_ms = 200}, s = {.hello_timeout_ms = 200};
	uint64_t t0;
	int fd1, fd2;

	(void)state;
	s.tls = tls_ctx("m2", "ca", 1, NULL);
	node_start(&p, 1, 0, CLUSTER);
	node_start(&s, 2, 0, CLUSTER);
	uv_update_time(&loop);
	t0 = uv_now(&loop);
	fd1 = raw_connect(p.port);
	fd2 = raw_connect(s.port);
	assert_true(run_until(raw_closed, &fd1));
	assert_true(run_until(raw_closed, &fd2));
	uv_update_time(&loop);
	assert_true(uv_now(&loop) - t0 >= 200);
	assert_true(tls_failed(&s));
	close(fd1);
	close(fd2);
	node_stop(&p);
	node_stop(&s);
	drain();
	srv_peer_tls_ctx_free(s.tls);
}

static void bad_tls_files_are_refused_naming_the_flag_and_file(void **state)
{
	struct srv_config cfg;
	struct srv_peer_tls_ctx *ctx = NULL;
	char err[512];

	(void)state;
	memset(&cfg, 0, sizeof cfg);
	snprintf(cfg.peer_cert_file, sizeof cfg.peer_cert_file, "%s/missing.pem", pki);
	snprintf(cfg.peer_key_file, sizeof cfg.peer_key_file, "%s/m1.key", pki);
	assert_true(srv_peer_tls_load(&cfg, &ctx, err, sizeof err) < 0);
	assert_non_null(strstr(err, "--peer-cert-file"));
	assert_non_null(strstr(err, "missing.pem: cannot read: No such file"));
	/* a key given as the certificate */
	snprintf(cfg.peer_cert_file, sizeof cfg.peer_cert_file, "%s/m1.key", pki);
	assert_int_equal(srv_peer_tls_load(&cfg, &ctx, err, sizeof err), MOOR_EINVAL);
	assert_non_null(strstr(err, "m1.key: not a PEM certificate"));
	/* a certificate given as the key */
	snprintf(cfg.peer_cert_file, sizeof cfg.peer_cert_file, "%s/m1.pem", pki);
	snprintf(cfg.peer_key_file, sizeof cfg.peer_key_file, "%s/m1.pem", pki);
	assert_int_equal(srv_peer_tls_load(&cfg, &ctx, err, sizeof err), MOOR_EINVAL);
	assert_non_null(strstr(err, "--peer-key-file"));
	assert_non_null(strstr(err, "m1.pem: not an unencrypted PEM private key"));
	/* another certificate's key */
	snprintf(cfg.peer_key_file, sizeof cfg.peer_key_file, "%s/m2.key", pki);
	assert_int_equal(srv_peer_tls_load(&cfg, &ctx, err, sizeof err), MOOR_EINVAL);
	assert_non_null(strstr(err, "the key does not match the certificate"));
	/* a CA file without a certificate */
	snprintf(cfg.peer_key_file, sizeof cfg.peer_key_file, "%s/m1.key", pki);
	snprintf(cfg.peer_trusted_ca_file, sizeof cfg.peer_trusted_ca_file, "%s/m1.ext", pki);
	assert_int_equal(srv_peer_tls_load(&cfg, &ctx, err, sizeof err), MOOR_EINVAL);
	assert_non_null(strstr(err, "--peer-trusted-ca-file"));
	assert_null(ctx);
	/* all good */
	snprintf(cfg.peer_trusted_ca_file, sizeof cfg.peer_trusted_ca_file, "%s/ca.pem", pki);
	assert_int_equal(srv_peer_tls_load(&cfg, &ctx, err, sizeof err), 0);
	assert_non_null(ctx);
	srv_peer_tls_ctx_free(ctx);
}

static int setup(void **state)
{
	(void)state;
	return uv_loop_init(&loop);
}

static int teardown(void **state)
{
	(void)state;
	drain();
	return uv_loop_close(&loop) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(frames_arrive_in_order_and_many_share_one_write, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        a_lost_peer_is_redialled_and_sends_meanwhile_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_peers_are_cut_off_and_the_member_keeps_serving,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        a_joining_member_learns_who_called_and_then_only_answers_to_its_id, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(a_full_queue_refuses_instead_of_growing, setup,
	                                    teardown),
	};
	const struct CMUnitTest tls_tests[] = {
	    cmocka_unit_test_setup_teardown(frames_flow_both_ways_in_order_over_tls, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        a_lost_tls_peer_is_redialled_and_a_removed_one_is_told_so, setup, teardown),
	    cmocka_unit_test_setup_teardown(plain_and_tls_do_not_talk_to_each_other, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(a_mixed_pair_talks_tls_one_way_and_plain_the_other,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(a_tls_handshake_without_an_answer_is_given_up, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(a_certificate_from_another_ca_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(a_certificate_for_another_address_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        a_client_without_a_certificate_is_refused_when_one_is_required, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_client_certificate_from_another_ca_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        a_client_certificate_with_another_common_name_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        connections_that_say_nothing_are_cut_after_the_hello_timeout, setup, teardown),
	    cmocka_unit_test(bad_tls_files_are_refused_naming_the_flag_and_file),
	};
	int failed = cmocka_run_group_tests_name("server_peer", tests, NULL, NULL);
	return failed +
	       cmocka_run_group_tests_name("server_peer_tls", tls_tests, pki_setup, pki_teardown);
}

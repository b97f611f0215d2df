/*
 * The peer transport between transports in one process on 127.0.0.1: order,
 * batching, reconnection, and every kind of bad peer (garbage, a wrong
 * cluster id, an oversized frame, an undecodable frame). Waits are bounded
 * loops over the libuv loop, never bare sleeps.
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
	assert_int_equal(srv_peer_transport_start(&loop, &cfg, &l, &nd->t, err, sizeof err), 0);
	nd->port = srv_peer_transport_port(nd->t, 0);
	assert_true(nd->port > 0);
}

static void node_stop(struct node *nd)
{
	srv_peer_transport_stop(nd->t);
	nd->t = NULL;
}

static void connect_to(struct node *a, const struct node *b)
{
	struct srv_url u;
	char s[64];

	snprintf(s, sizeof s, "http://127.0.0.1:%u", b->port);
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
	return cmocka_run_group_tests_name("server_peer", tests, NULL, NULL);
}

/*
 * libmoor's pieces that need no cluster: the mapping of gateway errors to
 * MOOR_E* codes, the frame decoder of watch and keep-alive streams (with a
 * seeded stream of mutated inputs, so ASan sees every decoder path), prefix
 * ends, configuration checks and the txn builder's argument checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int map(long status, const char *body)
{
	char msg[256];

	return cl_map_error(status, body, strlen(body), msg, sizeof msg);
}

static void gateway_errors_map_to_their_codes_by_message_then_code_then_status(void **state)
{
	(void)state;
	assert_int_equal(map(503, "{\"error\":\"etcdserver: no "
	                          "leader\",\"code\":14,\"message\":\"etcdserver: no leader\"}"),
	                 MOOR_ENOLEADER);
	assert_int_equal(
	    map(400,
	        "{\"error\":\"etcdserver: mvcc: required revision has been compacted\",\"code\":11,"
	        "\"message\":\"etcdserver: mvcc: required revision has been compacted\"}"),
	    MOOR_ECOMPACTED);
	assert_int_equal(map(504, "{\"code\":14,\"message\":\"etcdserver: request timed out\"}"),
	                 MOOR_ETIMEOUT);
	assert_int_equal(map(429, "{\"code\":8,\"message\":\"etcdserver: too many requests\"}"),
	                 MOOR_ETOOMANYREQUESTS);
	assert_int_equal(
	    map(404, "{\"code\":5,\"message\":\"etcdserver: requested lease not found\"}"),
	    MOOR_ELEASENOTFOUND);
	/* unknown message: the gRPC code decides */
	assert_int_equal(map(501, "{\"code\":12,\"message\":\"/etcdserverpb.Maintenance/Defragment "
	                          "is not implemented yet\"}"),
	                 MOOR_EUNSUPPORTED);
	/* Unavailable with an unknown message proves nothing was refused */
	assert_int_equal(map(503, "{\"code\":14,\"message\":\"something new\"}"),
	                 MOOR_EINDETERMINATE);
	/* etcd's "leader changed": the proposal may have committed */
	assert_int_equal(map(503, "{\"code\":14,\"message\":\"etcdserver: leader changed\"}"),
	                 MOOR_ELEADERCHANGED);
	assert_int_equal(map(400, "{\"code\": 3, \"message\": \"odd spacing\"}"), MOOR_EINVAL);
	/* no JSON at all: the HTTP status decides */
	assert_int_equal(map(503, "Service Unavailable"), MOOR_EUNAVAILABLE);
	assert_int_equal(map(501, ""), MOOR_EUNSUPPORTED);
	assert_int_equal(map(500, "<html>"), MOOR_EPROTO);
	/* escapes in the message do not confuse the parser */
	char msg[64];
	assert_int_equal(cl_map_error(400, "{\"message\":\"a \\\"quoted\\\" word\",\"code\":3}", 41,
	                              msg, sizeof msg),
	                 MOOR_EINVAL);
	assert_string_equal(msg, "a \"quoted\" word");
	/* and a message longer than the buffer is cut, not overrun */
	assert_int_equal(cl_map_error(503,
	                              "{\"message\":\"0123456789012345678901234567890123456789\"}",
	                              54, msg, 8),
	                 MOOR_EUNAVAILABLE);
	assert_int_equal(strlen(msg), 7);
}

static void retry_classes_follow_the_rules_in_moor_h(void **state)
{
	(void)state;
	/* refused before proposing: safe to retry a write */
	assert_true(cl_err_not_applied(MOOR_ENOLEADER));
	assert_true(cl_err_not_applied(MOOR_ETOOMANYREQUESTS));
	assert_true(cl_err_not_applied(MOOR_EDROPPED));
	/* outcome open: never */
	assert_false(cl_err_not_applied(MOOR_ETIMEOUT));
	assert_false(cl_err_not_applied(MOOR_ESTOPPED));
	assert_false(cl_err_not_applied(MOOR_ECOMPACTED));
	assert_false(cl_err_not_applied(MOOR_ELEADERCHANGED));
	assert_false(cl_err_not_applied(MOOR_EINDETERMINATE));
	assert_true(cl_err_rotate(MOOR_ENOLEADER));
	assert_false(cl_err_rotate(MOOR_ETOOMANYREQUESTS));
	/* a watch ended by either resumes on another member */
	assert_true(cl_err_rotate(MOOR_ELEADERCHANGED));
	assert_true(cl_err_rotate(MOOR_EINDETERMINATE));
}

static void frames_decode_whole_partial_and_oversized(void **state)
{
	Etcdserverpb__WatchResponse wr = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	struct moor_buf b;
	ProtobufCMessage *m = NULL;
	size_t off = 0;

	(void)state;
	h.revision = 42;
	wr.header = &h;
	wr.created = 1;
	wr.watch_id = 7;
	moor_buf_init(&b, NULL);
	assert_int_equal(cl_frame_append(&b, &wr.base), 0);
	assert_int_equal(cl_frame_append(&b, &wr.base), 0);
	/* a frame cut anywhere is "not yet", never an error */
	for (size_t cut = 0; cut < b.len / 2; cut++) {
		off = 0;
		assert_int_equal(
		    cl_frame_next(b.data, cut, &off, &etcdserverpb__watch_response__descriptor, &m),
		    0);
		assert_int_equal(off, 0);
	}
	off = 0;
	assert_int_equal(
	    cl_frame_next(b.data, b.len, &off, &etcdserverpb__watch_response__descriptor, &m), 1);
	assert_int_equal(((Etcdserverpb__WatchResponse *)m)->header->revision, 42);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(off, b.len / 2);
	assert_int_equal(
	    cl_frame_next(b.data, b.len, &off, &etcdserverpb__watch_response__descriptor, &m), 1);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(off, b.len);
	assert_int_equal(
	    cl_frame_next(b.data, b.len, &off, &etcdserverpb__watch_response__descriptor, &m), 0);
	/* a length over the limit is refused before anything is buffered for it */
	uint8_t big[4];
	moor_put_be32(big, CL_FRAME_MAX_BYTES + 1u);
	off = 0;
	assert_int_equal(cl_frame_next(big, 4, &off, &etcdserverpb__watch_response__descriptor, &m),
	                 MOOR_ETOOLARGE);
	/* garbage inside a whole frame is a protocol error */
	uint8_t bad[8] = {0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff};
	off = 0;
	assert_int_equal(cl_frame_next(bad, 8, &off, &etcdserverpb__watch_response__descriptor, &m),
	                 MOOR_EPROTO);
	moor_buf_free(&b);
}

/* xorshift: the same inputs every run */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void mutated_streams_and_error_bodies_never_crash_the_decoders(void **state)
{
	Etcdserverpb__WatchResponse wr = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
	Mvccpb__Event ev = MVCCPB__EVENT__INIT, *evs[1] = {&ev};
	struct moor_buf b;
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	int rounds = 20000;

	(void)state;
#ifdef MOOR_SAN
	rounds = 4000;
#endif
	kv.key.data = (uint8_t *)"k";
	kv.key.len = 1;
	kv.value.data = (uint8_t *)"value";
	kv.value.len = 5;
	kv.mod_revision = 9;
	ev.kv = &kv;
	wr.header = &h;
	wr.events = evs;
	wr.n_events = 1;
	moor_buf_init(&b, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cl_frame_append(&b, &wr.base), 0);
	for (int r = 0; r < rounds; r++) {
		uint8_t buf[512];
		size_t len = b.len, off = 0;
		char msg[64];
		int rc;

		memcpy(buf, b.data, len);
		for (int k = (int)(rnd(&seed) % 4); k >= 0; k--)
			buf[rnd(&seed) % len] = (uint8_t)rnd(&seed);
		len = 1 + rnd(&seed) % len;
		do {
			ProtobufCMessage *m = NULL;
			rc = cl_frame_next(buf, len, &off,
			                   &etcdserverpb__watch_response__descriptor, &m);
			if (rc == 1)
				protobuf_c_message_free_unpacked(m, NULL);
		} while (rc == 1);
		assert_true(rc == 0 || rc == MOOR_EPROTO || rc == MOOR_ETOOLARGE);
		/* the same bytes as an error body */
		rc = cl_map_error(500 + (long)(rnd(&seed) % 5), (const char *)buf, len, msg,
		                  sizeof msg);
		assert_true(rc < 0);
	}
	moor_buf_free(&b);
}

/* A one-connection HTTP server: answers the first request, reads the
 * second whole, then closes the connection and its listener. */
struct fake {
	int listen_fd;
	int port;
	pthread_t thread;
};

static int read_request(int fd)
{
	char buf[8192];
	size_t n = 0;
	char *end = NULL;

	while (!end) {
		ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	const char *cl = strcasestr(buf, "Content-Length:");
	size_t body = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
	size_t have = n - (size_t)(end + 4 - buf);
	while (have < body) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return 0;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
	                         "Content-Length: 0\r\n\r\n";
	int c = accept(f->listen_fd, NULL, NULL);

	if (c >= 0 && read_request(c) == 0 &&
	    write(c, ok, sizeof ok - 1) == (ssize_t)(sizeof ok - 1))
		read_request(c); /* the second request arrives whole... */
	close(f->listen_fd);     /* ...and the server dies before answering */
	if (c >= 0)
		close(c);
	return NULL;
}

static void a_write_lost_on_a_reused_connection_is_indeterminate_not_retried(void **state)
{
	struct fake f;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	char ep[64];
	const char *eps[] = {ep};
	struct moor_config cfg = {.endpoints = eps, .n_endpoints = 1, .request_timeout_ms = 2000};
	moor_client *c = NULL;

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f.listen_fd >= 0);
	assert_int_equal(bind(f.listen_fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(f.listen_fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(listen(f.listen_fd, 4), 0);
	snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
	assert_int_equal(pthread_create(&f.thread, NULL, fake_main, &f), 0);
	assert_int_equal(moor_client_open(&cfg, &c), 0);
	assert_int_equal(moor_put(c, "k", 1, "v", 1, NULL, NULL), 0);
	/* the request reached the server on the kept-alive connection: libcurl's
	 * own reconnect attempt is refused, which must not pass for "never sent" */
	assert_int_equal(moor_put(c, "k", 1, "v", 1, NULL, NULL), MOOR_EINDETERMINATE);
	pthread_join(f.thread, NULL);
	moor_client_close(c);
}

static void prefix_ends_follow_etcd(void **state)
{
	uint8_t out[8];

	(void)state;
	assert_int_equal(moor_prefix_end("abc", 3, out), 3);
	assert_memory_equal(out, "abd", 3);
	assert_int_equal(moor_prefix_end("a\xff", 2, out), 1);
	assert_memory_equal(out, "b", 1);
	assert_int_equal(moor_prefix_end("\xff\xff", 2, out), 1);
	assert_int_equal(out[0], 0); /* to the end of the key space */
}

static void bad_configurations_and_arguments_are_refused(void **state)
{
	const char *eps[] = {"http://a:1", "b:2", "https://c:3/"};
	const char *bad[] = {"gopher://x"};
	const char *empty[] = {""};
	struct moor_config cfg = {.endpoints = eps, .n_endpoints = 3};
	moor_client *c = NULL;
	char ep[64];
	moor_txn *t = NULL;

	(void)state;
	assert_int_equal(moor_client_open(&cfg, &c), 0);
	moor_client_endpoint(c, ep, sizeof ep);
	assert_string_equal(ep, "http://a:1");
	assert_int_equal(moor_watch_start(c, "k", 1,
	                                  &(struct moor_watch_opts){.start_revision = -1},
	                                  &(moor_watch *){0}),
	                 MOOR_EINVAL);
	moor_client_close(c);
	cfg.endpoints = bad;
	cfg.n_endpoints = 1;
	assert_int_equal(moor_client_open(&cfg, &c), MOOR_EINVAL);
	assert_non_null(strstr(moor_error_detail(), "gopher"));
	cfg.endpoints = empty;
	assert_int_equal(moor_client_open(&cfg, &c), MOOR_EINVAL);
	cfg.n_endpoints = MOOR_MAX_ENDPOINTS + 1;
	assert_int_equal(moor_client_open(&cfg, &c), MOOR_EINVAL);

	assert_int_equal(moor_txn_new(&t), 0);
	assert_int_equal(
	    moor_txn_if(
	        t, &(struct moor_cmp){.key = "k", .key_len = 1, .target = (enum moor_cmp_target)9}),
	    MOOR_EINVAL);
	assert_int_equal(moor_txn_put(t, (enum moor_txn_branch)5, "k", 1, "v", 1, NULL),
	                 MOOR_EINVAL);
	struct moor_get_opts both = {.range = {.prefix = true, .from_key = true}};
	assert_int_equal(moor_txn_get(t, MOOR_TXN_THEN, "k", 1, &both), MOOR_EINVAL);
	struct moor_get_opts neg = {.limit = -1};
	assert_int_equal(moor_txn_get(t, MOOR_TXN_THEN, "k", 1, &neg), MOOR_EINVAL);
	moor_txn_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(gateway_errors_map_to_their_codes_by_message_then_code_then_status),
	    cmocka_unit_test(retry_classes_follow_the_rules_in_moor_h),
	    cmocka_unit_test(frames_decode_whole_partial_and_oversized),
	    cmocka_unit_test(mutated_streams_and_error_bodies_never_crash_the_decoders),
	    cmocka_unit_test(a_write_lost_on_a_reused_connection_is_indeterminate_not_retried),
	    cmocka_unit_test(prefix_ends_follow_etcd),
	    cmocka_unit_test(bad_configurations_and_arguments_are_refused),
	};
	return cmocka_run_group_tests_name("libmoor without a cluster", tests, NULL, NULL);
}

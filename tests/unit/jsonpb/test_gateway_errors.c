/*
 * Unit tests for server/gateway_errors: etcd's statuses for moor's error
 * codes, the gateway's HTTP statuses and error bodies byte for byte, the
 * path table, and the request decoders' mapping of bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "server/gateway_errors.h"

#include "proto/lock.pb-c.h"
#include "proto/rpc.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_body(struct moor_buf *b, const char *want)
{
	assert_int_equal(b->len, strlen(want));
	assert_memory_equal(b->data, want, b->len);
	moor_buf_reset(b);
}

static void moor_errors_map_to_etcds_codes_messages_and_http_statuses(void **state)
{
	static const struct {
		int err;
		int grpc;
		int http;
		const char *msg;
	} cases[] = {
	    {MOOR_ECOMPACTED, 11, 400, "etcdserver: mvcc: required revision has been compacted"},
	    {MOOR_EFUTUREREV, 11, 400, "etcdserver: mvcc: required revision is a future revision"},
	    {MOOR_ENOSPACE, 8, 429, "etcdserver: mvcc: database space exceeded"},
	    {MOOR_ETOOMANYREQUESTS, 8, 429, "etcdserver: too many requests"},
	    {MOOR_ENOLEADER, 14, 503, "etcdserver: no leader"},
	    {MOOR_ETIMEOUT, 14, 503, "etcdserver: request timed out"},
	    {MOOR_EEMPTYKEY, 3, 400, "etcdserver: key is not provided"},
	    {MOOR_EDUPKEY, 3, 400, "etcdserver: duplicate key given in txn request"},
	    {MOOR_ETOOMANYOPS, 3, 400, "etcdserver: too many operations in txn request"},
	    {MOOR_ELEASENOTFOUND, 5, 404, "etcdserver: requested lease not found"},
	    {MOOR_ETOOLARGE, 3, 400, "etcdserver: request is too large"},
	    {MOOR_EVALUEPROVIDED, 3, 400, "etcdserver: value is provided"},
	    {MOOR_ELEASEPROVIDED, 3, 400, "etcdserver: lease is provided"},
	    {MOOR_EKEYNOTFOUND, 3, 400, "etcdserver: key not found"},
	    {MOOR_EMEMBEREXISTS, 9, 400, "etcdserver: member ID already exist"},
	    {MOOR_EMEMBERNOTFOUND, 5, 404, "etcdserver: member not found"},
	    {MOOR_EPEERURLEXISTS, 9, 400, "etcdserver: Peer URLs already exists"},
	    {MOOR_ETOOMANYLEARNERS, 9, 400, "etcdserver: too many learner members in cluster"},
	    {MOOR_ELEARNER, 14, 503, "etcdserver: rpc not supported for learner"},
	    {MOOR_ELEADERCHANGED, 14, 503, "etcdserver: leader changed"},
	    {MOOR_ELEASEEXISTS, 9, 400, "etcdserver: lease already exists"},
	    {MOOR_EUNAVAILABLE, 14, 503, "etcdserver: unhealthy cluster"},
	    {MOOR_ECORRUPT, 15, 500, "etcdserver: corrupt cluster"},
	    {MOOR_ENOTLEADER, 9, 400, "etcdserver: not leader"},
	    {MOOR_EWATCHCANCELED, 1, 408, "etcdserver: watch canceled"},
	};
	struct srv_gw_error e;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		srv_gw_error_from_code(cases[i].err, &e);
		assert_int_equal(e.grpc_code, cases[i].grpc);
		assert_int_equal(e.http_status, cases[i].http);
		assert_string_equal(e.message, cases[i].msg);
	}
}

static void every_moor_error_code_has_an_etcd_status(void **state)
{
	static const int codes[] = {
#define CODE(name, value, msg) name,
	    MOOR_ERRORS(CODE)
#undef CODE
	};
	struct srv_gw_error e;

	(void)state;
	/* Every code known when the table was written has a row; a code added
	 * to common/error.h later reaches clients as Unknown until it gets
	 * one, which this names. */
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		srv_gw_error_from_code(codes[i], &e);
		if (e.grpc_code != SRV_GRPC_UNKNOWN) {
			assert_true(strncmp(e.message, "etcdserver: ", 12) == 0);
			assert_int_equal(e.http_status, srv_gw_http_status(e.grpc_code));
			continue;
		}
		print_message("note: %s has no etcd status and maps to Unknown\n",
		              moor_errname(codes[i]));
		assert_true(codes[i] < MOOR_ELEARNER);
	}
}

static void unmapped_codes_are_unknown_with_their_message(void **state)
{
	struct srv_gw_error e;

	(void)state;
	srv_gw_error_from_code(-5 /* -EIO */, &e);
	assert_int_equal(e.grpc_code, SRV_GRPC_UNKNOWN);
	assert_int_equal(e.http_status, 500);
	assert_string_equal(e.message, moor_strerror(-5));
	srv_gw_error_from_code(0, &e);
	assert_int_equal(e.grpc_code, 0);
	assert_int_equal(e.http_status, 200);
}

static void grpc_codes_map_to_grpc_gateway_v1_http_statuses(void **state)
{
	static const int want[17] = {200, 408, 500, 400, 504, 404, 409, 403, 429,
	                             400, 409, 400, 501, 500, 503, 500, 401};

	(void)state;
	for (int c = 0; c < 17; c++)
		assert_int_equal(srv_gw_http_status(c), want[c]);
	assert_int_equal(srv_gw_http_status(99), 500);
	assert_string_equal(srv_grpc_code_name(3), "InvalidArgument");
	assert_string_equal(srv_grpc_code_name(14), "Unavailable");
	assert_string_equal(srv_grpc_code_name(99), "Unknown");
	assert_string_equal(srv_gw_http_status_text(429), "Too Many Requests");
	assert_string_equal(srv_gw_http_status_text(503), "Service Unavailable");
}

static void the_unary_error_body_is_etcd_3_5s(void **state)
{
	struct srv_gw_error e;
	struct moor_buf b;

	(void)state;
	moor_buf_init(&b, NULL);
	srv_gw_error_from_code(MOOR_ECOMPACTED, &e);
	assert_int_equal(srv_gw_write_error(&b, &e), 0);
	assert_body(&b, "{\"error\":\"etcdserver: mvcc: required revision has been compacted\","
	                "\"code\":11,\"message\":\"etcdserver: mvcc: required revision has been "
	                "compacted\"}");
	srv_gw_error_set(&e, SRV_GRPC_INVALID_ARGUMENT, "field \"%s\": <bad> \"x\"", "key");
	assert_int_equal(srv_gw_write_error(&b, &e), 0);
	assert_body(&b, "{\"error\":\"field \\\"key\\\": \\u003cbad\\u003e \\\"x\\\"\",\"code\":3,"
	                "\"message\":\"field \\\"key\\\": \\u003cbad\\u003e \\\"x\\\"\"}");
	moor_buf_free(&b);
}

static void the_stream_error_chunk_carries_both_codes_and_the_status_text(void **state)
{
	struct srv_gw_error e;
	struct moor_buf b;

	(void)state;
	moor_buf_init(&b, NULL);
	srv_gw_error_from_code(MOOR_ENOLEADER, &e);
	assert_int_equal(srv_gw_write_stream_error(&b, &e), 0);
	assert_body(&b, "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: "
	                "no leader\",\"http_status\":\"Service Unavailable\"}}");
	moor_buf_free(&b);
}

static void unknown_paths_and_wrong_methods_get_the_gateways_bodies(void **state)
{
	struct srv_gw_error e;
	struct moor_buf b;

	(void)state;
	moor_buf_init(&b, NULL);
	srv_gw_error_not_found(&e);
	assert_int_equal(e.http_status, 404);
	assert_int_equal(srv_gw_write_error(&b, &e), 0);
	assert_body(&b, "{\"error\":\"Not Found\",\"code\":5,\"message\":\"Not Found\"}");
	srv_gw_error_method_not_allowed(&e);
	assert_int_equal(e.http_status, 405);
	assert_int_equal(srv_gw_write_error(&b, &e), 0);
	assert_body(&b, "{\"error\":\"Method Not Allowed\",\"code\":12,\"message\":\"Method Not "
	                "Allowed\"}");
	moor_buf_free(&b);
}

static void a_body_that_cannot_grow_is_left_unchanged(void **state)
{
	struct srv_gw_error e;
	struct moor_buf b;

	(void)state;
	moor_buf_init(&b, NULL);
	b.max_bytes = 40;
	assert_int_equal(moor_buf_append(&b, "abc", 3), 0);
	srv_gw_error_from_code(MOOR_ECOMPACTED, &e);
	assert_int_equal(srv_gw_write_error(&b, &e), MOOR_ETOOLARGE);
	assert_int_equal(b.len, 3);
	assert_int_equal(srv_gw_write_stream_error(&b, &e), MOOR_ETOOLARGE);
	assert_int_equal(b.len, 3);
	moor_buf_free(&b);
}

static const struct srv_gw_route *find(const char *p)
{
	return srv_gw_route_find(p, strlen(p));
}

static void gateway_paths_resolve_under_every_prefix(void **state)
{
	const struct srv_gw_route *r;

	(void)state;
	r = find("/v3/kv/range");
	assert_non_null(r);
	assert_int_equal(r->rpc, SRV_RPC_RANGE);
	assert_ptr_equal(r->request, &etcdserverpb__range_request__descriptor);
	assert_ptr_equal(r->response, &etcdserverpb__range_response__descriptor);
	assert_string_equal(r->grpc_method, "/etcdserverpb.KV/Range");
	assert_ptr_equal(find("/v3beta/kv/range"), r);
	assert_ptr_equal(find("/v3alpha/kv/range"), r);
	assert_ptr_equal(find("/v3/kv/range?foo=bar"), r);
	assert_int_equal(find("/v3/kv/lease/revoke")->rpc, SRV_RPC_LEASE_REVOKE);
	assert_int_equal(find("/v3/lease/revoke")->rpc, SRV_RPC_LEASE_REVOKE);
	assert_int_equal(find("/v3/watch")->kind, SRV_GW_BIDI_STREAM);
	assert_int_equal(find("/v3/lease/keepalive")->kind, SRV_GW_BIDI_STREAM);
	assert_int_equal(find("/v3/maintenance/snapshot")->kind, SRV_GW_SERVER_STREAM);
	assert_int_equal(find("/v3/maintenance/transfer-leadership")->rpc, SRV_RPC_MOVE_LEADER);
	assert_int_equal(find("/v3/lock/lock")->rpc, SRV_RPC_LOCK);
	assert_ptr_equal(find("/v3/election/campaign")->request,
	                 &v3lockpb__campaign_request__descriptor);
	assert_int_equal(find("/v3/election/observe")->kind, SRV_GW_SERVER_STREAM);
	assert_null(find("/v3/kv/ranges"));
	assert_null(find("/v3/kv/rang"));
	assert_null(find("/v4/kv/range"));
	assert_null(find("/kv/range"));
	assert_null(find("/v3"));
	assert_null(find("/v3/"));
	assert_null(find(""));
}

static void every_rpc_has_a_route(void **state)
{
	size_t n;
	const struct srv_gw_route *r = srv_gw_routes(&n);
	bool seen[SRV_RPC_COUNT] = {false};

	(void)state;
	for (size_t i = 0; i < n; i++) {
		seen[r[i].rpc] = true;
		assert_non_null(r[i].request);
		assert_non_null(r[i].response);
	}
	for (int i = 0; i < SRV_RPC_COUNT; i++)
		assert_true(seen[i]);
}

static void decoding_a_bad_body_gives_invalid_argument_and_the_reason(void **state)
{
	struct srv_gw_error e;
	ProtobufCMessage *m;
	const char *body = "{\"key\":\"Zm9v\",\"sort_order\":\"SIDEWAYS\"}";

	(void)state;
	assert_int_equal(srv_gw_decode_request(&etcdserverpb__range_request__descriptor, body,
	                                       strlen(body), NULL, &m, &e),
	                 MOOR_EINVAL);
	assert_null(m);
	assert_int_equal(e.grpc_code, SRV_GRPC_INVALID_ARGUMENT);
	assert_int_equal(e.http_status, 400);
	assert_string_equal(e.message, "field \"sort_order\": unknown value \"SIDEWAYS\" for "
	                               "enum etcdserverpb.RangeRequest.SortOrder");
	assert_int_equal(
	    srv_gw_decode_request(&etcdserverpb__range_request__descriptor, "{", 1, NULL, &m, &e),
	    MOOR_EINVAL);
	assert_string_equal(e.message, "invalid JSON: unexpected end of input");
}

static void a_request_over_the_grpc_limit_is_resource_exhausted(void **state)
{
	struct srv_jsonpb_opts jo = {.max_bytes = 8u << 20};
	struct srv_gw_limits lim = {.max_request_bytes = 1024, .json = &jo};
	size_t vlen = 700 * 1024, n;
	char *body = malloc(vlen + 64);
	struct srv_gw_error e;
	ProtobufCMessage *m;

	(void)state;
	/* 700 KiB of base64 'A' decode to 525 KiB: over 1 KiB + 512 KiB. */
	n = (size_t)sprintf(body, "{\"key\":\"Zm9v\",\"value\":\"");
	memset(body + n, 'A', vlen);
	n += vlen;
	n += (size_t)sprintf(body + n, "\"}");
	assert_int_equal(
	    srv_gw_decode_request(&etcdserverpb__put_request__descriptor, body, n, &lim, &m, &e),
	    MOOR_ETOOLARGE);
	assert_null(m);
	assert_int_equal(e.grpc_code, SRV_GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(e.http_status, 429);
	assert_string_equal(e.message,
	                    "grpc: received message larger than max (537609 vs. 525312)");
	/* Within the limit it decodes. */
	lim.max_request_bytes = SRV_GW_DEFAULT_MAX_REQUEST_BYTES;
	assert_int_equal(
	    srv_gw_decode_request(&etcdserverpb__put_request__descriptor, body, n, &lim, &m, &e),
	    0);
	assert_int_equal(e.grpc_code, 0);
	assert_int_equal(((Etcdserverpb__PutRequest *)m)->value.len, vlen / 4 * 3);
	protobuf_c_message_free_unpacked(m, NULL);
	free(body);
}

static void the_json_size_limit_follows_the_request_limit(void **state)
{
	size_t vlen = 5u << 20, n;
	char *body = malloc(vlen + 64);
	struct srv_gw_limits lim = {.max_request_bytes = 4u << 20};
	struct srv_gw_error e;
	ProtobufCMessage *m;

	(void)state;
	n = (size_t)sprintf(body, "{\"key\":\"Zm9v\",\"value\":\"");
	memset(body + n, 'A', vlen);
	n += vlen;
	n += (size_t)sprintf(body + n, "\"}");
	/* 5 MiB of JSON is 3.75 MiB of protobuf: within a 4 MiB limit. */
	assert_int_equal(
	    srv_gw_decode_request(&etcdserverpb__put_request__descriptor, body, n, &lim, &m, &e),
	    0);
	protobuf_c_message_free_unpacked(m, NULL);
	/* With the default 1.5 MiB, the JSON is refused before it is parsed. */
	lim.max_request_bytes = SRV_GW_DEFAULT_MAX_REQUEST_BYTES;
	assert_int_equal(
	    srv_gw_decode_request(&etcdserverpb__put_request__descriptor, body, n, &lim, &m, &e),
	    MOOR_ETOOLARGE);
	assert_int_equal(e.http_status, 429);
	assert_string_equal(e.message, "request body of 5242905 bytes exceeds the limit of 4194304 "
	                               "bytes");
	free(body);
}

static void streamed_requests_decode_through_the_gateway_layer(void **state)
{
	const char *s = "{\"ID\":\"5\"}\n{\"ID\":\"x\"}";
	struct srv_gw_error e;
	ProtobufCMessage *m;
	size_t used;

	(void)state;
	assert_int_equal(srv_gw_decode_next(&etcdserverpb__lease_keep_alive_request__descriptor, s,
	                                    strlen(s), true, NULL, &m, &used, &e),
	                 0);
	assert_int_equal(((Etcdserverpb__LeaseKeepAliveRequest *)m)->id, 5);
	protobuf_c_message_free_unpacked(m, NULL);
	s += used;
	assert_int_equal(srv_gw_decode_next(&etcdserverpb__lease_keep_alive_request__descriptor, s,
	                                    strlen(s), true, NULL, &m, &used, &e),
	                 MOOR_EINVAL);
	assert_null(m);
	assert_int_equal(e.http_status, 400);
	assert_string_equal(e.message, "field \"ID\": \"x\" is not an integer (int64)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(moor_errors_map_to_etcds_codes_messages_and_http_statuses),
	    cmocka_unit_test(every_moor_error_code_has_an_etcd_status),
	    cmocka_unit_test(unmapped_codes_are_unknown_with_their_message),
	    cmocka_unit_test(grpc_codes_map_to_grpc_gateway_v1_http_statuses),
	    cmocka_unit_test(the_unary_error_body_is_etcd_3_5s),
	    cmocka_unit_test(the_stream_error_chunk_carries_both_codes_and_the_status_text),
	    cmocka_unit_test(unknown_paths_and_wrong_methods_get_the_gateways_bodies),
	    cmocka_unit_test(a_body_that_cannot_grow_is_left_unchanged),
	    cmocka_unit_test(gateway_paths_resolve_under_every_prefix),
	    cmocka_unit_test(every_rpc_has_a_route),
	    cmocka_unit_test(decoding_a_bad_body_gives_invalid_argument_and_the_reason),
	    cmocka_unit_test(a_request_over_the_grpc_limit_is_resource_exhausted),
	    cmocka_unit_test(the_json_size_limit_follows_the_request_limit),
	    cmocka_unit_test(streamed_requests_decode_through_the_gateway_layer),
	};

	return cmocka_run_group_tests_name("gateway_errors", tests, NULL, NULL);
}

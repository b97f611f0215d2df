/*
 * Unit tests of moor-bench's histogram and wire codec: the figures the
 * comparison prints are only as good as the percentiles and the parsing of
 * what etcd and moord answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "bench/moorbench/hist.h"
#include "bench/moorbench/wire.h"
#include "proto/rpc.pb-c.h"

static void every_value_falls_inside_the_bounds_of_its_bucket(void **state)
{
	(void)state;
	uint64_t v = 0;
	for (int i = 0; i < 200000; i++) {
		unsigned idx = hist_index(v);
		uint64_t lo, hi;
		assert_true(idx < HIST_BUCKETS);
		hist_bounds(idx, &lo, &hi);
		assert_true(lo <= v && v <= hi);
		/* a bucket is at most 1/32 of its lower bound wide */
		assert_true(hi - lo <= lo / 32 + 1);
		v = v < 1000 ? v + 1 : v + v / 7 + 3;
		if (v > UINT64_MAX / 2)
			break;
	}
	unsigned idx = hist_index(UINT64_MAX);
	assert_int_equal(idx, HIST_BUCKETS - 1);
}

static void quantiles_of_a_uniform_sample_are_within_the_bucket_precision(void **state)
{
	(void)state;
	struct hist *h = malloc(sizeof(*h));
	assert_non_null(h);
	hist_reset(h);
	/* 1..100000 us */
	for (uint64_t i = 1; i <= 100000; i++)
		hist_record(h, i * 1000);
	double qs[] = {0.5, 0.9, 0.99, 0.999};
	for (unsigned i = 0; i < 4; i++) {
		double want = qs[i] * 100000 * 1000;
		double got = (double)hist_quantile(h, qs[i]);
		assert_true(got > want * 0.968 && got < want * 1.032);
	}
	assert_int_equal(hist_quantile(h, 1.0), 100000 * 1000);
	assert_int_equal(h->max_ns, 100000 * 1000);
	free(h);
}

static void merging_two_histograms_adds_their_counts_and_keeps_the_extremes(void **state)
{
	(void)state;
	struct hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	assert_non_null(a);
	assert_non_null(b);
	hist_reset(a);
	hist_reset(b);
	assert_int_equal(hist_quantile(a, 0.5), 0);
	hist_record(a, 5);
	hist_record(b, 7000000);
	hist_record(b, 9);
	hist_merge(a, b);
	assert_int_equal(a->total, 3);
	assert_int_equal(a->min_ns, 5);
	assert_int_equal(a->max_ns, 7000000);
	assert_int_equal(hist_quantile(a, 0.5), 9);
	free(a);
	free(b);
}

static void base64_round_trips_every_length(void **state)
{
	(void)state;
	uint8_t in[64], out[64];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 1);
	for (size_t n = 0; n <= sizeof(in); n++) {
		struct wbuf b = {0};
		wire_b64_encode(in, n, &b);
		assert_int_equal(b.len, (n + 2) / 3 * 4);
		long m = wire_b64_decode((const char *)b.p, b.len, out, sizeof(out));
		assert_int_equal(m, (long)n);
		assert_memory_equal(in, out, n);
		wbuf_free(&b);
	}
	assert_int_equal(wire_b64_decode("a*b=", 4, out, sizeof(out)), -1);
}

static void a_json_txn_compares_the_mod_revision_and_puts_the_value(void **state)
{
	(void)state;
	struct wire_req r = {.op = WIRE_TXN,
	                     .key = (const uint8_t *)"k",
	                     .key_len = 1,
	                     .value = (const uint8_t *)"v",
	                     .value_len = 1,
	                     .mod_rev = 42};
	struct wbuf b = {0};
	wire_encode(WIRE_JSON, &r, &b);
	json_error_t err;
	json_t *root = json_loadb((const char *)b.p, b.len, 0, &err);
	assert_non_null(root);
	json_t *cmp = json_array_get(json_object_get(root, "compare"), 0);
	assert_string_equal(json_string_value(json_object_get(cmp, "target")), "MOD");
	assert_string_equal(json_string_value(json_object_get(cmp, "mod_revision")), "42");
	assert_string_equal(json_string_value(json_object_get(cmp, "key")), "aw==");
	json_t *put =
	    json_object_get(json_array_get(json_object_get(root, "success"), 0), "request_put");
	assert_string_equal(json_string_value(json_object_get(put, "value")), "dg==");
	json_decref(root);
	wbuf_free(&b);
}

static void a_protobuf_range_decodes_as_etcds_message(void **state)
{
	(void)state;
	struct wire_req r = {.op = WIRE_RANGE,
	                     .key = (const uint8_t *)"ab",
	                     .key_len = 2,
	                     .range_end = (const uint8_t *)"ac",
	                     .range_end_len = 2,
	                     .serializable = true};
	struct wbuf b = {0};
	wire_encode(WIRE_PB, &r, &b);
	Etcdserverpb__RangeRequest *m = etcdserverpb__range_request__unpack(NULL, b.len, b.p);
	assert_non_null(m);
	assert_memory_equal(m->key.data, "ab", 2);
	assert_memory_equal(m->range_end.data, "ac", 2);
	assert_true(m->serializable);
	etcdserverpb__range_request__free_unpacked(m, NULL);
	wbuf_free(&b);
}

static void etcd_gateway_responses_decode_with_string_integers_and_omitted_defaults(void **state)
{
	(void)state;
	struct wire_resp out;
	const char *txn =
	    "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"77\"},"
	    "\"responses\":[{\"response_range\":{\"header\":{},\"kvs\":[{\"key\":\"aw==\","
	    "\"mod_revision\":\"70\"}],\"count\":\"1\"}}]}";
	assert_int_equal(wire_decode(WIRE_JSON, WIRE_TXN, (const uint8_t *)txn, strlen(txn), &out),
	                 0);
	assert_false(out.succeeded);
	assert_int_equal(out.revision, 77);
	assert_int_equal(out.mod_rev, 70);
	const char *ka =
	    "{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"7587\",\"TTL\":\"60\"}}\n";
	assert_int_equal(
	    wire_decode(WIRE_JSON, WIRE_LEASE_KEEPALIVE, (const uint8_t *)ka, strlen(ka), &out), 0);
	assert_int_equal(out.lease_id, 7587);
	assert_int_equal(out.ttl, 60);
	assert_int_equal(wire_decode(WIRE_JSON, WIRE_PUT, (const uint8_t *)"oops", 4, &out), -1);
	const char *range = "{\"header\":{\"revision\":\"90\"},\"kvs\":[{\"key\":\"YQ==\","
	                    "\"create_revision\":\"5\",\"mod_revision\":\"81\"},{\"key\":\"Yg==\","
	                    "\"mod_revision\":\"82\"}],\"count\":\"2\"}\n";
	assert_int_equal(
	    wire_decode(WIRE_JSON, WIRE_RANGE, (const uint8_t *)range, strlen(range), &out), 0);
	assert_int_equal(out.revision, 90);
	assert_int_equal(out.kvs, 2);
	assert_int_equal(out.mod_rev, 81);
	const char *empty = "{\"header\":{\"revision\":\"3\"}}";
	assert_int_equal(
	    wire_decode(WIRE_JSON, WIRE_RANGE, (const uint8_t *)empty, strlen(empty), &out), 0);
	assert_int_equal(out.kvs, 0);
	assert_int_equal(wire_decode(WIRE_JSON, WIRE_RANGE, (const uint8_t *)"{\"a\"", 4, &out),
	                 -1);
	const char *e = "{\"error\":\"etcdserver: no leader\",\"code\":14,\"message\":\"x\"}";
	assert_int_equal(wire_error_code((const uint8_t *)e, strlen(e)), 14);
}

struct seen {
	int n;
	char last[16];
};

static void on_event(const uint8_t *v, size_t len, void *arg)
{
	struct seen *s = arg;
	s->n++;
	memset(s->last, 0, sizeof(s->last));
	memcpy(s->last, v, len < sizeof(s->last) - 1 ? len : sizeof(s->last) - 1);
}

static void a_json_watch_stream_split_anywhere_yields_each_event_once(void **state)
{
	(void)state;
	const char *stream = "{\"result\":{\"header\":{},\"created\":true}}\n"
	                     "{\"result\":{\"header\":{},\"events\":[{\"kv\":{\"value\":\"b25l\"}},"
	                     "{\"kv\":{\"value\":\"dHdv\"}}]}}\n";
	size_t n = strlen(stream);
	for (size_t cut = 0; cut <= n; cut++) {
		struct wbuf b = {0};
		struct seen s = {0};
		int created = 0;
		wbuf_add(&b, stream, cut);
		assert_int_equal(wire_watch_feed(WIRE_JSON, &b, on_event, &s, &created), 0);
		wbuf_add(&b, stream + cut, n - cut);
		assert_int_equal(wire_watch_feed(WIRE_JSON, &b, on_event, &s, &created), 0);
		assert_int_equal(created, 1);
		assert_int_equal(s.n, 2);
		assert_string_equal(s.last, "two");
		assert_int_equal(b.len, 0);
		wbuf_free(&b);
	}
}

static void a_protobuf_watch_stream_of_length_prefixed_frames_yields_its_events(void **state)
{
	(void)state;
	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
	kv.value.data = (uint8_t *)"hello";
	kv.value.len = 5;
	Mvccpb__Event ev = MVCCPB__EVENT__INIT;
	ev.kv = &kv;
	Mvccpb__Event *evs[1] = {&ev};
	Etcdserverpb__WatchResponse m = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	m.n_events = 1;
	m.events = evs;
	size_t len = etcdserverpb__watch_response__get_packed_size(&m);
	uint8_t frame[128];
	assert_true(len + 4 <= sizeof(frame));
	frame[0] = 0;
	frame[1] = 0;
	frame[2] = (uint8_t)(len >> 8);
	frame[3] = (uint8_t)len;
	etcdserverpb__watch_response__pack(&m, frame + 4);
	struct wbuf b = {0};
	struct seen s = {0};
	int created = 0;
	wbuf_add(&b, frame, 3);
	assert_int_equal(wire_watch_feed(WIRE_PB, &b, on_event, &s, &created), 0);
	assert_int_equal(s.n, 0);
	wbuf_add(&b, frame + 3, len + 1);
	wbuf_add(&b, frame, len + 4);
	assert_int_equal(wire_watch_feed(WIRE_PB, &b, on_event, &s, &created), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.last, "hello");
	assert_int_equal(created, 0);
	wbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_value_falls_inside_the_bounds_of_its_bucket),
	    cmocka_unit_test(quantiles_of_a_uniform_sample_are_within_the_bucket_precision),
	    cmocka_unit_test(merging_two_histograms_adds_their_counts_and_keeps_the_extremes),
	    cmocka_unit_test(base64_round_trips_every_length),
	    cmocka_unit_test(a_json_txn_compares_the_mod_revision_and_puts_the_value),
	    cmocka_unit_test(a_protobuf_range_decodes_as_etcds_message),
	    cmocka_unit_test(
	        etcd_gateway_responses_decode_with_string_integers_and_omitted_defaults),
	    cmocka_unit_test(a_json_watch_stream_split_anywhere_yields_each_event_once),
	    cmocka_unit_test(a_protobuf_watch_stream_of_length_prefixed_frames_yields_its_events),
	};
	return cmocka_run_group_tests_name("moorbench", tests, NULL, NULL);
}

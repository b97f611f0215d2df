/*
 * Micro-benchmark of the gateway JSON codec: encoding a range response and
 * decoding typical requests (a put with a 1 KiB value, Kubernetes' update
 * txn). Prints one table row per case: operations per second and JSON
 * throughput. Runs under `make bench`, never in `make test`.
 */
#include "common/buf.h"
#include "server/jsonpb.h"

#include "proto/kv.pb-c.h"
#include "proto/rpc.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void row(const char *name, long ops, size_t bytes_per_op, double secs)
{
	printf("| %-38s | %9ld | %12.0f | %8.1f | %7.2f |\n", name, ops, (double)ops / secs,
	       (double)bytes_per_op * (double)ops / secs / 1e6, secs * 1e6 / (double)ops);
}

static void bench_encode_range(long iters)
{
	enum { N = 100 };
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	static Mvccpb__KeyValue kv[N];
	static Mvccpb__KeyValue *kvs[N];
	static char keys[N][33];
	static uint8_t value[256];
	struct moor_buf b;
	double t0;
	size_t len = 0;

	h.cluster_id = 14841639068965178418ull;
	h.member_id = 10276657743932975437ull;
	h.revision = 123456;
	h.raft_term = 7;
	memset(value, 'v', sizeof value);
	for (int i = 0; i < N; i++) {
		mvccpb__key_value__init(&kv[i]);
		snprintf(keys[i], sizeof keys[i], "/registry/pods/default/pod-%05d", i);
		kv[i].key.data = (uint8_t *)keys[i];
		kv[i].key.len = strlen(keys[i]);
		kv[i].value.data = value;
		kv[i].value.len = sizeof value;
		kv[i].create_revision = 1000 + i;
		kv[i].mod_revision = 2000 + i;
		kv[i].version = 3;
		kvs[i] = &kv[i];
	}
	r.header = &h;
	r.kvs = kvs;
	r.n_kvs = N;
	r.count = N;
	moor_buf_init(&b, NULL);
	t0 = now_s();
	for (long i = 0; i < iters; i++) {
		moor_buf_reset(&b);
		if (srv_jsonpb_encode(&r.base, &b) != 0)
			abort();
		len = b.len;
	}
	row("encode RangeResponse, 100 kvs of 256 B", iters, len, now_s() - t0);
	moor_buf_free(&b);
}

static void bench_decode(const char *name, const ProtobufCMessageDescriptor *d, const char *json,
                         long iters)
{
	size_t len = strlen(json);
	struct srv_jsonpb_error err;
	ProtobufCMessage *m;
	double t0 = now_s();

	for (long i = 0; i < iters; i++) {
		if (srv_jsonpb_decode(d, json, len, NULL, &m, &err) != 0) {
			fprintf(stderr, "%s: %s\n", name, err.msg);
			abort();
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	row(name, iters, len, now_s() - t0);
}

int main(void)
{
	char put[1500];
	char value_b64[1368 + 1];
	int n;

	memset(value_b64, 'Q', 1368); /* 1 KiB of bytes in base64 */
	value_b64[1368] = 0;
	n = snprintf(put, sizeof put,
	             "{\"key\":\"L3JlZ2lzdHJ5L3BvZHMvZGVmYXVsdC9wb2QtMQ==\","
	             "\"value\":\"%s\",\"lease\":\"7587869013893530371\"}",
	             value_b64);
	if (n < 0 || (size_t)n >= sizeof put)
		return 1;
	printf("| %-38s | %9s | %12s | %8s | %7s |\n", "case", "ops", "ops/s", "MB/s", "us/op");
	printf("|%s|%s|%s|%s|%s|\n", "----------------------------------------", "-----------",
	       "--------------", "----------", "---------");
	bench_encode_range(20000);
	bench_decode("decode PutRequest, 1 KiB value", &etcdserverpb__put_request__descriptor, put,
	             200000);
	bench_decode("decode TxnRequest, k8s update shape", &etcdserverpb__txn_request__descriptor,
	             "{\"compare\":[{\"target\":\"MOD\",\"key\":"
	             "\"L3JlZ2lzdHJ5L3BvZHMvZGVmYXVsdC9wb2QtMQ==\","
	             "\"mod_revision\":\"123456\"}],\"success\":[{\"request_put\":{\"key\":"
	             "\"L3JlZ2lzdHJ5L3BvZHMvZGVmYXVsdC9wb2QtMQ==\",\"value\":\"YmFy\"}}],"
	             "\"failure\":[{\"request_range\":{\"key\":"
	             "\"L3JlZ2lzdHJ5L3BvZHMvZGVmYXVsdC9wb2QtMQ==\"}}]}",
	             200000);
	bench_decode(
	    "decode WatchRequest, create", &etcdserverpb__watch_request__descriptor,
	    "{\"create_request\":{\"key\":\"L3JlZ2lzdHJ5L3BvZHMv\",\"range_end\":"
	    "\"L3JlZ2lzdHJ5L3BvZHMw\",\"start_revision\":\"123457\",\"progress_notify\":true,"
	    "\"prev_kv\":true}}",
	    200000);
	return 0;
}

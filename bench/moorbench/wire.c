/*
 * Request encoding and response decoding for moor-bench (see wire.h). JSON is
 * written by hand (the requests are few and fixed) and read with jansson;
 * protobuf goes through the protobuf-c code generated from proto/rpc.proto.
 */
#include "bench/moorbench/wire.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/rpc.pb-c.h"

void wbuf_reset(struct wbuf *b)
{
	b->len = 0;
}

void wbuf_add(struct wbuf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			fprintf(stderr, "moor-bench: out of memory\n");
			abort();
		}
		b->p = p;
		b->cap = cap;
	}
	if (n && data)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void wbuf_str(struct wbuf *b, const char *s)
{
	wbuf_add(b, s, strlen(s));
}

static void wbuf_fmt_i64(struct wbuf *b, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "\"%" PRId64 "\"", v);
	wbuf_add(b, tmp, (size_t)n);
}

void wbuf_free(struct wbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void wire_b64_encode(const uint8_t *in, size_t n, struct wbuf *out)
{
	char q[4];
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		q[0] = B64[v >> 18];
		q[1] = B64[(v >> 12) & 63];
		q[2] = B64[(v >> 6) & 63];
		q[3] = B64[v & 63];
		wbuf_add(out, q, 4);
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		q[0] = B64[v >> 18];
		q[1] = B64[(v >> 12) & 63];
		q[2] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
		q[3] = '=';
		wbuf_add(out, q, 4);
	}
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

long wire_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=')
			break;
		int v = b64_val(in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o < cap)
				out[o] = (uint8_t)(acc >> bits);
			o++;
		}
	}
	return (long)o;
}

const char *wire_path(enum wire_op op)
{
	switch (op) {
	case WIRE_PUT:
		return "/v3/kv/put";
	case WIRE_RANGE:
		return "/v3/kv/range";
	case WIRE_TXN:
		return "/v3/kv/txn";
	case WIRE_LEASE_GRANT:
		return "/v3/lease/grant";
	case WIRE_LEASE_KEEPALIVE:
		return "/v3/lease/keepalive";
	case WIRE_WATCH:
		return "/v3/watch";
	}
	return "/";
}

static void json_bytes(struct wbuf *b, const char *name, const uint8_t *p, size_t n)
{
	wbuf_str(b, "\"");
	wbuf_str(b, name);
	wbuf_str(b, "\":\"");
	wire_b64_encode(p, n, b);
	wbuf_str(b, "\"");
}

static void encode_json(const struct wire_req *r, struct wbuf *b)
{
	switch (r->op) {
	case WIRE_PUT:
		wbuf_str(b, "{");
		json_bytes(b, "key", r->key, r->key_len);
		wbuf_str(b, ",");
		json_bytes(b, "value", r->value, r->value_len);
		wbuf_str(b, "}");
		break;
	case WIRE_RANGE:
		wbuf_str(b, "{");
		json_bytes(b, "key", r->key, r->key_len);
		if (r->range_end) {
			wbuf_str(b, ",");
			json_bytes(b, "range_end", r->range_end, r->range_end_len);
		}
		if (r->limit) {
			wbuf_str(b, ",\"limit\":");
			wbuf_fmt_i64(b, r->limit);
		}
		if (r->serializable)
			wbuf_str(b, ",\"serializable\":true");
		wbuf_str(b, "}");
		break;
	case WIRE_TXN:
		wbuf_str(b, "{\"compare\":[{");
		json_bytes(b, "key", r->key, r->key_len);
		wbuf_str(b, ",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":");
		wbuf_fmt_i64(b, r->mod_rev);
		wbuf_str(b, "}],\"success\":[{\"request_put\":{");
		json_bytes(b, "key", r->key, r->key_len);
		wbuf_str(b, ",");
		json_bytes(b, "value", r->value, r->value_len);
		wbuf_str(b, "}}],\"failure\":[{\"request_range\":{");
		json_bytes(b, "key", r->key, r->key_len);
		wbuf_str(b, "}}]}");
		break;
	case WIRE_LEASE_GRANT:
		wbuf_str(b, "{\"TTL\":");
		wbuf_fmt_i64(b, r->ttl);
		wbuf_str(b, "}");
		break;
	case WIRE_LEASE_KEEPALIVE:
		wbuf_str(b, "{\"ID\":");
		wbuf_fmt_i64(b, r->lease_id);
		wbuf_str(b, "}");
		break;
	case WIRE_WATCH:
		wbuf_str(b, "{\"create_request\":{");
		json_bytes(b, "key", r->key, r->key_len);
		if (r->range_end) {
			wbuf_str(b, ",");
			json_bytes(b, "range_end", r->range_end, r->range_end_len);
		}
		wbuf_str(b, "}}");
		break;
	}
}

static void pack_msg(const ProtobufCMessage *m, struct wbuf *b, int framed)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	size_t off = b->len;
	if (framed) {
		uint8_t hdr[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
		                  (uint8_t)n};
		wbuf_add(b, hdr, 4);
		off += 4;
	}
	wbuf_add(b, NULL, n);
	protobuf_c_message_pack(m, b->p + off);
}

#define PBBYTES(p, n) ((ProtobufCBinaryData){(n), (uint8_t *)(uintptr_t)(p)})

static void encode_pb(const struct wire_req *r, struct wbuf *b)
{
	switch (r->op) {
	case WIRE_PUT: {
		Etcdserverpb__PutRequest m = ETCDSERVERPB__PUT_REQUEST__INIT;
		m.key = PBBYTES(r->key, r->key_len);
		m.value = PBBYTES(r->value, r->value_len);
		pack_msg(&m.base, b, 0);
		break;
	}
	case WIRE_RANGE: {
		Etcdserverpb__RangeRequest m = ETCDSERVERPB__RANGE_REQUEST__INIT;
		m.key = PBBYTES(r->key, r->key_len);
		if (r->range_end)
			m.range_end = PBBYTES(r->range_end, r->range_end_len);
		m.limit = r->limit;
		m.serializable = r->serializable;
		pack_msg(&m.base, b, 0);
		break;
	}
	case WIRE_TXN: {
		Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
		cmp.key = PBBYTES(r->key, r->key_len);
		cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
		cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
		cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		cmp.mod_revision = r->mod_rev;
		Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
		put.key = cmp.key;
		put.value = PBBYTES(r->value, r->value_len);
		Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
		get.key = cmp.key;
		Etcdserverpb__RequestOp ok = ETCDSERVERPB__REQUEST_OP__INIT;
		ok.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		ok.request_put = &put;
		Etcdserverpb__RequestOp ko = ETCDSERVERPB__REQUEST_OP__INIT;
		ko.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
		ko.request_range = &get;
		Etcdserverpb__Compare *cmps[1] = {&cmp};
		Etcdserverpb__RequestOp *oks[1] = {&ok}, *kos[1] = {&ko};
		Etcdserverpb__TxnRequest m = ETCDSERVERPB__TXN_REQUEST__INIT;
		m.n_compare = 1;
		m.compare = cmps;
		m.n_success = 1;
		m.success = oks;
		m.n_failure = 1;
		m.failure = kos;
		pack_msg(&m.base, b, 0);
		break;
	}
	case WIRE_LEASE_GRANT: {
		Etcdserverpb__LeaseGrantRequest m = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
		m.ttl = r->ttl;
		pack_msg(&m.base, b, 0);
		break;
	}
	case WIRE_LEASE_KEEPALIVE: {
		Etcdserverpb__LeaseKeepAliveRequest m =
		    ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
		m.id = r->lease_id;
		pack_msg(&m.base, b, 1);
		break;
	}
	case WIRE_WATCH: {
		Etcdserverpb__WatchCreateRequest c = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
		c.key = PBBYTES(r->key, r->key_len);
		if (r->range_end)
			c.range_end = PBBYTES(r->range_end, r->range_end_len);
		Etcdserverpb__WatchRequest m = ETCDSERVERPB__WATCH_REQUEST__INIT;
		m.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
		m.create_request = &c;
		pack_msg(&m.base, b, 1);
		break;
	}
	}
}

void wire_encode(enum wire_proto proto, const struct wire_req *req, struct wbuf *out)
{
	wbuf_reset(out);
	if (proto == WIRE_JSON)
		encode_json(req, out);
	else
		encode_pb(req, out);
}

/* A gateway int64: a string of digits, or (tolerated) a JSON integer; absent = 0. */
static int64_t json_i64(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	return 0;
}

static void json_range(json_t *rr, struct wire_resp *out)
{
	json_t *kvs = json_object_get(rr, "kvs");
	out->kvs = (int64_t)json_array_size(kvs);
	if (out->kvs > 0)
		out->mod_rev = json_i64(json_array_get(kvs, 0), "mod_revision");
}

/* The int64 after the first `"name":` in p (string or bare number); 0 if none. */
static int64_t scan_i64(const char *p, size_t n, const char *name)
{
	const char *hit = memmem(p, n, name, strlen(name));
	if (!hit)
		return 0;
	hit += strlen(name);
	while (hit < p + n && (*hit == ':' || *hit == '"' || *hit == ' '))
		hit++;
	return strtoll(hit, NULL, 10);
}

/*
 * A range response is scanned, not parsed: a 100-key answer is 40 KB of JSON,
 * and a full parse cost the generator more CPU than the server spent on it.
 * The scan checks the body is one object and takes the header revision, the
 * number of kvs (occurrences of "mod_revision", which only a KeyValue has)
 * and the first kv's mod_revision.
 */
static int scan_json_range(const uint8_t *body, size_t len, struct wire_resp *out)
{
	const char *p = (const char *)body;
	size_t n = len;
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (n < 2 || p[0] != '{' || p[n - 1] != '}')
		return -1;
	out->revision = scan_i64(p, n, "\"revision\"");
	const char *at = p, *end = p + n;
	static const char MR[] = "\"mod_revision\"";
	for (;;) {
		const char *hit = memmem(at, (size_t)(end - at), MR, sizeof(MR) - 1);
		if (!hit)
			break;
		if (out->kvs++ == 0)
			out->mod_rev = scan_i64(hit, (size_t)(end - hit), MR);
		at = hit + sizeof(MR) - 1;
	}
	return 0;
}

static int decode_json(enum wire_op op, const uint8_t *body, size_t len, struct wire_resp *out)
{
	if (op == WIRE_RANGE)
		return scan_json_range(body, len, out);
	json_error_t err;
	json_t *root = json_loadb((const char *)body, len, JSON_DISABLE_EOF_CHECK, &err);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	json_t *o = root;
	if (op == WIRE_LEASE_KEEPALIVE) {
		o = json_object_get(root, "result");
		if (!json_is_object(o)) {
			json_decref(root);
			return -1;
		}
	}
	out->revision = json_i64(json_object_get(o, "header"), "revision");
	switch (op) {
	case WIRE_RANGE:
		json_range(o, out);
		break;
	case WIRE_TXN: {
		out->succeeded = json_is_true(json_object_get(o, "succeeded"));
		json_t *r0 = json_array_get(json_object_get(o, "responses"), 0);
		json_t *rr = json_object_get(r0, "response_range");
		if (rr)
			json_range(rr, out);
		break;
	}
	case WIRE_LEASE_GRANT:
	case WIRE_LEASE_KEEPALIVE:
		out->lease_id = json_i64(o, "ID");
		out->ttl = json_i64(o, "TTL");
		break;
	default:
		break;
	}
	json_decref(root);
	return 0;
}

static int decode_pb(enum wire_op op, const uint8_t *body, size_t len, struct wire_resp *out)
{
	switch (op) {
	case WIRE_PUT: {
		Etcdserverpb__PutResponse *m = etcdserverpb__put_response__unpack(NULL, len, body);
		if (!m)
			return -1;
		out->revision = m->header ? m->header->revision : 0;
		etcdserverpb__put_response__free_unpacked(m, NULL);
		return 0;
	}
	case WIRE_RANGE: {
		Etcdserverpb__RangeResponse *m =
		    etcdserverpb__range_response__unpack(NULL, len, body);
		if (!m)
			return -1;
		out->revision = m->header ? m->header->revision : 0;
		out->kvs = (int64_t)m->n_kvs;
		if (m->n_kvs)
			out->mod_rev = m->kvs[0]->mod_revision;
		etcdserverpb__range_response__free_unpacked(m, NULL);
		return 0;
	}
	case WIRE_TXN: {
		Etcdserverpb__TxnResponse *m = etcdserverpb__txn_response__unpack(NULL, len, body);
		if (!m)
			return -1;
		out->revision = m->header ? m->header->revision : 0;
		out->succeeded = m->succeeded;
		if (m->n_responses && m->responses[0]->response_case ==
		                          ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE) {
			Etcdserverpb__RangeResponse *rr = m->responses[0]->response_range;
			out->kvs = (int64_t)rr->n_kvs;
			if (rr->n_kvs)
				out->mod_rev = rr->kvs[0]->mod_revision;
		}
		etcdserverpb__txn_response__free_unpacked(m, NULL);
		return 0;
	}
	case WIRE_LEASE_GRANT: {
		Etcdserverpb__LeaseGrantResponse *m =
		    etcdserverpb__lease_grant_response__unpack(NULL, len, body);
		if (!m)
			return -1;
		out->revision = m->header ? m->header->revision : 0;
		out->lease_id = m->id;
		out->ttl = m->ttl;
		etcdserverpb__lease_grant_response__free_unpacked(m, NULL);
		return 0;
	}
	case WIRE_LEASE_KEEPALIVE: {
		if (len < 4)
			return -1;
		size_t n =
		    (size_t)body[0] << 24 | (size_t)body[1] << 16 | (size_t)body[2] << 8 | body[3];
		if (n > len - 4)
			return -1;
		Etcdserverpb__LeaseKeepAliveResponse *m =
		    etcdserverpb__lease_keep_alive_response__unpack(NULL, n, body + 4);
		if (!m)
			return -1;
		out->lease_id = m->id;
		out->ttl = m->ttl;
		etcdserverpb__lease_keep_alive_response__free_unpacked(m, NULL);
		return 0;
	}
	case WIRE_WATCH:
		break;
	}
	return -1;
}

int wire_decode(enum wire_proto proto, enum wire_op op, const uint8_t *body, size_t len,
                struct wire_resp *out)
{
	memset(out, 0, sizeof(*out));
	return proto == WIRE_JSON ? decode_json(op, body, len, out) : decode_pb(op, body, len, out);
}

int wire_error_code(const uint8_t *body, size_t len)
{
	json_error_t err;
	json_t *root = json_loadb((const char *)body, len, JSON_DISABLE_EOF_CHECK, &err);
	int code = -1;
	json_t *c = json_object_get(root, "code");
	if (json_is_integer(c))
		code = (int)json_integer_value(c);
	json_decref(root);
	return code;
}

static int watch_json_line(const uint8_t *p, size_t n, wire_event_fn on_event, void *arg,
                           int *created)
{
	json_error_t err;
	json_t *root = json_loadb((const char *)p, n, 0, &err);
	json_t *res = json_object_get(root, "result");
	if (!json_is_object(res)) {
		json_decref(root);
		return -1;
	}
	if (json_is_true(json_object_get(res, "created")))
		*created = 1;
	json_t *evs = json_object_get(res, "events");
	uint8_t val[4096];
	for (size_t i = 0; i < json_array_size(evs); i++) {
		json_t *v = json_object_get(json_object_get(json_array_get(evs, i), "kv"), "value");
		const char *s = json_string_value(v);
		long m = s ? wire_b64_decode(s, strlen(s), val, sizeof(val)) : 0;
		if (m < 0)
			m = 0;
		if ((size_t)m > sizeof(val))
			m = sizeof(val);
		on_event(val, (size_t)m, arg);
	}
	json_decref(root);
	return 0;
}

static int watch_pb_msg(const uint8_t *p, size_t n, wire_event_fn on_event, void *arg, int *created)
{
	Etcdserverpb__WatchResponse *m = etcdserverpb__watch_response__unpack(NULL, n, p);
	if (!m)
		return -1;
	if (m->created)
		*created = 1;
	for (size_t i = 0; i < m->n_events; i++) {
		Mvccpb__KeyValue *kv = m->events[i]->kv;
		if (kv)
			on_event(kv->value.data, kv->value.len, arg);
	}
	etcdserverpb__watch_response__free_unpacked(m, NULL);
	return 0;
}

int wire_watch_feed(enum wire_proto proto, struct wbuf *buf, wire_event_fn on_event, void *arg,
                    int *created)
{
	size_t off = 0;
	int rc = 0;
	for (;;) {
		const uint8_t *p = buf->p + off;
		size_t left = buf->len - off;
		if (proto == WIRE_JSON) {
			const uint8_t *nl = left ? memchr(p, '\n', left) : NULL;
			if (!nl)
				break;
			size_t n = (size_t)(nl - p);
			if (n > 0 && watch_json_line(p, n, on_event, arg, created) < 0)
				rc = -1;
			off += n + 1;
		} else {
			if (left < 4)
				break;
			size_t n =
			    (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
			if (left - 4 < n)
				break;
			if (watch_pb_msg(p + 4, n, on_event, arg, created) < 0)
				rc = -1;
			off += 4 + n;
		}
	}
	if (off > 0) {
		memmove(buf->p, buf->p + off, buf->len - off);
		buf->len -= off;
	}
	return rc;
}

/*
 * rawkv: single-attempt writes over libcurl with protobuf bodies (see
 * rawkv.h). Independent of libmoor's retry rules on purpose: the suite must
 * record what each member answered, not what a client library inferred.
 */
#include "tests/faults/harness/rawkv.h"

#include "proto/rpc.pb-c.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAW_MAX_EPS 16
#define RAW_MAX_BODY (1u << 20)

struct raw_kv {
	CURL *h;
	char *eps[RAW_MAX_EPS];
	size_t n, cur;
	int timeout_ms;
	char err[512];
	unsigned char *body;
	size_t body_len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct raw_kv *r = ctx;
	size_t n = size * nmemb;
	if (r->body_len + n > RAW_MAX_BODY)
		return 0;
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	return n;
}

struct raw_kv *raw_open(const char *const *endpoints, size_t n, size_t rotate, int timeout_ms)
{
	struct raw_kv *r = calloc(1, sizeof *r);
	if (!r || n == 0 || n > RAW_MAX_EPS)
		abort();
	r->h = curl_easy_init();
	r->body = malloc(RAW_MAX_BODY);
	if (!r->h || !r->body)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!(r->eps[i] = strdup(endpoints[i])))
			abort();
	r->n = n;
	r->cur = rotate % n;
	r->timeout_ms = timeout_ms;
	return r;
}

void raw_close(struct raw_kv *r)
{
	if (!r)
		return;
	curl_easy_cleanup(r->h);
	for (size_t i = 0; i < r->n; i++)
		free(r->eps[i]);
	free(r->body);
	free(r);
}

const char *raw_error(const struct raw_kv *r)
{
	return r->err;
}

/* One POST; returns the HTTP status, or -1 (connection never made) / -2
 * (sent or maybe sent, no answer). */
static long post(struct raw_kv *r, const char *path, const void *req, size_t len)
{
	char url[300];
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	hdrs = curl_slist_append(hdrs, "Expect:");
	snprintf(url, sizeof url, "%s%s", r->eps[r->cur], path);
	curl_easy_reset(r->h);
	curl_easy_setopt(r->h, CURLOPT_URL, url);
	curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(r->h, CURLOPT_POST, 1L);
	curl_easy_setopt(r->h, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(r->h, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, 300L);
	curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
	/* A fresh connection per write: on a reused connection that died, curl
	 * resends on a new one, and "couldn't connect" on that second try would
	 * hide a first copy that reached the server (seen: an add refused with
	 * "Couldn't connect" was in the final read). */
	curl_easy_setopt(r->h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(r->h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	r->body_len = 0;
	CURLcode cc = curl_easy_perform(r->h);
	long status = 0;
	curl_off_t pre = 0;
	if (cc != CURLE_OK) {
		snprintf(r->err, sizeof r->err, "%s: %s", r->eps[r->cur], curl_easy_strerror(cc));
		curl_slist_free_all(hdrs);
		if (cc == CURLE_COULDNT_CONNECT)
			return -1;
		if (cc == CURLE_OPERATION_TIMEDOUT &&
		    curl_easy_getinfo(r->h, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK &&
		    pre == 0)
			return -1;
		return -2;
	}
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	return status;
}

enum raw_outcome raw_put(struct raw_kv *r, const char *key, const char *value, enum raw_cmp cmp,
                         const char *cmp_key, const char *cmp_value, int64_t cmp_number,
                         bool *succeeded, int64_t *revision)
{
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
	Etcdserverpb__RequestOp *ops[1] = {&op};
	Etcdserverpb__Compare c = ETCDSERVERPB__COMPARE__INIT;
	Etcdserverpb__Compare *cs[1] = {&c};
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
	const ProtobufCMessage *msg;
	unsigned char buf[1024];
	const char *path;

	put.key.data = (uint8_t *)key;
	put.key.len = strlen(key);
	put.value.data = (uint8_t *)value;
	put.value.len = strlen(value);
	if (cmp == RAW_CMP_NONE) {
		msg = &put.base;
		path = "/v3/kv/put";
	} else {
		op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		op.request_put = &put;
		c.key.data = (uint8_t *)cmp_key;
		c.key.len = strlen(cmp_key);
		c.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
		if (cmp == RAW_CMP_VALUE) {
			c.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
			c.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
			c.value.data = (uint8_t *)cmp_value;
			c.value.len = strlen(cmp_value);
		} else {
			c.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
			c.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
			c.create_revision = cmp_number;
		}
		txn.n_compare = 1;
		txn.compare = cs;
		txn.n_success = 1;
		txn.success = ops;
		msg = &txn.base;
		path = "/v3/kv/txn";
	}
	if (protobuf_c_message_get_packed_size(msg) > sizeof buf)
		abort();
	size_t len = protobuf_c_message_pack(msg, buf);
	r->err[0] = '\0';
	long st = post(r, path, buf, len);
	if (st == 200) {
		ProtobufCMessage *resp = protobuf_c_message_unpack(
		    cmp == RAW_CMP_NONE ? &etcdserverpb__put_response__descriptor
		                        : &etcdserverpb__txn_response__descriptor,
		    NULL, r->body_len, r->body);
		if (!resp) {
			snprintf(r->err, sizeof r->err, "%s: 200 with an undecodable body",
			         r->eps[r->cur]);
			r->cur = (r->cur + 1) % r->n;
			return RAW_INFO;
		}
		if (cmp == RAW_CMP_NONE) {
			Etcdserverpb__PutResponse *p = (Etcdserverpb__PutResponse *)resp;
			*succeeded = true;
			*revision = p->header ? p->header->revision : 0;
		} else {
			Etcdserverpb__TxnResponse *t = (Etcdserverpb__TxnResponse *)resp;
			*succeeded = t->succeeded;
			*revision = t->header ? t->header->revision : 0;
		}
		protobuf_c_message_free_unpacked(resp, NULL);
		return RAW_OK;
	}
	enum raw_outcome o = RAW_INFO;
	if (st == -1) {
		o = RAW_FAIL; /* never connected: nothing was sent */
	} else if (st > 0) {
		size_t n = r->body_len < 300 ? r->body_len : 300;
		snprintf(r->err, sizeof r->err, "%s: HTTP %ld %.*s", r->eps[r->cur], st, (int)n,
		         (const char *)r->body);
		/* etcd's "no leader" is answered before proposing; 429 too. */
		if ((st == 503 && memmem(r->body, r->body_len, "etcdserver: no leader", 21)) ||
		    st == 429)
			o = RAW_FAIL;
	}
	r->cur = (r->cur + 1) % r->n;
	return o;
}

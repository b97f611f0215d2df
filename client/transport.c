/*
 * libmoor's transport: unary calls as HTTP/1.1 POSTs of protobuf bodies to
 * etcd's gateway paths, over libcurl easy handles pooled per client so that
 * keep-alive connections are reused, with the failover and retry rules that
 * moor.h promises.
 *
 * One attempt ends in one of four ways, and each decides the next step:
 * - the request provably never left (no connection could be made): any call
 *   moves to the next endpoint and tries again;
 * - the request may have reached the server and the answer was lost (reset,
 *   timeout after sending, empty reply): a read tries again elsewhere, a
 *   write is reported as MOOR_EINDETERMINATE at once;
 * - the server answered with an error: errors that mean "refused before
 *   proposing" (no leader, too many requests, ...) are retried for any call,
 *   errors that leave the outcome open (request timed out, server stopped)
 *   are retried for reads and indeterminate for writes, the rest returned;
 * - 200: the body is the answer.
 * Every retry stays inside the call's request timeout.
 */
#include "client/internal.h"

#include "proto/pbcheck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char tl_detail[512];

const char *moor_error_detail(void)
{
	return tl_detail;
}

/* Formats through a copy: the arguments may point into tl_detail itself. */
int cl_set_error(int rc, const char *fmt, ...)
{
	char tmp[sizeof tl_detail];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	memcpy(tl_detail, tmp, sizeof tmp);
	return rc;
}

void cl_log(moor_client *c, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!c->log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->log_fn(c->log_ctx, level, msg);
}

uint64_t cl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cl_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- endpoints ---- */

void cl_endpoint_current(moor_client *c, char *buf, size_t size, size_t *idx)
{
	size_t i = atomic_load(&c->cur) % c->n_endpoints;

	snprintf(buf, size, "%s", c->endpoints[i]);
	if (idx)
		*idx = i;
}

void moor_client_endpoint(moor_client *c, char *buf, size_t size)
{
	cl_endpoint_current(c, buf, size, NULL);
}

/* Only the first thread to see an endpoint fail moves the client on, so
 * that many threads failing at once do not skip healthy endpoints. */
void cl_endpoint_rotate(moor_client *c, size_t failed)
{
	size_t expect = failed;

	atomic_compare_exchange_strong(&c->cur, &expect, (failed + 1) % c->n_endpoints);
}

/* ---- easy handles ---- */

CURL *cl_easy_get(moor_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->mu);
	if (c->n_pool > 0)
		h = c->pool[--c->n_pool];
	pthread_mutex_unlock(&c->mu);
	if (!h)
		h = curl_easy_init();
	return h;
}

void cl_easy_put(moor_client *c, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->n_pool < CL_POOL_MAX) {
		c->pool[c->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	if (h)
		curl_easy_cleanup(h);
}

static size_t body_write(char *p, size_t size, size_t n, void *ctx)
{
	struct moor_buf *b = ctx;

	if (b->len + n > CL_FRAME_MAX_BYTES)
		return 0;
	if (moor_buf_append(b, p, n) != 0)
		return 0;
	return size * n;
}

void cl_easy_setup(moor_client *c, CURL *h, const char *url, long timeout_ms)
{
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(timeout_ms > 0 && timeout_ms < c->dial_timeout_ms
	                            ? timeout_ms
	                            : c->dial_timeout_ms));
	if (timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/* ---- error mapping ---- */

static const struct {
	const char *msg; /* the gateway's message without "etcdserver: " */
	int code;
} known[] = {
    {"mvcc: required revision has been compacted", MOOR_ECOMPACTED},
    {"mvcc: required revision is a future revision", MOOR_EFUTUREREV},
    {"key is not provided", MOOR_EEMPTYKEY},
    {"range_end is below key", MOOR_ERANGEEND},
    {"invalid sort option", MOOR_ESORT},
    {"limit is negative", MOOR_ELIMIT},
    {"duplicate key given in txn request", MOOR_EDUPKEY},
    {"too many operations in txn request", MOOR_ETOOMANYOPS},
    {"request is too large", MOOR_ETOOLARGE},
    {"requested lease not found", MOOR_ELEASENOTFOUND},
    {"lease already exists", MOOR_ELEASEEXISTS},
    {"value is provided", MOOR_EVALUEPROVIDED},
    {"lease is provided", MOOR_ELEASEPROVIDED},
    {"key not found", MOOR_EKEYNOTFOUND},
    {"no leader", MOOR_ENOLEADER},
    {"raft proposal dropped", MOOR_EDROPPED},
    {"leadership transfer in progress", MOOR_ETRANSFERRING},
    {"not leader", MOOR_ENOTLEADER},
    {"server stopped", MOOR_ESTOPPED},
    {"request timed out", MOOR_ETIMEOUT},
    {"request timed out, possibly due to previous leader failure", MOOR_ETIMEOUT},
    {"request timed out, possibly due to connection lost", MOOR_ETIMEOUT},
    {"too many requests", MOOR_ETOOMANYREQUESTS},
    {"mvcc: database space exceeded", MOOR_ENOSPACE},
    {"unhealthy cluster", MOOR_EUNAVAILABLE},
    {"leader changed", MOOR_ELEADERCHANGED},
    {"member ID already exist", MOOR_EMEMBEREXISTS},
    {"member not found", MOOR_EMEMBERNOTFOUND},
    {"Peer URLs already exists", MOOR_EPEERURLEXISTS},
    {"can only promote a learner member which is in sync with leader", MOOR_ELEARNERNOTREADY},
    {"too many learner members in cluster", MOOR_ETOOMANYLEARNERS},
    {"operation not supported", MOOR_EUNSUPPORTED},
    {"busy", MOOR_EBUSY},
    {"already exists", MOOR_EEXIST},
    {"a configuration change is already pending", MOOR_EPENDINGCONF},
    {"rpc not supported for learner", MOOR_ELEARNER},
    {"corrupt cluster", MOOR_ECORRUPT},
    {"not found", MOOR_ENOTFOUND},
    {"out of memory", MOOR_ENOMEM},
};

/* A string field of a flat JSON object, unescaping \" and \\ only. */
static bool json_str(const char *body, size_t len, const char *field, char *out, size_t size)
{
	char pat[32];
	const char *p, *end = body + len;
	size_t n = 0;

	snprintf(pat, sizeof pat, "\"%s\":", field);
	p = memmem(body, len, pat, strlen(pat));
	if (!p)
		return false;
	p += strlen(pat);
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '"')
		return false;
	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\' && p + 1 < end)
			p++;
		if (n + 1 < size)
			out[n++] = *p;
	}
	out[n] = '\0';
	return true;
}

static long json_int(const char *body, size_t len, const char *field)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":", field);
	p = memmem(body, len, pat, strlen(pat));
	if (!p)
		return -1;
	p += strlen(pat);
	while (p < body + len && *p == ' ')
		p++;
	if (p >= body + len || *p < '0' || *p > '9')
		return -1;
	return strtol(p, NULL, 10);
}

int cl_map_error(long status, const char *body, size_t len, char *msg, size_t msg_size)
{
	const char *m = msg;
	long grpc = json_int(body, len, "code");

	if (!json_str(body, len, "message", msg, msg_size) &&
	    !json_str(body, len, "error", msg, msg_size))
		snprintf(msg, msg_size, "HTTP %ld", status);
	if (strncmp(m, "etcdserver: ", 12) == 0)
		m += 12;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(m, known[i].msg) == 0)
			return known[i].code;
	switch (grpc) {
	case 1:
		return MOOR_ECLOSED; /* Canceled */
	case 3:
		return MOOR_EINVAL; /* InvalidArgument */
	case 4:
		return MOOR_ETIMEOUT; /* DeadlineExceeded */
	case 5:
		return MOOR_ENOTFOUND; /* NotFound */
	case 6:
		return MOOR_EEXIST; /* AlreadyExists */
	case 8:
		return MOOR_ETOOMANYREQUESTS; /* ResourceExhausted */
	case 9:
		return MOOR_EINVAL; /* FailedPrecondition */
	case 11:
		return MOOR_ECOMPACTED; /* OutOfRange */
	case 12:
		return MOOR_EUNSUPPORTED; /* Unimplemented */
	case 14:
		/* Unavailable, with a message we do not know: nothing says the
		 * request was not applied, so its outcome stays open. */
		return MOOR_EINDETERMINATE;
	case 15:
		return MOOR_ECORRUPT; /* DataLoss */
	default:
		break;
	}
	switch (status) {
	case 404:
	case 501:
		return MOOR_EUNSUPPORTED;
	case 429:
		return MOOR_ETOOMANYREQUESTS;
	case 503:
		return MOOR_EUNAVAILABLE;
	case 504:
		return MOOR_ETIMEOUT;
	case 400:
		return MOOR_EINVAL;
	default:
		return MOOR_EPROTO;
	}
}

bool cl_err_not_applied(int rc)
{
	switch (rc) {
	case MOOR_ENOLEADER:
	case MOOR_EDROPPED:
	case MOOR_ETRANSFERRING:
	case MOOR_ETOOMANYREQUESTS:
	case MOOR_ENOTLEADER:
	case MOOR_EUNAVAILABLE:
		return true;
	default:
		return false;
	}
}

bool cl_err_rotate(int rc)
{
	return rc == MOOR_ENOLEADER || rc == MOOR_ENOTLEADER || rc == MOOR_EUNAVAILABLE ||
	       rc == MOOR_ETIMEOUT || rc == MOOR_ESTOPPED || rc == MOOR_ECLOSED ||
	       rc == MOOR_EINDETERMINATE || rc == MOOR_ELEADERCHANGED;
}

/* Transport failures that prove the request was never sent. libcurl
 * retries by itself, on a fresh connection, a request whose kept-alive
 * connection died before any answer; if that reconnect is refused the
 * error says "could not connect" although the request went out on the old
 * connection. So nothing counts as never sent once request bytes left. */
static bool never_sent(CURLcode cc, CURL *h)
{
	curl_off_t pre = 0;
	long req_bytes = 0;

	if (curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &req_bytes) != CURLE_OK || req_bytes > 0)
		return false;
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_URL_MALFORMAT:
		return true;
	case CURLE_OPERATION_TIMEDOUT:
		/* timed out while connecting: the request had not started */
		return curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK &&
		       pre == 0;
	default:
		return false;
	}
}

enum outcome { OUT_OK, OUT_NOT_SENT, OUT_LOST, OUT_SERVER };

/* One attempt against one endpoint; *out says how it ended (see the top). */
static int attempt(moor_client *c, const char *endpoint, const char *path, const void *body,
                   size_t len, long timeout_ms, struct moor_buf *resp, enum outcome *out)
{
	char url[512];
	char msg[256];
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURLcode cc;
	CURL *h;
	int rc;

	*out = OUT_NOT_SENT;
	h = cl_easy_get(c);
	if (!h)
		return cl_set_error(MOOR_ENOMEM, "curl_easy_init failed");
	snprintf(url, sizeof url, "%s%s", endpoint, path);
	cl_easy_setup(c, h, url, timeout_ms);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/x-protobuf");
	if (hdrs && !curl_slist_append(hdrs, "Expect:")) {
		curl_slist_free_all(hdrs);
		hdrs = NULL;
	}
	if (!hdrs) {
		cl_easy_put(c, h);
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	resp->len = 0;
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		*out = never_sent(cc, h) ? OUT_NOT_SENT : OUT_LOST;
		if (cc == CURLE_WRITE_ERROR)
			rc = cl_set_error(MOOR_ETOOLARGE, "%s: response larger than %u bytes",
			                  endpoint, CL_FRAME_MAX_BYTES);
		else
			rc = cl_set_error(cc == CURLE_OPERATION_TIMEDOUT ? MOOR_ETIMEOUT
			                                                 : MOOR_EUNAVAILABLE,
			                  "%s: %s", endpoint, curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200) {
		*out = OUT_OK;
		rc = 0;
		goto done;
	}
	*out = OUT_SERVER;
	rc = cl_map_error(status, (const char *)resp->data, resp->len, msg, sizeof msg);
	cl_set_error(rc, "%s: %s", endpoint, msg);
done:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	cl_easy_put(c, h);
	return rc;
}

/* Errors after which the server may or may not have applied the request. */
static bool outcome_open(int rc)
{
	return rc == MOOR_ETIMEOUT || rc == MOOR_ESTOPPED || rc == MOOR_ECLOSED ||
	       rc == MOOR_EINDETERMINATE || rc == MOOR_ELEADERCHANGED;
}

int cl_http(moor_client *c, const char *path, const void *body, size_t len, enum cl_kind kind,
            const char *only_endpoint, struct moor_buf *resp)
{
	return cl_http_t(c, path, body, len, kind, only_endpoint, c->request_timeout_ms, resp);
}

int cl_http_t(moor_client *c, const char *path, const void *body, size_t len, enum cl_kind kind,
              const char *only_endpoint, int timeout_ms, struct moor_buf *resp)
{
	uint64_t deadline = cl_now_ms() + (uint64_t)timeout_ms;
	int backoff = CL_BACKOFF_MIN_MS;
	int rc = MOOR_ETIMEOUT;
	size_t tried = 0;

	for (;;) {
		char ep[256];
		size_t idx = 0;
		uint64_t now = cl_now_ms();
		enum outcome how;
		bool rotate;

		if (now >= deadline)
			break;
		if (only_endpoint)
			snprintf(ep, sizeof ep, "%s", only_endpoint);
		else
			cl_endpoint_current(c, ep, sizeof ep, &idx);
		long attempt_ms = (long)(deadline - now);
		/* A read may try elsewhere: a member that hangs (frozen, partitioned)
		 * must not take the whole timeout. A write must wait for its answer,
		 * for a timed-out write is indeterminate anyway. */
		if (kind == CL_READ && !only_endpoint && c->n_endpoints > 1) {
			long cap = timeout_ms / 2 > CL_READ_ATTEMPT_MIN_MS ? timeout_ms / 2
			                                                   : CL_READ_ATTEMPT_MIN_MS;
			if (attempt_ms > cap)
				attempt_ms = cap;
		}
		rc = attempt(c, ep, path, body, len, attempt_ms, resp, &how);
		if (how == OUT_OK)
			return 0;
		if (rc == MOOR_ENOMEM || rc == MOOR_ETOOLARGE)
			return rc;
		tried++;
		switch (how) {
		case OUT_NOT_SENT:
			rotate = true;
			break;
		case OUT_LOST:
			if (kind == CL_WRITE) {
				/* not this call's to retry, but the next call goes elsewhere */
				if (!only_endpoint)
					cl_endpoint_rotate(c, idx);
				return cl_set_error(MOOR_EINDETERMINATE,
				                    "%s (the write may or may not have applied)",
				                    tl_detail);
			}
			rotate = true;
			break;
		default: /* the server's error */
			if (cl_err_not_applied(rc)) {
				rotate = cl_err_rotate(rc);
			} else if (outcome_open(rc)) {
				if (kind == CL_WRITE) {
					if (!only_endpoint)
						cl_endpoint_rotate(c, idx);
					return cl_set_error(
					    MOOR_EINDETERMINATE,
					    "%s (the write may or may not have applied)",
					    tl_detail);
				}
				rotate = true;
			} else {
				return rc;
			}
			break;
		}
		cl_log(c, MOOR_CLIENT_LOG_INFO, "retrying %s: %s", path, tl_detail);
		if (rotate && !only_endpoint)
			cl_endpoint_rotate(c, idx);
		/* a full round of endpoints failed: back off before the next */
		if (only_endpoint || tried % c->n_endpoints == 0) {
			now = cl_now_ms();
			if (now + (uint64_t)backoff >= deadline)
				break;
			cl_sleep_ms(backoff);
			backoff = backoff * 2 > CL_BACKOFF_MAX_MS ? CL_BACKOFF_MAX_MS : backoff * 2;
		}
	}
	/* a read is never indeterminate: it simply found no answer in time */
	if (rc == MOOR_EUNAVAILABLE || rc == MOOR_EINDETERMINATE || rc == MOOR_ELEADERCHANGED)
		rc = MOOR_ETIMEOUT;
	return cl_set_error(rc, "%s: no endpoint answered within %d ms (last error: %s)", path,
	                    timeout_ms, tl_detail);
}

int cl_call(moor_client *c, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, enum cl_kind kind,
            const char *only_endpoint, ProtobufCMessage **resp)
{
	return cl_call_t(c, path, req, resp_desc, kind, only_endpoint, c->request_timeout_ms, resp);
}

int cl_call_t(moor_client *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, enum cl_kind kind,
              const char *only_endpoint, int timeout_ms, ProtobufCMessage **resp)
{
	struct moor_buf in, out;
	size_t len = protobuf_c_message_get_packed_size(req);
	int rc;

	moor_buf_init(&in, NULL);
	moor_buf_init(&out, NULL);
	rc = moor_buf_reserve(&in, len + 1);
	if (rc)
		return cl_set_error(rc, "out of memory");
	in.len = protobuf_c_message_pack(req, in.data);
	rc = cl_http_t(c, path, in.data, in.len, kind, only_endpoint, timeout_ms, &out);
	if (rc == 0) {
		*resp = moor_pb_check(resp_desc, out.data, out.len, MOOR_PB_MAX_DEPTH) == MOOR_PB_OK
		            ? protobuf_c_message_unpack(resp_desc, NULL, out.len, out.data)
		            : NULL;
		if (!*resp)
			rc = cl_set_error(MOOR_EPROTO, "%s: cannot decode the %s answer", path,
			                  resp_desc->name);
	}
	moor_buf_free(&in);
	moor_buf_free(&out);
	return rc;
}

int cl_frame_append(struct moor_buf *b, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	int rc = moor_buf_reserve(b, 4 + len);

	if (rc)
		return rc;
	moor_put_be32(b->data + b->len, (uint32_t)len);
	protobuf_c_message_pack(m, b->data + b->len + 4);
	b->len += 4 + len;
	return 0;
}

int cl_frame_next(const uint8_t *data, size_t len, size_t *off, const ProtobufCMessageDescriptor *d,
                  ProtobufCMessage **msg)
{
	uint32_t n;

	if (len - *off < 4)
		return 0;
	n = moor_get_be32(data + *off);
	if (n > CL_FRAME_MAX_BYTES)
		return cl_set_error(MOOR_ETOOLARGE, "frame of %u bytes", n);
	if (len - *off - 4 < n)
		return 0;
	*msg = moor_pb_check(d, data + *off + 4, n, MOOR_PB_MAX_DEPTH) == MOOR_PB_OK
	           ? protobuf_c_message_unpack(d, NULL, n, data + *off + 4)
	           : NULL;
	if (!*msg)
		return cl_set_error(MOOR_EPROTO, "cannot decode a %s frame", d->name);
	*off += 4 + n;
	return 1;
}

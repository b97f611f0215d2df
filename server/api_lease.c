/*
 * /v3/lease/keepalive: the body is a sequence of LeaseKeepAliveRequests
 * (JSON objects back to back, or 4-byte-length frames with Content-Type
 * application/x-protobuf); the response is one LeaseKeepAliveResponse per
 * request, in order, in the same encoding ({"result":...} lines for JSON),
 * and then the response ends. TTL 0 means the lease is gone. Each renewal
 * goes through raft (see server/node_lease.c).
 */
#include "server/api.h"

#include "common/error.h"
#include "server/gateway_errors.h"

#include <stdlib.h>
#include <string.h>

#define MAX_KEEPALIVES_PER_BODY 1024

struct kcall {
	struct srv_api *api;
	struct kcall *lnext, *lprev; /* api->kcalls */
	struct srv_stream *out;
	int proto;
	int closed;    /* the client went away */
	int in_flight; /* a proposal is out: the call lives until it returns */
	int64_t ids[MAX_KEEPALIVES_PER_BODY];
	size_t n, next;
};

static void kcall_unlink_free(struct kcall *k)
{
	if (k->lprev)
		k->lprev->lnext = k->lnext;
	else if (k->api->kcalls == k)
		k->api->kcalls = k->lnext;
	if (k->lnext)
		k->lnext->lprev = k->lprev;
	free(k);
}

static void kcall_maybe_free(struct kcall *k)
{
	if (k->closed && !k->in_flight)
		kcall_unlink_free(k);
}

/* After the HTTP server stopped, no callback can come for a call any more:
 * free what the server never reported closed. */
void srv_api_kcalls_free(struct srv_api *api)
{
	while (api->kcalls)
		kcall_unlink_free(api->kcalls);
}

static void write_error(struct kcall *k, int code)
{
	struct srv_gw_error e;
	struct moor_buf b;

	srv_gw_error_from_code(code, &e);
	moor_buf_init(&b, NULL);
	if (srv_gw_write_stream_error(&b, &e) == 0)
		srv_stream_write(k->out, b.data, b.len);
	moor_buf_free(&b);
	srv_stream_end(k->out);
}

static void write_resp(struct kcall *k, int64_t id, int64_t ttl)
{
	Etcdserverpb__LeaseKeepAliveResponse m = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	struct srv_node_info info;
	struct moor_buf b;
	int rc = 0;

	srv_node_info(k->api->node, &info);
	h.cluster_id = info.cluster_id;
	h.member_id = info.id;
	h.revision = info.revision;
	h.raft_term = info.term;
	m.header = &h;
	m.id = id;
	m.ttl = ttl;
	moor_buf_init(&b, NULL);
	rc = srv_api_stream_encode(&m.base, k->proto, &b);
	if (rc == 0)
		srv_stream_write(k->out, b.data, b.len);
	moor_buf_free(&b);
}

static void next(struct kcall *k);

static void on_renewed(void *ctx, int rc, void *resp, int64_t ttl)
{
	struct kcall *k = ctx;

	kv_response_free(resp);
	k->in_flight = 0;
	if (k->closed) {
		kcall_maybe_free(k);
		return;
	}
	if (rc) {
		write_error(k, rc);
		return;
	}
	write_resp(k, k->ids[k->next - 1], ttl);
	next(k);
}

static void next(struct kcall *k)
{
	Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
	Etcdserverpb__LeaseKeepAliveRequest ka = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
	int rc;

	if (k->next == k->n) {
		srv_stream_end(k->out);
		return;
	}
	ka.id = k->ids[k->next++];
	ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_KEEPALIVE;
	ir.lease_keepalive = &ka;
	rc = srv_node_propose(k->api->node, &ir, on_renewed, k);
	if (rc) {
		write_error(k, rc);
		return;
	}
	k->in_flight = 1;
}

static void on_closed(void *ctx)
{
	struct kcall *k = ctx;
	k->closed = 1;
	kcall_maybe_free(k);
}

void srv_api_keepalive(struct srv_api *api, struct srv_req *req, int proto)
{
	if (srv_api_keepalive_upgrade(api, req))
		return;
	struct srv_stream_callbacks cb = {on_closed, NULL, NULL};
	struct srv_gw_limits lim = {.max_request_bytes = api->cfg->max_request_bytes};
	struct srv_gw_error e;
	struct kcall *k = calloc(1, sizeof *k);
	const unsigned char *body;
	size_t len, off = 0;

	if (!k) {
		srv_req_reply(req, 503, "text/plain", "out of memory\n", 14);
		return;
	}
	k->api = api;
	k->proto = proto;
	cb.ctx = k;
	body = srv_req_body(req, &len);
	while (off < len && k->n < MAX_KEEPALIVES_PER_BODY) {
		Etcdserverpb__LeaseKeepAliveRequest *r = NULL;
		if (proto) {
			uint32_t fl;
			if (len - off < 4 || (fl = moor_get_be32(body + off)) > len - off - 4) {
				srv_gw_error_set(
				    &e, SRV_GRPC_INVALID_ARGUMENT,
				    "truncated LeaseKeepAliveRequest frame at byte %zu", off);
				goto bad;
			}
			r = etcdserverpb__lease_keep_alive_request__unpack(NULL, fl,
			                                                   body + off + 4);
			if (!r) {
				srv_gw_error_set(&e, SRV_GRPC_INVALID_ARGUMENT,
				                 "malformed LeaseKeepAliveRequest at byte %zu",
				                 off);
				goto bad;
			}
			off += 4 + fl;
		} else {
			size_t used = 0;
			ProtobufCMessage *m = NULL;
			if (srv_gw_decode_next(&etcdserverpb__lease_keep_alive_request__descriptor,
			                       body + off, len - off, true, &lim, &m, &used,
			                       &e) != 0)
				goto bad;
			off += used;
			if (!m)
				break;
			r = (Etcdserverpb__LeaseKeepAliveRequest *)m;
		}
		k->ids[k->n++] = r->id;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	if (srv_req_stream(req, 200, proto ? "application/x-protobuf" : "application/json", &cb,
	                   &k->out) != 0) {
		free(k);
		srv_req_reply(req, 503, "text/plain", "out of memory\n", 14);
		return;
	}
	k->lnext = api->kcalls;
	if (k->lnext)
		k->lnext->lprev = k;
	api->kcalls = k;
	next(k);
	return;
bad : {
	struct moor_buf b;
	moor_buf_init(&b, NULL);
	srv_gw_write_error(&b, &e);
	srv_req_reply(req, (unsigned)e.http_status, "application/json", b.data, b.len);
	moor_buf_free(&b);
	free(k);
}
}

/* ---- the upgraded keep-alive stream: frames both ways ---- */

struct ksock {
	uv_tcp_t tcp;
	struct srv_api *api;
	struct ksock *next, *prev; /* api->ksocks */
	struct srv_upgrade *up;
	uint8_t *rbuf;
	size_t rlen, rcap;
	int refs; /* the connection, plus one per keep-alive in flight */
	int closing;
};

struct kreq {
	struct ksock *k;
	int64_t id;
};

static void ksock_unref(struct ksock *k)
{
	if (--k->refs == 0) {
		free(k->rbuf);
		free(k);
	}
}

static void on_ksock_closed(uv_handle_t *h)
{
	ksock_unref(h->data);
}

void srv_api_ksock_close(struct ksock *k)
{
	if (k->closing)
		return;
	k->closing = 1;
	if (k->prev)
		k->prev->next = k->next;
	else if (k->api->ksocks == k)
		k->api->ksocks = k->next;
	if (k->next)
		k->next->prev = k->prev;
	uv_read_stop((uv_stream_t *)&k->tcp);
	srv_upgrade_release(k->up);
	k->up = NULL;
	uv_close((uv_handle_t *)&k->tcp, on_ksock_closed);
}

static void on_ksock_written(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

static void ksock_send(struct ksock *k, int64_t id, int64_t ttl)
{
	Etcdserverpb__LeaseKeepAliveResponse m = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	struct srv_node_info info;
	size_t len;
	uv_write_t *req;
	uv_buf_t b;

	if (k->closing)
		return;
	srv_node_info(k->api->node, &info);
	h.cluster_id = info.cluster_id;
	h.member_id = info.id;
	h.revision = info.revision;
	h.raft_term = info.term;
	m.header = &h;
	m.id = id;
	m.ttl = ttl;
	len = etcdserverpb__lease_keep_alive_response__get_packed_size(&m);
	req = malloc(sizeof *req + 4 + len);
	if (!req)
		return;
	uint8_t *p = (uint8_t *)(req + 1);
	moor_put_be32(p, (uint32_t)len);
	etcdserverpb__lease_keep_alive_response__pack(&m, p + 4);
	b = uv_buf_init((char *)p, (unsigned)(4 + len));
	if (uv_write(req, (uv_stream_t *)&k->tcp, &b, 1, on_ksock_written) != 0) {
		free(req);
		srv_api_ksock_close(k);
	}
}

static void on_ksock_renewed(void *ctx, int rc, void *resp, int64_t ttl)
{
	struct kreq *q = ctx;

	kv_response_free(resp);
	/* a renewal that failed (no leader...) is answered with TTL 0 only when
	 * the lease is gone; otherwise the client's next keep-alive retries */
	if (rc == 0)
		ksock_send(q->k, q->id, ttl);
	ksock_unref(q->k);
	free(q);
}

static void ksock_consume(struct ksock *k, const uint8_t *data, size_t len)
{
	size_t off = 0;

	if (k->rlen + len > k->rcap) {
		size_t cap = k->rcap ? k->rcap : 1024;
		uint8_t *b;
		while (cap < k->rlen + len)
			cap *= 2;
		if (cap > (1u << 20) || !(b = realloc(k->rbuf, cap))) {
			srv_api_ksock_close(k);
			return;
		}
		k->rbuf = b;
		k->rcap = cap;
	}
	if (len)
		memcpy(k->rbuf + k->rlen, data, len);
	k->rlen += len;
	while (!k->closing && k->rlen - off >= 4) {
		uint32_t n = moor_get_be32(k->rbuf + off);
		Etcdserverpb__LeaseKeepAliveRequest *r;
		if (n > 1024) { /* a keep-alive request is a few bytes */
			srv_api_ksock_close(k);
			return;
		}
		if (k->rlen - off - 4 < n)
			break;
		r = etcdserverpb__lease_keep_alive_request__unpack(NULL, n, k->rbuf + off + 4);
		off += 4 + n;
		if (!r) {
			srv_api_ksock_close(k);
			return;
		}
		Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
		struct kreq *q = malloc(sizeof *q);
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_KEEPALIVE;
		ir.lease_keepalive = r;
		if (q) {
			q->k = k;
			q->id = r->id;
			k->refs++;
			if (srv_node_propose(k->api->node, &ir, on_ksock_renewed, q) != 0) {
				k->refs--;
				free(q);
			}
		}
		etcdserverpb__lease_keep_alive_request__free_unpacked(r, NULL);
	}
	if (off && !k->closing) {
		memmove(k->rbuf, k->rbuf + off, k->rlen - off);
		k->rlen -= off;
	}
}

static void on_ksock_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(suggested);
	buf->len = buf->base ? suggested : 0;
}

static void on_ksock_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ksock *k = s->data;

	if (nread > 0)
		ksock_consume(k, (const uint8_t *)buf->base, (size_t)nread);
	else if (nread < 0)
		srv_api_ksock_close(k);
	free(buf->base);
}

static void on_ksock_upgraded(void *ctx, int fd, const char *extra, size_t extra_len,
                              struct srv_upgrade *up)
{
	struct ksock *k = ctx;

	if (fd < 0) {
		free(k);
		return;
	}
	k->up = up;
	k->refs = 1;
	uv_tcp_init(k->api->loop, &k->tcp);
	k->tcp.data = k;
	if (uv_tcp_open(&k->tcp, fd) != 0) {
		srv_api_ksock_close(k);
		return;
	}
	k->next = k->api->ksocks;
	if (k->next)
		k->next->prev = k;
	k->api->ksocks = k;
	uv_read_start((uv_stream_t *)&k->tcp, on_ksock_alloc, on_ksock_read);
	ksock_consume(k, (const uint8_t *)extra, extra_len);
}

int srv_api_keepalive_upgrade(struct srv_api *api, struct srv_req *req)
{
	const char *upgrade = srv_req_header(req, "Upgrade");
	struct ksock *k;

	if (!upgrade || strcmp(upgrade, SRV_KEEPALIVE_UPGRADE) != 0)
		return 0;
	k = calloc(1, sizeof *k);
	if (!k || srv_req_upgrade(req, SRV_KEEPALIVE_UPGRADE, on_ksock_upgraded, k) != 0) {
		free(k);
		srv_req_reply(req, 503, "text/plain", "out of memory\n", 14);
		return 1;
	}
	k->api = api;
	return 1;
}

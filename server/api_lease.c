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
	struct srv_stream *out;
	int proto;
	int closed;    /* the client went away */
	int in_flight; /* a proposal is out: the call lives until it returns */
	int64_t ids[MAX_KEEPALIVES_PER_BODY];
	size_t n, next;
};

static void kcall_maybe_free(struct kcall *k)
{
	if (k->closed && !k->in_flight)
		free(k);
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
	if (k->proto) {
		size_t len = etcdserverpb__lease_keep_alive_response__get_packed_size(&m);
		rc = moor_buf_reserve(&b, 4 + len);
		if (rc == 0) {
			moor_put_be32(b.data, (uint32_t)len);
			etcdserverpb__lease_keep_alive_response__pack(&m, b.data + 4);
			b.len = 4 + len;
		}
	} else {
		rc = srv_jsonpb_encode_result(&m.base, &b);
	}
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

/*
 * /v3/watch: the request body is a sequence of WatchRequests (JSON objects
 * back to back, or with Content-Type application/x-protobuf, frames of a
 * 4-byte big-endian length and a WatchRequest), the response a stream of
 * WatchResponses in the same encoding ({"result":...} lines for JSON, as
 * etcd's gateway writes them). One HTTP request is one watch stream of the
 * hub: its creates, cancels and progress requests are taken from the body;
 * the stream ends when the client closes the connection.
 *
 * Responses are pulled from the hub only while the connection's buffer is
 * under its high-water mark; a client that reads slowly leaves its events
 * in the hub, whose bounded queues send the watcher back to history.
 */
#include "server/api.h"

#include "common/error.h"
#include "server/gateway_errors.h"
#include "watch/watch.h"

#include <stdlib.h>
#include <unistd.h>
#include <string.h>

/* A watch stream on an upgraded connection: frames both ways. */
struct wsock {
	uv_tcp_t tcp;
	struct srv_upgrade *up;
	size_t queued; /* bytes handed to uv_write, not yet written */
	int over_high;
	uint8_t *rbuf;
	size_t rlen, rcap;
	int closing;
};

struct wcall {
	struct srv_api *api;
	struct srv_stream *out; /* an HTTP stream, or */
	struct wsock *sock;     /* an upgraded connection */
	struct watch_stream *ws;
	int proto;
	int queued; /* on api->ready */
	struct wcall *next, *prev;
	struct wcall *all_next, *all_prev; /* api->all */
};

static void all_unlink(struct srv_api *api, struct wcall *w)
{
	if (w->all_prev)
		w->all_prev->all_next = w->all_next;
	else if (api->all == w)
		api->all = w->all_next;
	if (w->all_next)
		w->all_next->all_prev = w->all_prev;
	w->all_next = w->all_prev = NULL;
}

static void ready_unlink(struct srv_api *api, struct wcall *w)
{
	if (!w->queued)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		api->ready = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->queued = 0;
}

static void ready_push(struct srv_api *api, struct wcall *w)
{
	if (w->queued)
		return;
	w->queued = 1;
	w->prev = NULL;
	w->next = api->ready;
	if (api->ready)
		api->ready->prev = w;
	api->ready = w;
	uv_idle_start(&api->pull_idle, srv_api_pull);
}

static void sock_close(struct wcall *w);
static void ready_push(struct srv_api *api, struct wcall *w);

struct sock_write {
	uv_write_t req;
	struct wcall *w;
	size_t len;
	uint8_t data[];
};

static void on_sock_written(uv_write_t *req, int status)
{
	struct sock_write *sw = (struct sock_write *)req;
	struct wcall *w = sw->w;
	struct wsock *k = w->sock;

	k->queued -= sw->len;
	free(sw);
	if (status < 0) {
		sock_close(w);
		return;
	}
	if (k->over_high && k->queued < SRV_STREAM_HIGH_WATER / 2 && !k->closing) {
		k->over_high = 0;
		ready_push(w->api, w);
	}
}

static int wc_write(struct wcall *w, const void *data, size_t len)
{
	struct sock_write *sw;
	uv_buf_t b;

	if (!w->sock)
		return srv_stream_write(w->out, data, len);
	if (w->sock->closing)
		return MOOR_ECLOSED;
	sw = malloc(sizeof *sw + len);
	if (!sw)
		return MOOR_ENOMEM;
	sw->w = w;
	sw->len = len;
	memcpy(sw->data, data, len);
	b = uv_buf_init((char *)sw->data, (unsigned)len);
	if (uv_write(&sw->req, (uv_stream_t *)&w->sock->tcp, &b, 1, on_sock_written) != 0) {
		free(sw);
		sock_close(w);
		return MOOR_ECLOSED;
	}
	w->sock->queued += len;
	if (w->sock->queued > SRV_STREAM_HIGH_WATER)
		w->sock->over_high = 1;
	return 0;
}

static size_t wc_buffered(const struct wcall *w)
{
	return w->sock ? w->sock->queued : srv_stream_buffered(w->out);
}

static void wc_end(struct wcall *w)
{
	if (w->sock)
		sock_close(w);
	else
		srv_stream_end(w->out);
}

static int write_msg(struct wcall *w, const ProtobufCMessage *m)
{
	struct moor_buf b;
	int rc;

	moor_buf_init(&b, NULL);
	rc = srv_api_stream_encode(m, w->proto, &b);
	if (rc == 0)
		rc = wc_write(w, b.data, b.len);
	moor_buf_free(&b);
	return rc;
}

static void header_fill(struct wcall *w, Etcdserverpb__ResponseHeader *h, int64_t rev)
{
	struct srv_node_info info;

	srv_node_info(w->api->node, &info);
	h->cluster_id = info.cluster_id;
	h->member_id = info.id;
	h->raft_term = info.term;
	h->revision = rev ? rev : info.revision;
}

/* Sends what the hub has for this stream, while the client keeps up. */
static void pull(struct wcall *w)
{
	struct watch_response r;
	int rc;

	while (w->ws && wc_buffered(w) < SRV_STREAM_HIGH_WATER) {
		Etcdserverpb__WatchResponse m = ETCDSERVERPB__WATCH_RESPONSE__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

		rc = watch_stream_next(w->ws, &r);
		if (rc <= 0)
			return;
		header_fill(w, &h, r.revision);
		m.header = &h;
		m.watch_id = r.watch_id;
		m.canceled = r.canceled;
		m.compact_revision = r.compact_revision;
		m.fragment = r.fragment;
		m.n_events = r.n_events;
		m.events = r.events;
		if (r.canceled && r.compact_revision)
			h.revision = 0; /* etcd's compacted answer: a header with no
			                   revision, and no cancel_reason */
		rc = write_msg(w, &m.base);
		watch_response_release(&r);
		if (rc)
			return;
	}
}

void srv_api_pull(uv_idle_t *idle)
{
	struct srv_api *api = idle->data;

	while (api->ready) {
		struct wcall *w = api->ready;
		ready_unlink(api, w);
		pull(w);
	}
	uv_idle_stop(idle);
}

static void on_notify(struct watch_stream *s, void *ctx)
{
	struct wcall *w = ctx;
	(void)s;
	ready_push(w->api, w); /* no hub call from inside the hub */
}

static void on_closed(void *ctx)
{
	struct wcall *w = ctx;

	ready_unlink(w->api, w);
	all_unlink(w->api, w);
	if (w->ws)
		watch_stream_close(w->ws);
	free(w);
}

/* The store was replaced by a snapshot: every watch ends, and its client
 * resumes from the last revision it saw. */
static void on_watch_reset(void *ctx)
{
	struct srv_api *api = ctx;

	for (struct wcall *w = api->all; w; w = w->all_next) {
		ready_unlink(api, w);
		if (w->ws) {
			watch_stream_close(w->ws);
			w->ws = NULL;
		}
		wc_end(w);
	}
	srv_api_locks_reset(api);
}

static void on_drained(void *ctx)
{
	struct wcall *w = ctx;
	ready_push(w->api, w);
}

static void create_watch(struct wcall *w, const Etcdserverpb__WatchCreateRequest *c)
{
	Etcdserverpb__WatchResponse m = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	struct watch_create wc = {0};
	int64_t id = -1, rev = 0;
	int rc;

	wc.key = c->key.data;
	wc.key_len = c->key.len;
	wc.range_end = c->range_end.data;
	wc.range_end_len = c->range_end.len;
	wc.start_rev = c->start_revision;
	wc.watch_id = c->watch_id ? c->watch_id : WATCH_AUTO_ID;
	wc.prev_kv = c->prev_kv;
	wc.progress_notify = c->progress_notify;
	wc.fragment = c->fragment;
	for (size_t i = 0; i < c->n_filters; i++) {
		if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
			wc.no_put = true;
		else if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
			wc.no_delete = true;
	}
	rc = watch_stream_watch(w->ws, &wc, &id, &rev);
	header_fill(w, &h, rev);
	m.header = &h;
	m.created = true;
	m.watch_id = id;
	if (rc) {
		struct srv_gw_error e;
		srv_gw_error_from_code(rc, &e);
		m.watch_id = -1;
		m.canceled = true;
		m.cancel_reason = e.message;
	}
	write_msg(w, &m.base);
}

static void handle_request(struct wcall *w, const Etcdserverpb__WatchRequest *r)
{
	switch (r->request_union_case) {
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
		create_watch(w, r->create_request);
		break;
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST: {
		Etcdserverpb__WatchResponse m = ETCDSERVERPB__WATCH_RESPONSE__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		int64_t id = r->cancel_request->watch_id;
		if (watch_stream_cancel(w->ws, id) != 0)
			break;
		header_fill(w, &h, 0);
		m.header = &h;
		m.watch_id = id;
		m.canceled = true;
		write_msg(w, &m.base);
		break;
	}
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
		watch_stream_request_progress(w->ws);
		break;
	default:
		break;
	}
}

static void stream_error(struct wcall *w, const struct srv_gw_error *e)
{
	struct moor_buf b;

	moor_buf_init(&b, NULL);
	if (srv_gw_write_stream_error(&b, e) == 0)
		srv_stream_write(w->out, b.data, b.len);
	moor_buf_free(&b);
	srv_stream_end(w->out);
}

static void srv_api_watch_stream(struct srv_api *api, struct srv_req *req, int proto);
static void handle_request(struct wcall *w, const Etcdserverpb__WatchRequest *r);

/* ---- the upgraded connection: frames both ways ---- */

#define WSOCK_MAX_FRAME (4u << 20)

static void on_sock_closed(uv_handle_t *h)
{
	struct wcall *w = h->data;

	free(w->sock->rbuf);
	free(w->sock);
	free(w);
}

static void sock_close(struct wcall *w)
{
	struct wsock *k = w->sock;

	if (k->closing)
		return;
	k->closing = 1;
	ready_unlink(w->api, w);
	all_unlink(w->api, w);
	if (w->ws) {
		watch_stream_close(w->ws);
		w->ws = NULL;
	}
	uv_read_stop((uv_stream_t *)&k->tcp);
	srv_upgrade_release(k->up); /* before the HTTP server may stop */
	k->up = NULL;
	uv_close((uv_handle_t *)&k->tcp, on_sock_closed);
}

/* Frames that came in: each a 4-byte length and a WatchRequest. */
static void sock_consume(struct wcall *w, const uint8_t *data, size_t len)
{
	struct wsock *k = w->sock;
	size_t off = 0;

	if (len) {
		if (k->rlen + len > k->rcap) {
			size_t cap = k->rcap ? k->rcap : 4096;
			uint8_t *b;
			while (cap < k->rlen + len)
				cap *= 2;
			b = realloc(k->rbuf, cap);
			if (!b) {
				sock_close(w);
				return;
			}
			k->rbuf = b;
			k->rcap = cap;
		}
		memcpy(k->rbuf + k->rlen, data, len);
		k->rlen += len;
	}
	while (!k->closing && k->rlen - off >= 4) {
		uint32_t n = moor_get_be32(k->rbuf + off);
		Etcdserverpb__WatchRequest *r;
		if (n > WSOCK_MAX_FRAME) {
			moor_log(w->api->log, MOOR_LOG_WARN, "api",
			         "watch stream: a %u-byte frame is over the limit; closing", n);
			sock_close(w);
			return;
		}
		if (k->rlen - off - 4 < n)
			break;
		r = etcdserverpb__watch_request__unpack(NULL, n, k->rbuf + off + 4);
		off += 4 + n;
		if (!r) {
			moor_log(w->api->log, MOOR_LOG_WARN, "api",
			         "watch stream: malformed WatchRequest; closing");
			sock_close(w);
			return;
		}
		handle_request(w, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	if (off && !k->closing) {
		memmove(k->rbuf, k->rbuf + off, k->rlen - off);
		k->rlen -= off;
	}
	if (!k->closing)
		ready_push(w->api, w);
}

static void on_sock_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(suggested);
	buf->len = buf->base ? suggested : 0;
}

static void on_sock_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct wcall *w = s->data;

	if (nread > 0)
		sock_consume(w, (const uint8_t *)buf->base, (size_t)nread);
	else if (nread < 0)
		sock_close(w);
	free(buf->base);
}

static void on_upgraded(void *ctx, int fd, const char *extra, size_t extra_len,
                        struct srv_upgrade *up)
{
	struct wcall *w = ctx;
	struct watch_stream_config wsc = {on_notify, w};
	struct wsock *k;

	if (fd < 0 || !(k = calloc(1, sizeof *k))) {
		if (fd >= 0)
			close(fd);
		srv_upgrade_release(up);
		free(w);
		return;
	}
	w->sock = k;
	k->up = up;
	uv_tcp_init(w->api->loop, &k->tcp);
	k->tcp.data = w;
	if (uv_tcp_open(&k->tcp, fd) != 0 ||
	    watch_stream_open(srv_node_hub(w->api->node), &wsc, &w->ws) != 0) {
		sock_close(w);
		return;
	}
	w->all_next = w->api->all;
	if (w->api->all)
		w->api->all->all_prev = w;
	w->api->all = w;
	uv_read_start((uv_stream_t *)&k->tcp, on_sock_alloc, on_sock_read);
	sock_consume(w, (const uint8_t *)extra, extra_len);
}

void srv_api_watch(struct srv_api *api, struct srv_req *req, int proto)
{
	const char *upgrade = srv_req_header(req, "Upgrade");

	if (upgrade && strcmp(upgrade, SRV_WATCH_UPGRADE) == 0) {
		struct wcall *w = calloc(1, sizeof *w);
		if (!w || srv_req_upgrade(req, SRV_WATCH_UPGRADE, on_upgraded, w) != 0) {
			free(w);
			srv_req_reply(req, 503, "text/plain", "out of memory\n", 14);
			return;
		}
		w->api = api;
		w->proto = 1;
		return;
	}
	srv_api_watch_stream(api, req, proto);
}

static void srv_api_watch_stream(struct srv_api *api, struct srv_req *req, int proto)
{

	struct srv_stream_callbacks cb = {on_closed, on_drained, NULL};
	struct watch_stream_config wsc = {on_notify, NULL};
	struct srv_gw_limits lim = {.max_request_bytes = api->cfg->max_request_bytes};
	struct srv_gw_error e;
	struct wcall *w = calloc(1, sizeof *w);
	const unsigned char *body;
	size_t len, off = 0;

	if (!w)
		goto fail;
	w->api = api;
	w->proto = proto;
	cb.ctx = w;
	wsc.ctx = w;
	if (watch_stream_open(srv_node_hub(api->node), &wsc, &w->ws) != 0)
		goto fail;
	if (srv_req_stream(req, 200, proto ? "application/x-protobuf" : "application/json", &cb,
	                   &w->out) != 0) {
		watch_stream_close(w->ws);
		goto fail;
	}
	w->all_next = api->all;
	if (api->all)
		api->all->all_prev = w;
	api->all = w;
	body = srv_req_body(req, &len);
	while (off < len) {
		Etcdserverpb__WatchRequest *r = NULL;
		if (proto) {
			uint32_t n;
			if (len - off < 4 || (n = moor_get_be32(body + off)) > len - off - 4) {
				srv_gw_error_set(&e, SRV_GRPC_INVALID_ARGUMENT,
				                 "truncated WatchRequest frame at byte %zu", off);
				stream_error(w, &e);
				return;
			}
			r = etcdserverpb__watch_request__unpack(NULL, n, body + off + 4);
			if (!r) {
				srv_gw_error_set(&e, SRV_GRPC_INVALID_ARGUMENT,
				                 "malformed WatchRequest at byte %zu", off);
				stream_error(w, &e);
				return;
			}
			off += 4 + n;
		} else {
			size_t used = 0;
			ProtobufCMessage *m = NULL;
			if (srv_gw_decode_next(&etcdserverpb__watch_request__descriptor, body + off,
			                       len - off, true, &lim, &m, &used, &e) != 0) {
				stream_error(w, &e);
				return;
			}
			off += used;
			if (!m)
				break;
			r = (Etcdserverpb__WatchRequest *)m;
		}
		handle_request(w, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	ready_push(api, w);
	return;
fail:
	free(w);
	srv_req_reply(req, 503, "application/json",
	              "{\"error\":\"out of memory\",\"code\":8,\"message\":\"out of memory\"}", 62);
}

void srv_api_init(struct srv_api *api, uv_loop_t *loop, struct srv_node *node,
                  const struct srv_config *cfg, const struct moor_logger *log)
{
	memset(api, 0, sizeof *api);
	api->node = node;
	api->cfg = cfg;
	api->log = log;
	api->loop = loop;
	for (int i = 0; i < SRV_RPC_COUNT; i++)
		api->latency[i].fine = 1;
	uv_idle_init(loop, &api->pull_idle);
	api->pull_idle.data = api;
	srv_node_set_watch_reset(node, on_watch_reset, api);
	srv_api_locks_init(api);
}

void srv_api_close(struct srv_api *api)
{
	struct wcall *w = api->all, *next;

	api->closed = 1;
	srv_api_moves_cancel(api);
	srv_api_locks_close(api);
	while (api->ksocks)
		srv_api_ksock_close(api->ksocks);
	for (; w; w = next) {
		next = w->all_next;
		if (w->sock)
			sock_close(w); /* upgraded connections go before MHD stops */
	}
	uv_idle_stop(&api->pull_idle);
	uv_close((uv_handle_t *)&api->pull_idle, NULL);
}

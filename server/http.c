/*
 * libmicrohttpd inside the libuv loop (see http.h). One srv_req per request
 * collects the body; the route is called when the body is complete; the
 * response is queued from the access handler, the only place MHD allows it.
 */
#include "server/http.h"

#include "common/assert.h"
#include "common/buf.h"
#include "common/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct srv_stream {
	struct srv_listener *l;
	struct MHD_Connection *conn;
	struct moor_buf buf;
	size_t off; /* sent from buf */
	struct srv_stream_callbacks cb;
	int suspended, ended, closed, over_high;
	int refs; /* the response and the request each hold one */
	uint64_t last_poke_ms;
	struct srv_stream *next, *prev; /* the listener's live streams */
};

struct srv_listener {
	struct srv_http *http;
	int verify_clients;        /* https with --client-cert-auth */
	struct srv_req *suspended; /* deferred requests, for srv_http_stop */
	int quiesced;
	struct srv_stream *streams;
	uv_timer_t poke;
	struct MHD_Daemon *mhd;
	int fd;
	unsigned port;
	uv_poll_t poll;
	uv_timer_t timer;
	int handles_open;
};

struct srv_http {
	uv_loop_t *loop;
	struct srv_http_config cfg;
	struct srv_listener l[SRV_MAX_URLS];
	int n;
	int stopping;
};

enum req_state { REQ_READING, REQ_IN_ROUTE, REQ_DEFERRED, REQ_REPLIED, REQ_QUEUED };

struct srv_req {
	struct srv_listener *l;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	unsigned char *body;
	size_t len, cap;
	int too_large;
	enum req_state state;
	int gone; /* the connection closed while deferred */
	struct MHD_Response *resp;
	unsigned status;
	struct srv_stream *stream;
	struct srv_req *snext, *sprev; /* the listener's suspended requests */
	int orphan, orphan_refs;       /* answered by srv_http_stop, still owned */
	int in_route;                  /* the route function is running */
	int suspended;                 /* MHD_suspend_connection was called */
};

static void listener_schedule(struct srv_listener *l);
static void on_timer(uv_timer_t *t);

static void listener_run(struct srv_listener *l)
{
	if (!l->mhd)
		return;
	MHD_run(l->mhd);
	listener_schedule(l);
}

static void on_timer(uv_timer_t *t)
{
	listener_run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	listener_run(p->data);
}

static void listener_schedule(struct srv_listener *l)
{
	MHD_UNSIGNED_LONG_LONG to;

	if (!l->mhd)
		return;
	if (MHD_get_timeout(l->mhd, &to) == MHD_YES)
		uv_timer_start(&l->timer, on_timer, to, 0);
	else
		uv_timer_stop(&l->timer);
}

static int bind_listener(const struct srv_url *u, int *fd_out, unsigned *port_out, char *err,
                         size_t errlen)
{
	struct addrinfo hints = {0}, *ai = NULL;
	char port[8];
	int fd, one = 1, rc;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof port, "%u", u->port);
	rc = getaddrinfo(u->host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->text, gai_strerror(rc));
		return MOOR_EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		rc = -errno;
		close(fd);
		goto fail;
	}
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                           : ((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(ai);
	*fd_out = fd;
	return 0;
fail:
	snprintf(err, errlen, "cannot listen on %s: %s", u->text, strerror(-rc));
	freeaddrinfo(ai);
	return rc;
}

static void susp_link(struct srv_listener *l, struct srv_req *r)
{
	r->sprev = NULL;
	r->snext = l->suspended;
	if (l->suspended)
		l->suspended->sprev = r;
	l->suspended = r;
}

static void susp_unlink(struct srv_req *r)
{
	struct srv_listener *l = r->l;

	if (r->sprev)
		r->sprev->snext = r->snext;
	else if (l->suspended == r)
		l->suspended = r->snext;
	if (r->snext)
		r->snext->sprev = r->sprev;
	r->snext = r->sprev = NULL;
}

/* Stopping: MHD must not be stopped with suspended connections. Each
 * deferred request is answered 503 now; its owner's answer, when it comes,
 * is dropped (srv_req_reply returns MOOR_ECLOSED). */
static void answer_suspended(struct srv_listener *l)
{
	static const char msg[] = "{\"error\":\"etcdserver: server stopped\",\"code\":14,"
	                          "\"message\":\"etcdserver: server stopped\"}";

	while (l->suspended) {
		struct srv_req *r = l->suspended;
		susp_unlink(r);
		r->resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg,
		                                          MHD_RESPMEM_PERSISTENT);
		if (r->resp)
			MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE,
			                        "application/json");
		r->status = 503;
		r->state = REQ_REPLIED;
		r->suspended = 0;
		r->orphan = 1;
		r->orphan_refs = 2; /* MHD's completion and the owner's answer */
		MHD_resume_connection(r->conn);
	}
}

static void stream_unref(struct srv_stream *st)
{
	if (--st->refs > 0)
		return;
	moor_buf_free(&st->buf);
	free(st);
}

/* The client went away, or the stream ended and was sent: tell the owner
 * once, and take the stream off the listener's list. */
static void stream_closed(struct srv_stream *st)
{
	if (st->closed)
		return;
	st->closed = 1;
	if (st->prev)
		st->prev->next = st->next;
	else
		st->l->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	if (st->cb.on_closed)
		st->cb.on_closed(st->cb.ctx);
}

static void stream_wake(struct srv_stream *st)
{
	if (!st->suspended)
		return;
	st->suspended = 0;
	MHD_resume_connection(st->conn);
	uv_timer_start(&st->l->timer, on_timer, 0, 0);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct srv_stream *st = cls;
	size_t avail = st->buf.len - st->off;

	(void)pos;
	if (st->closed)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (avail == 0) {
		if (st->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		st->suspended = 1;
		MHD_suspend_connection(st->conn);
		return 0;
	}
	if (avail > max)
		avail = max;
	memcpy(out, st->buf.data + st->off, avail);
	st->off += avail;
	if (st->off == st->buf.len) {
		st->off = 0;
		st->buf.len = 0;
	} else if (st->off > (1u << 20) && st->off * 2 > st->buf.len) {
		memmove(st->buf.data, st->buf.data + st->off, st->buf.len - st->off);
		st->buf.len -= st->off;
		st->off = 0;
	}
	if (st->over_high && st->buf.len - st->off < SRV_STREAM_HIGH_WATER / 2) {
		st->over_high = 0;
		if (st->cb.on_drained)
			st->cb.on_drained(st->cb.ctx);
	}
	return (ssize_t)avail;
}

static void stream_response_free(void *cls)
{
	stream_unref(cls);
}

/* Wakes idle streams now and then, so that a client that closed its end is
 * noticed by MHD (a suspended connection is not watched). */
static void on_poke(uv_timer_t *t)
{
	struct srv_listener *l = t->data;
	uint64_t now = uv_now(l->http->loop);

	for (struct srv_stream *st = l->streams; st; st = st->next)
		if (st->suspended && now - st->last_poke_ms >= SRV_STREAM_POKE_MS) {
			st->last_poke_ms = now;
			stream_wake(st);
		}
}

int srv_req_stream(struct srv_req *r, unsigned status, const char *content_type,
                   const struct srv_stream_callbacks *cb, struct srv_stream **out)
{
	struct srv_stream *st = calloc(1, sizeof *st);

	MOOR_ASSERT(r->state == REQ_IN_ROUTE);
	if (!st)
		return MOOR_ENOMEM;
	st->l = r->l;
	st->conn = r->conn;
	st->cb = *cb;
	moor_buf_init(&st->buf, NULL);
	r->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, st,
	                                            stream_response_free);
	if (!r->resp) {
		free(st);
		return MOOR_ENOMEM;
	}
	st->refs = 2;
	if (content_type)
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	r->status = status;
	r->state = REQ_REPLIED;
	r->stream = st;
	st->last_poke_ms = uv_now(r->l->http->loop);
	st->next = r->l->streams;
	if (st->next)
		st->next->prev = st;
	r->l->streams = st;
	*out = st;
	return 0;
}

int srv_stream_write(struct srv_stream *st, const void *data, size_t len)
{
	int rc;

	if (st->closed || st->ended)
		return MOOR_ECLOSED;
	rc = moor_buf_append(&st->buf, data, len);
	if (rc)
		return rc;
	if (st->buf.len - st->off > SRV_STREAM_HIGH_WATER)
		st->over_high = 1;
	stream_wake(st);
	return 0;
}

size_t srv_stream_buffered(const struct srv_stream *st)
{
	return st->buf.len - st->off;
}

void srv_stream_end(struct srv_stream *st)
{
	if (st->closed || st->ended)
		return;
	st->ended = 1;
	stream_wake(st);
}

static void req_free(struct srv_req *r)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	free(r->body);
	free(r);
}

static enum MHD_Result queue_reply(struct srv_req *r)
{
	enum MHD_Result ok = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	r->state = REQ_QUEUED;
	return ok;
}

/* Per TLS connection of a listener that verifies clients: whether its
 * certificate was checked, so that is done once per connection. */
struct conn_tls {
	int verified;
};

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct srv_listener *l = cls;
	const union MHD_ConnectionInfo *ci;

	if (!l->verify_clients)
		return;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
		return;
	}
	/* Called before the handshake: make it demand a verified certificate. */
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci && ci->tls_session)
		srv_tls_session_require_client_cert(ci->tls_session);
	/* NULL on ENOMEM: the check below then runs on every request */
	*socket_context = calloc(1, sizeof(struct conn_tls));
}

/* The second guard behind the handshake: 1 when the connection's client
 * certificate verifies against the trusted CAs. */
static int client_verified(struct srv_listener *l, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	struct conn_tls *ct = NULL;
	char why[256];

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci)
		ct = ci->socket_context;
	if (ct && ct->verified)
		return 1;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session) {
		snprintf(why, sizeof why, "no TLS session");
	} else if (srv_tls_session_peer_verified(ci->tls_session, why, sizeof why) == 0) {
		if (ct)
			ct->verified = 1;
		return 1;
	}
	moor_log(l->http->cfg.logger, MOOR_LOG_WARN, "http",
	         "closing a client connection on port %u: %s", l->port, why);
	return 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct srv_listener *l = cls;
	struct srv_http *h = l->http;
	struct srv_req *r = *con_cls;

	(void)version;
	if (!r) {
		if (l->verify_clients && !client_verified(l, conn))
			return MHD_NO; /* closes the connection */
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->l = l;
		r->conn = conn;
		r->method = method;
		r->url = url;
		*con_cls = r;
		return MHD_YES;
	}
	if (r->state == REQ_READING && *upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->too_large || r->len + n > h->cfg.max_body_bytes) {
			r->too_large = 1;
			return MHD_YES;
		}
		if (r->len + n > r->cap) {
			size_t cap = r->cap ? r->cap : 4096;
			while (cap < r->len + n)
				cap *= 2;
			unsigned char *b = realloc(r->body, cap);
			if (!b)
				return MHD_NO;
			r->body = b;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->state == REQ_READING) {
		if (r->too_large) {
			static const char msg[] = "{\"error\":\"etcdserver: request is too large\","
			                          "\"code\":3,\"message\":\"etcdserver: request is "
			                          "too large\"}";
			srv_req_reply(r, 400, "application/json", msg,
			              sizeof msg - 1); /* as etcd */
		} else {
			r->state = REQ_IN_ROUTE;
			r->in_route = 1;
			h->cfg.route(h->cfg.route_ctx, r);
			r->in_route = 0;
			if (r->state == REQ_DEFERRED) {
				/* suspended only now: an answer given during the
				 * route needs no resume */
				r->suspended = 1;
				MHD_suspend_connection(r->conn);
				susp_link(l, r);
			}
			if (r->state == REQ_IN_ROUTE) {
				static const char msg[] = "internal error: no reply\n";
				srv_req_reply(r, 500, "text/plain", msg, sizeof msg - 1);
			}
		}
	}
	if (r->state == REQ_REPLIED)
		return queue_reply(r);
	return MHD_YES; /* deferred: resumed by srv_req_reply */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct srv_req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!r)
		return;
	*con_cls = NULL;
	if (r->stream) {
		stream_closed(r->stream);
		stream_unref(r->stream);
		r->stream = NULL;
	}
	if (r->orphan) {
		/* answered by the stopping server; its owner still holds it */
		if (--r->orphan_refs == 0)
			req_free(r);
		return;
	}
	if (r->state == REQ_DEFERRED) {
		/* The owner of a deferred request still holds it: mark it and let
		 * srv_req_reply free it. */
		susp_unlink(r);
		r->gone = 1;
		return;
	}
	req_free(r);
}

int srv_http_start(uv_loop_t *loop, const struct srv_http_config *cfg, struct srv_http **out,
                   char *err, size_t errlen)
{
	struct srv_http *h = calloc(1, sizeof *h);
	int rc = 0;

	if (!h)
		return MOOR_ENOMEM;
	h->loop = loop;
	h->cfg = *cfg;
	for (int i = 0; i < cfg->urls->n; i++) {
		struct srv_listener *l = &h->l[i];
		l->http = h;
		rc = bind_listener(&cfg->urls->url[i], &l->fd, &l->port, err, errlen);
		if (rc)
			goto fail;
		h->n = i + 1;
		unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
		struct MHD_OptionItem tls_opts[4];
		int nt = 0;
		if (cfg->urls->url[i].tls) {
			MOOR_ASSERT(cfg->tls && cfg->tls->pairs);
			flags |= MHD_USE_TLS;
			/* the pair through a callback, so that it can be reloaded */
			srv_tls_serve(cfg->tls, cfg->logger);
			tls_opts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
			                                         (void *)srv_tls_cert_callback};
			if (cfg->tls->client_cert_auth) {
				MOOR_ASSERT(cfg->tls->ca_pem);
				tls_opts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST,
				                                         0, cfg->tls->ca_pem};
				l->verify_clients = 1;
			}
		}
		tls_opts[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
		l->mhd = MHD_start_daemon(
		    flags, 0, NULL, NULL, on_access, l, MHD_OPTION_LISTEN_SOCKET, l->fd,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_NOTIFY_CONNECTION,
		    on_connection, l, MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s,
		    MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_ARRAY, tls_opts,
		    MHD_OPTION_END);
		if (!l->mhd) {
			close(l->fd);
			snprintf(err, errlen, "cannot start the HTTP server on %s%s",
			         cfg->urls->url[i].text,
			         cfg->urls->url[i].tls &&
			                 MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES
			             ? ": this libmicrohttpd has no TLS support"
			             : "");
			rc = MOOR_EINVAL;
			goto fail;
		}
		const union MHD_DaemonInfo *info =
		    MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
		uv_poll_init(loop, &l->poll, info->epoll_fd);
		uv_timer_init(loop, &l->timer);
		uv_timer_init(loop, &l->poke);
		l->poll.data = l;
		l->timer.data = l;
		l->poke.data = l;
		l->handles_open = 3;
		uv_timer_start(&l->poke, on_poke, SRV_STREAM_POKE_MS, SRV_STREAM_POKE_MS);
		uv_poll_start(&l->poll, UV_READABLE, on_poll);
		listener_schedule(l);
	}
	*out = h;
	return 0;
fail:
	srv_http_stop(h);
	return rc;
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct srv_listener *l = handle->data;
	struct srv_http *h = l->http;

	l->handles_open--;
	for (int i = 0; i < h->n; i++)
		if (h->l[i].handles_open)
			return;
	free(h);
}

void srv_http_stop(struct srv_http *h)
{
	int pending = 0;

	h->stopping = 1;
	for (int i = 0; i < h->n; i++) {
		struct srv_listener *l = &h->l[i];
		if (!l->mhd)
			continue;
		/* MHD must not be stopped with suspended connections: end every
		 * stream and let MHD run once so they are resumed. */
		for (struct srv_stream *st = l->streams; st; st = st->next) {
			st->ended = 1;
			stream_wake(st);
		}
		answer_suspended(l);
		MHD_run(l->mhd);
		if (l->handles_open) {
			uv_poll_stop(&l->poll);
			uv_close((uv_handle_t *)&l->poll, on_handle_closed);
			uv_close((uv_handle_t *)&l->timer, on_handle_closed);
			uv_close((uv_handle_t *)&l->poke, on_handle_closed);
			pending = 1;
		}
		/* MHD closes the listening socket we gave it. */
		MHD_stop_daemon(l->mhd);
		l->mhd = NULL;
	}
	if (!pending)
		free(h);
}

void srv_http_quiesce(struct srv_http *h)
{
	for (int i = 0; i < h->n; i++) {
		struct srv_listener *l = &h->l[i];
		if (!l->mhd || l->quiesced)
			continue;
		MHD_socket fd = MHD_quiesce_daemon(l->mhd);
		if (fd != MHD_INVALID_SOCKET)
			close(fd); /* MHD hands the listening socket back to us */
		l->quiesced = 1;
	}
}

unsigned srv_http_port(const struct srv_http *h, int i)
{
	return i < h->n ? h->l[i].port : 0;
}

const char *srv_req_method(const struct srv_req *r)
{
	return r->method;
}

const char *srv_req_path(const struct srv_req *r)
{
	return r->url;
}

const char *srv_req_header(const struct srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *srv_req_query(const struct srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int srv_req_has_query(const struct srv_req *r, const char *name)
{
	const char *v = NULL;
	return MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
	                                     NULL) == MHD_YES;
}

const unsigned char *srv_req_body(const struct srv_req *r, size_t *len)
{
	*len = r->len;
	return r->body ? r->body : (const unsigned char *)"";
}

int srv_req_reply(struct srv_req *r, unsigned status, const char *content_type, const void *body,
                  size_t len)
{
	if (r->gone) {
		req_free(r);
		return MOOR_ECLOSED;
	}
	if (r->orphan) { /* the server answered it when it stopped */
		if (--r->orphan_refs == 0)
			req_free(r);
		return MOOR_ECLOSED;
	}
	MOOR_ASSERT(r->state == REQ_IN_ROUTE || r->state == REQ_DEFERRED ||
	            r->state == REQ_READING);
	r->resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r->resp)
		return MOOR_ENOMEM;
	if (content_type)
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	r->status = status;
	if (r->state == REQ_DEFERRED && r->suspended) {
		r->state = REQ_REPLIED;
		r->suspended = 0;
		susp_unlink(r);
		MHD_resume_connection(r->conn);
		uv_timer_start(&r->l->timer, on_timer, 0, 0);
	} else {
		r->state = REQ_REPLIED;
	}
	return 0;
}

struct upgrade_ctx {
	srv_upgraded_fn fn;
	void *ctx;
};

static void on_mhd_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                           size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct upgrade_ctx *u = cls;
	int fd = dup(sock);

	(void)conn;
	(void)con_cls;
	if (fd < 0) {
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		u->fn(u->ctx, -1, NULL, 0, NULL);
	} else {
		u->fn(u->ctx, fd, extra, extra_len, (struct srv_upgrade *)urh);
	}
	free(u);
}

int srv_req_upgrade(struct srv_req *r, const char *protocol, srv_upgraded_fn fn, void *ctx)
{
	struct upgrade_ctx *u = malloc(sizeof *u);

	MOOR_ASSERT(r->state == REQ_IN_ROUTE);
	if (!u)
		return MOOR_ENOMEM;
	u->fn = fn;
	u->ctx = ctx;
	r->resp = MHD_create_response_for_upgrade(on_mhd_upgrade, u);
	if (!r->resp) {
		free(u);
		return MOOR_ENOMEM;
	}
	MHD_add_response_header(r->resp, MHD_HTTP_HEADER_UPGRADE, protocol);
	MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
	r->state = REQ_REPLIED;
	return 0;
}

void srv_upgrade_release(struct srv_upgrade *handle)
{
	if (handle)
		MHD_upgrade_action((struct MHD_UpgradeResponseHandle *)handle,
		                   MHD_UPGRADE_ACTION_CLOSE);
}

int srv_req_peer_closed(const struct srv_req *r)
{
	const union MHD_ConnectionInfo *ci;
	char c;
	ssize_t n;

	if (r->gone || r->orphan)
		return 1;
	if (r->state != REQ_DEFERRED || !r->suspended)
		return 0;
	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return 0;
	n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void srv_req_defer(struct srv_req *r)
{
	MOOR_ASSERT(r->state == REQ_IN_ROUTE && r->in_route);
	r->state = REQ_DEFERRED; /* suspended when the route returns */
}

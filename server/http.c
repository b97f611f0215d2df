/*
 * libmicrohttpd inside the libuv loop (see http.h). One srv_req per request
 * collects the body; the route is called when the body is complete; the
 * response is queued from the access handler, the only place MHD allows it.
 */
#include "server/http.h"

#include "common/assert.h"
#include "common/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct srv_listener {
	struct srv_http *http;
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
};

static void listener_schedule(struct srv_listener *l);

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

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct srv_listener *l = cls;
	struct srv_http *h = l->http;
	struct srv_req *r = *con_cls;

	(void)version;
	if (!r) {
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
			srv_req_reply(r, 413, "application/json", msg, sizeof msg - 1);
		} else {
			r->state = REQ_IN_ROUTE;
			h->cfg.route(h->cfg.route_ctx, r);
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
	if (r->state == REQ_DEFERRED) {
		/* The owner of a deferred request still holds it: mark it and let
		 * srv_req_reply free it. */
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
		l->mhd = MHD_start_daemon(
		    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_access, l,
		    MHD_OPTION_LISTEN_SOCKET, l->fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
		    MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s,
		    MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_END);
		if (!l->mhd) {
			close(l->fd);
			snprintf(err, errlen, "cannot start the HTTP server on %s",
			         cfg->urls->url[i].text);
			rc = MOOR_EINVAL;
			goto fail;
		}
		const union MHD_DaemonInfo *info =
		    MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
		uv_poll_init(loop, &l->poll, info->epoll_fd);
		uv_timer_init(loop, &l->timer);
		l->poll.data = l;
		l->timer.data = l;
		l->handles_open = 2;
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
		if (l->handles_open) {
			uv_poll_stop(&l->poll);
			uv_close((uv_handle_t *)&l->poll, on_handle_closed);
			uv_close((uv_handle_t *)&l->timer, on_handle_closed);
			pending = 1;
		}
		/* MHD closes the listening socket we gave it. */
		MHD_stop_daemon(l->mhd);
		l->mhd = NULL;
	}
	if (!pending)
		free(h);
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
	MOOR_ASSERT(r->state == REQ_IN_ROUTE || r->state == REQ_DEFERRED ||
	            r->state == REQ_READING);
	r->resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r->resp)
		return MOOR_ENOMEM;
	if (content_type)
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	r->status = status;
	if (r->state == REQ_DEFERRED) {
		r->state = REQ_REPLIED;
		MHD_resume_connection(r->conn);
		uv_timer_start(&r->l->timer, on_timer, 0, 0);
	} else {
		r->state = REQ_REPLIED;
	}
	return 0;
}

void srv_req_defer(struct srv_req *r)
{
	MOOR_ASSERT(r->state == REQ_IN_ROUTE);
	r->state = REQ_DEFERRED;
	MHD_suspend_connection(r->conn);
}

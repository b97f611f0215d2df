/*
 * The HTTP front of moord: libmicrohttpd daemons driven from the libuv loop.
 *
 * Each listen URL gets a listening socket that we bind ourselves (so a port
 * already taken is reported by name) and an MHD daemon in external-epoll
 * mode: no thread per connection and no internal polling thread. Its epoll
 * fd is registered with the loop through uv_poll, and a uv_timer follows
 * MHD_get_timeout, so all connection work runs on the loop thread.
 *
 * A request reaches the route function once its whole body has arrived
 * (bounded by max_body_bytes; a larger body is refused with 413 before the
 * route sees it). The route answers at once with srv_req_reply(), or defers:
 * srv_req_defer() suspends the connection, and a later srv_req_reply() from
 * the loop resumes it. Not thread-safe: every call on the loop thread.
 */
#ifndef MOOR_SERVER_HTTP_H
#define MOOR_SERVER_HTTP_H

#include "common/log.h"
#include "server/config.h"

#include <stddef.h>
#include <uv.h>

struct srv_http;
struct srv_req;

/* Called on the loop thread with the complete request. The route must call
 * srv_req_reply() or srv_req_defer() before returning. */
typedef void (*srv_route_fn)(void *ctx, struct srv_req *req);

struct srv_http_config {
	const struct srv_url_list *urls;
	size_t max_body_bytes;
	unsigned connection_timeout_s;
	unsigned max_connections;
	srv_route_fn route;
	void *route_ctx;
	const struct moor_logger *logger;
};

/*
 * Binds every URL and starts serving on `loop`. On failure returns a negative
 * code (-EADDRINUSE, -EACCES, MOOR_EINVAL...) with a message naming the URL in
 * `err`, and nothing is left running.
 */
int srv_http_start(uv_loop_t *loop, const struct srv_http_config *cfg, struct srv_http **out,
                   char *err, size_t errlen);

/* Closes the listeners and every connection; `h` is freed once its libuv
 * handles are closed (the loop must run on). */
void srv_http_stop(struct srv_http *h);

/* The port a URL actually bound (useful when port 0 was asked). */
unsigned srv_http_port(const struct srv_http *h, int i);

/* Request accessors; the strings live as long as the request. */
const char *srv_req_method(const struct srv_req *r);
const char *srv_req_path(const struct srv_req *r);
const char *srv_req_header(const struct srv_req *r, const char *name);
const char *srv_req_query(const struct srv_req *r, const char *name); /* NULL if absent */
int srv_req_has_query(const struct srv_req *r, const char *name);
const unsigned char *srv_req_body(const struct srv_req *r, size_t *len);

/* Sends a complete response (body copied). Returns 0, or MOOR_ECLOSED when
 * the client went away while the request was deferred. */
int srv_req_reply(struct srv_req *r, unsigned status, const char *content_type, const void *body,
                  size_t len);

/* Suspends the connection until srv_req_reply(). */
void srv_req_defer(struct srv_req *r);

#endif

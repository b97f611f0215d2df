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
 *
 * An https:// URL is served over TLS (libmicrohttpd on GnuTLS) with the
 * certificate and key of srv_http_config.tls. With client_cert_auth, the
 * handshake requires a client certificate that verifies against the trusted
 * CAs, and each connection's certificate is checked once more before its
 * first request is routed. Streams and upgrades work the same over TLS:
 * libmicrohttpd relays an upgraded TLS connection through a socketpair, so
 * the owner still gets a plain descriptor.
 */
#ifndef MOOR_SERVER_HTTP_H
#define MOOR_SERVER_HTTP_H

#include "common/log.h"
#include "server/config.h"
#include "server/tls.h"

#include <stddef.h>
#include <uv.h>

struct srv_http;
struct srv_req;

/* Called on the loop thread with the complete request. The route must call
 * srv_req_reply() or srv_req_defer() before returning. */
typedef void (*srv_route_fn)(void *ctx, struct srv_req *req);

struct srv_http_config {
	const struct srv_url_list *urls;
	/* For https:// URLs (required when there is one; ignored by http://):
	 * certificate, key and, with client_cert_auth, the CAs that client
	 * certificates must chain to. Must outlive the server. */
	struct srv_tls_creds *tls;
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

/* Stops accepting connections; those open are served on. */
void srv_http_quiesce(struct srv_http *h);

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

/*
 * Upgrades the connection (HTTP 101, "Upgrade: <protocol>"): once the
 * response is out, on_upgraded(ctx, fd, extra, extra_len, handle) gets a
 * descriptor of its own for the raw socket (close it when done), the bytes
 * the client sent after its request that were already read, and a handle
 * to give srv_upgrade_release() once (before the HTTP server stops).
 * Call from the route instead of srv_req_reply. MOOR_ENOMEM.
 */
struct srv_upgrade;
typedef void (*srv_upgraded_fn)(void *ctx, int fd, const char *extra, size_t extra_len,
                                struct srv_upgrade *handle);
int srv_req_upgrade(struct srv_req *r, const char *protocol, srv_upgraded_fn fn, void *ctx);
void srv_upgrade_release(struct srv_upgrade *handle);

/* Sends a complete response (body copied). Returns 0, or MOOR_ECLOSED when
 * the client went away while the request was deferred. */
int srv_req_reply(struct srv_req *r, unsigned status, const char *content_type, const void *body,
                  size_t len);

/* Suspends the connection until srv_req_reply(). */
void srv_req_defer(struct srv_req *r);

/* 1 when the client of a deferred request has closed its end. MHD does not
 * watch a suspended connection, so this peeks at the socket (one recv
 * with MSG_PEEK|MSG_DONTWAIT): call it now and then, not in a tight loop.
 * The request must still be answered (srv_req_reply) to be freed. */
int srv_req_peer_closed(const struct srv_req *r);

/*
 * Streaming responses (watch, lease keep-alive): a chunked response whose
 * bytes the owner appends as they come. The connection is suspended while
 * nothing is buffered and resumed by the next write, so an idle stream costs
 * no loop work; every SRV_STREAM_POKE_MS an idle stream is woken once so
 * that a client that went away is noticed.
 *
 * on_closed(ctx) is called once, when the client went away or the stream
 * ended and was sent; after it the owner must not use the stream.
 * on_drained(ctx) (may be NULL) is called when the buffer that went over
 * SRV_STREAM_HIGH_WATER falls back under half of it: the owner may produce
 * again.
 */
#define SRV_STREAM_HIGH_WATER (4u << 20)
#define SRV_STREAM_POKE_MS 5000

struct srv_stream;
struct srv_stream_callbacks {
	void (*on_closed)(void *ctx);
	void (*on_drained)(void *ctx);
	void *ctx;
};

/* Starts the response; call from the route instead of srv_req_reply.
 * MOOR_ENOMEM. */
int srv_req_stream(struct srv_req *r, unsigned status, const char *content_type,
                   const struct srv_stream_callbacks *cb, struct srv_stream **out);
/* Appends bytes (copied). MOOR_ECLOSED after the client went away. */
int srv_stream_write(struct srv_stream *s, const void *data, size_t len);
/* Bytes buffered, not yet handed to the socket. */
size_t srv_stream_buffered(const struct srv_stream *s);
/* Ends the stream after what is buffered. */
void srv_stream_end(struct srv_stream *s);

#endif

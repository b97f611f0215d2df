/*
 * The v3 client API over HTTP: etcd's gateway paths, with protobuf bodies
 * (Content-Type: application/x-protobuf, what libmoor speaks) or JSON (the
 * grpc-gateway encoding etcd's users know). The response uses the request's
 * encoding.
 */
#ifndef MOOR_SERVER_API_H
#define MOOR_SERVER_API_H

#include "server/gateway_errors.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/node.h"

struct wcall;
struct lk_base;

#define SRV_API_CODES 17 /* gRPC status codes 0..16 */

struct srv_api {
	struct srv_node *node;
	const struct srv_config *cfg;
	const struct moor_logger *log;
	uint64_t next_lease_id;
	uv_loop_t *loop;
	/* grpc_server_handled_total and grpc_server_handling_seconds */
	uint64_t handled[SRV_RPC_COUNT][SRV_API_CODES];
	struct srv_hist latency[SRV_RPC_COUNT];
	uv_idle_t pull_idle; /* drains watch streams with responses ready */
	struct wcall *ready;
	struct ksock *ksocks; /* upgraded keep-alive connections */
	struct kcall *kcalls; /* keep-alive calls on streamed responses */
	struct call *moving;  /* transfer-leadership calls being polled */
	int closed;
	struct wcall *all;
	/* api_lock.c: lock and campaign calls waiting, observe streams */
	struct lk_base *locks, *locks_ready;
	uv_idle_t lock_idle;   /* runs the waiters whose watches have news */
	uv_timer_t lock_timer; /* looks for waiters whose clients went away */
};

void srv_api_init(struct srv_api *api, uv_loop_t *loop, struct srv_node *node,
                  const struct srv_config *cfg, const struct moor_logger *log);
/* Closes the api's handle (watch streams end with their connections). */
void srv_api_close(struct srv_api *api);

/* Appends one message of a stream: a 4-byte big-endian length and the
 * protobuf (proto), or the gateway's {"result":...} line (JSON). */
int srv_api_stream_encode(const ProtobufCMessage *m, int proto, struct moor_buf *out);

/* Appends the API's request counters and latency histograms. */
int srv_api_metrics(const struct srv_api *api, struct moor_buf *out);

/* api_lease.c: /v3/lease/keepalive as a streamed response to the requests
 * in the body, or, with "Upgrade: moor-keepalive/1", an upgraded connection
 * carrying LeaseKeepAliveRequest frames in and a LeaseKeepAliveResponse
 * frame out for each renewal (TTL 0: the lease is gone). */
#define SRV_KEEPALIVE_UPGRADE "moor-keepalive/1"
void srv_api_keepalive(struct srv_api *api, struct srv_req *req, int proto);
/* 1 when the request asked for the upgrade (and was answered). */
int srv_api_keepalive_upgrade(struct srv_api *api, struct srv_req *req);
struct ksock;
void srv_api_ksock_close(struct ksock *k);
/* Frees the keep-alive calls whose connections the stopped HTTP server
 * never reported closed. */
void srv_api_kcalls_free(struct srv_api *api);
/* Answers the transfer-leadership calls still polling (server stopping). */
void srv_api_moves_cancel(struct srv_api *api);

/* api_watch.c: /v3/watch as a streamed response, or, with the header
 * "Upgrade: moor-watch/1", as an upgraded connection carrying WatchRequest
 * frames in and WatchResponse frames out (4-byte big-endian length, then
 * the protobuf message) for as long as the client keeps it: creates,
 * cancels and progress requests at any time on one stream. */
#define SRV_WATCH_UPGRADE "moor-watch/1"

void srv_api_watch(struct srv_api *api, struct srv_req *req, int proto);
void srv_api_pull(uv_idle_t *idle);

/* api_lock.c: the lock and election waiters' share of srv_api_init,
 * srv_api_close (waiting calls are answered "server stopped", observe
 * streams end) and of the store's replacement by a snapshot (every waiter
 * looks at the store again and watches anew). */
void srv_api_locks_init(struct srv_api *api);
void srv_api_locks_close(struct srv_api *api);
void srv_api_locks_reset(struct srv_api *api);

/* Handles a request whose path is one of the gateway's; returns 0 when it
 * did (replied or deferred), MOOR_ENOTFOUND when the path is not an API
 * path (the caller answers it). */
int srv_api_handle(struct srv_api *api, struct srv_req *req);

#endif

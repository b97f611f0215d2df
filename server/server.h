/*
 * The moord process: one libuv loop that owns the listeners, the timers and
 * (as the node grows) the raft core and the peer connections. This header is
 * server-internal (prefix srv_).
 */
#ifndef MOOR_SERVER_SERVER_H
#define MOOR_SERVER_SERVER_H

#include "server/api.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log_sink.h"
#include "server/node.h"
#include "server/tls.h"

#include <uv.h>

struct srv_server {
	struct srv_config cfg;
	struct srv_log_sink log;
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int;
	struct srv_http *client_http;
	struct srv_tls_creds tls; /* read at start when a client URL is https */
	/* read at start when a peer URL is https or --peer-cert-file is given */
	struct srv_peer_tls_ctx *peer_tls;
	struct srv_node *node;
	struct srv_api api;
	uint64_t ready_commit; /* commit index learned at start; ready once applied */
	int lock_fd;           /* flock on <data-dir>/moord.lock, held for the process's life */
	int stopping, finished, transferring;
	uv_timer_t stop_timer;
	int stop_timer_open;
	uint64_t transfer_deadline_ms, drain_deadline_ms;
	int exit_code;
};

/* Checks and locks the data directory (created 0700 if missing). Returns 0,
 * or a negative code with a message naming the directory and the cause in
 * err (moord then exits 1). */
int srv_data_dir_open(const char *dir, int *lock_fd, char *err, size_t errlen);

/* --restore-snapshot (server/restore.c): 0, or a code with err filled. */
int srv_restore(const struct srv_config *cfg, const struct moor_logger *log, char *err,
                size_t errlen);

/* The client-facing routes: health, version, and (later) the v3 API. */
void srv_route_client(void *ctx, struct srv_req *req);

#endif

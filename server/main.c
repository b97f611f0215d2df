/*
 * moord: parse the configuration, open the data directory, serve, and stop
 * cleanly on SIGTERM/SIGINT.
 *
 * Exit codes: 0 after a clean stop, 1 when it cannot start (data directory
 * unusable or locked, port taken), 2 on a malformed command line.
 */
#include "server/server.h"

#include "common/error.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void on_stop_timer_closed(uv_handle_t *h)
{
	(void)h;
}

/* The end of a stop: listeners, API, node (which flushes the store). */
static void stop_finish(struct srv_server *s)
{
	if (s->finished)
		return;
	s->finished = 1;
	if (s->stop_timer_open) {
		uv_timer_stop(&s->stop_timer);
		uv_close((uv_handle_t *)&s->stop_timer, on_stop_timer_closed);
	}
	/* the API first: upgraded connections must go before MHD stops, and
	 * so must every suspended request: they are answered "stopped" */
	srv_api_close(&s->api);
	if (s->node)
		srv_node_fail_waiting(s->node);
	if (s->client_http) {
		srv_http_stop(s->client_http);
		s->client_http = NULL;
	}
	srv_api_kcalls_free(&s->api);
	if (s->node) {
		srv_node_stop(s->node);
		s->node = NULL;
	}
	uv_close((uv_handle_t *)&s->sig_term, NULL);
	uv_close((uv_handle_t *)&s->sig_int, NULL);
	moor_log(&s->log.logger, MOOR_LOG_INFO, "server", "stopped serving");
}

/* A graceful stop waits for leadership to move and for the requests in
 * flight to finish, each for a bounded time. */
static void on_stop_tick(uv_timer_t *t)
{
	struct srv_server *s = t->data;
	struct srv_node_info info;
	uint64_t now = uv_now(&s->loop);

	srv_node_info(s->node, &info);
	if (s->transferring && info.role == RAFT_LEADER && now < s->transfer_deadline_ms)
		return;
	if (srv_node_pending(s->node) > 0 && now < s->drain_deadline_ms)
		return;
	stop_finish(s);
}

static void srv_stop(struct srv_server *s, const char *why, int graceful)
{
	struct srv_node_info info;

	if (s->stopping) {
		moor_log(&s->log.logger, MOOR_LOG_INFO, "server", "stopping now: %s", why);
		stop_finish(s);
		return;
	}
	s->stopping = 1;
	moor_log(&s->log.logger, MOOR_LOG_INFO, "server", "stopping: %s", why);
	if (!graceful || !s->node) {
		stop_finish(s);
		return;
	}
	if (s->client_http)
		srv_http_quiesce(s->client_http); /* no new clients */
	srv_node_info(s->node, &info);
	if (info.role == RAFT_LEADER && srv_node_transfer_leadership(s->node, 0) == 0) {
		s->transferring = 1;
		moor_log(&s->log.logger, MOOR_LOG_INFO, "server",
		         "handing leadership to another member before stopping");
	}
	s->transfer_deadline_ms = uv_now(&s->loop) + 2 * s->cfg.election_timeout_ms;
	s->drain_deadline_ms = s->transfer_deadline_ms + 3000;
	uv_timer_init(&s->loop, &s->stop_timer);
	s->stop_timer.data = s;
	s->stop_timer_open = 1;
	uv_timer_start(&s->stop_timer, on_stop_tick, 0, 20);
}

static void on_removed(void *ctx)
{
	srv_stop(ctx, "removed from the cluster", 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	srv_stop(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT", 1);
}

int main(int argc, char **argv)
{
	struct srv_server *s = calloc(1, sizeof *s);
	char err[512] = "";
	int rc;

	if (!s)
		return 1;
	s->lock_fd = -1;
	if (srv_config_parse(&s->cfg, argc, argv, environ, err, sizeof err) != 0) {
		fprintf(stderr, "moord: %s\n", err);
		free(s);
		return 2;
	}
	if (s->cfg.help) {
		srv_config_usage(stdout);
		free(s);
		return 0;
	}
	if (s->cfg.version) {
		printf("moord %s (etcd API %s)\n", MOOR_VERSION, MOOR_ETCD_VERSION);
		free(s);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	srv_log_sink_init(&s->log, s->cfg.name, s->cfg.log_format, s->cfg.log_level, stderr);

	/* TLS files before the data directory: a bad certificate must not
	 * leave a fresh data directory behind. */
	if (srv_tls_needed(&s->cfg)) {
		rc = srv_tls_load(&s->cfg, &s->tls, err, sizeof err);
		if (rc) {
			moor_log(&s->log.logger, MOOR_LOG_ERROR, "server", "cannot start: %s", err);
			free(s);
			return 1;
		}
	}
	if (srv_peer_tls_needed(&s->cfg)) {
		rc = srv_peer_tls_load(&s->cfg, &s->peer_tls, err, sizeof err);
		if (rc) {
			moor_log(&s->log.logger, MOOR_LOG_ERROR, "server", "cannot start: %s", err);
			srv_tls_free(&s->tls);
			free(s);
			return 1;
		}
	}
	rc = srv_data_dir_open(s->cfg.data_dir, &s->lock_fd, err, sizeof err);
	if (rc) {
		moor_log(&s->log.logger, MOOR_LOG_ERROR, "server", "cannot start: %s", err);
		srv_tls_free(&s->tls);
		srv_peer_tls_ctx_free(s->peer_tls);
		free(s);
		return 1;
	}
	if (s->cfg.restore_snapshot[0]) {
		rc = srv_restore(&s->cfg, &s->log.logger, err, sizeof err);
		if (rc)
			moor_log(&s->log.logger, MOOR_LOG_ERROR, "server", "restore failed: %s",
			         err);
		close(s->lock_fd);
		srv_tls_free(&s->tls);
		srv_peer_tls_ctx_free(s->peer_tls);
		free(s);
		return rc ? 1 : 0;
	}
	uv_loop_init(&s->loop);

	struct srv_node_options no = {
	    .on_removed = on_removed,
	    .on_removed_ctx = s,
	    .loop = &s->loop,
	    .cfg = &s->cfg,
	    .logger = &s->log.logger,
	    .tick_ms = (unsigned)s->cfg.heartbeat_ms,
	    .snapshot_count = s->cfg.snapshot_count,
	    .quota_bytes = s->cfg.quota_backend_bytes,
	    .election_ticks = (unsigned)(s->cfg.election_timeout_ms / s->cfg.heartbeat_ms),
	    .peer_tls = s->peer_tls,
	};
	rc = srv_node_start(&no, &s->node, err, sizeof err);
	if (rc) {
		moor_log(&s->log.logger, MOOR_LOG_ERROR, "server", "cannot start: %s", err);
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
		close(s->lock_fd);
		srv_tls_free(&s->tls);
		srv_peer_tls_ctx_free(s->peer_tls);
		free(s);
		return 1;
	}
	srv_api_init(&s->api, &s->loop, s->node, &s->cfg, &s->log.logger);

	struct srv_http_config hc = {
	    .urls = &s->cfg.listen_client_urls,
	    .tls = &s->tls,
	    .max_body_bytes = (size_t)3 << 19, /* 1.5 MiB, etcd's --max-request-bytes */
	    .connection_timeout_s = 0,
	    .max_connections = 4096,
	    .route = srv_route_client,
	    .route_ctx = s,
	    .logger = &s->log.logger,
	};
	rc = srv_http_start(&s->loop, &hc, &s->client_http, err, sizeof err);
	if (rc) {
		moor_log(&s->log.logger, MOOR_LOG_ERROR, "server", "cannot start: %s", err);
		srv_api_close(&s->api);
		srv_node_stop(s->node);
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
		close(s->lock_fd);
		srv_tls_free(&s->tls);
		srv_peer_tls_ctx_free(s->peer_tls);
		free(s);
		return 1;
	}
	uv_signal_init(&s->loop, &s->sig_term);
	uv_signal_init(&s->loop, &s->sig_int);
	s->sig_term.data = s->sig_int.data = s;
	uv_signal_start(&s->sig_term, on_signal, SIGTERM);
	uv_signal_start(&s->sig_int, on_signal, SIGINT);

	for (int i = 0; i < s->cfg.listen_client_urls.n; i++)
		moor_log(&s->log.logger, MOOR_LOG_INFO, "server",
		         "serving client requests on %s (port %u) data-dir=%s",
		         s->cfg.listen_client_urls.url[i].text, srv_http_port(s->client_http, i),
		         s->cfg.data_dir);

	uv_run(&s->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&s->loop);
	if (rc != 0)
		moor_log(&s->log.logger, MOOR_LOG_WARN, "server", "loop closed with %s",
		         uv_strerror(rc));
	moor_log(&s->log.logger, MOOR_LOG_INFO, "server", "stopped");
	close(s->lock_fd);
	srv_tls_free(&s->tls);
	srv_peer_tls_ctx_free(s->peer_tls);
	free(s);
	return 0;
}

/*
 * moord's client routes. For now: the health family and /version. The v3
 * API (protobuf and JSON) joins here as the node becomes replicated.
 *
 *   GET /health   {"health":"true","reason":""}, etcd 3.5's body
 *   GET /livez    "ok\n" (plain text; ?verbose lists the checks)
 *   GET /readyz   "ok\n" (plain text; ?verbose lists the checks)
 *   GET /version  {"etcdserver":"3.5.17","etcdcluster":"3.5.0","moor":"0.1.0"}
 *
 * /health is unhealthy (503) without a leader. /readyz checks that the
 * member has a leader, is a voter, and has applied up to the commit index
 * it learned when it started (so a member catching up is not ready).
 */
#include "server/server.h"

#include <stdio.h>
#include <string.h>

static const char json_ct[] = "application/json";
static const char text_ct[] = "text/plain; charset=utf-8";

static void reply_str(struct srv_req *req, unsigned status, const char *ct, const char *s)
{
	srv_req_reply(req, status, ct, s, strlen(s));
}

static void reply_not_found(struct srv_req *req)
{
	reply_str(req, 404, json_ct,
	          "{\"error\":\"Not Found\",\"code\":5,\"message\":\"Not Found\"}");
}

static void reply_method_not_allowed(struct srv_req *req)
{
	reply_str(req, 405, json_ct,
	          "{\"error\":\"Method Not Allowed\",\"code\":12,\"message\":\"Method Not "
	          "Allowed\"}");
}

struct check {
	const char *name;
	const char *failure; /* NULL: passed */
};

/* /livez and /readyz: etcd's plain-text check list, 503 when one fails. */
static void reply_checks(struct srv_req *req, const struct check *checks, int n)
{
	char body[1024];
	size_t o = 0;
	int failed = 0, verbose = srv_req_has_query(req, "verbose");

	for (int i = 0; i < n; i++)
		failed |= checks[i].failure != NULL;
	if (!verbose && !failed) {
		reply_str(req, 200, text_ct, "ok\n");
		return;
	}
	for (int i = 0; i < n; i++) {
		if (checks[i].failure)
			o += (size_t)snprintf(body + o, sizeof body - o, "[-]%s failed: %s\n",
			                      checks[i].name, checks[i].failure);
		else if (verbose)
			o += (size_t)snprintf(body + o, sizeof body - o, "[+]%s ok\n",
			                      checks[i].name);
	}
	snprintf(body + o, sizeof body - o, failed ? "%s check failed\n" : "ok\n",
	         failed ? (verbose ? "a" : "a") : "");
	reply_str(req, failed ? 503 : 200, text_ct, body);
}

#define GAUGE(name, help, fmt, ...)                                               \
	do {                                                                      \
		if (rc == 0)                                                      \
			rc = srv_metric_header(&b, name, "gauge", help);          \
		if (rc == 0)                                                      \
			rc = moor_buf_printf(&b, name " " fmt "\n", __VA_ARGS__); \
	} while (0)
#define COUNTER(name, help, v)                                                             \
	do {                                                                               \
		if (rc == 0)                                                               \
			rc = srv_metric_header(&b, name, "counter", help);                 \
		if (rc == 0)                                                               \
			rc = moor_buf_printf(&b, name " %llu\n", (unsigned long long)(v)); \
	} while (0)
#define HIST(name, help, h)                                                  \
	do {                                                                 \
		if (rc == 0)                                                 \
			rc = srv_metric_header(&b, name, "histogram", help); \
		if (rc == 0)                                                 \
			rc = srv_hist_render(h, &b, name, "");               \
	} while (0)

static void reply_metrics(struct srv_server *s, struct srv_req *req)
{
	const struct srv_node_metrics *m = srv_node_metrics(s->node);
	struct srv_node_info info;
	struct watch_hub_stats ws;
	struct kv_status ks;
	struct moor_buf b;
	int rc = 0;

	srv_node_info(s->node, &info);
	watch_hub_stats(srv_node_hub(s->node), &ws);
	kv_status(srv_node_kv(s->node), &ks);
	moor_buf_init(&b, NULL);
	GAUGE("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
	      "%d", info.leader ? 1 : 0);
	GAUGE("etcd_server_is_leader", "Whether or not this member is a leader.", "%d",
	      info.role == RAFT_LEADER);
	GAUGE("etcd_server_is_learner", "Whether or not this member is a learner.", "%d",
	      info.is_learner);
	COUNTER("etcd_server_leader_changes_seen_total", "The number of leader changes seen.",
	        srv_counter_get(&m->leader_changes));
	GAUGE("etcd_server_proposals_committed_total",
	      "The total number of consensus proposals committed.", "%llu",
	      (unsigned long long)info.commit);
	GAUGE("etcd_server_proposals_applied_total",
	      "The total number of consensus proposals applied.", "%llu",
	      (unsigned long long)info.applied);
	GAUGE("etcd_server_proposals_pending", "The current number of pending proposals to commit.",
	      "%zu", srv_node_pending(s->node));
	COUNTER("etcd_server_proposals_failed_total", "The total number of failed proposals seen.",
	        srv_counter_get(&m->proposals_failed));
	COUNTER("etcd_server_slow_apply_total", "The total number of slow apply requests.",
	        srv_counter_get(&m->slow_applies));
	GAUGE("etcd_server_id",
	      "Server or member ID in hexadecimal format. 1 for 'server_id' label "
	      "with current ID.",
	      "%d", 1);
	HIST("etcd_disk_wal_fsync_duration_seconds",
	     "The latency distributions of fsync called by WAL.", &m->wal_fsync);
	HIST("etcd_disk_backend_commit_duration_seconds",
	     "The latency distributions of commit called by backend.", &m->backend_commit);
	GAUGE("etcd_mvcc_db_total_size_in_bytes",
	      "Total size of the underlying database physically allocated in bytes.", "%llu",
	      (unsigned long long)srv_node_db_size(s->node));
	GAUGE("etcd_debugging_mvcc_current_revision", "The current revision of store.", "%lld",
	      (long long)ks.revision);
	GAUGE("etcd_debugging_mvcc_compact_revision",
	      "The revision of the last compaction in store.", "%lld",
	      (long long)ks.compact_revision);
	GAUGE("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", "%llu",
	      (unsigned long long)ws.watchers);
	GAUGE("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.", "%llu",
	      (unsigned long long)ws.streams);
	GAUGE("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.",
	      "%llu", (unsigned long long)ws.unsynced);
	COUNTER("etcd_debugging_mvcc_events_total", "Total number of events sent by this member.",
	        ws.deliveries);
	COUNTER("etcd_server_snapshot_sent_total", "Snapshots this member sent to others.",
	        srv_counter_get(&m->snapshots_sent));
	COUNTER("etcd_server_snapshot_received_total", "Snapshots this member received.",
	        srv_counter_get(&m->snapshots_received));
	if (rc == 0)
		rc = srv_api_metrics(&s->api, &b);
	if (rc == 0)
		srv_req_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	else
		reply_str(req, 500, text_ct, "cannot render metrics\n");
	moor_buf_free(&b);
}

void srv_route_client(void *ctx, struct srv_req *req)
{
	struct srv_server *s = ctx;
	const char *path = srv_req_path(req);
	const char *method = srv_req_method(req);
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	struct srv_node_info info;

	if (srv_api_handle(&s->api, req) == 0)
		return;
	srv_node_info(s->node, &info);
	if (s->ready_commit == 0 && info.leader)
		s->ready_commit = info.commit ? info.commit : 1;
	if (strcmp(path, "/health") == 0) {
		if (!get)
			return reply_method_not_allowed(req);
		if (!info.leader)
			return reply_str(req, 503, json_ct,
			                 "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}");
		/* etcd: an active alarm makes a member unhealthy, unless excluded */
		if (srv_node_nospace(s->node)) {
			const char *ex = srv_req_query(req, "exclude");
			if (!ex || strcmp(ex, "NOSPACE") != 0)
				return reply_str(
				    req, 503, json_ct,
				    "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}");
		}
		return reply_str(req, 200, json_ct, "{\"health\":\"true\",\"reason\":\"\"}");
	}
	if (strcmp(path, "/livez") == 0) {
		struct check live[] = {{"serializable_read", NULL}};
		if (!get)
			return reply_method_not_allowed(req);
		return reply_checks(req, live, 1);
	}
	if (strcmp(path, "/readyz") == 0) {
		struct check ready[] = {
		    {"leader", info.leader ? NULL : "no leader"},
		    {"non_learner", info.is_learner ? "this member is a learner" : NULL},
		    {"caught_up", s->ready_commit && info.applied >= s->ready_commit
		                      ? NULL
		                      : "not yet applied up to the commit index"},
		};
		if (!get)
			return reply_method_not_allowed(req);
		return reply_checks(req, ready, 3);
	}
	if (strcmp(path, "/metrics") == 0) {
		if (!get)
			return reply_method_not_allowed(req);
		return reply_metrics(s, req);
	}
	if (strcmp(path, "/version") == 0) {
		if (!get)
			return reply_method_not_allowed(req);
		return reply_str(req, 200, json_ct,
		                 "{\"etcdserver\":\"" MOOR_ETCD_VERSION
		                 "\",\"etcdcluster\":\"" MOOR_ETCD_CLUSTER_VERSION
		                 "\",\"moor\":\"" MOOR_VERSION "\"}");
	}
	reply_not_found(req);
}

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

/*
 * moord's client routes. For now: the health family and /version. The v3
 * API (protobuf and JSON) joins here as the node becomes replicated.
 *
 *   GET /health   {"health":"true","reason":""}, etcd 3.5's body
 *   GET /livez    "ok\n" (plain text; ?verbose lists the checks)
 *   GET /readyz   "ok\n" (plain text; ?verbose lists the checks)
 *   GET /version  {"etcdserver":"3.5.17","etcdcluster":"3.5.0","moor":"0.1.0"}
 *
 * Until the node runs raft, the only check is that the loop answers; the
 * leader and applied-index checks arrive with the cluster (issue 7).
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

/* /livez and /readyz: etcd's plain-text check list. */
static void reply_checks(struct srv_req *req, const char *const *checks, int n)
{
	char body[512];
	size_t o = 0;

	if (!srv_req_has_query(req, "verbose")) {
		reply_str(req, 200, text_ct, "ok\n");
		return;
	}
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(body + o, sizeof body - o, "[+]%s ok\n", checks[i]);
	snprintf(body + o, sizeof body - o, "ok\n");
	reply_str(req, 200, text_ct, body);
}

void srv_route_client(void *ctx, struct srv_req *req)
{
	static const char *const live_checks[] = {"loop"};
	static const char *const ready_checks[] = {"loop"};
	const char *path = srv_req_path(req);
	const char *method = srv_req_method(req);
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	(void)ctx;
	if (strcmp(path, "/health") == 0) {
		if (!get)
			return reply_method_not_allowed(req);
		return reply_str(req, 200, json_ct, "{\"health\":\"true\",\"reason\":\"\"}");
	}
	if (strcmp(path, "/livez") == 0) {
		if (!get)
			return reply_method_not_allowed(req);
		return reply_checks(req, live_checks, 1);
	}
	if (strcmp(path, "/readyz") == 0) {
		if (!get)
			return reply_method_not_allowed(req);
		return reply_checks(req, ready_checks, 1);
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

/*
 * The v3 API handlers. Writes are proposed through raft and answered when
 * applied here; linearizable reads wait for a read-index barrier and are
 * served from the local store; serializable reads are served at once.
 */
#include "server/api_int.h"

#include "common/clock.h"
#include "common/error.h"
#include "proto/pbcheck.h"
#include "server/gateway_errors.h"
#include "server/lessor.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PROTO_CT "application/x-protobuf"
#define JSON_CT "application/json"

void call_free(struct call *c)
{
	if (c->msg)
		protobuf_c_message_free_unpacked(c->msg, NULL);
	free(c);
}

static void record(struct call *c, int grpc_code)
{
	struct srv_api *api = c->api;
	unsigned rpc = (unsigned)c->route->rpc;

	if (rpc >= SRV_RPC_COUNT || grpc_code < 0 || grpc_code >= SRV_API_CODES)
		return;
	srv_counter_add(&api->handled[rpc][grpc_code], 1);
	srv_hist_observe(&api->latency[rpc], moor_clock_mono_ns() - c->start_ns);
}

void reply_gw_error(struct call *c, const struct srv_gw_error *e)
{
	struct moor_buf b;

	record(c, e->grpc_code);
	moor_buf_init(&b, NULL);
	srv_gw_write_error(&b, e);
	srv_req_reply(c->req, (unsigned)e->http_status, JSON_CT, b.data, b.len);
	moor_buf_free(&b);
}

void reply_error(struct call *c, int code)
{
	struct srv_gw_error e;

	srv_gw_error_from_code(code, &e);
	reply_gw_error(c, &e);
}

/* etcd's Cluster service (member list, add, remove, update, promote)
 * answers with the cluster, member and term, but no revision. */
void fill_cluster_header(struct call *c, Etcdserverpb__ResponseHeader *h)
{
	fill_header(c, h);
	h->revision = 0;
}

void fill_header(struct call *c, Etcdserverpb__ResponseHeader *h)
{
	struct srv_node_info info;

	if (!h)
		return;
	srv_node_info(c->api->node, &info);
	h->cluster_id = info.cluster_id;
	h->member_id = info.id;
	h->raft_term = info.term;
	if (!h->revision)
		h->revision = info.revision;
}

/* Encodes and sends a response message; takes no ownership. */
void reply_msg(struct call *c, const ProtobufCMessage *m)
{
	record(c, 0);
	if (c->proto) {
		size_t len = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf) {
			reply_error(c, MOOR_ENOMEM);
			return;
		}
		protobuf_c_message_pack(m, buf);
		srv_req_reply(c->req, 200, PROTO_CT, buf, len);
		free(buf);
	} else {
		struct moor_buf b;
		moor_buf_init(&b, NULL);
		if (srv_jsonpb_encode(m, &b) != 0) {
			moor_buf_free(&b);
			reply_error(c, MOOR_ENOMEM);
			return;
		}
		srv_req_reply(c->req, 200, JSON_CT, b.data, b.len);
		moor_buf_free(&b);
	}
}

/* The header is the first field of every response message we send. */
static Etcdserverpb__ResponseHeader *header_of(ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "header");
	if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return NULL;
	return *(Etcdserverpb__ResponseHeader **)((char *)m + f->offset);
}

/* ---- writes ---- */

static void on_applied(void *ctx, int rc, void *resp, int64_t aux)
{
	struct call *c = ctx;

	(void)aux;
	if (rc) {
		reply_error(c, rc);
	} else {
		ProtobufCMessage *m = resp;
		fill_header(c, header_of(m));
		reply_msg(c, m);
	}
	kv_response_free(resp);
	call_free(c);
}

static void propose(struct call *c, Moorpb__InternalRequest *ir)
{
	int rc;

	/* deferred first: the answer may come before the call returns */
	srv_req_defer(c->req);
	rc = srv_node_propose(c->api->node, ir, on_applied, c);
	if (rc) {
		reply_error(c, rc);
		call_free(c);
	}
}

/* Does the request add data? Those are refused under a NOSPACE alarm. */
static int txn_puts(const Etcdserverpb__TxnRequest *t)
{
	for (int side = 0; side < 2; side++) {
		size_t n = side ? t->n_failure : t->n_success;
		Etcdserverpb__RequestOp **ops = side ? t->failure : t->success;
		for (size_t i = 0; i < n; i++) {
			if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
				return 1;
			if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN &&
			    txn_puts(ops[i]->request_txn))
				return 1;
		}
	}
	return 0;
}

/* Chosen by the member that takes the grant, so every member applies the
 * same id: the member id's low 16 bits, then a counter. */
int64_t api_lease_id_new(struct srv_api *api)
{
	struct srv_node_info info;
	int64_t id;

	srv_node_info(api->node, &info);
	id = (int64_t)(((info.id & 0xffff) << 47) | (api->next_lease_id++ & 0x7fffffffffffull));
	return id > 0 ? id : 1;
}

static void do_write(struct call *c)
{
	Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;

	if (srv_node_nospace(c->api->node) &&
	    (c->route->rpc == SRV_RPC_PUT || c->route->rpc == SRV_RPC_LEASE_GRANT ||
	     (c->route->rpc == SRV_RPC_TXN && txn_puts((Etcdserverpb__TxnRequest *)c->msg)))) {
		reply_error(c, MOOR_ENOSPACE);
		call_free(c);
		return;
	}
	switch (c->route->rpc) {
	case SRV_RPC_PUT:
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_PUT;
		ir.put = (Etcdserverpb__PutRequest *)c->msg;
		break;
	case SRV_RPC_DELETE_RANGE:
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE;
		ir.delete_range = (Etcdserverpb__DeleteRangeRequest *)c->msg;
		break;
	case SRV_RPC_TXN:
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_TXN;
		ir.txn = (Etcdserverpb__TxnRequest *)c->msg;
		if (ir.txn->n_success > c->api->cfg->max_txn_ops ||
		    ir.txn->n_failure > c->api->cfg->max_txn_ops) {
			reply_error(c, MOOR_ETOOMANYOPS);
			call_free(c);
			return;
		}
		break;
	case SRV_RPC_COMPACT:
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_COMPACTION;
		ir.compaction = (Etcdserverpb__CompactionRequest *)c->msg;
		break;
	case SRV_RPC_LEASE_GRANT: {
		Etcdserverpb__LeaseGrantRequest *g = (Etcdserverpb__LeaseGrantRequest *)c->msg;
		if (g->ttl < SRV_LEASE_MIN_TTL_S)
			g->ttl = SRV_LEASE_MIN_TTL_S; /* etcd raises short TTLs to its minimum */
		if (g->id == 0)
			g->id = api_lease_id_new(c->api);
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT;
		ir.lease_grant = g;
		break;
	}
	case SRV_RPC_LEASE_REVOKE:
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
		ir.lease_revoke = (Etcdserverpb__LeaseRevokeRequest *)c->msg;
		break;
	default:
		reply_error(c, MOOR_EUNSUPPORTED);
		call_free(c);
		return;
	}
	propose(c, &ir);
}

/* ---- reads ---- */

static void serve_read(struct call *c)
{
	struct kv *kv = srv_node_kv(c->api->node);
	ProtobufCMessage *resp = NULL;
	int rc;

	switch (c->route->rpc) {
	case SRV_RPC_RANGE:
		rc = kv_range(kv, (Etcdserverpb__RangeRequest *)c->msg,
		              (Etcdserverpb__RangeResponse **)&resp);
		break;
	case SRV_RPC_LEASE_TIMETOLIVE:
		rc = kv_lease_timetolive(kv, (Etcdserverpb__LeaseTimeToLiveRequest *)c->msg,
		                         (Etcdserverpb__LeaseTimeToLiveResponse **)&resp);
		if (rc == MOOR_ELEASENOTFOUND) {
			/* etcd answers an unknown lease with TTL -1, not an error */
			Etcdserverpb__LeaseTimeToLiveResponse r =
			    ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
			Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
			r.header = &h;
			r.id = ((Etcdserverpb__LeaseTimeToLiveRequest *)c->msg)->id;
			r.ttl = -1;
			fill_header(c, &h);
			reply_msg(c, &r.base);
			return;
		}
		break;
	case SRV_RPC_LEASE_LEASES:
		rc = kv_lease_leases(kv, (Etcdserverpb__LeaseLeasesResponse **)&resp);
		break;
	default:
		rc = MOOR_EUNSUPPORTED;
	}
	if (rc) {
		reply_error(c, rc);
		return;
	}
	fill_header(c, header_of(resp));
	reply_msg(c, resp);
	kv_response_free(resp);
}

static void on_read_ready(void *ctx, int rc)
{
	struct call *c = ctx;

	if (rc)
		reply_error(c, rc);
	else
		serve_read(c);
	call_free(c);
}

static void do_read(struct call *c, int serializable)
{
	int rc;

	if (serializable) {
		serve_read(c);
		call_free(c);
		return;
	}
	/* deferred first: the answer may come before the call returns */
	srv_req_defer(c->req);
	rc = srv_node_read_barrier(c->api->node, on_read_ready, c);
	if (rc) {
		reply_error(c, rc);
		call_free(c);
		return;
	}
}

/* ---- maintenance and cluster ---- */

static void do_status(struct call *c)
{
	Etcdserverpb__StatusResponse r = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	struct srv_node_info info;

	srv_node_info(c->api->node, &info);
	r.header = &h;
	fill_header(c, &h);
	r.version = (char *)MOOR_ETCD_VERSION;
	r.leader = info.leader;
	r.raftindex = info.commit;
	r.raftterm = info.term;
	r.raftappliedindex = info.applied;
	r.islearner = info.is_learner;
	r.dbsize = (int64_t)srv_node_db_size(c->api->node);
	r.dbsizeinuse = r.dbsize;
	reply_msg(c, &r.base);
	call_free(c);
}

void members_view_fill(struct members_view *v, struct srv_node *node)
{
	struct srv_node_member ms[SRV_MAX_MEMBERS];
	int n = srv_node_members(node, ms, SRV_MAX_MEMBERS);

	memset(v, 0, sizeof *v);
	for (int i = 0; i < n; i++) {
		if (!ms[i].in_conf)
			continue;
		int k = (int)v->n;
		Etcdserverpb__Member *m = &v->pm[k];
		v->ms[k] = ms[i];
		etcdserverpb__member__init(m);
		m->id = v->ms[k].id;
		m->name = v->ms[k].name;
		m->islearner = v->ms[k].learner;
		for (int j = 0; j < v->ms[k].peer_urls.n; j++)
			v->purls[k][j] = v->ms[k].peer_urls.url[j].text;
		for (int j = 0; j < v->ms[k].client_urls.n; j++)
			v->curls[k][j] = v->ms[k].client_urls.url[j].text;
		m->n_peerurls = (size_t)v->ms[k].peer_urls.n;
		m->peerurls = v->purls[k];
		m->n_clienturls = (size_t)v->ms[k].client_urls.n;
		m->clienturls = v->curls[k];
		v->pp[v->n++] = m;
	}
}

static void do_member_list(struct call *c)
{
	Etcdserverpb__MemberListResponse r = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	struct members_view *v = malloc(sizeof *v);

	if (!v) {
		reply_error(c, MOOR_ENOMEM);
		call_free(c);
		return;
	}
	members_view_fill(v, c->api->node);
	r.header = &h;
	fill_cluster_header(c, &h);
	r.members = v->pp;
	r.n_members = v->n;
	reply_msg(c, &r.base);
	free(v);
	call_free(c);
}

/* HashKV, and Hash: etcd's Hash covers its whole bbolt file and is "for
 * testing only"; ours is HashKV's at the current revision (the CRC32C of
 * the key space), which is what compares members. */
static void do_hash(struct call *c)
{
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	bool hashkv = c->route->rpc == SRV_RPC_HASHKV;
	int64_t rev = hashkv ? ((Etcdserverpb__HashKVRequest *)c->msg)->revision : 0;
	uint32_t hash;
	int64_t compact_rev, hash_rev;
	int rc = kv_hash_kv(srv_node_kv(c->api->node), rev, &hash, &compact_rev, &hash_rev);

	if (rc) {
		reply_error(c, rc);
	} else if (hashkv) {
		Etcdserverpb__HashKVResponse r = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
		r.header = &h;
		fill_header(c, &h);
		r.hash = hash;
		r.compact_revision = compact_rev;
		r.hash_revision = hash_rev;
		reply_msg(c, &r.base);
	} else {
		Etcdserverpb__HashResponse r = ETCDSERVERPB__HASH_RESPONSE__INIT;
		h.revision = hash_rev;
		r.header = &h;
		fill_header(c, &h);
		r.hash = hash;
		reply_msg(c, &r.base);
	}
	call_free(c);
}

/* ---- dispatch ---- */

static int is_proto(struct srv_req *req)
{
	const char *ct = srv_req_header(req, "Content-Type");
	return ct && strncmp(ct, PROTO_CT, strlen(PROTO_CT)) == 0;
}

int srv_api_handle(struct srv_api *api, struct srv_req *req)
{
	const char *path = srv_req_path(req);
	const struct srv_gw_route *route = srv_gw_route_find(path, strlen(path));
	struct srv_gw_error ge;
	struct srv_gw_limits lim = {.max_request_bytes = api->cfg->max_request_bytes};
	struct call *c;
	const unsigned char *body;
	size_t len;
	int rc;

	if (!route)
		return MOOR_ENOTFOUND;
	if (api->closed) {
		srv_req_reply(req, 503, JSON_CT,
		              "{\"error\":\"etcdserver: server stopped\",\"code\":14,\"message\":"
		              "\"etcdserver: server stopped\"}",
		              strlen("{\"error\":\"etcdserver: server stopped\",\"code\":14,"
		                     "\"message\":\"etcdserver: server stopped\"}"));
		return 0;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		srv_req_reply(req, 500, "text/plain", "out of memory\n", 14);
		return 0;
	}
	c->api = api;
	c->req = req;
	c->route = route;
	c->start_ns = moor_clock_mono_ns();
	c->proto = is_proto(req);
	if (strcmp(srv_req_method(req), "POST") != 0) {
		struct moor_buf b;
		srv_gw_error_method_not_allowed(&ge);
		moor_buf_init(&b, NULL);
		srv_gw_write_error(&b, &ge);
		srv_req_reply(req, 405, JSON_CT, b.data, b.len);
		moor_buf_free(&b);
		call_free(c);
		return 0;
	}
	if (route->rpc == SRV_RPC_WATCH) {
		call_free(c);
		srv_api_watch(api, req, is_proto(req));
		return 0;
	}
	if (route->rpc == SRV_RPC_LEASE_KEEPALIVE) {
		call_free(c);
		srv_api_keepalive(api, req, is_proto(req));
		return 0;
	}
	body = srv_req_body(req, &len);
	if (c->proto) {
		switch (moor_pb_check(route->request, body, len, MOOR_PB_MAX_DEPTH)) {
		case MOOR_PB_TOO_DEEP:
			srv_gw_error_set(&ge, SRV_GRPC_INVALID_ARGUMENT,
			                 "protobuf body for %s nests messages more than %d deep",
			                 route->grpc_method, MOOR_PB_MAX_DEPTH);
			goto bad;
		case MOOR_PB_BAD_FIELD:
			srv_gw_error_set(&ge, SRV_GRPC_INVALID_ARGUMENT,
			                 "protobuf body for %s has a field numbered 0",
			                 route->grpc_method);
			goto bad;
		case MOOR_PB_OK:
			break;
		}
		c->msg = protobuf_c_message_unpack(route->request, NULL, len, body);
		if (!c->msg) {
			srv_gw_error_set(&ge, SRV_GRPC_INVALID_ARGUMENT,
			                 "malformed protobuf body for %s (%zu bytes)",
			                 route->grpc_method, len);
			goto bad;
		}
	} else {
		rc = srv_gw_decode_request(route->request, body, len, &lim, &c->msg, &ge);
		if (rc)
			goto bad;
	}
	switch (route->rpc) {
	case SRV_RPC_RANGE:
		do_read(c, ((Etcdserverpb__RangeRequest *)c->msg)->serializable);
		return 0;
	case SRV_RPC_LEASE_TIMETOLIVE:
	case SRV_RPC_LEASE_LEASES:
		do_read(c, 0);
		return 0;
	case SRV_RPC_PUT:
	case SRV_RPC_DELETE_RANGE:
	case SRV_RPC_TXN:
	case SRV_RPC_COMPACT:
	case SRV_RPC_LEASE_GRANT:
	case SRV_RPC_LEASE_REVOKE:
		do_write(c);
		return 0;
	case SRV_RPC_STATUS:
		do_status(c);
		return 0;
	case SRV_RPC_MEMBER_LIST:
		do_member_list(c);
		return 0;
	case SRV_RPC_HASHKV:
	case SRV_RPC_HASH:
		do_hash(c);
		return 0;
	case SRV_RPC_MEMBER_ADD:
	case SRV_RPC_MEMBER_REMOVE:
	case SRV_RPC_MEMBER_UPDATE:
	case SRV_RPC_MEMBER_PROMOTE:
		api_member_change(c);
		return 0;
	case SRV_RPC_MOVE_LEADER:
		api_move_leader(c);
		return 0;
	case SRV_RPC_SNAPSHOT:
		api_snapshot(c);
		return 0;
	case SRV_RPC_ALARM:
		api_alarm(c);
		return 0;
	case SRV_RPC_DEFRAGMENT:
		api_defragment(c);
		return 0;
	case SRV_RPC_LOCK:
	case SRV_RPC_CAMPAIGN:
		api_lock_acquire(c);
		return 0;
	case SRV_RPC_UNLOCK:
	case SRV_RPC_PROCLAIM:
	case SRV_RPC_RESIGN:
		api_lock_release(c);
		return 0;
	case SRV_RPC_LEADER:
		api_election_leader(c);
		return 0;
	case SRV_RPC_OBSERVE:
		api_election_observe(c);
		return 0;
	default:
		srv_gw_error_set(&ge, SRV_GRPC_UNIMPLEMENTED, "%s is not implemented yet",
		                 route->grpc_method);
		goto bad;
	}
bad : {
	struct moor_buf b;
	moor_buf_init(&b, NULL);
	srv_gw_write_error(&b, &ge);
	srv_req_reply(req, (unsigned)ge.http_status, JSON_CT, b.data, b.len);
	moor_buf_free(&b);
	call_free(c);
	return 0;
}
}

int srv_api_metrics(const struct srv_api *api, struct moor_buf *out)
{
	size_t nroutes;
	const struct srv_gw_route *routes = srv_gw_routes(&nroutes);
	unsigned char seen[SRV_RPC_COUNT] = {0};
	int rc;

	rc =
	    srv_metric_header(out, "grpc_server_handled_total", "counter",
	                      "Total number of RPCs completed on the server, regardless of success "
	                      "or failure.");
	for (size_t r = 0; r < nroutes && rc == 0; r++) {
		const struct srv_gw_route *rt = &routes[r];
		const char *slash = strrchr(rt->grpc_method, '/');
		unsigned rpc = (unsigned)rt->rpc;
		if (rpc >= SRV_RPC_COUNT || seen[rpc] || !slash)
			continue;
		seen[rpc] = 1;
		for (int code = 0; code < SRV_API_CODES && rc == 0; code++) {
			uint64_t v = srv_counter_get(&api->handled[rpc][code]);
			if (!v)
				continue;
			rc = moor_buf_printf(
			    out,
			    "grpc_server_handled_total{grpc_code=\"%s\",grpc_method=\"%s\","
			    "grpc_service=\"%.*s\",grpc_type=\"unary\"} %llu\n",
			    srv_grpc_code_name(code), slash + 1, (int)(slash - rt->grpc_method - 1),
			    rt->grpc_method + 1, (unsigned long long)v);
		}
	}
	if (rc == 0)
		rc = srv_metric_header(
		    out, "grpc_server_handling_seconds", "histogram",
		    "Histogram of response latency (seconds) of gRPC that had been "
		    "application-level handled by the server.");
	memset(seen, 0, sizeof seen);
	for (size_t r = 0; r < nroutes && rc == 0; r++) {
		const struct srv_gw_route *rt = &routes[r];
		const char *slash = strrchr(rt->grpc_method, '/');
		unsigned rpc = (unsigned)rt->rpc;
		char labels[160];
		if (rpc >= SRV_RPC_COUNT || seen[rpc] || !slash ||
		    !__atomic_load_n(&api->latency[rpc].count, __ATOMIC_RELAXED))
			continue;
		seen[rpc] = 1;
		snprintf(labels, sizeof labels,
		         "grpc_method=\"%s\",grpc_service=\"%.*s\",grpc_type=\"unary\"", slash + 1,
		         (int)(slash - rt->grpc_method - 1), rt->grpc_method + 1);
		rc = srv_hist_render(&api->latency[rpc], out, "grpc_server_handling_seconds",
		                     labels);
	}
	return rc;
}

int srv_api_stream_encode(const ProtobufCMessage *m, int proto, struct moor_buf *out)
{
	size_t len;
	int rc;

	if (!proto)
		return srv_jsonpb_encode_result(m, out);
	len = protobuf_c_message_get_packed_size(m);
	rc = moor_buf_reserve(out, 4 + len);
	if (rc)
		return rc;
	moor_put_be32(out->data + out->len, (uint32_t)len);
	protobuf_c_message_pack(m, out->data + out->len + 4);
	out->len += 4 + len;
	return 0;
}

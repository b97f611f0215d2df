/*
 * etcd's gateway errors: moor codes to gRPC statuses and HTTP statuses,
 * the error bodies, the gateway path table and the request decoders that
 * turn a JSON body into a message or into the error etcd would send.
 *
 * The messages are etcd's own (api/v3rpc/rpctypes/error.go), byte for byte,
 * because clients compare them: clientv3 maps a status back to its error
 * value by message text. Where moor has a condition etcd has not, the
 * message keeps etcd's "etcdserver: " form with moor's text.
 */
#include "server/gateway_errors.h"

#include "common/error.h"

#include "proto/lock.pb-c.h"
#include "proto/rpc.pb-c.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct err_map {
	int code;
	int grpc;
	const char *msg;
};

static const struct err_map err_table[] = {
    {MOOR_EINVAL, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: invalid argument"},
    {MOOR_ENOMEM, SRV_GRPC_RESOURCE_EXHAUSTED, "etcdserver: out of memory"},
    {MOOR_ECORRUPT, SRV_GRPC_DATA_LOSS, "etcdserver: corrupt cluster"},
    {MOOR_ENOTFOUND, SRV_GRPC_NOT_FOUND, "etcdserver: not found"},
    {MOOR_ECOMPACTED, SRV_GRPC_OUT_OF_RANGE,
     "etcdserver: mvcc: required revision has been compacted"},
    {MOOR_EFUTUREREV, SRV_GRPC_OUT_OF_RANGE,
     "etcdserver: mvcc: required revision is a future revision"},
    {MOOR_EEMPTYKEY, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: key is not provided"},
    {MOOR_ERANGEEND, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: range_end is below key"},
    {MOOR_ESORT, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: invalid sort option"},
    {MOOR_ELIMIT, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: limit is negative"},
    {MOOR_EDUPKEY, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"},
    {MOOR_ETOOMANYOPS, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: too many operations in txn request"},
    {MOOR_ETOOLARGE, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: request is too large"},
    {MOOR_ELEASENOTFOUND, SRV_GRPC_NOT_FOUND, "etcdserver: requested lease not found"},
    {MOOR_ELEASEEXISTS, SRV_GRPC_FAILED_PRECONDITION, "etcdserver: lease already exists"},
    {MOOR_EVALUEPROVIDED, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: value is provided"},
    {MOOR_ELEASEPROVIDED, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: lease is provided"},
    {MOOR_EKEYNOTFOUND, SRV_GRPC_INVALID_ARGUMENT, "etcdserver: key not found"},
    {MOOR_ENOLEADER, SRV_GRPC_UNAVAILABLE, "etcdserver: no leader"},
    /* A dropped proposal never applied: safe to retry, as Unavailable says. */
    {MOOR_EDROPPED, SRV_GRPC_UNAVAILABLE, "etcdserver: raft proposal dropped"},
    {MOOR_ETRANSFERRING, SRV_GRPC_UNAVAILABLE, "etcdserver: leadership transfer in progress"},
    {MOOR_ENOTLEADER, SRV_GRPC_FAILED_PRECONDITION, "etcdserver: not leader"},
    {MOOR_ESTOPPED, SRV_GRPC_UNAVAILABLE, "etcdserver: server stopped"},
    {MOOR_ECLOSED, SRV_GRPC_UNAVAILABLE, "etcdserver: server stopped"},
    {MOOR_ETIMEOUT, SRV_GRPC_UNAVAILABLE, "etcdserver: request timed out"},
    {MOOR_ETOOMANYREQUESTS, SRV_GRPC_RESOURCE_EXHAUSTED, "etcdserver: too many requests"},
    {MOOR_ENOSPACE, SRV_GRPC_RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"},
    {MOOR_EUNAVAILABLE, SRV_GRPC_UNAVAILABLE, "etcdserver: unhealthy cluster"},
    /* etcd's text really is "exist", not "exists". */
    {MOOR_EMEMBEREXISTS, SRV_GRPC_FAILED_PRECONDITION, "etcdserver: member ID already exist"},
    {MOOR_EMEMBERNOTFOUND, SRV_GRPC_NOT_FOUND, "etcdserver: member not found"},
    {MOOR_EPEERURLEXISTS, SRV_GRPC_FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"},
    {MOOR_ELEARNERNOTREADY, SRV_GRPC_FAILED_PRECONDITION,
     "etcdserver: can only promote a learner member which is in sync with leader"},
    {MOOR_ETOOMANYLEARNERS, SRV_GRPC_FAILED_PRECONDITION,
     "etcdserver: too many learner members in cluster"},
    {MOOR_EUNSUPPORTED, SRV_GRPC_UNIMPLEMENTED, "etcdserver: operation not supported"},
    {MOOR_EBUSY, SRV_GRPC_UNAVAILABLE, "etcdserver: busy"},
    {MOOR_EEXIST, SRV_GRPC_ALREADY_EXISTS, "etcdserver: already exists"},
    {MOOR_EPENDINGCONF, SRV_GRPC_UNAVAILABLE,
     "etcdserver: a configuration change is already pending"},
    {MOOR_ECOMPACTEDLOG, SRV_GRPC_INTERNAL, "etcdserver: requested log index is compacted"},
    {MOOR_EUNAVAILLOG, SRV_GRPC_INTERNAL, "etcdserver: requested log index is unavailable"},
    {MOOR_ESNAPOUTOFDATE, SRV_GRPC_INTERNAL,
     "etcdserver: requested snapshot is older than the existing one"},
    /* The outcome is unknown: etcd says "timed out" and so do we. */
    {MOOR_EINDETERMINATE, SRV_GRPC_UNAVAILABLE, "etcdserver: request timed out"},
    {MOOR_EPROTO, SRV_GRPC_INTERNAL, "etcdserver: protocol error"},
    {MOOR_EWATCHCANCELED, SRV_GRPC_CANCELED, "etcdserver: watch canceled"},
    /* An expired lease is gone: etcd reports it as not found. */
    {MOOR_ELEASEEXPIRED, SRV_GRPC_NOT_FOUND, "etcdserver: requested lease not found"},
    {MOOR_ECLUSTERMISMATCH, SRV_GRPC_FAILED_PRECONDITION, "etcdserver: cluster ID mismatch"},
    {MOOR_ELEADERCHANGED, SRV_GRPC_UNAVAILABLE, "etcdserver: leader changed"},
    {MOOR_ELEARNER, SRV_GRPC_UNAVAILABLE, "etcdserver: rpc not supported for learner"},
};

static const char *const code_names[] = {
    "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated",
};

const char *srv_grpc_code_name(int grpc_code)
{
	if (grpc_code < 0 || grpc_code >= (int)(sizeof code_names / sizeof code_names[0]))
		return "Unknown";
	return code_names[grpc_code];
}

int srv_gw_http_status(int grpc_code)
{
	switch (grpc_code) {
	case SRV_GRPC_OK:
		return 200;
	case SRV_GRPC_CANCELED:
		return 408;
	case SRV_GRPC_UNKNOWN:
		return 500;
	case SRV_GRPC_INVALID_ARGUMENT:
		return 400;
	case SRV_GRPC_DEADLINE_EXCEEDED:
		return 504;
	case SRV_GRPC_NOT_FOUND:
		return 404;
	case SRV_GRPC_ALREADY_EXISTS:
		return 409;
	case SRV_GRPC_PERMISSION_DENIED:
		return 403;
	case SRV_GRPC_UNAUTHENTICATED:
		return 401;
	case SRV_GRPC_RESOURCE_EXHAUSTED:
		return 429;
	/* grpc-gateway deliberately maps FailedPrecondition to 400, not 412. */
	case SRV_GRPC_FAILED_PRECONDITION:
		return 400;
	case SRV_GRPC_ABORTED:
		return 409;
	case SRV_GRPC_OUT_OF_RANGE:
		return 400;
	case SRV_GRPC_UNIMPLEMENTED:
		return 501;
	case SRV_GRPC_INTERNAL:
		return 500;
	case SRV_GRPC_UNAVAILABLE:
		return 503;
	case SRV_GRPC_DATA_LOSS:
		return 500;
	}
	return 500;
}

const char *srv_gw_http_status_text(int http_status)
{
	switch (http_status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Request Entity Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	}
	return "";
}

void srv_gw_error_set(struct srv_gw_error *out, int grpc_code, const char *fmt, ...)
{
	va_list ap;

	out->grpc_code = grpc_code;
	out->http_status = srv_gw_http_status(grpc_code);
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof out->message, fmt, ap);
	va_end(ap);
}

void srv_gw_error_from_code(int err, struct srv_gw_error *out)
{
	if (err == 0) {
		srv_gw_error_set(out, SRV_GRPC_OK, "%s", "");
		return;
	}
	for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++) {
		if (err_table[i].code == err) {
			srv_gw_error_set(out, err_table[i].grpc, "%s", err_table[i].msg);
			return;
		}
	}
	srv_gw_error_set(out, SRV_GRPC_UNKNOWN, "%s", moor_strerror(err));
}

void srv_gw_error_not_found(struct srv_gw_error *out)
{
	srv_gw_error_set(out, SRV_GRPC_NOT_FOUND, "%s", "Not Found");
}

void srv_gw_error_method_not_allowed(struct srv_gw_error *out)
{
	out->grpc_code = SRV_GRPC_UNIMPLEMENTED;
	out->http_status = 405;
	snprintf(out->message, sizeof out->message, "%s", "Method Not Allowed");
}

int srv_gw_write_error(struct moor_buf *out, const struct srv_gw_error *e)
{
	size_t start = out->len;
	size_t n = strlen(e->message);
	int rc;

	if ((rc = moor_buf_append(out, "{\"error\":", 9)) != 0 ||
	    (rc = srv_jsonpb_append_string(out, e->message, n)) != 0 ||
	    (rc = moor_buf_printf(out, ",\"code\":%d,\"message\":", e->grpc_code)) != 0 ||
	    (rc = srv_jsonpb_append_string(out, e->message, n)) != 0 ||
	    (rc = moor_buf_append(out, "}", 1)) != 0)
		out->len = start;
	return rc;
}

int srv_gw_write_stream_error(struct moor_buf *out, const struct srv_gw_error *e)
{
	size_t start = out->len;
	const char *text = srv_gw_http_status_text(e->http_status);
	int rc;

	if ((rc = moor_buf_printf(out, "{\"error\":{\"grpc_code\":%d,\"http_code\":%d,\"message\":",
	                          e->grpc_code, e->http_status)) != 0 ||
	    (rc = srv_jsonpb_append_string(out, e->message, strlen(e->message))) != 0 ||
	    (rc = moor_buf_append(out, ",\"http_status\":", 15)) != 0 ||
	    (rc = srv_jsonpb_append_string(out, text, strlen(text))) != 0 ||
	    (rc = moor_buf_append(out, "}}", 2)) != 0)
		out->len = start;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */

#define ROUTE(p, m, id, k, req, resp)                                \
	{                                                            \
		p, m, id, k, &req##__descriptor, &resp##__descriptor \
	}

static const struct srv_gw_route routes[] = {
    ROUTE("/kv/range", "/etcdserverpb.KV/Range", SRV_RPC_RANGE, SRV_GW_UNARY,
          etcdserverpb__range_request, etcdserverpb__range_response),
    ROUTE("/kv/put", "/etcdserverpb.KV/Put", SRV_RPC_PUT, SRV_GW_UNARY, etcdserverpb__put_request,
          etcdserverpb__put_response),
    ROUTE("/kv/deleterange", "/etcdserverpb.KV/DeleteRange", SRV_RPC_DELETE_RANGE, SRV_GW_UNARY,
          etcdserverpb__delete_range_request, etcdserverpb__delete_range_response),
    ROUTE("/kv/txn", "/etcdserverpb.KV/Txn", SRV_RPC_TXN, SRV_GW_UNARY, etcdserverpb__txn_request,
          etcdserverpb__txn_response),
    ROUTE("/kv/compaction", "/etcdserverpb.KV/Compact", SRV_RPC_COMPACT, SRV_GW_UNARY,
          etcdserverpb__compaction_request, etcdserverpb__compaction_response),
    ROUTE("/watch", "/etcdserverpb.Watch/Watch", SRV_RPC_WATCH, SRV_GW_BIDI_STREAM,
          etcdserverpb__watch_request, etcdserverpb__watch_response),
    ROUTE("/lease/grant", "/etcdserverpb.Lease/LeaseGrant", SRV_RPC_LEASE_GRANT, SRV_GW_UNARY,
          etcdserverpb__lease_grant_request, etcdserverpb__lease_grant_response),
    ROUTE("/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", SRV_RPC_LEASE_REVOKE, SRV_GW_UNARY,
          etcdserverpb__lease_revoke_request, etcdserverpb__lease_revoke_response),
    ROUTE("/kv/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", SRV_RPC_LEASE_REVOKE, SRV_GW_UNARY,
          etcdserverpb__lease_revoke_request, etcdserverpb__lease_revoke_response),
    ROUTE("/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive", SRV_RPC_LEASE_KEEPALIVE,
          SRV_GW_BIDI_STREAM, etcdserverpb__lease_keep_alive_request,
          etcdserverpb__lease_keep_alive_response),
    ROUTE("/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", SRV_RPC_LEASE_TIMETOLIVE,
          SRV_GW_UNARY, etcdserverpb__lease_time_to_live_request,
          etcdserverpb__lease_time_to_live_response),
    ROUTE("/kv/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", SRV_RPC_LEASE_TIMETOLIVE,
          SRV_GW_UNARY, etcdserverpb__lease_time_to_live_request,
          etcdserverpb__lease_time_to_live_response),
    ROUTE("/lease/leases", "/etcdserverpb.Lease/LeaseLeases", SRV_RPC_LEASE_LEASES, SRV_GW_UNARY,
          etcdserverpb__lease_leases_request, etcdserverpb__lease_leases_response),
    ROUTE("/kv/lease/leases", "/etcdserverpb.Lease/LeaseLeases", SRV_RPC_LEASE_LEASES, SRV_GW_UNARY,
          etcdserverpb__lease_leases_request, etcdserverpb__lease_leases_response),
    ROUTE("/cluster/member/add", "/etcdserverpb.Cluster/MemberAdd", SRV_RPC_MEMBER_ADD,
          SRV_GW_UNARY, etcdserverpb__member_add_request, etcdserverpb__member_add_response),
    ROUTE("/cluster/member/remove", "/etcdserverpb.Cluster/MemberRemove", SRV_RPC_MEMBER_REMOVE,
          SRV_GW_UNARY, etcdserverpb__member_remove_request, etcdserverpb__member_remove_response),
    ROUTE("/cluster/member/update", "/etcdserverpb.Cluster/MemberUpdate", SRV_RPC_MEMBER_UPDATE,
          SRV_GW_UNARY, etcdserverpb__member_update_request, etcdserverpb__member_update_response),
    ROUTE("/cluster/member/list", "/etcdserverpb.Cluster/MemberList", SRV_RPC_MEMBER_LIST,
          SRV_GW_UNARY, etcdserverpb__member_list_request, etcdserverpb__member_list_response),
    ROUTE("/cluster/member/promote", "/etcdserverpb.Cluster/MemberPromote", SRV_RPC_MEMBER_PROMOTE,
          SRV_GW_UNARY, etcdserverpb__member_promote_request,
          etcdserverpb__member_promote_response),
    ROUTE("/maintenance/alarm", "/etcdserverpb.Maintenance/Alarm", SRV_RPC_ALARM, SRV_GW_UNARY,
          etcdserverpb__alarm_request, etcdserverpb__alarm_response),
    ROUTE("/maintenance/status", "/etcdserverpb.Maintenance/Status", SRV_RPC_STATUS, SRV_GW_UNARY,
          etcdserverpb__status_request, etcdserverpb__status_response),
    ROUTE("/maintenance/defragment", "/etcdserverpb.Maintenance/Defragment", SRV_RPC_DEFRAGMENT,
          SRV_GW_UNARY, etcdserverpb__defragment_request, etcdserverpb__defragment_response),
    ROUTE("/maintenance/hash", "/etcdserverpb.Maintenance/Hash", SRV_RPC_HASH, SRV_GW_UNARY,
          etcdserverpb__hash_request, etcdserverpb__hash_response),
    ROUTE("/maintenance/hashkv", "/etcdserverpb.Maintenance/HashKV", SRV_RPC_HASHKV, SRV_GW_UNARY,
          etcdserverpb__hash_kvrequest, etcdserverpb__hash_kvresponse),
    ROUTE("/maintenance/snapshot", "/etcdserverpb.Maintenance/Snapshot", SRV_RPC_SNAPSHOT,
          SRV_GW_SERVER_STREAM, etcdserverpb__snapshot_request, etcdserverpb__snapshot_response),
    ROUTE("/maintenance/transfer-leadership", "/etcdserverpb.Maintenance/MoveLeader",
          SRV_RPC_MOVE_LEADER, SRV_GW_UNARY, etcdserverpb__move_leader_request,
          etcdserverpb__move_leader_response),
    ROUTE("/lock/lock", "/v3lockpb.Lock/Lock", SRV_RPC_LOCK, SRV_GW_UNARY, v3lockpb__lock_request,
          v3lockpb__lock_response),
    ROUTE("/lock/unlock", "/v3lockpb.Lock/Unlock", SRV_RPC_UNLOCK, SRV_GW_UNARY,
          v3lockpb__unlock_request, v3lockpb__unlock_response),
    ROUTE("/election/campaign", "/v3electionpb.Election/Campaign", SRV_RPC_CAMPAIGN, SRV_GW_UNARY,
          v3lockpb__campaign_request, v3lockpb__campaign_response),
    ROUTE("/election/proclaim", "/v3electionpb.Election/Proclaim", SRV_RPC_PROCLAIM, SRV_GW_UNARY,
          v3lockpb__proclaim_request, v3lockpb__proclaim_response),
    ROUTE("/election/leader", "/v3electionpb.Election/Leader", SRV_RPC_LEADER, SRV_GW_UNARY,
          v3lockpb__leader_request, v3lockpb__leader_response),
    ROUTE("/election/observe", "/v3electionpb.Election/Observe", SRV_RPC_OBSERVE,
          SRV_GW_SERVER_STREAM, v3lockpb__leader_request, v3lockpb__leader_response),
    ROUTE("/election/resign", "/v3electionpb.Election/Resign", SRV_RPC_RESIGN, SRV_GW_UNARY,
          v3lockpb__resign_request, v3lockpb__resign_response),
};

const struct srv_gw_route *srv_gw_routes(size_t *n)
{
	*n = sizeof routes / sizeof routes[0];
	return routes;
}

const struct srv_gw_route *srv_gw_route_find(const char *path, size_t len)
{
	static const char *const prefixes[] = {"/v3/", "/v3beta/", "/v3alpha/"};
	const char *q = memchr(path, '?', len);
	size_t plen = 0;

	if (q)
		len = (size_t)(q - path);
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(prefixes[i]);

		if (len >= n && memcmp(path, prefixes[i], n) == 0) {
			plen = n - 1; /* keep the '/' that starts the route */
			break;
		}
	}
	if (!plen)
		return NULL;
	path += plen;
	len -= plen;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (strlen(routes[i].path) == len && memcmp(routes[i].path, path, len) == 0)
			return &routes[i];
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Decoding requests                                                         */

/* Turns a decoder failure into the status the gateway sends. */
static void map_decode_error(int rc, const struct srv_jsonpb_error *jerr, struct srv_gw_error *gerr)
{
	if (rc == MOOR_ENOMEM || rc == MOOR_ETOOLARGE)
		srv_gw_error_set(gerr, SRV_GRPC_RESOURCE_EXHAUSTED, "%s", jerr->msg);
	else
		srv_gw_error_set(gerr, SRV_GRPC_INVALID_ARGUMENT, "%s", jerr->msg);
}

/* etcd's gRPC server refuses a message over max-request-bytes + 512 KiB. */
static int check_size(const ProtobufCMessage *msg, const struct srv_gw_limits *lim,
                      struct srv_gw_error *gerr)
{
	size_t max, size;

	if (!lim || !lim->max_request_bytes)
		return 0;
	max = lim->max_request_bytes + SRV_GW_GRPC_OVERHEAD_BYTES;
	size = protobuf_c_message_get_packed_size(msg);
	if (size <= max)
		return 0;
	srv_gw_error_set(gerr, SRV_GRPC_RESOURCE_EXHAUSTED,
	                 "grpc: received message larger than max (%zu vs. %zu)", size, max);
	return MOOR_ETOOLARGE;
}

/* The JSON decoder's options for these limits (see srv_gw_limits.json). */
static const struct srv_jsonpb_opts *json_opts(const struct srv_gw_limits *lim,
                                               struct srv_jsonpb_opts *tmp)
{
	if (!lim)
		return NULL;
	if (lim->json && lim->json->max_bytes)
		return lim->json;
	if (lim->json)
		*tmp = *lim->json;
	else
		memset(tmp, 0, sizeof *tmp);
	if (lim->max_request_bytes &&
	    lim->max_request_bytes < (SIZE_MAX - SRV_GW_GRPC_OVERHEAD_BYTES) / 2)
		tmp->max_bytes = 2 * (lim->max_request_bytes + SRV_GW_GRPC_OVERHEAD_BYTES);
	return tmp;
}

static ProtobufCAllocator *lim_alloc(const struct srv_gw_limits *lim)
{
	return lim && lim->json ? lim->json->alloc : NULL;
}

int srv_gw_decode_request(const ProtobufCMessageDescriptor *desc, const void *body, size_t len,
                          const struct srv_gw_limits *lim, ProtobufCMessage **out,
                          struct srv_gw_error *gerr)
{
	struct srv_jsonpb_opts tmp;
	struct srv_jsonpb_error jerr;
	int rc = srv_jsonpb_decode(desc, body, len, json_opts(lim, &tmp), out, &jerr);

	if (rc) {
		map_decode_error(rc, &jerr, gerr);
		return rc;
	}
	rc = check_size(*out, lim, gerr);
	if (rc) {
		protobuf_c_message_free_unpacked(*out, lim_alloc(lim));
		*out = NULL;
		return rc;
	}
	srv_gw_error_from_code(0, gerr);
	return 0;
}

int srv_gw_decode_next(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                       bool at_eof, const struct srv_gw_limits *lim, ProtobufCMessage **out,
                       size_t *consumed, struct srv_gw_error *gerr)
{
	struct srv_jsonpb_opts tmp;
	struct srv_jsonpb_error jerr;
	int rc = srv_jsonpb_decode_next(desc, data, len, at_eof, json_opts(lim, &tmp), out,
	                                consumed, &jerr);

	if (rc) {
		map_decode_error(rc, &jerr, gerr);
		return rc;
	}
	if (*out && (rc = check_size(*out, lim, gerr)) != 0) {
		protobuf_c_message_free_unpacked(*out, lim_alloc(lim));
		*out = NULL;
		return rc;
	}
	srv_gw_error_from_code(0, gerr);
	return 0;
}

/*
 * etcd's gateway errors and the request-decoding layer of the JSON API.
 *
 * etcd answers a failed call with a gRPC status (code + message, the
 * messages of api/v3rpc/rpctypes/error.go, "etcdserver: ..."), and its
 * grpc-gateway (v1.16 in etcd 3.5) turns that status into an HTTP status
 * (HTTPStatusFromCode) and a JSON body:
 *   unary:  {"error":"<msg>","code":<grpc code>,"message":"<msg>"}
 *   stream: {"error":{"grpc_code":N,"http_code":N,"message":"<msg>","http_status":"<text>"}}
 * This file holds that mapping for moor's error codes (common/error.h), the
 * body writers, the gateway's own errors (malformed body, unknown path,
 * wrong method), the table of gateway paths with their request and response
 * descriptors, and the decoding entry points the HTTP handlers call: they
 * decode a body with server/jsonpb.h and turn any failure into the status
 * etcd would send.
 *
 * Everything here is reentrant, with no global state; returned strings and
 * route entries are static.
 */
#ifndef MOOR_SERVER_GATEWAY_ERRORS_H
#define MOOR_SERVER_GATEWAY_ERRORS_H

#include "common/buf.h"
#include "server/jsonpb.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* gRPC status codes (google.golang.org/grpc/codes). */
enum srv_grpc_code {
	SRV_GRPC_OK = 0,
	SRV_GRPC_CANCELED = 1,
	SRV_GRPC_UNKNOWN = 2,
	SRV_GRPC_INVALID_ARGUMENT = 3,
	SRV_GRPC_DEADLINE_EXCEEDED = 4,
	SRV_GRPC_NOT_FOUND = 5,
	SRV_GRPC_ALREADY_EXISTS = 6,
	SRV_GRPC_PERMISSION_DENIED = 7,
	SRV_GRPC_RESOURCE_EXHAUSTED = 8,
	SRV_GRPC_FAILED_PRECONDITION = 9,
	SRV_GRPC_ABORTED = 10,
	SRV_GRPC_OUT_OF_RANGE = 11,
	SRV_GRPC_UNIMPLEMENTED = 12,
	SRV_GRPC_INTERNAL = 13,
	SRV_GRPC_UNAVAILABLE = 14,
	SRV_GRPC_DATA_LOSS = 15,
	SRV_GRPC_UNAUTHENTICATED = 16,
};

/* Longest message an srv_gw_error carries (decoder messages fit). */
#define SRV_GW_MSG_MAX 320

/* A failed call as the gateway reports it. */
struct srv_gw_error {
	int grpc_code;
	int http_status;
	char message[SRV_GW_MSG_MAX];
};

/*
 * The status etcd sends for moor error `err` (a MOOR_E* code or -errno):
 * its gRPC code and message ("etcdserver: mvcc: required revision has been
 * compacted"), and the HTTP status. A code with no etcd equivalent gets
 * gRPC Unknown (HTTP 500) with moor_strerror's message, as etcd's gateway
 * does for errors that are not gRPC statuses. err 0 gives OK/200/"".
 * Never fails; `out` is filled completely.
 */
void srv_gw_error_from_code(int err, struct srv_gw_error *out);

/* The same, but with the caller's message (printf format) in place of the
 * table's, for errors whose text carries context. */
void srv_gw_error_set(struct srv_gw_error *out, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* grpc-gateway v1's HTTPStatusFromCode: InvalidArgument, FailedPrecondition
 * and OutOfRange → 400, Canceled → 408, ResourceExhausted → 429, ... An
 * unknown code gives 500. */
int srv_gw_http_status(int grpc_code);

/* Go's http.StatusText ("Bad Request", "Too Many Requests"); "" if unknown. */
const char *srv_gw_http_status_text(int http_status);

/* The code's name as gRPC prints it ("OK", "InvalidArgument", "Unavailable"),
 * for metric labels; "Code(N)" is not produced: unknown codes give "Unknown". */
const char *srv_grpc_code_name(int grpc_code);

/* Appends the unary error body {"error":msg,"code":N,"message":msg}.
 * MOOR_ENOMEM/MOOR_ETOOLARGE leave `out` as it was. */
int srv_gw_write_error(struct moor_buf *out, const struct srv_gw_error *e);

/* Appends the error chunk of a stream (no trailing newline: grpc-gateway v1
 * writes none after it). The HTTP status goes in the chunk too; the caller
 * sets it on the response only if no chunk was sent yet, as the gateway does. */
int srv_gw_write_stream_error(struct moor_buf *out, const struct srv_gw_error *e);

/* The gateway's 404 for an unknown path: HTTP 404 with
 * {"error":"Not Found","code":5,"message":"Not Found"}; and its answer to a
 * known path with a method other than POST: HTTP 405 with
 * {"error":"Method Not Allowed","code":12,"message":"Method Not Allowed"}. */
void srv_gw_error_not_found(struct srv_gw_error *out);
void srv_gw_error_method_not_allowed(struct srv_gw_error *out);

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */

enum srv_gw_kind {
	SRV_GW_UNARY,         /* one request, one response */
	SRV_GW_SERVER_STREAM, /* one request, a stream of responses (snapshot, observe) */
	SRV_GW_BIDI_STREAM,   /* requests and responses streamed (watch, keep-alive) */
};

enum srv_gw_rpc {
	SRV_RPC_RANGE,
	SRV_RPC_PUT,
	SRV_RPC_DELETE_RANGE,
	SRV_RPC_TXN,
	SRV_RPC_COMPACT,
	SRV_RPC_WATCH,
	SRV_RPC_LEASE_GRANT,
	SRV_RPC_LEASE_REVOKE,
	SRV_RPC_LEASE_KEEPALIVE,
	SRV_RPC_LEASE_TIMETOLIVE,
	SRV_RPC_LEASE_LEASES,
	SRV_RPC_MEMBER_ADD,
	SRV_RPC_MEMBER_REMOVE,
	SRV_RPC_MEMBER_UPDATE,
	SRV_RPC_MEMBER_LIST,
	SRV_RPC_MEMBER_PROMOTE,
	SRV_RPC_ALARM,
	SRV_RPC_STATUS,
	SRV_RPC_DEFRAGMENT,
	SRV_RPC_HASH,
	SRV_RPC_HASHKV,
	SRV_RPC_SNAPSHOT,
	SRV_RPC_MOVE_LEADER,
	SRV_RPC_LOCK,
	SRV_RPC_UNLOCK,
	SRV_RPC_CAMPAIGN,
	SRV_RPC_PROCLAIM,
	SRV_RPC_LEADER,
	SRV_RPC_OBSERVE,
	SRV_RPC_RESIGN,
	SRV_RPC_COUNT
};

struct srv_gw_route {
	const char *path;        /* after the version prefix: "/kv/range" */
	const char *grpc_method; /* "/etcdserverpb.KV/Range", for logs and metrics */
	enum srv_gw_rpc rpc;
	enum srv_gw_kind kind;
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *response;
};

/*
 * The route for a request path ("/v3/kv/range", also under the older
 * "/v3beta/" and "/v3alpha/" prefixes, and the "/v3/kv/lease/..." aliases
 * of the lease calls); a query string is ignored. NULL if the path is not
 * one of etcd's gateway paths. The entry is static.
 */
const struct srv_gw_route *srv_gw_route_find(const char *path, size_t len);

/* The route table, for listing (n entries, static). */
const struct srv_gw_route *srv_gw_routes(size_t *n);

/* ------------------------------------------------------------------------ */
/* Decoding requests                                                         */

struct srv_gw_limits {
	/* etcd's --max-request-bytes (default 1.5 MiB). A decoded request whose
	 * protobuf form exceeds it plus gRPC's 512 KiB allowance is refused as
	 * etcd's gRPC server refuses it (ResourceExhausted, "grpc: received
	 * message larger than max (N vs. M)"); 0: no check. */
	size_t max_request_bytes;
	/* Passed to the JSON decoder; NULL: its defaults, except that a JSON
	 * value may then be as long as twice the gRPC limit above (base64
	 * grows bytes by 4/3, and field names and quotes add more), so that
	 * the protobuf-size check, not the JSON one, decides what is too big. */
	const struct srv_jsonpb_opts *json;
};

#define SRV_GW_DEFAULT_MAX_REQUEST_BYTES ((size_t)(1.5 * 1024 * 1024))
#define SRV_GW_GRPC_OVERHEAD_BYTES ((size_t)512 * 1024)

/*
 * Decodes a unary request body for `desc`. On success *out is the message,
 * freed by the caller with protobuf_c_message_free_unpacked(*out,
 * lim->json ? lim->json->alloc : NULL). On failure returns the MOOR_E* code,
 * *out is NULL, and `gerr` holds what to send: InvalidArgument/400 with the
 * decoder's message for bad input, ResourceExhausted/429 for an oversized
 * body or out of memory. lim may be NULL (defaults).
 */
int srv_gw_decode_request(const ProtobufCMessageDescriptor *desc, const void *body, size_t len,
                          const struct srv_gw_limits *lim, ProtobufCMessage **out,
                          struct srv_gw_error *gerr);

/* The streaming form (watch, lease keep-alive), with srv_jsonpb_decode_next's
 * contract for *out, *consumed and at_eof, and errors mapped as above. */
int srv_gw_decode_next(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                       bool at_eof, const struct srv_gw_limits *lim, ProtobufCMessage **out,
                       size_t *consumed, struct srv_gw_error *gerr);

#endif

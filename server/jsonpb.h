/*
 * The JSON form of protobuf messages, as etcd's grpc-gateway speaks it.
 *
 * One codec for every message: it walks a protobuf-c message descriptor
 * field by field, so a new message in proto/ needs no code here. The rules
 * are those of etcd 3.4/3.5's gateway (grpc-gateway v1, JSONPb{OrigName:
 * true}) with etcd 3.6's DiscardUnknown on input:
 *
 * Output (srv_jsonpb_encode)
 *   - field names exactly as the .proto spells them ("cluster_id", "TTL",
 *     "peerURLs"), compact (no spaces), in field-number order (Go writes
 *     declaration order; every message in proto/ declares its fields in
 *     number order, so the two agree);
 *   - fields holding their zero value, empty repeated fields, unset
 *     messages and unset oneofs are omitted; a set oneof member is written
 *     even when its value is zero ("create_revision":"0"); a set message is
 *     written even when empty ({});
 *   - bytes as standard base64 with padding; int64, uint64, sint64, fixed64
 *     and sfixed64 as decimal JSON strings; 32-bit integers as numbers;
 *     bool as true/false; floats as Go writes them (shortest digits, plain
 *     below 1e21, "1e-7" style outside [1e-6, 1e21); "NaN", "Infinity" and
 *     "-Infinity" as strings); enums by their .proto name, or the number
 *     when the value has no name; proto2 optional fields when present;
 *   - strings escaped as Go's encoding/json does (so "<" is "\u003c", invalid
 *     UTF-8 becomes U+FFFD), which keeps the bytes equal to etcd's.
 *
 * Input (srv_jsonpb_decode, srv_jsonpb_decode_next)
 *   - a field is found by its .proto name or by its lowerCamelCase JSON name
 *     ("range_end" or "rangeEnd"); naming one field twice (under either
 *     name), or two members of one oneof, is an error;
 *   - unknown fields are ignored, as etcd 3.6 does (DiscardUnknown: clients
 *     newer than the server keep working); SRV_JSONPB_REJECT_UNKNOWN makes
 *     them an error, as etcd 3.4/3.5 did;
 *   - null means the field's default; a top-level null or an empty unary
 *     body is the empty message (grpc-gateway v1 ignores an empty body);
 *   - 64-bit integers from strings or numbers, 32-bit ones likewise; a
 *     string must be a plain decimal integer; a number must be integral
 *     (1e3 is accepted, 1.5 is not); anything out of the field's range is an
 *     error. Integer literals beyond int64 (uint64 IDs above 2^63) are
 *     accepted as numbers too;
 *   - bytes from standard or URL-safe base64, with or without padding
 *     (CR and LF inside are skipped, as Go does); anything else is an error;
 *   - enums by name or by number (proto3 enums are open, so any int32 is
 *     accepted; the caller validates meaning); an unknown name is an error
 *     that names it;
 *   - a proto2 required field that is absent is an error;
 *   - limits: nesting deeper than opts->max_depth levels and a value longer
 *     than opts->max_bytes are errors, checked before the JSON is parsed;
 *   - a unary body must hold nothing but whitespace after its object (Go's
 *     gateway would ignore trailing bytes; we refuse them).
 *
 * Known differences from Go: strings with U+0000 are refused (jansson),
 * and invalid UTF-8 in a request is an error rather than replaced.
 *
 * Every decoding error is MOOR_EINVAL (or MOOR_ETOOLARGE for the size limit,
 * MOOR_ENOMEM) with a message in err->msg that names the problem and, where
 * there is one, the field by its path ("success[0].request_put.lease").
 * Those are the messages the gateway returns with gRPC InvalidArgument.
 *
 * Threading: every function is reentrant; there is no global state (jansson
 * is used only with its default allocator and is itself thread-safe).
 */
#ifndef MOOR_SERVER_JSONPB_H
#define MOOR_SERVER_JSONPB_H

#include "common/buf.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* Defaults for struct srv_jsonpb_opts (0 in a field means the default). */
#define SRV_JSONPB_MAX_DEPTH 32
/* One JSON request object: etcd's 1.5 MiB --max-request-bytes grows by 4/3
 * in base64, plus the field names; 4 MiB is the largest body a default etcd
 * gateway could pass on (its gRPC receive limit). The caller checks the
 * decoded message's packed size against --max-request-bytes. */
#define SRV_JSONPB_MAX_BYTES (4u * 1024 * 1024)
#define SRV_JSONPB_ERR_MAX 256

/* Decoder flags. */
#define SRV_JSONPB_REJECT_UNKNOWN 0x1u /* unknown field names are an error */

struct srv_jsonpb_opts {
	size_t max_bytes;   /* longest JSON value accepted; 0: SRV_JSONPB_MAX_BYTES */
	unsigned max_depth; /* deepest nesting of objects and arrays; 0: default */
	unsigned flags;     /* SRV_JSONPB_* */
	/* Allocator for the decoded message; NULL: the C library's (what
	 * protobuf_c_message_free_unpacked(msg, NULL) expects). */
	ProtobufCAllocator *alloc;
};

struct srv_jsonpb_error {
	char msg[SRV_JSONPB_ERR_MAX]; /* NUL-terminated; "" when no error */
};

/*
 * Appends the JSON object for `msg` to `out`. On failure (MOOR_ENOMEM,
 * MOOR_ETOOLARGE when out->max_bytes is reached, MOOR_EINVAL for a message
 * nested deeper than 100 levels) `out` is left exactly as it was. The
 * buffer stays the caller's.
 */
int srv_jsonpb_encode(const ProtobufCMessage *msg, struct moor_buf *out);

/*
 * Appends one chunk of a gateway stream, `{"result":<msg>}\n`, as
 * grpc-gateway writes each message of a server stream. Errors as above.
 */
int srv_jsonpb_encode_result(const ProtobufCMessage *msg, struct moor_buf *out);

/*
 * Encodes `msg` into a malloc'd NUL-terminated string, stored in *out (the
 * caller frees it with free()); *len (if not NULL) gets its length.
 * Returns 0 or MOOR_ENOMEM / MOOR_EINVAL.
 */
int srv_jsonpb_encode_string(const ProtobufCMessage *msg, char **out, size_t *len);

/*
 * Decodes a unary request body: exactly one JSON object (or null, or an
 * empty/whitespace-only body, both giving the empty message), optionally
 * surrounded by whitespace; anything after it is an error.
 *
 * On success *out is a new message of type `desc`, owned by the caller, to
 * be freed with protobuf_c_message_free_unpacked(*out, opts->alloc).
 * On failure *out is NULL, nothing is leaked, and err->msg says why.
 * opts may be NULL (defaults). err must not be NULL.
 */
int srv_jsonpb_decode(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                      const struct srv_jsonpb_opts *opts, ProtobufCMessage **out,
                      struct srv_jsonpb_error *err);

/*
 * Decodes the next message of a streamed body (watch, lease keep-alive):
 * JSON objects back to back, separated by optional whitespace. `data` holds
 * the bytes not yet consumed; `at_eof` says whether more may follow.
 *
 * Returns 0 and sets *consumed to the bytes used (leading whitespace, the
 * object); then:
 *   - *out is a message (as in srv_jsonpb_decode) when a whole object was
 *     there; call again with data + *consumed for the next one;
 *   - *out is NULL when no whole object is there yet (only whitespace, or
 *     an object not yet complete): if !at_eof, wait for more bytes and call
 *     again with the unconsumed rest; at EOF with only whitespace left the
 *     stream is over (an incomplete object at EOF is an error instead).
 * On error (bad JSON, a value over opts->max_bytes even before it is
 * complete, a bad field) returns MOOR_EINVAL/MOOR_ETOOLARGE/MOOR_ENOMEM;
 * the stream cannot be resumed.
 */
int srv_jsonpb_decode_next(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                           bool at_eof, const struct srv_jsonpb_opts *opts, ProtobufCMessage **out,
                           size_t *consumed, struct srv_jsonpb_error *err);

/*
 * Standard base64 with padding of `len` bytes, appended to `out`; the
 * gateway's encoding of bytes fields. Exposed for the server's own bodies.
 */
int srv_jsonpb_append_base64(struct moor_buf *out, const void *data, size_t len);

/* A JSON string literal (quotes included) for `len` bytes of `s`, escaped
 * as Go's encoding/json escapes it. */
int srv_jsonpb_append_string(struct moor_buf *out, const char *s, size_t len);

#endif

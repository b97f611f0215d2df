/*
 * The generator's two client protocols, for the few requests it sends:
 * etcd's v3 JSON gateway (bytes as base64, 64-bit integers as strings, which
 * etcd 3.4 and moord both serve) and the same messages as protobuf bodies
 * (Content-Type: application/x-protobuf, moord only). Encoding writes the
 * HTTP body into a caller-owned growable buffer; decoding pulls out only what
 * the generator needs (revision, txn outcome, a mod_revision, a lease ID).
 */
#ifndef MOORBENCH_WIRE_H
#define MOORBENCH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wire_proto { WIRE_JSON, WIRE_PB };

enum wire_op {
	WIRE_PUT,
	WIRE_RANGE,
	WIRE_TXN, /* if mod_revision(key) == mod_rev then put else range key */
	WIRE_LEASE_GRANT,
	WIRE_LEASE_KEEPALIVE,
	WIRE_WATCH,
};

struct wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

void wbuf_reset(struct wbuf *b);
/* Appends n bytes; aborts the process on out-of-memory (a benchmark tool). */
void wbuf_add(struct wbuf *b, const void *data, size_t n);
void wbuf_free(struct wbuf *b);

struct wire_req {
	enum wire_op op;
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end; /* NULL: single key */
	size_t range_end_len;
	const uint8_t *value;
	size_t value_len;
	bool serializable;
	int64_t mod_rev;  /* txn compare */
	int64_t lease_id; /* keepalive */
	int64_t ttl;      /* grant */
	int64_t limit;    /* range; 0 = none */
};

struct wire_resp {
	int64_t revision; /* header.revision */
	bool succeeded;   /* txn */
	int64_t mod_rev;  /* first kv of a range (or of a failed txn's range); 0 if none */
	int64_t kvs;      /* kvs returned by a range */
	int64_t lease_id; /* grant / keepalive */
	int64_t ttl;      /* grant / keepalive; keepalive 0 = lease gone */
};

/* The gateway path of an operation ("/v3/kv/put"...). */
const char *wire_path(enum wire_op op);

/* Replaces out's content with the body of req. */
void wire_encode(enum wire_proto proto, const struct wire_req *req, struct wbuf *out);

/* Decodes a 200 body. Returns 0, or -1 if the body is not a valid response. */
int wire_decode(enum wire_proto proto, enum wire_op op, const uint8_t *body, size_t len,
                struct wire_resp *out);

/* Parses an error body ({"error":..,"code":N,...}) and returns its code, or -1. */
int wire_error_code(const uint8_t *body, size_t len);

/*
 * Watch stream parsing: feed the stream's bytes as they arrive; for each
 * complete WatchResponse, on_event is called once per event with the event's
 * value; on_msg once per message (created, progress...). Returns 0, or -1
 * on a malformed stream. Consumed bytes are removed from buf.
 */
typedef void (*wire_event_fn)(const uint8_t *value, size_t len, void *arg);
int wire_watch_feed(enum wire_proto proto, struct wbuf *buf, wire_event_fn on_event, void *arg,
                    int *created);

/* base64 (standard alphabet, padded) for the JSON gateway. */
void wire_b64_encode(const uint8_t *in, size_t n, struct wbuf *out);
/* Decodes into out (capacity cap); returns decoded length or -1. */
long wire_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif

/*
 * libmoor's private declarations: the client handle, the HTTP transport
 * with its failover and retry rules, and the helpers that turn decoded
 * protobuf messages into the public result types.
 */
#ifndef MOOR_CLIENT_INTERNAL_H
#define MOOR_CLIENT_INTERNAL_H

#include "client/moor.h"
#include "common/buf.h"
#include "proto/kv.pb-c.h"
#include "proto/rpc.pb-c.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#define CL_POOL_MAX 16       /* idle easy handles kept (each keeps its connections) */
#define CL_BACKOFF_MIN_MS 25 /* between retry rounds, doubling */
#define CL_BACKOFF_MAX_MS 500
#define CL_FRAME_MAX_BYTES MOOR_MAX_RESPONSE_BYTES
#define CL_READ_ATTEMPT_MIN_MS 1000 /* a read's attempt on one member: max(timeout/2, this) */

struct moor_client {
	char **endpoints;
	size_t n_endpoints;
	atomic_size_t cur; /* index of the endpoint in use */
	int dial_timeout_ms;
	int request_timeout_ms;
	char *ca_file, *cert_file, *key_file;
	bool insecure;
	bool serializable;
	moor_client_log_fn log_fn;
	void *log_ctx;
	pthread_mutex_t mu; /* guards the pool */
	CURL *pool[CL_POOL_MAX];
	size_t n_pool;
};

/* What a call may do on failure: reads retry on any transport error,
 * writes only when the error proves the request did not apply. */
enum cl_kind { CL_READ, CL_WRITE };

/* POSTs body to path; on 200 fills resp (appends). only_endpoint pins one
 * endpoint (no failover). Errors mapped to MOOR_E* with the detail set. */
int cl_http(moor_client *c, const char *path, const void *body, size_t len, enum cl_kind kind,
            const char *only_endpoint, struct moor_buf *resp);
/* The same with a timeout of its own instead of the client's. */
int cl_http_t(moor_client *c, const char *path, const void *body, size_t len, enum cl_kind kind,
              const char *only_endpoint, int timeout_ms, struct moor_buf *resp);
int cl_call_t(moor_client *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, enum cl_kind kind,
              const char *only_endpoint, int timeout_ms, ProtobufCMessage **resp);
/* 1 when endpoint answers within timeout_ms and knows a leader, 0 when it
 * answers without one, a negative code when it does not answer. */
int cl_endpoint_has_leader(moor_client *c, const char *endpoint, int timeout_ms);
/* cl_http with a packed request and an unpacked response (the caller's,
 * protobuf_c_message_free_unpacked). */
int cl_call(moor_client *c, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, enum cl_kind kind,
            const char *only_endpoint, ProtobufCMessage **resp);
/* Packs m as one frame (4-byte big-endian length + message) onto b. */
int cl_frame_append(struct moor_buf *b, const ProtobufCMessage *m);
/* Takes the next whole frame from data[*off..len): 1 and *msg, 0 when not
 * whole yet, or an error. */
int cl_frame_next(const uint8_t *data, size_t len, size_t *off, const ProtobufCMessageDescriptor *d,
                  ProtobufCMessage **msg);

/* Maps a gateway error (status and JSON body) to a MOOR_E* code. */
int cl_map_error(long status, const char *body, size_t len, char *msg, size_t msg_size);
/* Whether a code is the server refusing before proposing (safe to retry a
 * write), and whether it means "try another member". */
bool cl_err_not_applied(int rc);
bool cl_err_rotate(int rc);

/* An easy handle from the pool, set up for a POST to url (TLS, timeouts). */
CURL *cl_easy_get(moor_client *c);
void cl_easy_put(moor_client *c, CURL *h);
void cl_easy_setup(moor_client *c, CURL *h, const char *url, long timeout_ms);
/* The current endpoint (a copy into buf); rotate moves past `failed`. */
void cl_endpoint_current(moor_client *c, char *buf, size_t size, size_t *idx);
void cl_endpoint_rotate(moor_client *c, size_t failed);

int cl_set_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cl_log(moor_client *c, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t cl_now_ms(void);
void cl_sleep_ms(int ms);

/* Result conversion. */
void cl_header(struct moor_header *h, const Etcdserverpb__ResponseHeader *p);
void cl_kv(struct moor_kv *kv, const Mvccpb__KeyValue *p);
int cl_response_from_range(struct moor_response *r, Etcdserverpb__RangeResponse *m);
int cl_response_from_put(struct moor_response *r, Etcdserverpb__PutResponse *m);
int cl_response_from_delete(struct moor_response *r, Etcdserverpb__DeleteRangeResponse *m);
int cl_response_from_txn(struct moor_response *r, Etcdserverpb__TxnResponse *m);
void cl_response_clear(struct moor_response *r); /* frees the arrays, not priv_ */

/* Request building (kv.c), for the txn builder. */
int cl_range_fill(Etcdserverpb__RangeRequest *q, const void *key, size_t key_len,
                  const struct moor_get_opts *o, bool default_serializable);
int cl_put_fill(Etcdserverpb__PutRequest *q, const void *key, size_t key_len, const void *value,
                size_t value_len, const struct moor_put_opts *o);
int cl_delete_fill(Etcdserverpb__DeleteRangeRequest *q, const void *key, size_t key_len,
                   const struct moor_delete_opts *o);
/* Frees what the *_fill functions allocated (keys, values, range ends). */
void cl_range_clear(Etcdserverpb__RangeRequest *q);
void cl_put_clear(Etcdserverpb__PutRequest *q);
void cl_delete_clear(Etcdserverpb__DeleteRangeRequest *q);

/* Watch helper for recipes: waits for the deletion of key (from rev) or
 * the deadline (0: none). 0 when deleted, MOOR_ETIMEOUT, or an error. */
int cl_wait_delete(moor_client *c, const void *key, size_t key_len, int64_t rev,
                   uint64_t deadline_ms);

#endif

/*
 * libmoor: the C client of moor (etcd v3 semantics).
 *
 * One header is the whole manual. Conventions, for every function below:
 * - It returns 0 or a negative MOOR_E* code from common/error.h (-errno for
 *   system errors); moor_strerror() turns any code into a message.
 *   moor_error_detail() gives the calling thread's last error with its
 *   context (the endpoint, the server's own words).
 * - Results come back through out-parameters. A result allocated by the
 *   library is the caller's and is freed with the *_free function named next
 *   to the call; pointers inside a result (keys, values) live exactly as
 *   long as the result. Inputs are copied: the caller may free or reuse
 *   them when the call returns.
 * - A moor_client is thread-safe: any number of threads may call into one
 *   handle at once. The other handles (txn builder, watch, keep-alive,
 *   session, mutex, election) belong to one thread at a time unless said.
 *
 * Errors that a caller must tell apart:
 * - MOOR_EINDETERMINATE: a write was sent and the connection or the server
 *   failed before its outcome was known. It may or may not have applied;
 *   the caller must read to find out. It is never reported for reads and
 *   never for writes the client knows did not apply (those are retried on
 *   another endpoint, or reported as what they are).
 * - MOOR_ECOMPACTED: a read or watch at a revision that compaction removed;
 *   watches report the compact revision alongside.
 * - MOOR_ETIMEOUT: the request timeout passed with no answer from any
 *   endpoint (reads, and writes that provably never reached a member).
 * - MOOR_EUNSUPPORTED: the server does not implement the call (gRPC 12).
 *
 * Failover and retries: a client keeps one current endpoint. A connection
 * error or a member that reports no leader moves it to the next endpoint.
 * Reads (range, txns of only ranges, status, member list, lease lookups,
 * keep-alives) are retried on any transport failure until the request
 * timeout; writes are retried only when the error proves they did not apply:
 * the connection could not be made, or the server rejected the request
 * before proposing it (no leader, too many requests, leadership transfer,
 * proposal dropped).
 */
#ifndef MOOR_CLIENT_MOOR_H
#define MOOR_CLIENT_MOOR_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The calling thread's last error, with context ("http://a:2379: etcdserver:
 * no leader"); "" when none. Thread-local storage, valid until the thread's
 * next libmoor call. */
const char *moor_error_detail(void);

/* ------------------------------------------------------------------ client */

typedef struct moor_client moor_client;

enum moor_log_level_client { MOOR_CLIENT_LOG_DEBUG, MOOR_CLIENT_LOG_INFO, MOOR_CLIENT_LOG_WARN };
/* Log sink: called from any libmoor thread; msg lives during the call. */
typedef void (*moor_client_log_fn)(void *ctx, int level, const char *msg);

/* Limits, their defaults and what happens when reached. */
#define MOOR_DEFAULT_DIAL_TIMEOUT_MS 2000
#define MOOR_DEFAULT_REQUEST_TIMEOUT_MS 5000
#define MOOR_MAX_ENDPOINTS 32               /* open fails with MOOR_EINVAL above */
#define MOOR_MAX_RESPONSE_BYTES (64u << 20) /* larger answers fail with MOOR_ETOOLARGE */
#define MOOR_WATCH_QUEUE_DEFAULT 1024 /* poll-mode responses held; then the stream is not read */
#define MOOR_WATCH_QUEUE_MAX 4096     /* larger queue_max values are lowered to this */

struct moor_config {
	/* "http://host:port" or "https://host:port"; a bare "host:port" means
	 * https when any tls_ option below is set, else http (as etcd's client). */
	const char *const *endpoints;
	size_t n_endpoints;
	int dial_timeout_ms;    /* connect to one endpoint; 0: default */
	int request_timeout_ms; /* one call including its retries; 0: default */
	/* TLS for https endpoints: all optional; files in PEM. tls_ca_file
	 * replaces the system's CAs; tls_cert_file and tls_key_file are the
	 * client certificate for members with --client-cert-auth. */
	const char *tls_ca_file;
	const char *tls_cert_file;
	const char *tls_key_file;
	bool tls_insecure_skip_verify;
	/* Reads answered from the serving member's store without a quorum round
	 * (may be stale); per-call options override. Default: linearizable. */
	bool serializable;
	moor_client_log_fn log_fn; /* NULL: silent */
	void *log_ctx;
};

/* Copies cfg. Does not contact the cluster (the first call does). Errors:
 * MOOR_EINVAL (no endpoint, too many, bad URL), MOOR_ENOMEM. */
int moor_client_open(const struct moor_config *cfg, moor_client **out);
/* Every watch, keep-alive and session of the client must be stopped first. */
void moor_client_close(moor_client *c);
/* Copies the endpoint currently in use into buf (NUL-terminated, truncated). */
void moor_client_endpoint(moor_client *c, char *buf, size_t size);

/* --------------------------------------------------------------- results */

struct moor_header {
	uint64_t cluster_id;
	uint64_t member_id;
	int64_t revision;
	uint64_t raft_term;
};

struct moor_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
};

enum moor_op_type { MOOR_OP_GET = 1, MOOR_OP_PUT, MOOR_OP_DELETE, MOOR_OP_TXN };

/* The answer to a get, put, delete or txn; `type` says which fields count. */
struct moor_response {
	enum moor_op_type type;
	struct moor_header header;
	/* get */
	struct moor_kv *kvs;
	size_t n_kvs;
	bool more;
	int64_t count;
	/* put (prev_kvs[0] when asked and the key existed), delete */
	int64_t deleted;
	struct moor_kv *prev_kvs;
	size_t n_prev_kvs;
	/* txn: which branch ran and one response per operation of it */
	bool succeeded;
	struct moor_response *responses;
	size_t n_responses;
	void *priv_; /* the decoded message the pointers above point into */
};
/* Frees a response of any type and everything inside it; NULL is fine. */
void moor_response_free(struct moor_response *r);

/* -------------------------------------------------------------------- KV */

enum moor_sort_target {
	MOOR_SORT_KEY,
	MOOR_SORT_VERSION,
	MOOR_SORT_CREATE,
	MOOR_SORT_MOD,
	MOOR_SORT_VALUE
};
enum moor_sort_order { MOOR_ORDER_NONE, MOOR_ORDER_ASCEND, MOOR_ORDER_DESCEND };
enum moor_read_mode { MOOR_READ_DEFAULT, MOOR_READ_LINEARIZABLE, MOOR_READ_SERIALIZABLE };

/* Which keys: by default the one key. range_end (exclusive) names a range;
 * prefix all keys starting with key; from_key all keys >= key. At most one
 * of the three. An empty key with prefix or from_key means every key. */
struct moor_range {
	const void *range_end;
	size_t range_end_len;
	bool prefix;
	bool from_key;
};

struct moor_get_opts {
	struct moor_range range;
	int64_t limit;    /* 0: none */
	int64_t revision; /* 0: latest; else read as of that revision */
	enum moor_sort_target sort_target;
	enum moor_sort_order sort_order;
	bool keys_only;
	bool count_only;
	int64_t min_mod_revision, max_mod_revision;       /* 0: no bound */
	int64_t min_create_revision, max_create_revision; /* 0: no bound */
	enum moor_read_mode read_mode;
};

struct moor_put_opts {
	int64_t lease; /* attach to this lease; 0: none */
	bool prev_kv;  /* return the previous key-value in prev_kvs */
	bool ignore_value;
	bool ignore_lease;
};

struct moor_delete_opts {
	struct moor_range range;
	bool prev_kv;
};

/* opts may be NULL. *out is the caller's (moor_response_free). */
int moor_get(moor_client *c, const void *key, size_t key_len, const struct moor_get_opts *opts,
             struct moor_response **out);
/* out may be NULL when the caller wants no answer. */
int moor_put(moor_client *c, const void *key, size_t key_len, const void *value, size_t value_len,
             const struct moor_put_opts *opts, struct moor_response **out);
int moor_delete(moor_client *c, const void *key, size_t key_len,
                const struct moor_delete_opts *opts, struct moor_response **out);
/* Compacts history below `revision`; physical waits until it is on disk.
 * header may be NULL. A write: MOOR_EINDETERMINATE as above. */
int moor_compact(moor_client *c, int64_t revision, bool physical, struct moor_header *header);

/* The end of the range of keys that start with prefix: writes it into buf
 * (at least len bytes) and returns its length; 1 and "\0" when every byte is
 * 0xff (meaning "to the end"). */
size_t moor_prefix_end(const void *prefix, size_t len, uint8_t *buf);

/* ------------------------------------------------------------------- txn */

typedef struct moor_txn moor_txn;

enum moor_cmp_target {
	MOOR_CMP_VERSION,
	MOOR_CMP_CREATE,
	MOOR_CMP_MOD,
	MOOR_CMP_VALUE,
	MOOR_CMP_LEASE
};
enum moor_cmp_op { MOOR_CMP_EQUAL, MOOR_CMP_GREATER, MOOR_CMP_LESS, MOOR_CMP_NOT_EQUAL };
enum moor_txn_branch { MOOR_TXN_THEN, MOOR_TXN_ELSE };

struct moor_cmp {
	const void *key;
	size_t key_len;
	const void *range_end; /* optional: compare every key of [key, range_end) */
	size_t range_end_len;
	enum moor_cmp_target target;
	enum moor_cmp_op op;
	int64_t number;    /* version, create/mod revision or lease */
	const void *value; /* MOOR_CMP_VALUE */
	size_t value_len;
};

/* A builder: add compares (all must hold for THEN to run) and operations to
 * either branch, commit, free. Every add copies its arguments. */
int moor_txn_new(moor_txn **out);
void moor_txn_free(moor_txn *t);
int moor_txn_if(moor_txn *t, const struct moor_cmp *cmp);
int moor_txn_get(moor_txn *t, enum moor_txn_branch b, const void *key, size_t key_len,
                 const struct moor_get_opts *opts);
int moor_txn_put(moor_txn *t, enum moor_txn_branch b, const void *key, size_t key_len,
                 const void *value, size_t value_len, const struct moor_put_opts *opts);
int moor_txn_delete(moor_txn *t, enum moor_txn_branch b, const void *key, size_t key_len,
                    const struct moor_delete_opts *opts);
/* Sends the txn (a read when it holds only gets, else a write). The builder
 * stays the caller's and may be committed again. */
int moor_txn_commit(moor_client *c, moor_txn *t, struct moor_response **out);

/* ---------------------------------------------------------------- leases */

/* ttl_s: seconds; id 0 lets the server choose. Out-parameters may be NULL. */
int moor_lease_grant(moor_client *c, int64_t ttl_s, int64_t id, int64_t *id_out, int64_t *ttl_out);
int moor_lease_revoke(moor_client *c, int64_t id);

struct moor_lease_info {
	int64_t id;
	int64_t ttl; /* remaining seconds; -1 when the lease is gone */
	int64_t granted_ttl;
	size_t n_keys;
	struct {
		const uint8_t *key;
		size_t len;
	} * keys;
	void *priv_;
};
int moor_lease_timetolive(moor_client *c, int64_t id, bool with_keys, struct moor_lease_info **out);
void moor_lease_info_free(struct moor_lease_info *i);
/* *ids is the caller's, freed with free(). */
int moor_lease_list(moor_client *c, int64_t **ids, size_t *n);
/* One keep-alive round trip; *ttl_out is 0 when the lease is gone. */
int moor_lease_keepalive_once(moor_client *c, int64_t id, int64_t *ttl_out);

typedef struct moor_keepalive moor_keepalive;
/* Called once, from the keep-alive thread, when the lease is lost: err is
 * MOOR_ELEASENOTFOUND (revoked or expired on the server) or
 * MOOR_ELEASEEXPIRED (no member confirmed it before its TTL ran out). */
typedef void (*moor_lease_lost_fn)(void *ctx, int64_t id, int err);
/* Keeps lease `id` alive from a thread of its own, one request every TTL/3,
 * across failovers, until moor_keepalive_stop. lost may be NULL.
 * Fails with MOOR_ELEASENOTFOUND when the lease does not exist. */
int moor_keepalive_start(moor_client *c, int64_t id, moor_lease_lost_fn lost, void *ctx,
                         moor_keepalive **out);
/* 0 while alive, else the error that lost it. Any thread. */
int moor_keepalive_status(moor_keepalive *k);
/* Stops and frees (does not revoke). The lost callback is not called after.
 * Waits for a keep-alive request in flight (at most the request timeout). */
void moor_keepalive_stop(moor_keepalive *k);

/* ----------------------------------------------------------------- watch */

enum moor_event_type { MOOR_EVENT_PUT, MOOR_EVENT_DELETE };

struct moor_event {
	enum moor_event_type type;
	struct moor_kv kv;
	bool has_prev_kv;
	struct moor_kv prev_kv;
};

/* One delivery: events of whole revisions in revision order, or (err != 0,
 * the last delivery of the watch) why it ended: MOOR_ECOMPACTED with
 * compact_revision set, MOOR_EWATCHCANCELED, MOOR_EUNSUPPORTED, MOOR_EINVAL. */
struct moor_watch_response {
	struct moor_header header;
	struct moor_event *events;
	size_t n_events; /* 0 and err 0: a progress notification */
	int err;
	int64_t compact_revision;
	void *priv_;
};
void moor_watch_response_free(struct moor_watch_response *r);

/* Called from the watch's own thread, one response at a time; r lives
 * during the call. The callback must not call moor_watch_stop on its own
 * watch. */
typedef void (*moor_watch_fn)(void *ctx, const struct moor_watch_response *r);

struct moor_watch_opts {
	struct moor_range range;
	int64_t start_revision; /* 0: from now */
	bool prev_kv;
	bool no_put;
	bool no_delete;
	bool progress_notify;
	/* Callback mode when cb is set; else poll mode (moor_watch_fd/next). */
	moor_watch_fn cb;
	void *cb_ctx;
	size_t queue_max; /* poll mode; 0: MOOR_WATCH_QUEUE_DEFAULT */
};

typedef struct moor_watch moor_watch;
/* Starts a watch on its own thread (one HTTP stream at a time; after any
 * failure it resumes on the next endpoint from the last revision delivered
 * plus one, so the caller sees every revision once). Returns at once; a
 * watch from revision 0 covers every change after the revision the server
 * reports on creation. */
int moor_watch_start(moor_client *c, const void *key, size_t key_len,
                     const struct moor_watch_opts *opts, moor_watch **out);
/* Poll mode: a descriptor readable while a response is waiting. Owned by
 * the watch; do not read or close it. */
int moor_watch_fd(moor_watch *w);
/* Poll mode: takes the next response (the caller's; moor_watch_response_free).
 * timeout_ms 0: do not wait; < 0: wait forever. MOOR_ETIMEOUT when none. */
int moor_watch_next(moor_watch *w, int timeout_ms, struct moor_watch_response **out);
/* The first revision the watch has not delivered yet (after a creation from
 * revision 0, the revision after the creation). Any thread. */
int64_t moor_watch_next_revision(moor_watch *w);
/* Cancels, joins the thread, frees. After it returns no callback runs.
 * Returns at once unless the watch is checking a silent member (at most
 * 2 s, see docs/client.md). */
void moor_watch_stop(moor_watch *w);

/* ------------------------------------------------------- cluster, maintenance */

struct moor_member {
	uint64_t id;
	const char *name;
	const char *const *peer_urls;
	size_t n_peer_urls;
	const char *const *client_urls;
	size_t n_client_urls;
	bool is_learner;
};

struct moor_members {
	struct moor_header header;
	struct moor_member *members;
	size_t n_members;
	struct moor_member added; /* member_add only */
	void *priv_;
};
void moor_members_free(struct moor_members *m);
int moor_member_list(moor_client *c, struct moor_members **out);
int moor_member_add(moor_client *c, const char *const *peer_urls, size_t n, bool learner,
                    struct moor_members **out);
int moor_member_remove(moor_client *c, uint64_t id, struct moor_members **out);
int moor_member_update(moor_client *c, uint64_t id, const char *const *peer_urls, size_t n,
                       struct moor_members **out);
int moor_member_promote(moor_client *c, uint64_t id, struct moor_members **out);

struct moor_status {
	struct moor_header header;
	char version[32];
	int64_t db_size;
	int64_t db_size_in_use;
	uint64_t leader;
	uint64_t raft_index;
	uint64_t raft_term;
	uint64_t raft_applied_index;
	bool is_learner;
	char errors[256]; /* "; "-joined, truncated */
};
/* Status of one endpoint (not failed over): `endpoint` NULL means the
 * current one. */
int moor_status(moor_client *c, const char *endpoint, struct moor_status *out);
/* HashKV of one endpoint at revision (0: latest). */
int moor_hashkv(moor_client *c, const char *endpoint, int64_t revision, uint32_t *hash,
                int64_t *hash_revision, int64_t *compact_revision);
int moor_defragment(moor_client *c, const char *endpoint);
int moor_move_leader(moor_client *c, uint64_t target_id);

enum moor_alarm_action { MOOR_ALARM_GET, MOOR_ALARM_ACTIVATE, MOOR_ALARM_DEACTIVATE };
struct moor_alarm {
	uint64_t member_id;
	int type; /* 1 NOSPACE, 2 CORRUPT */
};
/* *alarms is the caller's, freed with free(). */
int moor_alarm(moor_client *c, enum moor_alarm_action action, uint64_t member_id, int type,
               struct moor_alarm **alarms, size_t *n);
/* Streams a snapshot of the current endpoint's store into fd. */
int moor_snapshot(moor_client *c, int fd, uint64_t *bytes_out);

/* --------------------------------------------------------------- recipes */

/* A session: a lease kept alive in the background, the base of mutexes and
 * elections (etcd's concurrency.Session). Lost when the lease is. */
typedef struct moor_session moor_session;
int moor_session_open(moor_client *c, int ttl_s, moor_session **out);
int64_t moor_session_lease(moor_session *s);
/* 0 while the lease lives, else the error that lost it. */
int moor_session_status(moor_session *s);
/* Stops the keep-alive and revokes the lease (releasing every lock and
 * leadership held through it). */
void moor_session_close(moor_session *s);

/* A mutex: the holder is the key under prefix with the lowest
 * create_revision; waiters wait for the deletion of the key just before
 * theirs, so a release wakes one waiter. */
typedef struct moor_mutex moor_mutex;
int moor_mutex_new(moor_session *s, const char *prefix, moor_mutex **out);
/* timeout_ms < 0: wait forever. MOOR_ETIMEOUT (after removing our key)
 * when not acquired in time. */
int moor_mutex_lock(moor_mutex *m, int timeout_ms);
/* MOOR_EBUSY at once when another holds it. */
int moor_mutex_trylock(moor_mutex *m);
int moor_mutex_unlock(moor_mutex *m);
/* Our key while held (NUL-terminated, owned by the mutex), else NULL. */
const char *moor_mutex_key(moor_mutex *m);
void moor_mutex_free(moor_mutex *m);

typedef struct moor_election moor_election;
int moor_election_new(moor_session *s, const char *prefix, moor_election **out);
/* Blocks until this candidate leads (MOOR_ETIMEOUT after timeout_ms, its
 * candidacy withdrawn); value is what it proclaims. */
int moor_election_campaign(moor_election *e, const void *value, size_t len, int timeout_ms);
/* While leading: replace the proclaimed value (MOOR_ENOTLEADER if we lost it). */
int moor_election_proclaim(moor_election *e, const void *value, size_t len);
int moor_election_resign(moor_election *e);
/* While leading: our key (owned by the election) and its create_revision,
 * for writes guarded by leadership (a txn comparing create_revision of the
 * key with rev fails once another leads); NULL when not leading. */
const char *moor_election_key(moor_election *e, int64_t *rev);
/* The current leader's key-value (kvs[0]) of any election under prefix;
 * MOOR_ENOTFOUND when none leads. */
int moor_election_leader(moor_client *c, const char *prefix, struct moor_response **out);
void moor_election_free(moor_election *e);

/* List-then-watch: a consistent snapshot of a range (*list, a get at one
 * revision R) and a watch from R + 1 that delivers every later change. */
int moor_list_watch(moor_client *c, const void *key, size_t key_len,
                    const struct moor_watch_opts *opts, struct moor_response **list,
                    moor_watch **watch);

#ifdef __cplusplus
}
#endif

#endif

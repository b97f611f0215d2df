/*
 * The watch hub: every change, in order, to every watcher.
 *
 * The hub takes the events the MVCC store produces when it applies a
 * revision, matches them against the registered watchers and queues them
 * for the server to send. A watcher that starts in the past, or that falls
 * too far behind its consumer, reads the history from the store instead
 * (through the watch_store interface below, so that watch/ does not depend
 * on kv/'s API) and joins the live fan-out again once it has caught up.
 *
 * Guarantees, per watcher (the same as etcd's):
 *   - events arrive in revision order, and in (revision, sub) order within
 *     a revision;
 *   - no gap: every change to the watched key or range with a revision at
 *     or after the start revision is delivered (unless filtered out);
 *   - no duplicate;
 *   - all events of one revision are in one response, except when the
 *     watcher asked for fragments and the revision is larger than the
 *     response size limit (then consecutive responses with fragment set,
 *     the last one with fragment clear);
 *   - a watcher whose start revision (or whose position, when it fell
 *     behind) is below the compact revision gets one response with
 *     canceled set and compact_revision, after the events it had before.
 *
 * Objects: a hub (one per store), streams (one per client connection, as
 * etcd's gRPC watch stream), watchers registered on a stream. Each watcher
 * has a bounded queue of pending events; a stream keeps the list of its
 * watchers that have something to send and calls its notify callback when
 * that list becomes non-empty. The server then pulls responses with
 * watch_stream_next() and releases each with watch_response_release().
 *
 * Events are shared, never copied: the store hands the hub a watch_batch of
 * protobuf-c events; every watcher that matches an event queues a reference
 * to the batch (16 bytes), and the batch is destroyed when its last
 * reference goes. A response points at the batch's events directly, so the
 * server encodes them without copying.
 *
 * Threads: none inside. A hub and everything reached from it (streams,
 * responses, batches it holds) is single-threaded: every call on one hub
 * must come from one thread at a time (the server's loop). Callbacks
 * (notify, wakeup, the store's read, a batch's destroy) are called from
 * inside hub calls on that thread and must not call back into the hub.
 *
 * Time: the hub reads no clock; periodic progress notifications happen when
 * the server calls watch_hub_progress_tick().
 */
#ifndef MOOR_WATCH_WATCH_H
#define MOOR_WATCH_WATCH_H

#include "common/alloc.h"
#include "common/log.h"
#include "proto/kv.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct watch_hub;
struct watch_stream;

/*
 * Limits and their defaults (0 in a config field means the default).
 *
 * WATCH_MAX_PENDING_EVENTS: events a watcher may have queued. A live watcher
 * that would go over it (with at least one older revision still queued) is
 * moved back to catching up from history, starting at the revision that did
 * not fit. A revision is never split to respect it (one larger than the
 * limit is queued whole when it is all the watcher has, and a history read
 * returns whole revisions), so a queue holds at most the limit plus one
 * revision.
 *
 * WATCH_HISTORY_BATCH_EVENTS: events asked of the store per history read.
 *
 * WATCH_MAX_RESPONSE_BYTES: encoded size of the events of one response
 * (etcd: max-request-bytes 1.5 MiB + 512 KiB gRPC overhead). Whole
 * revisions are packed up to it; one revision larger than it is sent whole,
 * or in fragments when the watcher asked for fragments.
 *
 * WATCH_MAX_RESPONSE_EVENTS: events of one response, between revisions.
 *
 * WATCH_MAX_STREAM_PENDING_EVENTS: events queued on one stream, all its
 * watchers together. When it is reached, a live watcher that has an older
 * revision queued goes back to history, as when its own limit is reached,
 * and catching-up watchers with something queued wait. A watcher with an
 * empty queue may still take one revision, so a stream holds at most this
 * limit plus one revision per watcher.
 *
 * WATCH_MAX_WATCHERS_PER_STREAM: watchers on one stream; the next create
 * fails with MOOR_ETOOMANYREQUESTS.
 */
#define WATCH_MAX_PENDING_EVENTS 1024
#define WATCH_HISTORY_BATCH_EVENTS 1000
#define WATCH_MAX_RESPONSE_BYTES (2u * 1024 * 1024)
#define WATCH_MAX_RESPONSE_EVENTS 10000
#define WATCH_MAX_STREAM_PENDING_EVENTS 65536
#define WATCH_MAX_WATCHERS_PER_STREAM 100000

/* watch_id that asks the stream to assign one. */
#define WATCH_AUTO_ID (-1)

/*
 * A batch of events, shared by every watcher that matches one of them.
 *
 * The producer (the apply path, or the store's history reader) allocates it
 * however it likes, fills events/n_events/destroy/data, and hands it to the
 * hub, which takes ownership: it calls destroy(b) exactly once, when the
 * last reference is gone (possibly at once, if nothing matched). Until then
 * the events must stay valid and unchanged.
 *
 * Events are ordered by (revision, sub). An event's revision is
 * events[i]->kv->mod_revision (for a delete too, as in etcd), so kv is never
 * NULL. prev_kv may be set or not: it is sent only to watchers that asked
 * for it (the hub hands others a copy of the event struct without it).
 */
struct watch_batch {
	Mvccpb__Event **events;
	size_t n_events;
	void (*destroy)(struct watch_batch *b);
	void *data; /* the producer's */
	/* The hub's, set when it takes the batch: */
	uint64_t refs;
	void *sizes; /* encoded sizes, made on first use */
};

/*
 * What the hub needs from the store: history.
 *
 * read() returns the events with revision in [from_rev, to_rev], in
 * (revision, sub) order, at most max_events of them but never splitting a
 * revision (a revision larger than max_events is returned whole, alone).
 * On success it returns 0 and sets:
 *   res->batch    the events (NULL when there are none), owned by the hub
 *                 from then on;
 *   res->next_rev the revision to read from next time: every revision below
 *                 it (and >= from_rev) has been returned completely;
 *                 from_rev < next_rev <= to_rev + 1.
 * When from_rev is below the compact revision it returns MOOR_ECOMPACTED and
 * sets res->compact_rev (the lowest revision still readable; etcd's
 * compact revision). Any other error is passed up by watch_hub_sync().
 *
 * The key range (key, range_end with etcd's rules) is a hint: a store may
 * return only the events in it, or all of them; the hub filters. prev_kv
 * asks the store to fill each event's prev_kv (the key's value at
 * mod_revision - 1; omitted when that revision is compacted).
 *
 * The store must already hold every revision the hub has been given by
 * watch_hub_apply() (the server applies to the store, then to the hub);
 * to_rev is never above that.
 */
struct watch_history_query {
	int64_t from_rev;
	int64_t to_rev;
	size_t max_events;
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	bool prev_kv;
};

struct watch_history_result {
	struct watch_batch *batch;
	int64_t next_rev;
	int64_t compact_rev;
};

struct watch_store {
	int (*read)(void *ctx, const struct watch_history_query *q,
	            struct watch_history_result *res);
	void *ctx;
};

struct watch_hub_config {
	const struct moor_alloc *alloc;     /* NULL: the C library's */
	const struct moor_logger *logger;   /* NULL: silent */
	struct watch_store store;           /* read is required */
	int64_t revision;                   /* the store's current revision */
	uint32_t max_pending_events;        /* 0: WATCH_MAX_PENDING_EVENTS */
	uint32_t history_batch_events;      /* 0: WATCH_HISTORY_BATCH_EVENTS */
	uint32_t max_response_bytes;        /* 0: WATCH_MAX_RESPONSE_BYTES */
	uint32_t max_response_events;       /* 0: WATCH_MAX_RESPONSE_EVENTS */
	uint32_t max_stream_pending_events; /* 0: WATCH_MAX_STREAM_PENDING_EVENTS */
	uint32_t max_watchers_per_stream;   /* 0: WATCH_MAX_WATCHERS_PER_STREAM */
	uint64_t seed;                      /* for key hashing and the interval tree's shape */
	/*
	 * Called when catch-up work becomes available (a watcher needs to read
	 * history): the server should then call watch_hub_sync() from its loop
	 * until it returns 0. May be NULL (then poll watch_hub_sync()).
	 */
	void (*wakeup)(void *ctx);
	void *wakeup_ctx;
};

/*
 * A new hub in *out. The config is copied (the store's ctx, the allocator
 * and the logger must outlive the hub). Errors: MOOR_EINVAL (no store read,
 * negative revision), MOOR_ENOMEM.
 */
int watch_hub_new(const struct watch_hub_config *cfg, struct watch_hub **out);

/* Closes every stream still open (their responses must have been
 * released), drops every reference and frees the hub. NULL is a no-op. */
void watch_hub_free(struct watch_hub *hub);

/*
 * Fans out a batch of newly applied events: revisions above the hub's
 * current one, in (revision, sub) order, possibly several revisions. Every
 * revision must be given whole and the hub must see every revision that has
 * events, in order (the apply path calls this once per applied batch, after
 * the store holds it). The hub's revision becomes the last event's.
 *
 * Ownership of b passes to the hub on success (it may be destroyed before
 * this returns). Never fails for lack of memory: a watcher whose queue
 * cannot grow goes back to catching up from history. Errors (b not taken):
 * MOOR_EINVAL when an event has no kv, or revisions are not increasing or
 * not above the hub's revision.
 */
int watch_hub_apply(struct watch_hub *hub, struct watch_batch *b);

/*
 * Raises the hub's revision without events (e.g. after the server learned
 * the store's revision moved by a write that produced none). rev below the
 * current revision: MOOR_EINVAL.
 */
int watch_hub_set_revision(struct watch_hub *hub, int64_t rev);

/* The last revision the hub has fanned out. */
int64_t watch_hub_revision(const struct watch_hub *hub);

/*
 * Catch-up work: watchers behind the live revision read history from the
 * store, at most `budget_events` events in all (at least one read happens
 * when there is work), taking turns. A watcher that reaches the hub's
 * revision joins the live fan-out in the same call, with nothing applied
 * in between: that is what makes the hand-over gap- and duplicate-free.
 * A watcher whose queue is full waits for its consumer.
 *
 * Returns 1 when more work is ready, 0 when none is, or a negative error
 * from the store (the watcher that hit it retries on the next call).
 * A compacted history is not an error: that watcher gets its compacted
 * response.
 */
int watch_hub_sync(struct watch_hub *hub, size_t budget_events);

/*
 * Periodic progress: every live (synced) watcher that asked for progress
 * notifications and had no event queued since the previous tick gets an
 * empty response carrying the hub's revision. The server calls it on its
 * timer (etcd: every 10 minutes). O(watchers).
 */
void watch_hub_progress_tick(struct watch_hub *hub);

struct watch_hub_stats {
	uint64_t watchers; /* registered */
	uint64_t synced;   /* in the live fan-out */
	uint64_t unsynced; /* catching up or parked */
	uint64_t streams;
	uint64_t queued_events;  /* references held by queues */
	uint64_t deliveries;     /* events queued, ever (live and history) */
	uint64_t overflows;      /* live watchers sent back to history */
	uint64_t history_events; /* events read from the store */
	uint64_t compacted;      /* compacted responses produced */
};

void watch_hub_stats(const struct watch_hub *hub, struct watch_hub_stats *st);

/*
 * A stream: one client connection's watchers and their output.
 * notify(s, ctx) is called when the stream goes from nothing to pull to
 * something to pull (after the server last saw watch_stream_next() return
 * 0); it must not call into the hub. A server whose connection is congested
 * stops pulling (that back-pressure is what sends slow watchers back to
 * history) and resumes when it can write again, without waiting for a
 * notify: none comes until next() has returned 0. The stream belongs to the
 * hub: it is freed by watch_stream_close() or watch_hub_free().
 */
struct watch_stream_config {
	void (*notify)(struct watch_stream *s, void *ctx);
	void *ctx;
};

int watch_stream_open(struct watch_hub *hub, const struct watch_stream_config *cfg,
                      struct watch_stream **out);

/* Cancels every watcher of the stream and frees it. Responses already
 * pulled stay valid until released. */
void watch_stream_close(struct watch_stream *s);

/* The ctx given at open. */
void *watch_stream_ctx(const struct watch_stream *s);

/*
 * A watch create request (etcd's WatchCreateRequest). key/range_end follow
 * etcd's rules: range_end empty means the single key; range_end "\0" means
 * every key >= key; otherwise [key, range_end). An empty key is "\0".
 * start_rev 0 means "after the current revision"; a future start_rev is
 * allowed (events from it on). The bytes are copied.
 */
struct watch_create {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	int64_t start_rev;
	int64_t watch_id; /* WATCH_AUTO_ID: the stream assigns the lowest free id >= 0 */
	bool prev_kv;
	bool no_put;
	bool no_delete;
	bool progress_notify;
	bool fragment;
};

/*
 * Registers a watcher. On success *id_out is its id and *rev_out the
 * revision the server puts in the created response's header (the hub's
 * revision). Events follow through watch_stream_next(). A start revision in
 * the past starts catching up (wakeup is called); a compacted one produces
 * the compacted response later, from watch_hub_sync().
 *
 * Errors: MOOR_EINVAL (negative start_rev, watch_id < -1), MOOR_ERANGEEND
 * (range_end below key), MOOR_EEXIST (id in use on this stream),
 * MOOR_ETOOMANYREQUESTS (stream full), MOOR_ENOMEM. On error nothing is
 * registered.
 */
int watch_stream_watch(struct watch_stream *s, const struct watch_create *req, int64_t *id_out,
                       int64_t *rev_out);

/*
 * Cancels a watcher now: nothing more of it is returned by
 * watch_stream_next() (its queued events are dropped); the server sends the
 * canceled response itself. Error: MOOR_ENOTFOUND (no such watcher, or it
 * already ended with a compacted response).
 */
int watch_stream_cancel(struct watch_stream *s, int64_t id);

/*
 * etcd's WatchProgressRequest: if every watcher of the stream is live
 * (synced), a response with watch_id -1 and the hub's current revision is
 * queued, after every event already queued on the stream; otherwise nothing
 * is sent (etcd 3.5 semantics). Returns 1 when queued, 0 when not.
 */
int watch_stream_request_progress(struct watch_stream *s);

/*
 * One response to send. Pointers are valid until watch_response_release()
 * (which may come after the stream or the hub is gone). Do not modify the
 * events.
 *
 *   watch_id          the watcher, or -1 for a requested progress response
 *   revision          the header revision: for events, the hub's revision
 *                     when the watcher has nothing more queued and is live,
 *                     else the last event's revision; for progress, the
 *                     revision up to which everything was delivered
 *   events/n_events   events of whole revisions (see fragment)
 *   fragment          more of the last revision follows in the next
 *                     response of this watcher
 *   canceled          the watcher ended; compact_revision > 0 says why
 *   compact_revision  the compact revision, on a compacted response
 *   progress          an empty progress notification
 */
struct watch_response {
	int64_t watch_id;
	int64_t revision;
	int64_t compact_revision;
	Mvccpb__Event **events;
	size_t n_events;
	bool fragment;
	bool canceled;
	bool progress;
	void *priv; /* the hub's */
	const struct moor_alloc *alloc;
};

/*
 * Pulls the next response of the stream into *r: returns 1 when one was
 * filled, 0 when nothing is left (the next notify will say when there is),
 * MOOR_ENOMEM (nothing taken; try again). Watchers take turns, one response
 * each.
 */
int watch_stream_next(struct watch_stream *s, struct watch_response *r);

/* Drops the response's references. r's fields are cleared. */
void watch_response_release(struct watch_response *r);

/* The range_end that makes [key, range_end) the prefix `key`, as etcd's
 * GetPrefixRangeEnd: written to out (room for max(key_len, 1) bytes), its
 * length returned; "\0" (every key >= key, length 1) when key is empty or
 * all 0xff. */
size_t watch_prefix_end(const uint8_t *key, size_t key_len, uint8_t *out);

#endif

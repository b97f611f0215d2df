/*
 * The watch hub's private structures, shared by its files:
 *   hub.c    the hub, the live fan-out (apply), progress ticks, queues
 *   index.c  matching: a hash of single keys, an interval treap of ranges
 *   stream.c streams, watcher registration and cancel, pulling responses
 *   response.c what goes into one response, and its memory
 *   sync.c   catch-up from history and the hand-over to the live fan-out
 *
 * A watcher is in one of three states:
 *   SYNCED    in the index; it has queued every matching event up to the
 *             hub's revision, and gets new ones from watch_hub_apply(). Its
 *             `rev` is the first revision it wants (start_rev, which may be
 *             in the future).
 *   UNSYNCED  not in the index; it has queued every matching event below
 *             `rev` and none at or above it. It reads history from `rev`,
 *             when its queue has room (else it is parked until the consumer
 *             drains it), and becomes SYNCED when `rev` passes the hub's
 *             revision, inside one call.
 *   DONE      compacted: it will send what is queued, then the compacted
 *             response, and is freed after that.
 * The only transitions are SYNCED -> UNSYNCED (queue full or out of
 * memory, in apply; the revision that did not fit is rolled back out of the
 * queue and becomes `rev`), UNSYNCED -> SYNCED (sync.c) and UNSYNCED -> DONE.
 */
#ifndef MOOR_WATCH_WATCH_INT_H
#define MOOR_WATCH_WATCH_INT_H

#include "watch/watch.h"

#include "common/assert.h"

#include <stdbool.h>
#include <stdint.h>

/* An intrusive circular doubly-linked list. */
struct wlink {
	struct wlink *prev, *next;
};

static inline void wlink_init(struct wlink *l)
{
	l->prev = l->next = l;
}
static inline bool wlink_empty(const struct wlink *l)
{
	return l->next == l;
}
static inline bool wlink_linked(const struct wlink *l)
{
	return l->next != NULL && l->next != l;
}
static inline void wlink_insert_tail(struct wlink *head, struct wlink *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}
static inline void wlink_remove(struct wlink *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

#define WCONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

enum { W_SYNCED = 1, W_UNSYNCED = 2, W_DONE = 3 };

/* One queued event: a reference to its batch and its position there. */
struct wentry {
	struct watch_batch *b;
	size_t idx;
};

struct keygroup; /* index.c */

/* A node of the interval treap, embedded in a range watcher. */
struct itnode {
	struct itnode *left, *right;
	struct itnode *maxend; /* the node with the largest end in this subtree */
	uint64_t prio;
	/* The first 8 bytes of start and end, big-endian, zero-padded: most
	 * comparisons end here without touching the keys. */
	uint64_t kpre, epre;
};

struct watcher {
	struct watch_stream *stream;
	int64_t id;
	uint64_t seq; /* hub-wide creation number: deterministic tie-breaker */
	int64_t rev;  /* see the states above */
	int64_t compact_rev;

	/* The key range, stored after the struct. end_len 0: single key. */
	uint8_t *key;
	uint8_t *end;
	uint32_t key_len;
	uint32_t end_len;
	bool end_inf; /* range_end "\0": every key >= key */

	bool prev_kv, no_put, no_delete, progress_notify, fragment;
	uint8_t state;
	bool parked;       /* UNSYNCED, waiting for the consumer */
	bool progress_due; /* a periodic progress response is owed */
	bool activity;     /* events queued since the last tick */
	bool fragmenting;  /* the queue head is inside a partly sent revision */
	bool deferred;     /* on the hub's list of index removals */
	bool barrier;      /* owes events before the stream's requested progress */

	/* The queue: a ring of entries. */
	struct wentry *ring;
	uint32_t cap, head, count;

	struct wlink s_link; /* stream's watchers */
	struct wlink r_link; /* stream's ready list */
	struct wlink u_link; /* hub's runnable catch-up list */
	struct watcher *id_next;
	struct watcher *defer_next;
	union {
		struct {
			struct keygroup *g;
			uint32_t slot;
		} k;
		struct itnode t;
	} ix;
};

struct watch_stream {
	struct watch_hub *hub;
	struct watch_stream_config cfg;
	struct wlink h_link;    /* hub's streams */
	struct wlink watchers;  /* every watcher */
	struct wlink ready;     /* watchers with something to send */
	struct watcher *frag_w; /* sending a revision in fragments: it goes first */
	struct watcher **ids;   /* id hash, chained through id_next */
	uint32_t id_mask;
	uint32_t n_watchers;
	uint32_t queued;   /* entries in its watchers' queues */
	uint32_t cohort_n; /* sync.c's scratch: members of the cohort being read */
	uint32_t n_not_synced;
	uint32_t barrier_watchers; /* watchers with barrier set */
	int64_t next_id;
	int64_t progress_rev;
	bool progress_req; /* a requested progress response is owed */
	bool signalled;    /* notify called, next() has not returned 0 since */
};

struct watch_hub {
	struct watch_hub_config cfg;
	const struct moor_alloc *alloc;
	int64_t rev;
	uint64_t next_seq;
	struct wlink streams;
	struct wlink runnable; /* UNSYNCED, not parked */
	struct watcher *defer; /* SYNCED -> UNSYNCED during apply, still indexed */
	bool in_apply;

	/* index.c: single keys */
	struct keygroup **kbuckets;
	uint32_t kmask;
	uint32_t kgroups;
	/* index.c: ranges */
	struct itnode *itroot;

	struct watch_hub_stats st;
};

/* index.c */
int windex_init(struct watch_hub *hub);
int windex_insert(struct watch_hub *hub, struct watcher *w);
void windex_remove(struct watch_hub *hub, struct watcher *w);
/* Calls deliver(hub, w, ev, idx) for every indexed watcher whose range holds key. */
void windex_match(struct watch_hub *hub, const uint8_t *key, size_t key_len, struct watch_batch *b,
                  size_t idx);
void windex_free(struct watch_hub *hub);
bool wkey_in_range(const struct watcher *w, const uint8_t *key, size_t key_len);
/* The hash of the single-key index (seeded). */
uint64_t wkey_hash(uint64_t seed, const uint8_t *p, size_t n);
/* Byte-wise key order, shorter first on a tie (etcd's). */
int wkey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* hub.c */
int64_t wev_rev(const Mvccpb__Event *ev);
void wbatch_unref(struct watch_batch *b);
bool wfilter_pass(const struct watcher *w, const Mvccpb__Event *ev);
int wring_reserve(struct watch_hub *hub, struct watcher *w, uint32_t extra);
void wring_push(struct watcher *w, struct watch_batch *b, size_t idx);
static inline struct wentry *wring_at(const struct watcher *w, uint32_t i)
{
	return &w->ring[(w->head + i) & (w->cap - 1)];
}
void wring_drop_all(struct watch_hub *hub, struct watcher *w);
/* Room for more events: the smaller of the watcher's and its stream's. */
uint32_t wroom(const struct watch_hub *hub, const struct watcher *w);
void wring_maybe_shrink(struct watch_hub *hub, struct watcher *w);
/* Removes the oldest entry (its reference moves to the caller). */
struct wentry wring_pop_head(struct watcher *w);
/* apply's per-match step, called by windex_match */
void wdeliver(struct watch_hub *hub, struct watcher *w, struct watch_batch *b, size_t idx);

/* stream.c */
void wstream_update_ready(struct watcher *w);
void wstream_free_watcher(struct watcher *w);
/* Re-checks whether w still holds up the stream's requested progress. */
void wstream_update_barrier(struct watcher *w);

/* response.c: the next response of w into r (w has events queued). */
int wresp_build(struct watch_stream *s, struct watcher *w, struct watch_response *r);

/* sync.c */
void wsync_make_runnable(struct watch_hub *hub, struct watcher *w);
void wsync_after_pull(struct watch_hub *hub, struct watcher *w);

#endif

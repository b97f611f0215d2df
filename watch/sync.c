/*
 * Catch-up: watchers behind the live revision read history from the store,
 * then join the live fan-out.
 *
 * The hand-over is correct by construction rather than by timing. The hub
 * is single-threaded, and a history read asks for revisions up to the hub's
 * revision only (to_rev = hub->rev). After queuing what the store returned,
 * the watcher's position is next_rev; when next_rev passes hub->rev the
 * watcher is put into the index in the same call, before any later
 * watch_hub_apply can run. Every revision <= hub->rev came from history,
 * every later one will come from apply: nothing is missed or repeated. A
 * store that runs ahead of the hub (its apply thread committed revisions
 * the hub has not seen yet) is harmless for the same reason.
 *
 * Watchers take turns (a FIFO of runnable watchers); one whose queue is more
 * than half full, or whose stream is at its limit while it has something
 * queued, is parked until its consumer drains it, so a slow consumer costs
 * no reads and no memory beyond its limits. (A parked watcher has events
 * queued, so the consumer pulls from it, and the pull unparks it.)
 */
#include "watch/watch_int.h"

#include "common/error.h"

#include <string.h>

void wsync_make_runnable(struct watch_hub *hub, struct watcher *w)
{
	bool was_empty;

	MOOR_ASSERT(w->state == W_UNSYNCED && !wlink_linked(&w->u_link));
	if (w->count > 0 && (w->count > hub->cfg.max_pending_events / 2 || wroom(hub, w) == 0)) {
		w->parked = true;
		return;
	}
	w->parked = false;
	was_empty = wlink_empty(&hub->runnable);
	wlink_insert_tail(&hub->runnable, &w->u_link);
	if (was_empty && hub->cfg.wakeup)
		hub->cfg.wakeup(hub->cfg.wakeup_ctx);
}

void wsync_after_pull(struct watch_hub *hub, struct watcher *w)
{
	if (w->state == W_UNSYNCED && w->parked &&
	    (w->count == 0 || (w->count <= hub->cfg.max_pending_events / 2 && wroom(hub, w) > 0)))
		wsync_make_runnable(hub, w);
}

static int go_live(struct watch_hub *hub, struct watcher *w)
{
	int rc = windex_insert(hub, w);

	if (rc) {
		wsync_make_runnable(hub, w); /* retry on a later call */
		return rc;
	}
	w->state = W_SYNCED;
	w->rev = hub->rev + 1;
	w->parked = false;
	w->stream->n_not_synced--;
	hub->st.unsynced--;
	hub->st.synced++;
	return 0;
}

static void compacted(struct watch_hub *hub, struct watcher *w, int64_t compact_rev)
{
	w->state = W_DONE;
	w->compact_rev = compact_rev;
	hub->st.compacted++;
	moor_log(hub->cfg.logger, MOOR_LOG_DEBUG, "watch",
	         "watcher compacted id=%lld revision=%lld compact_revision=%lld", (long long)w->id,
	         (long long)w->rev, (long long)compact_rev);
	wstream_update_ready(w);
	wstream_update_barrier(w);
}

static int check_result(const struct watch_history_query *q, const struct watch_history_result *res)
{
	int64_t prev = q->from_rev;

	if (res->next_rev <= q->from_rev || res->next_rev > q->to_rev + 1)
		return MOOR_ECORRUPT;
	if (!res->batch)
		return 0;
	if (!res->batch->destroy)
		return MOOR_ECORRUPT;
	for (size_t i = 0; i < res->batch->n_events; i++) {
		const Mvccpb__Event *ev = res->batch->events[i];
		if (!ev || !ev->kv || ev->kv->mod_revision < prev ||
		    ev->kv->mod_revision >= res->next_rev)
			return MOOR_ECORRUPT;
		prev = ev->kv->mod_revision;
	}
	return 0;
}

static bool wants(const struct watcher *w, const Mvccpb__Event *ev)
{
	return wev_rev(ev) >= w->rev && wkey_in_range(w, ev->kv->key.data, ev->kv->key.len) &&
	       wfilter_pass(w, ev);
}

/* w has queued n more events and read everything below next_rev. */
static void advance(struct watch_hub *hub, struct watcher *w, uint32_t n, int64_t next_rev)
{
	hub->st.queued_events += n;
	hub->st.deliveries += n;
	if (n)
		w->activity = true;
	if (next_rev > w->rev)
		w->rev = next_rev;
	wstream_update_ready(w);
	wstream_update_barrier(w);
}

/* Queue what w wants of a checked history batch (NULL: none). */
static int take_history(struct watch_hub *hub, struct watcher *w, struct watch_batch *b,
                        int64_t next_rev)
{
	uint32_t n = 0;
	int rc;

	if (b) {
		for (size_t i = 0; i < b->n_events; i++)
			n += wants(w, b->events[i]);
		if (n && (rc = wring_reserve(hub, w, n)) != 0)
			return rc;
		for (size_t i = 0; i < b->n_events; i++)
			if (wants(w, b->events[i]))
				wring_push(w, b, i);
	}
	advance(hub, w, n, next_rev);
	return 0;
}

static bool same_range(const struct watcher *a, const struct watcher *b)
{
	return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len) &&
	       a->end_inf == b->end_inf && a->end_len == b->end_len &&
	       (a->end_len == 0 || !memcmp(a->end, b->end, a->end_len));
}

/*
 * Cohorts. One history read serves the lead (the head of the runnable list)
 * and up to WSYNC_COHORT_MAX - 1 more runnable watchers at or ahead of its
 * position: the read starts at the lead's position, and each member takes
 * the events at or above its own. Watchers that fell behind together, or
 * clients resuming after a failover, cost one read per batch of history, not
 * one each. Watchers behind the lead are left out: each leads a read of its
 * own in turn, so one far behind never holds up those nearly caught up (a
 * read from the lowest position of all, as etcd's unsynced group does,
 * would). Members are chained through defer_next (unused outside apply).
 *
 * Matching the batch against the members uses a throwaway index: a hash of
 * the single-key members' keys, and a list of the range members, so a read
 * costs O(members + events x (1 + range members)), not events x members.
 */
#define WSYNC_COHORT_MAX 1024

struct cohort {
	struct watcher *head;
	uint32_t n;
	int64_t from;
	uint32_t min_room;
	bool same, prev_kv;
};

static void cohort_add(struct cohort *c, struct watcher *w)
{
	w->defer_next = c->head;
	c->head = w;
	if (c->n == 0 || w->rev < c->from)
		c->from = w->rev;
	w->stream->cohort_n++;
	c->same = c->n == 0 || (c->same && same_range(c->head->defer_next, w));
	c->prev_kv = c->prev_kv || w->prev_kv;
	c->n++;
}

static void cohort_gather(struct watch_hub *hub, struct watcher *lead, struct cohort *c)
{
	struct wlink *l = hub->runnable.next;
	uint32_t scanned = 0;

	memset(c, 0, sizeof *c);
	cohort_add(c, lead);
	/* Bounded: a read never costs a walk of every runnable watcher. */
	while (l != &hub->runnable && c->n < WSYNC_COHORT_MAX && scanned++ < 4 * WSYNC_COHORT_MAX) {
		struct watcher *w = WCONTAINER(l, struct watcher, u_link);
		l = l->next;
		if (w->rev < lead->rev || w->rev > hub->rev)
			continue; /* behind: it leads a read of its own; ahead: goes live */
		wlink_remove(&w->u_link);
		cohort_add(c, w);
	}
	/*
	 * The read may give every member as many events as it asks for, and
	 * members of one stream share its room: ask for no more than the
	 * smallest share. (At least one revision is read, so a member with no
	 * room may go over by one revision, as a live watcher with an empty
	 * queue may.)
	 */
	for (struct watcher *w = c->head; w; w = w->defer_next) {
		struct watch_stream *s = w->stream;
		uint32_t own = w->count < hub->cfg.max_pending_events
		                   ? hub->cfg.max_pending_events - w->count
		                   : 0;
		uint32_t share =
		    s->queued < hub->cfg.max_stream_pending_events
		        ? (hub->cfg.max_stream_pending_events - s->queued) / s->cohort_n
		        : 0;
		uint32_t room = own < share ? own : share;
		if (w == c->head || room < c->min_room)
			c->min_room = room;
	}
	for (struct watcher *w = c->head; w; w = w->defer_next)
		w->stream->cohort_n = 0;
}

static void cohort_query(struct watch_hub *hub, const struct cohort *c, size_t left,
                         struct watch_history_query *q)
{
	static const uint8_t zero = 0;
	const struct watcher *w = c->head;

	q->from_rev = c->from;
	q->to_rev = hub->rev;
	q->max_events = c->min_room < hub->cfg.history_batch_events ? c->min_room
	                                                            : hub->cfg.history_batch_events;
	if (q->max_events > left)
		q->max_events = left;
	if (q->max_events == 0)
		q->max_events = 1;
	q->prev_kv = c->prev_kv;
	if (!c->same) {
		q->key = &zero; /* every key */
		q->key_len = 1;
		q->range_end = &zero;
		q->range_end_len = 1;
		return;
	}
	q->key = w->key;
	q->key_len = w->key_len;
	if (w->end_inf) {
		q->range_end = &zero;
		q->range_end_len = 1;
	} else {
		q->range_end = w->end;
		q->range_end_len = w->end_len;
	}
}

struct cohort_index {
	struct watcher **m;
	uint32_t *need; /* events each member takes; UINT32_MAX: no memory */
	uint32_t *next; /* key chains */
	uint32_t *heads;
	uint32_t *ranges;
	uint32_t n, nranges, mask;
};

static void *cohort_index_new(struct watch_hub *hub, const struct cohort *c, struct cohort_index *x)
{
	uint32_t buckets = 1;
	void *blk;
	char *p;

	while (buckets < 2 * c->n)
		buckets *= 2;
	blk = moor_malloc(hub->alloc, c->n * (sizeof *x->m + 3 * sizeof(uint32_t)) +
	                                  buckets * sizeof(uint32_t));
	if (!blk)
		return NULL;
	p = blk;
	x->m = (struct watcher **)(void *)p;
	p += c->n * sizeof *x->m;
	x->need = (uint32_t *)(void *)p;
	x->next = x->need + c->n;
	x->ranges = x->next + c->n;
	x->heads = x->ranges + c->n;
	x->mask = buckets - 1;
	x->n = 0;
	x->nranges = 0;
	memset(x->heads, 0xff, buckets * sizeof(uint32_t));
	for (struct watcher *w = c->head; w; w = w->defer_next) {
		uint32_t i = x->n++;
		x->m[i] = w;
		x->need[i] = 0;
		if (w->end_inf || w->end_len) {
			x->ranges[x->nranges++] = i;
		} else {
			uint32_t h =
			    (uint32_t)wkey_hash(hub->cfg.seed, w->key, w->key_len) & x->mask;
			x->next[i] = x->heads[h];
			x->heads[h] = i;
		}
	}
	return blk;
}

/* Pass 1 counts what each member takes; pass 2 queues it. */
static void cohort_index_visit(struct watch_hub *hub, struct cohort_index *x, struct watch_batch *b,
                               bool push)
{
	for (size_t e = 0; e < b->n_events; e++) {
		const Mvccpb__Event *ev = b->events[e];
		const ProtobufCBinaryData *k = &ev->kv->key;
		uint32_t h = (uint32_t)wkey_hash(hub->cfg.seed, k->data, k->len) & x->mask;
		for (uint32_t i = x->heads[h]; i != UINT32_MAX; i = x->next[i]) {
			if (x->need[i] == UINT32_MAX || !wants(x->m[i], ev))
				continue;
			if (push)
				wring_push(x->m[i], b, e);
			else
				x->need[i]++;
		}
		for (uint32_t r = 0; r < x->nranges; r++) {
			uint32_t i = x->ranges[r];
			if (x->need[i] == UINT32_MAX || !wants(x->m[i], ev))
				continue;
			if (push)
				wring_push(x->m[i], b, e);
			else
				x->need[i]++;
		}
	}
}

/* Back to the runnable list (or parked), or live when caught up. */
static int requeue(struct watch_hub *hub, struct watcher *w)
{
	if (w->rev > hub->rev)
		return go_live(hub, w);
	wsync_make_runnable(hub, w);
	return 0;
}

/* Queue a checked batch (may be NULL) into every member, then requeue it. */
static int cohort_take(struct watch_hub *hub, struct cohort *c, struct watch_batch *b,
                       int64_t next_rev)
{
	struct cohort_index x;
	void *blk = c->n > 1 && b ? cohort_index_new(hub, c, &x) : NULL;
	struct watcher *w, *next;
	int err = 0, rc;

	if (!blk) {
		/* One member, nothing read, or no memory for the index. */
		for (w = c->head; w; w = next) {
			next = w->defer_next;
			w->defer_next = NULL;
			rc = take_history(hub, w, b, next_rev);
			if (rc)
				wsync_make_runnable(hub, w); /* retry later */
			else
				rc = requeue(hub, w);
			if (rc && !err)
				err = rc;
		}
		return err;
	}
	cohort_index_visit(hub, &x, b, false);
	for (uint32_t i = 0; i < x.n; i++)
		if (x.need[i] && wring_reserve(hub, x.m[i], x.need[i]) != 0)
			x.need[i] = UINT32_MAX;
	cohort_index_visit(hub, &x, b, true);
	for (uint32_t i = 0; i < x.n; i++) {
		w = x.m[i];
		w->defer_next = NULL;
		if (x.need[i] == UINT32_MAX) {
			wsync_make_runnable(hub, w); /* retry later */
			rc = MOOR_ENOMEM;
		} else {
			advance(hub, w, x.need[i], next_rev);
			rc = requeue(hub, w);
		}
		if (rc && !err)
			err = rc;
	}
	moor_free(hub->alloc, blk);
	return err;
}

static int sync_cohort(struct watch_hub *hub, struct watcher *lead, size_t left, size_t *used)
{
	struct watch_history_query q = {0};
	struct watch_history_result res = {0};
	struct cohort c;
	struct watcher *w, *next;
	size_t n = 0;
	int rc;

	if (lead->rev > hub->rev)
		return go_live(hub, lead);
	cohort_gather(hub, lead, &c);
	cohort_query(hub, &c, left, &q);
	rc = hub->cfg.store.read(hub->cfg.store.ctx, &q, &res);
	if (rc == MOOR_ECOMPACTED) {
		/* Only those below the compact revision are lost. */
		for (w = c.head; w; w = next) {
			next = w->defer_next;
			w->defer_next = NULL;
			if (w->rev < res.compact_rev)
				compacted(hub, w, res.compact_rev);
			else
				wsync_make_runnable(hub, w);
		}
		*used += 1;
		return 0;
	}
	if (rc == 0 && (rc = check_result(&q, &res)) != 0) {
		moor_log(hub->cfg.logger, MOOR_LOG_ERROR, "watch",
		         "store returned a bad history batch from=%lld to=%lld next=%lld",
		         (long long)q.from_rev, (long long)q.to_rev, (long long)res.next_rev);
		if (res.batch)
			res.batch->destroy(res.batch);
	}
	if (rc) {
		for (w = c.head; w; w = next) {
			next = w->defer_next;
			w->defer_next = NULL;
			wsync_make_runnable(hub, w);
		}
		*used += 1;
		return rc;
	}
	if (res.batch) {
		res.batch->refs = 1;
		res.batch->sizes = NULL;
		n = res.batch->n_events;
		hub->st.history_events += n;
	}
	rc = cohort_take(hub, &c, res.batch, res.next_rev);
	if (res.batch)
		wbatch_unref(res.batch);
	*used += n ? n : 1;
	return rc;
}

int watch_hub_sync(struct watch_hub *hub, size_t budget_events)
{
	size_t used = 0;

	MOOR_ASSERT(!hub->in_apply);
	if (budget_events == 0)
		budget_events = 1;
	while (used < budget_events && !wlink_empty(&hub->runnable)) {
		struct watcher *w = WCONTAINER(hub->runnable.next, struct watcher, u_link);
		int rc;

		wlink_remove(&w->u_link);
		rc = sync_cohort(hub, w, budget_events - used, &used);
		if (rc)
			return rc;
	}
	return !wlink_empty(&hub->runnable);
}

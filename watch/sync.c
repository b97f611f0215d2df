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
	return wkey_in_range(w, ev->kv->key.data, ev->kv->key.len) && wfilter_pass(w, ev);
}

/* Queue what w wants of a checked history batch (NULL: none) and move it to
 * next_rev. */
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
	hub->st.queued_events += n;
	hub->st.deliveries += n;
	if (n)
		w->activity = true;
	w->rev = next_rev;
	wstream_update_ready(w);
	wstream_update_barrier(w);
	return 0;
}

static bool same_range(const struct watcher *a, const struct watcher *b)
{
	return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len) &&
	       a->end_inf == b->end_inf && a->end_len == b->end_len &&
	       (a->end_len == 0 || !memcmp(a->end, b->end, a->end_len));
}

/*
 * The cohort of `lead`: it and the runnable watchers at the same position
 * (looking at most WSYNC_COHORT_SCAN watchers down the list), taken off the
 * list and chained through defer_next (free outside apply). One history
 * read serves them all: watchers that fell behind together (a burst that
 * overflowed many queues at one revision) or started together (clients
 * resuming from one revision) cost one read, not one each.
 */
#define WSYNC_COHORT_SCAN 4096

static void cohort_query(struct watch_hub *hub, struct watcher *lead, size_t left,
                         struct watch_history_query *q)
{
	static const uint8_t zero = 0;
	uint32_t min_room = wroom(hub, lead);
	bool same = true, prev_kv = lead->prev_kv;
	struct watcher **tail = &lead->defer_next;
	struct wlink *l = hub->runnable.next;

	lead->defer_next = NULL;
	for (int scanned = 0; l != &hub->runnable && scanned < WSYNC_COHORT_SCAN; scanned++) {
		struct watcher *w = WCONTAINER(l, struct watcher, u_link);
		l = l->next;
		if (w->rev != lead->rev)
			continue;
		wlink_remove(&w->u_link);
		w->defer_next = NULL;
		*tail = w;
		tail = &w->defer_next;
		if (wroom(hub, w) < min_room)
			min_room = wroom(hub, w);
		same = same && same_range(lead, w);
		prev_kv = prev_kv || w->prev_kv;
	}
	q->from_rev = lead->rev;
	q->to_rev = hub->rev;
	q->max_events =
	    min_room < hub->cfg.history_batch_events ? min_room : hub->cfg.history_batch_events;
	if (q->max_events > left)
		q->max_events = left;
	if (q->max_events == 0)
		q->max_events = 1;
	q->prev_kv = prev_kv;
	if (!same) {
		q->key = &zero; /* every key */
		q->key_len = 1;
		q->range_end = &zero;
		q->range_end_len = 1;
		return;
	}
	q->key = lead->key;
	q->key_len = lead->key_len;
	if (lead->end_inf) {
		q->range_end = &zero;
		q->range_end_len = 1;
	} else {
		q->range_end = lead->end;
		q->range_end_len = lead->end_len;
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

static int sync_cohort(struct watch_hub *hub, struct watcher *lead, size_t left, size_t *used)
{
	struct watch_history_query q = {0};
	struct watch_history_result res = {0};
	struct watcher *w, *next;
	size_t n = 0;
	int rc, err = 0;

	if (lead->rev > hub->rev)
		return go_live(hub, lead);
	cohort_query(hub, lead, left, &q);
	rc = hub->cfg.store.read(hub->cfg.store.ctx, &q, &res);
	if (rc == MOOR_ECOMPACTED) {
		for (w = lead; w; w = next) {
			next = w->defer_next;
			w->defer_next = NULL;
			compacted(hub, w, res.compact_rev);
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
	if (res.batch && rc == 0) {
		res.batch->refs = 1;
		res.batch->sizes = NULL;
		n = res.batch->n_events;
		hub->st.history_events += n;
	}
	for (w = lead; w; w = next) {
		int rc2 = rc;
		next = w->defer_next;
		w->defer_next = NULL;
		if (rc2 == 0)
			rc2 = take_history(hub, w, res.batch, res.next_rev);
		if (rc2 == 0)
			rc2 = requeue(hub, w);
		else
			wsync_make_runnable(hub, w); /* retry later */
		if (rc2 && !err)
			err = rc2;
	}
	if (res.batch && rc == 0)
		wbatch_unref(res.batch);
	*used += n ? n : 1;
	return err;
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

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
 * than half full is parked until its consumer drains it, so a slow consumer
 * costs no reads and no memory beyond its limit.
 */
#include "watch/watch_int.h"

#include "common/error.h"

void wsync_make_runnable(struct watch_hub *hub, struct watcher *w)
{
	bool was_empty;

	MOOR_ASSERT(w->state == W_UNSYNCED && !wlink_linked(&w->u_link));
	if (w->count > hub->cfg.max_pending_events / 2) {
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
	if (w->state == W_UNSYNCED && w->parked && w->count <= hub->cfg.max_pending_events / 2)
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

/* Queue what the store returned and move the watcher on. */
static int take_history(struct watch_hub *hub, struct watcher *w,
                        const struct watch_history_query *q, struct watch_history_result *res)
{
	struct watch_batch *b = res->batch;
	uint32_t n = 0;
	int rc = check_result(q, res);

	if (rc) {
		moor_log(hub->cfg.logger, MOOR_LOG_ERROR, "watch",
		         "store returned a bad history batch from=%lld to=%lld next=%lld",
		         (long long)q->from_rev, (long long)q->to_rev, (long long)res->next_rev);
		if (b)
			b->destroy(b);
		return rc;
	}
	if (b) {
		b->refs = 1;
		for (size_t i = 0; i < b->n_events; i++)
			n += wants(w, b->events[i]);
		if (n && (rc = wring_reserve(hub, w, n)) != 0) {
			wbatch_unref(b);
			return rc;
		}
		for (size_t i = 0; i < b->n_events; i++)
			if (wants(w, b->events[i]))
				wring_push(w, b, i);
		hub->st.history_events += b->n_events;
		wbatch_unref(b);
	}
	hub->st.queued_events += n;
	hub->st.deliveries += n;
	if (n)
		w->activity = true;
	w->rev = res->next_rev;
	wstream_update_ready(w);
	wstream_update_barrier(w);
	return 0;
}

static int sync_one(struct watch_hub *hub, struct watcher *w, size_t left, size_t *used)
{
	struct watch_history_query q = {0};
	struct watch_history_result res = {0};
	uint32_t room = hub->cfg.max_pending_events - w->count;
	int rc;

	if (w->rev > hub->rev)
		return go_live(hub, w);
	q.from_rev = w->rev;
	q.to_rev = hub->rev;
	q.max_events = room < hub->cfg.history_batch_events ? room : hub->cfg.history_batch_events;
	if (q.max_events > left)
		q.max_events = left;
	if (q.max_events == 0)
		q.max_events = 1;
	q.key = w->key;
	q.key_len = w->key_len;
	if (w->end_inf) {
		static const uint8_t zero = 0;
		q.range_end = &zero;
		q.range_end_len = 1;
	} else {
		q.range_end = w->end;
		q.range_end_len = w->end_len;
	}
	q.prev_kv = w->prev_kv;
	rc = hub->cfg.store.read(hub->cfg.store.ctx, &q, &res);
	if (rc == MOOR_ECOMPACTED) {
		compacted(hub, w, res.compact_rev);
		*used += 1;
		return 0;
	}
	if (rc == 0) {
		size_t n = res.batch ? res.batch->n_events : 0;
		rc = take_history(hub, w, &q, &res);
		*used += n ? n : 1;
	}
	if (rc) {
		wsync_make_runnable(hub, w);
		return rc;
	}
	if (w->rev > hub->rev)
		return go_live(hub, w);
	wsync_make_runnable(hub, w);
	return 0;
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
		rc = sync_one(hub, w, budget_events - used, &used);
		if (rc)
			return rc;
	}
	return !wlink_empty(&hub->runnable);
}

/*
 * The hub: its lifecycle, the live fan-out of applied events, the
 * per-watcher queues and the periodic progress tick.
 *
 * The fan-out (watch_hub_apply) walks the batch's events in order and, for
 * each, visits the matching live watchers through the index; each gets a
 * 16-byte reference to the shared batch. A watcher that would go over its
 * queue limit, or whose queue cannot grow, has the revision in progress
 * rolled back out of its queue and becomes UNSYNCED at that revision: it
 * will read it from history. Its removal from the index waits until the
 * batch is done (it is marked, so later events of the batch skip it), so
 * the index never changes under a visitor.
 */
#include "watch/watch_int.h"

#include "common/error.h"

#include <string.h>

int64_t wev_rev(const Mvccpb__Event *ev)
{
	return ev->kv->mod_revision;
}

void wbatch_unref(struct watch_batch *b)
{
	MOOR_ASSERT(b->refs > 0);
	if (--b->refs == 0) {
		/* The sizes were allocated with the hub's allocator, which
		 * outlives every batch it holds. */
		if (b->sizes) {
			const struct moor_alloc *a = *(const struct moor_alloc **)b->sizes;
			moor_free(a, b->sizes);
			b->sizes = NULL;
		}
		b->destroy(b);
	}
}

bool wfilter_pass(const struct watcher *w, const Mvccpb__Event *ev)
{
	if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE)
		return !w->no_delete;
	return !w->no_put;
}

/* ---- queues ---- */

uint32_t wroom(const struct watch_hub *hub, const struct watcher *w)
{
	uint32_t own =
	    w->count < hub->cfg.max_pending_events ? hub->cfg.max_pending_events - w->count : 0;
	uint32_t stream = w->stream->queued < hub->cfg.max_stream_pending_events
	                      ? hub->cfg.max_stream_pending_events - w->stream->queued
	                      : 0;

	return own < stream ? own : stream;
}

int wring_reserve(struct watch_hub *hub, struct watcher *w, uint32_t extra)
{
	uint64_t need = (uint64_t)w->count + extra;
	uint32_t ncap = w->cap ? w->cap : 8;
	struct wentry *nr;

	if (need <= w->cap)
		return 0;
	if (need > (1u << 30))
		return MOOR_ENOMEM;
	while (ncap < need)
		ncap *= 2;
	nr = moor_malloc(hub->alloc, (size_t)ncap * sizeof *nr);
	if (!nr)
		return MOOR_ENOMEM;
	for (uint32_t i = 0; i < w->count; i++)
		nr[i] = *wring_at(w, i);
	moor_free(hub->alloc, w->ring);
	w->ring = nr;
	w->cap = ncap;
	w->head = 0;
	return 0;
}

void wring_push(struct watcher *w, struct watch_batch *b, size_t idx)
{
	struct wentry *e;

	MOOR_ASSERT(w->count < w->cap);
	e = &w->ring[(w->head + w->count) & (w->cap - 1)];
	e->b = b;
	e->idx = idx;
	w->count++;
	w->stream->queued++;
	b->refs++;
}

struct wentry wring_pop_head(struct watcher *w)
{
	struct wentry e;

	MOOR_ASSERT(w->count > 0);
	e = w->ring[w->head];
	w->head = (w->head + 1) & (w->cap - 1);
	w->count--;
	w->stream->queued--;
	w->stream->hub->st.queued_events--;
	return e;
}

static struct wentry *wring_tail(struct watcher *w)
{
	return wring_at(w, w->count - 1);
}

void wring_drop_all(struct watch_hub *hub, struct watcher *w)
{
	while (w->count) {
		struct wentry e = wring_pop_head(w);
		wbatch_unref(e.b);
	}
	w->fragmenting = false;
	wring_maybe_shrink(hub, w);
}

void wring_maybe_shrink(struct watch_hub *hub, struct watcher *w)
{
	/* An idle watcher keeps at most a small ring. */
	if (w->count == 0 && w->cap > 8) {
		moor_free(hub->alloc, w->ring);
		w->ring = NULL;
		w->cap = 0;
		w->head = 0;
	}
}

/* ---- the live fan-out ---- */

/* The revision `rev` does not fit: roll it back and go to history. */
static void overflow(struct watch_hub *hub, struct watcher *w, int64_t rev)
{
	while (w->count && wev_rev(wring_tail(w)->b->events[wring_tail(w)->idx]) == rev) {
		struct wentry *e = wring_tail(w);
		w->count--;
		w->stream->queued--;
		hub->st.queued_events--;
		hub->st.deliveries--;
		wbatch_unref(e->b);
	}
	w->state = W_UNSYNCED;
	w->rev = rev;
	w->deferred = true;
	w->defer_next = hub->defer;
	hub->defer = w;
	w->stream->n_not_synced++;
	hub->st.synced--;
	hub->st.unsynced++;
	hub->st.overflows++;
	wstream_update_ready(w);
	moor_log(hub->cfg.logger, MOOR_LOG_DEBUG, "watch",
	         "watcher falls back to history id=%lld revision=%lld queued=%u", (long long)w->id,
	         (long long)rev, w->count);
}

void wdeliver(struct watch_hub *hub, struct watcher *w, struct watch_batch *b, size_t idx)
{
	const Mvccpb__Event *ev = b->events[idx];
	int64_t rev = wev_rev(ev);

	if (w->state != W_SYNCED || rev < w->rev || !wfilter_pass(w, ev))
		return;
	if (w->count > 0 && wroom(hub, w) == 0 &&
	    wev_rev(w->ring[w->head].b->events[w->ring[w->head].idx]) < rev) {
		overflow(hub, w, rev);
		return;
	}
	if (w->count == w->cap && wring_reserve(hub, w, 1) != 0) {
		overflow(hub, w, rev);
		return;
	}
	wring_push(w, b, idx);
	hub->st.queued_events++;
	hub->st.deliveries++;
	w->activity = true;
	if (!wlink_linked(&w->r_link))
		wstream_update_ready(w);
}

static int check_batch(const struct watch_hub *hub, const struct watch_batch *b)
{
	int64_t prev = hub->rev + 1;

	if (!b->destroy)
		return MOOR_EINVAL;
	for (size_t i = 0; i < b->n_events; i++) {
		const Mvccpb__Event *ev = b->events[i];
		if (!ev || !ev->kv || ev->kv->mod_revision < prev)
			return MOOR_EINVAL;
		prev = ev->kv->mod_revision;
	}
	return 0;
}

int watch_hub_apply(struct watch_hub *hub, struct watch_batch *b)
{
	int rc = check_batch(hub, b);

	if (rc)
		return rc;
	MOOR_ASSERT(!hub->in_apply);
	b->refs = 1;
	b->sizes = NULL;
	hub->in_apply = true;
	for (size_t i = 0; i < b->n_events; i++) {
		const ProtobufCBinaryData *k = &b->events[i]->kv->key;
		windex_match(hub, k->data, k->len, b, i);
	}
	if (b->n_events)
		hub->rev = wev_rev(b->events[b->n_events - 1]);
	hub->in_apply = false;
	while (hub->defer) {
		struct watcher *w = hub->defer;
		hub->defer = w->defer_next;
		w->defer_next = NULL;
		w->deferred = false;
		windex_remove(hub, w);
		wsync_make_runnable(hub, w);
	}
	wbatch_unref(b);
	return 0;
}

int watch_hub_set_revision(struct watch_hub *hub, int64_t rev)
{
	if (rev < hub->rev)
		return MOOR_EINVAL;
	hub->rev = rev;
	return 0;
}

int64_t watch_hub_revision(const struct watch_hub *hub)
{
	return hub->rev;
}

/* ---- progress ---- */

void watch_hub_progress_tick(struct watch_hub *hub)
{
	for (struct wlink *sl = hub->streams.next; sl != &hub->streams; sl = sl->next) {
		struct watch_stream *s = WCONTAINER(sl, struct watch_stream, h_link);
		for (struct wlink *l = s->watchers.next; l != &s->watchers; l = l->next) {
			struct watcher *w = WCONTAINER(l, struct watcher, s_link);
			if (w->progress_notify && w->state == W_SYNCED && !w->activity &&
			    w->count == 0) {
				w->progress_due = true;
				wstream_update_ready(w);
			}
			w->activity = false;
		}
	}
}

/* ---- lifecycle ---- */

int watch_hub_new(const struct watch_hub_config *cfg, struct watch_hub **out)
{
	const struct moor_alloc *a;
	struct watch_hub *hub;

	if (!cfg || !out || !cfg->store.read || cfg->revision < 0)
		return MOOR_EINVAL;
	a = moor_alloc_or_default(cfg->alloc);
	hub = moor_calloc(a, 1, sizeof *hub);
	if (!hub)
		return MOOR_ENOMEM;
	hub->cfg = *cfg;
	hub->alloc = a;
	if (!hub->cfg.max_pending_events)
		hub->cfg.max_pending_events = WATCH_MAX_PENDING_EVENTS;
	if (!hub->cfg.history_batch_events)
		hub->cfg.history_batch_events = WATCH_HISTORY_BATCH_EVENTS;
	if (!hub->cfg.max_response_bytes)
		hub->cfg.max_response_bytes = WATCH_MAX_RESPONSE_BYTES;
	if (!hub->cfg.max_response_events)
		hub->cfg.max_response_events = WATCH_MAX_RESPONSE_EVENTS;
	if (!hub->cfg.max_stream_pending_events)
		hub->cfg.max_stream_pending_events = WATCH_MAX_STREAM_PENDING_EVENTS;
	if (!hub->cfg.max_watchers_per_stream)
		hub->cfg.max_watchers_per_stream = WATCH_MAX_WATCHERS_PER_STREAM;
	hub->rev = cfg->revision;
	wlink_init(&hub->streams);
	wlink_init(&hub->runnable);
	if (windex_init(hub) != 0) {
		moor_free(a, hub);
		return MOOR_ENOMEM;
	}
	*out = hub;
	return 0;
}

void watch_hub_free(struct watch_hub *hub)
{
	if (!hub)
		return;
	while (!wlink_empty(&hub->streams))
		watch_stream_close(WCONTAINER(hub->streams.next, struct watch_stream, h_link));
	MOOR_ASSERT(wlink_empty(&hub->runnable));
	windex_free(hub);
	moor_free(hub->alloc, hub);
}

void watch_hub_stats(const struct watch_hub *hub, struct watch_hub_stats *st)
{
	*st = hub->st;
}

size_t watch_prefix_end(const uint8_t *key, size_t key_len, uint8_t *out)
{
	for (size_t i = key_len; i > 0; i--) {
		if (key[i - 1] != 0xff) {
			memcpy(out, key, i);
			out[i - 1] = (uint8_t)(key[i - 1] + 1);
			return i;
		}
	}
	out[0] = 0;
	return 1;
}

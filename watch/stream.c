/*
 * Streams: one client connection's watchers, their registration and cancel,
 * and the responses the server pulls.
 *
 * A stream keeps a ready list of the watchers that have something to send
 * (events, a progress notification, or the compacted end). watch_stream_next
 * takes the first, builds one response of whole revisions (or one fragment)
 * from the head of its queue, and puts it back at the tail if it has more:
 * watchers take turns, so one busy watcher cannot starve the others. The
 * exception is a revision sent in fragments: its fragments go out back to
 * back, with nothing of the stream in between, because etcd's client merges
 * consecutive responses of one watch id until fragment is clear.
 *
 * A requested progress response (watch_id -1) at revision P tells the
 * client that every watcher of the stream has delivered everything up to P
 * (etcd's client passes it to all of them). So it waits until no watcher
 * owes an event at or below P: none queued, none still to read from
 * history, no compacted end unsent. That covers watchers created after the
 * request too (their created response goes out before the progress). Each
 * watcher that owes has its barrier flag set; the stream counts them.
 */
#include "watch/watch_int.h"

#include "common/error.h"

#include <string.h>

/* ---- the id table ---- */

static uint32_t id_slot(const struct watch_stream *s, int64_t id)
{
	uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;

	return (uint32_t)(x >> 32) & s->id_mask;
}

static struct watcher *id_find(const struct watch_stream *s, int64_t id)
{
	struct watcher *w = s->ids[id_slot(s, id)];

	while (w && w->id != id)
		w = w->id_next;
	return w;
}

static int id_grow(struct watch_stream *s)
{
	uint32_t nsize = (s->id_mask + 1) * 2;
	struct watcher **nt = moor_calloc(s->hub->alloc, nsize, sizeof *nt);
	uint32_t old = s->id_mask + 1;
	struct watcher **ot = s->ids;

	if (!nt)
		return MOOR_ENOMEM;
	s->ids = nt;
	s->id_mask = nsize - 1;
	for (uint32_t i = 0; i < old; i++) {
		struct watcher *w = ot[i], *next;
		for (; w; w = next) {
			next = w->id_next;
			w->id_next = nt[id_slot(s, w->id)];
			nt[id_slot(s, w->id)] = w;
		}
	}
	moor_free(s->hub->alloc, ot);
	return 0;
}

static void id_remove(struct watch_stream *s, struct watcher *w)
{
	struct watcher **pp = &s->ids[id_slot(s, w->id)];

	while (*pp != w)
		pp = &(*pp)->id_next;
	*pp = w->id_next;
	w->id_next = NULL;
}

/* ---- readiness ---- */

static bool stream_has_output(const struct watch_stream *s)
{
	return !wlink_empty(&s->ready) || (s->progress_req && s->barrier_watchers == 0);
}

static void stream_signal(struct watch_stream *s)
{
	if (!s->signalled && stream_has_output(s)) {
		s->signalled = true;
		if (s->cfg.notify)
			s->cfg.notify(s, s->cfg.ctx);
	}
}

void wstream_update_ready(struct watcher *w)
{
	bool has = w->count > 0 || w->state == W_DONE || w->progress_due;

	if (has && !wlink_linked(&w->r_link)) {
		wlink_insert_tail(&w->stream->ready, &w->r_link);
		stream_signal(w->stream);
	} else if (!has && wlink_linked(&w->r_link)) {
		wlink_remove(&w->r_link);
	}
}

static bool owes_progress(const struct watcher *w, int64_t rev)
{
	if (w->count && wev_rev(w->ring[w->head].b->events[w->ring[w->head].idx]) <= rev)
		return true;
	if (w->state == W_UNSYNCED && w->rev <= rev)
		return true;
	return w->state == W_DONE;
}

void wstream_update_barrier(struct watcher *w)
{
	struct watch_stream *s = w->stream;
	bool owes;

	if (!s->progress_req)
		return;
	owes = owes_progress(w, s->progress_rev);
	if (owes == w->barrier)
		return;
	w->barrier = owes;
	if (owes) {
		s->barrier_watchers++;
	} else {
		s->barrier_watchers--;
		stream_signal(s);
	}
}

/* ---- streams ---- */

int watch_stream_open(struct watch_hub *hub, const struct watch_stream_config *cfg,
                      struct watch_stream **out)
{
	struct watch_stream *s;

	if (!hub || !out)
		return MOOR_EINVAL;
	s = moor_calloc(hub->alloc, 1, sizeof *s);
	if (!s)
		return MOOR_ENOMEM;
	s->ids = moor_calloc(hub->alloc, 8, sizeof *s->ids);
	if (!s->ids) {
		moor_free(hub->alloc, s);
		return MOOR_ENOMEM;
	}
	s->id_mask = 7;
	s->hub = hub;
	if (cfg)
		s->cfg = *cfg;
	wlink_init(&s->watchers);
	wlink_init(&s->ready);
	wlink_insert_tail(&hub->streams, &s->h_link);
	hub->st.streams++;
	*out = s;
	return 0;
}

void watch_stream_close(struct watch_stream *s)
{
	struct watch_hub *hub;

	if (!s)
		return;
	hub = s->hub;
	s->cfg.notify = NULL; /* nothing to tell a closing stream */
	while (!wlink_empty(&s->watchers))
		wstream_free_watcher(WCONTAINER(s->watchers.next, struct watcher, s_link));
	wlink_remove(&s->h_link);
	hub->st.streams--;
	moor_free(hub->alloc, s->ids);
	moor_free(hub->alloc, s);
}

void *watch_stream_ctx(const struct watch_stream *s)
{
	return s->cfg.ctx;
}

/* ---- watchers ---- */

void wstream_free_watcher(struct watcher *w)
{
	struct watch_stream *s = w->stream;
	struct watch_hub *hub = s->hub;

	MOOR_ASSERT(!hub->in_apply && !w->deferred);
	if (w->state == W_SYNCED) {
		windex_remove(hub, w);
		hub->st.synced--;
	} else {
		if (wlink_linked(&w->u_link))
			wlink_remove(&w->u_link);
		hub->st.unsynced--;
		s->n_not_synced--;
	}
	if (w->barrier) {
		w->barrier = false;
		s->barrier_watchers--;
	}
	if (s->frag_w == w)
		s->frag_w = NULL;
	wring_drop_all(hub, w);
	moor_free(hub->alloc, w->ring);
	if (wlink_linked(&w->r_link))
		wlink_remove(&w->r_link);
	wlink_remove(&w->s_link);
	id_remove(s, w);
	s->n_watchers--;
	hub->st.watchers--;
	moor_free(hub->alloc, w);
	/* A requested progress waiting only on this watcher may go now. */
	stream_signal(s);
}

int watch_stream_watch(struct watch_stream *s, const struct watch_create *req, int64_t *id_out,
                       int64_t *rev_out)
{
	static const uint8_t zero = 0;
	struct watch_hub *hub = s->hub;
	const uint8_t *key = req->key;
	size_t key_len = req->key_len;
	bool end_inf = req->range_end_len == 1 && req->range_end[0] == 0;
	struct watcher *w;
	int64_t id = req->watch_id;
	int rc;

	if (req->start_rev < 0 || req->watch_id < WATCH_AUTO_ID)
		return MOOR_EINVAL;
	if (key_len == 0) {
		key = &zero;
		key_len = 1;
	}
	if (key_len > UINT32_MAX || req->range_end_len > UINT32_MAX)
		return MOOR_ETOOLARGE;
	if (req->range_end_len && !end_inf &&
	    wkey_cmp(req->range_end, req->range_end_len, key, key_len) <= 0)
		return MOOR_ERANGEEND;
	if (s->n_watchers >= hub->cfg.max_watchers_per_stream)
		return MOOR_ETOOMANYREQUESTS;
	if (id == WATCH_AUTO_ID) {
		while (id_find(s, s->next_id))
			s->next_id++;
		id = s->next_id;
	} else if (id_find(s, id)) {
		return MOOR_EEXIST;
	}
	if (s->n_watchers >= s->id_mask + 1 && (rc = id_grow(s)) != 0)
		return rc;

	w = moor_calloc(hub->alloc, 1, sizeof *w + key_len + (end_inf ? 0 : req->range_end_len));
	if (!w)
		return MOOR_ENOMEM;
	w->stream = s;
	w->id = id;
	w->seq = hub->next_seq++;
	w->key = (uint8_t *)(w + 1);
	w->key_len = (uint32_t)key_len;
	memcpy(w->key, key, key_len);
	w->end_inf = end_inf;
	if (!end_inf && req->range_end_len) {
		w->end = w->key + key_len;
		w->end_len = (uint32_t)req->range_end_len;
		memcpy(w->end, req->range_end, req->range_end_len);
	}
	w->prev_kv = req->prev_kv;
	w->no_put = req->no_put;
	w->no_delete = req->no_delete;
	w->progress_notify = req->progress_notify;
	w->fragment = req->fragment;
	wlink_init(&w->r_link);
	wlink_init(&w->u_link);
	wlink_init(&w->s_link);

	if (req->start_rev == 0 || req->start_rev > hub->rev) {
		/* Live at once: nothing at or below the hub's revision is wanted. */
		w->state = W_SYNCED;
		w->rev = req->start_rev ? req->start_rev : hub->rev + 1;
		rc = windex_insert(hub, w);
		if (rc) {
			moor_free(hub->alloc, w);
			return rc;
		}
		hub->st.synced++;
	} else {
		w->state = W_UNSYNCED;
		w->rev = req->start_rev;
		s->n_not_synced++;
		hub->st.unsynced++;
	}
	wlink_insert_tail(&s->watchers, &w->s_link);
	w->id_next = s->ids[id_slot(s, id)];
	s->ids[id_slot(s, id)] = w;
	s->n_watchers++;
	hub->st.watchers++;
	if (id == s->next_id)
		s->next_id++;
	if (w->state == W_UNSYNCED)
		wsync_make_runnable(hub, w);
	wstream_update_barrier(w);
	*id_out = id;
	if (rev_out)
		*rev_out = hub->rev;
	return 0;
}

int watch_stream_cancel(struct watch_stream *s, int64_t id)
{
	struct watcher *w = id_find(s, id);

	if (!w)
		return MOOR_ENOTFOUND;
	wstream_free_watcher(w);
	return 0;
}

int watch_stream_request_progress(struct watch_stream *s)
{
	if (s->n_not_synced > 0)
		return 0;
	if (s->progress_req)
		return 1;
	s->progress_rev = s->hub->rev;
	s->progress_req = true;
	for (struct wlink *l = s->watchers.next; l != &s->watchers; l = l->next) {
		struct watcher *w = WCONTAINER(l, struct watcher, s_link);
		MOOR_ASSERT(!w->barrier);
		wstream_update_barrier(w);
	}
	stream_signal(s);
	return 1;
}

/* ---- pulling ---- */

int watch_stream_next(struct watch_stream *s, struct watch_response *r)
{
	struct watch_hub *hub = s->hub;

	memset(r, 0, sizeof *r);
	for (;;) {
		struct watcher *w;
		int rc;

		if (s->frag_w) {
			w = s->frag_w;
			rc = wresp_build(s, w, r);
			if (rc)
				return rc;
			if (!w->fragmenting)
				s->frag_w = NULL;
			wstream_update_ready(w);
			wsync_after_pull(hub, w);
			return 1;
		}
		if (s->progress_req && s->barrier_watchers == 0) {
			s->progress_req = false;
			r->watch_id = -1;
			r->revision = s->progress_rev;
			r->progress = true;
			return 1;
		}
		if (wlink_empty(&s->ready)) {
			s->signalled = false;
			return 0;
		}
		w = WCONTAINER(s->ready.next, struct watcher, r_link);
		if (w->count > 0) {
			rc = wresp_build(s, w, r);
			if (rc)
				return rc;
			if (w->fragmenting)
				s->frag_w = w; /* the rest of the revision goes next */
		} else if (w->state == W_DONE) {
			r->watch_id = w->id;
			r->canceled = true;
			r->compact_revision = w->compact_rev;
			r->revision = hub->rev;
			wstream_free_watcher(w);
			return 1;
		} else {
			MOOR_ASSERT(w->progress_due);
			w->progress_due = false;
			if (w->state != W_SYNCED) {
				/* Events are coming; they carry the revision. */
				wstream_update_ready(w);
				continue;
			}
			r->watch_id = w->id;
			r->revision = hub->rev;
			r->progress = true;
		}
		/* Take turns: to the tail if there is more. */
		wlink_remove(&w->r_link);
		wstream_update_ready(w);
		wsync_after_pull(hub, w);
		return 1;
	}
}

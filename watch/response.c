/*
 * Building responses: how much of a watcher's queue goes into the next one
 * (whole revisions up to the size and event limits, or one fragment of a
 * revision too large for one response), and the response's memory.
 *
 * A response takes its entries out of the queue, references and all, into
 * one allocation together with the event pointer array the server hands to
 * protobuf-c and, for watchers that did not ask for prev_kv, shallow copies
 * of the events without it. Releasing it drops the references; it needs
 * neither the stream nor the hub, so it may outlive both.
 *
 * Encoded sizes are computed with protobuf-c once per event and remembered
 * in the batch (many watchers size the same event).
 */
#include "watch/watch_int.h"

#include "common/error.h"

#include <string.h>

struct resp_block {
	size_t n;
	struct wentry ents[];
	/* then n event pointers, then the stripped copies */
};

static const Mvccpb__Event *entry_event(const struct wentry *e)
{
	return e->b->events[e->idx];
}

static bool needs_strip(const struct watcher *w, const Mvccpb__Event *ev)
{
	return !w->prev_kv && ev->prev_kv;
}

/* Encoded size of the event inside a WatchResponse (tag + length + body). */
static size_t event_wire_size_of(const struct watcher *w, const Mvccpb__Event *ev)
{
	size_t n;

	if (needs_strip(w, ev)) {
		Mvccpb__Event c = *ev;
		c.prev_kv = NULL;
		n = mvccpb__event__get_packed_size(&c);
	} else {
		n = mvccpb__event__get_packed_size(ev);
	}
	return n + 1 + (n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 5);
}

/*
 * The same, remembered in the batch: with many watchers on one key every
 * one of them would size the same event. The cache is one allocation (the
 * allocator's address, then two sizes + 1 per event, 0 unknown) freed with
 * the batch; without memory for it sizes are computed each time.
 */
static size_t event_wire_size(const struct watch_hub *hub, const struct watcher *w,
                              const struct wentry *e)
{
	struct watch_batch *b = e->b;
	const Mvccpb__Event *ev = b->events[e->idx];
	uint32_t *slot;
	size_t n;

	if (!b->sizes && b->n_events < UINT32_MAX / 2) {
		size_t bytes =
		    sizeof(const struct moor_alloc *) + 2 * b->n_events * sizeof(uint32_t);
		void *blk = moor_calloc(hub->alloc, 1, bytes);
		if (blk) {
			*(const struct moor_alloc **)blk = hub->alloc;
			b->sizes = blk;
		}
	}
	if (!b->sizes)
		return event_wire_size_of(w, ev);
	slot = (uint32_t *)(void *)((char *)b->sizes + sizeof(const struct moor_alloc *)) +
	       2 * e->idx + needs_strip(w, ev);
	if (*slot)
		return *slot - 1;
	n = event_wire_size_of(w, ev);
	if (n < UINT32_MAX)
		*slot = (uint32_t)n + 1;
	return n;
}

/* How many queue entries the next response takes, and whether it ends
 * inside a revision. */
static uint32_t plan_response(const struct watch_hub *hub, const struct watcher *w, bool *frag)
{
	size_t lim_bytes = hub->cfg.max_response_bytes, bytes = 0;
	uint32_t take = 0, i = 0;

	*frag = false;
	while (i < w->count) {
		int64_t rev = wev_rev(entry_event(wring_at(w, i)));
		uint32_t j = i;
		size_t rb = 0;

		if (take == 0 && w->fragment) {
			/* Fragment the first revision if it is too large. */
			size_t fb = 0;
			uint32_t k = i;
			while (k < w->count && wev_rev(entry_event(wring_at(w, k))) == rev) {
				size_t es = event_wire_size(hub, w, wring_at(w, k));
				if (k > i && fb + es > lim_bytes)
					break;
				fb += es;
				k++;
			}
			if (k < w->count && wev_rev(entry_event(wring_at(w, k))) == rev) {
				*frag = true;
				return k;
			}
			if (w->fragmenting)
				return k; /* the last fragment */
			j = k;
			rb = fb;
		} else {
			while (j < w->count && wev_rev(entry_event(wring_at(w, j))) == rev) {
				rb += event_wire_size(hub, w, wring_at(w, j));
				j++;
			}
		}
		if (take > 0 && (bytes + rb > lim_bytes ||
		                 (size_t)take + (j - i) > hub->cfg.max_response_events))
			break;
		take = j;
		bytes += rb;
		i = j;
	}
	return take;
}

int wresp_build(struct watch_stream *s, struct watcher *w, struct watch_response *r)
{
	struct watch_hub *hub = s->hub;
	bool frag;
	uint32_t take = plan_response(hub, w, &frag), nstrip = 0;
	struct resp_block *blk;
	Mvccpb__Event **ptrs, *copies;
	size_t size;

	MOOR_ASSERT(take > 0 && take <= w->count);
	for (uint32_t i = 0; i < take; i++)
		nstrip += needs_strip(w, entry_event(wring_at(w, i)));
	size = sizeof *blk + take * (sizeof(struct wentry) + sizeof(Mvccpb__Event *)) +
	       nstrip * sizeof(Mvccpb__Event);
	blk = moor_malloc(hub->alloc, size);
	if (!blk)
		return MOOR_ENOMEM;
	blk->n = take;
	ptrs = (Mvccpb__Event **)(void *)&blk->ents[take];
	copies = (Mvccpb__Event *)(void *)&ptrs[take];
	for (uint32_t i = 0; i < take; i++) {
		Mvccpb__Event *ev;
		blk->ents[i] = wring_pop_head(w);
		ev = blk->ents[i].b->events[blk->ents[i].idx];
		if (needs_strip(w, ev)) {
			*copies = *ev;
			copies->prev_kv = NULL;
			ev = copies++;
		}
		ptrs[i] = ev;
	}
	w->fragmenting = frag;
	w->progress_due = false;
	r->watch_id = w->id;
	r->events = ptrs;
	r->n_events = take;
	r->fragment = frag;
	r->revision = (w->count == 0 && w->state == W_SYNCED) ? hub->rev : wev_rev(ptrs[take - 1]);
	r->priv = blk;
	r->alloc = hub->alloc;
	wring_maybe_shrink(hub, w);
	wstream_update_barrier(w);
	return 0;
}

void watch_response_release(struct watch_response *r)
{
	struct resp_block *blk = r->priv;

	if (blk) {
		for (size_t i = 0; i < blk->n; i++)
			wbatch_unref(blk->ents[i].b);
		moor_free(r->alloc, blk);
	}
	memset(r, 0, sizeof *r);
}

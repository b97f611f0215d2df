/*
 * The WAL's in-memory view: the segments, the index of where every current
 * entry lives, the last hard state and snapshot marker, and the rules a
 * batch must obey. Appends and recovery change the view through the same
 * functions, so that what recovery rebuilds is what the writer had.
 */
#include "wal/internal.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int wal_fail(struct wal *w, int rc, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof w->errmsg)
		snprintf(w->errmsg + n, sizeof w->errmsg - (size_t)n, ": %s", moor_strerror(rc));
	moor_log(w->logger, MOOR_LOG_ERROR, "wal", "%s", w->errmsg);
	return rc;
}

int wal_batch_check(const struct wal *w, const struct wal_batch *b)
{
	uint64_t snap_index = w->has_snap ? w->snap.index : 0;

	if (!b || (!b->snapshot && !b->n_entries && !b->hard_state))
		return MOOR_EINVAL;
	if (b->n_entries && !b->entries)
		return MOOR_EINVAL;
	if (b->n_entries > UINT32_MAX)
		return MOOR_ETOOLARGE;
	if (b->snapshot) {
		if (b->snapshot->index < snap_index)
			return MOOR_EINVAL; /* snapshots only move forward */
		snap_index = b->snapshot->index;
	}
	if (b->n_entries) {
		uint64_t f = b->entries[0].index;
		uint64_t last = w->last_index;
		if (b->snapshot && b->snapshot->index > last)
			last = b->snapshot->index;
		if (f == 0 || f <= snap_index || f > last + 1 || f > UINT64_MAX - b->n_entries)
			return MOOR_EINVAL;
		for (size_t i = 0; i < b->n_entries; i++) {
			if (b->entries[i].index != f + i)
				return MOOR_EINVAL;
			if (b->entries[i].len > UINT32_MAX ||
			    (b->entries[i].len && !b->entries[i].data))
				return MOOR_EINVAL;
		}
	}
	return 0;
}

int wal_locs_reserve(struct wal *w, size_t extra)
{
	size_t cap;
	struct wal_loc *p;

	if (w->loccap - w->nlocs >= extra)
		return 0;
	cap = w->loccap ? w->loccap * 2 : 64;
	while (cap - w->nlocs < extra)
		cap *= 2;
	p = moor_realloc(w->alloc, w->locs, cap * sizeof *p);
	if (!p)
		return MOOR_ENOMEM;
	w->locs = p;
	w->loccap = cap;
	return 0;
}

/* The first locator whose range ends above `index` (nlocs if none). */
size_t wal_locs_find(const struct wal *w, uint64_t index)
{
	size_t lo = 0, hi = w->nlocs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct wal_loc *l = &w->locs[mid];
		if (l->first_index + l->count <= index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Forget entries at or above `index`. */
static void locs_truncate(struct wal *w, uint64_t index)
{
	size_t i = wal_locs_find(w, index);

	if (i == w->nlocs)
		return;
	if (w->locs[i].first_index < index) {
		w->locs[i].count = (uint32_t)(index - w->locs[i].first_index);
		i++;
	}
	w->nlocs = i;
}

struct wal_seg *wal_seg_by_seq(struct wal *w, uint64_t seq)
{
	if (!w->nsegs || seq < w->segs[0].seq || seq - w->segs[0].seq >= w->nsegs)
		return NULL;
	return &w->segs[seq - w->segs[0].seq];
}

void wal_state_entries(struct wal *w, uint64_t first, uint32_t count, uint64_t seq, uint64_t offset,
                       uint32_t len)
{
	struct wal_seg *s = wal_seg_by_seq(w, seq);
	struct wal_loc *l;

	MOOR_ASSERT(s && count > 0 && first <= w->last_index + 1);
	MOOR_ASSERT(w->nlocs < w->loccap);
	locs_truncate(w, first);
	MOOR_ASSERT(!w->nlocs ||
	            w->locs[w->nlocs - 1].first_index + w->locs[w->nlocs - 1].count == first);
	l = &w->locs[w->nlocs++];
	l->first_index = first;
	l->count = count;
	l->seq = seq;
	l->offset = offset;
	l->len = len;
	w->last_index = first + count - 1;
	if (w->last_index > s->max_index)
		s->max_index = w->last_index;
}

void wal_state_snapshot(struct wal *w, const struct wal_snapshot *s)
{
	if (s->index > w->last_index) {
		/* Every entry is covered by the snapshot; the next is index+1. */
		w->nlocs = 0;
		w->last_index = s->index;
	}
	w->snap = *s;
	w->has_snap = true;
}

void wal_state_drop_segs_before(struct wal *w, uint64_t seq)
{
	size_t k = 0, i = 0;

	while (k < w->nsegs && w->segs[k].seq < seq)
		k++;
	memmove(w->segs, w->segs + k, (w->nsegs - k) * sizeof *w->segs);
	w->nsegs -= k;
	while (i < w->nlocs && w->locs[i].seq < seq)
		i++;
	memmove(w->locs, w->locs + i, (w->nlocs - i) * sizeof *w->locs);
	w->nlocs -= i;
}

int wal_segs_reserve(struct wal *w)
{
	if (w->nsegs == w->segcap) {
		size_t cap = w->segcap ? w->segcap * 2 : 8;
		struct wal_seg *p = moor_realloc(w->alloc, w->segs, cap * sizeof *p);
		if (!p)
			return MOOR_ENOMEM;
		w->segs = p;
		w->segcap = cap;
	}
	return 0;
}

int wal_segs_push(struct wal *w, const struct wal_seg *s)
{
	int rc = wal_segs_reserve(w);

	if (rc != 0)
		return rc;
	MOOR_ASSERT(!w->nsegs || w->segs[w->nsegs - 1].seq + 1 == s->seq);
	w->segs[w->nsegs++] = *s;
	return 0;
}

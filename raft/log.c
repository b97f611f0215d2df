/*
 * The raft log: what the caller's storage holds (persisted) plus an unstable
 * tail the core owns until the caller persists it — entries from `offset` on
 * and at most one snapshot received from a leader. The unstable tail wins
 * where the two overlap: a follower may have replaced a suffix of the stored
 * log that the caller has not yet truncated on disk.
 *
 * Also here: the commit index, the applied index, and the two searches the
 * replication protocol needs (the first conflicting entry of an append, and
 * the fast-backtracking search by term).
 */
#include "raft/raft_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <string.h>

#define RAFT_MAX_SLICE_ENTRIES 4096u /* entries copied out per slice */

int raft_log_init(struct raft_log *l, const struct raft_storage *st, const struct moor_alloc *a)
{
	uint64_t first, last;
	int rc;

	memset(l, 0, sizeof *l);
	l->st = *st;
	l->alloc = a;
	if ((rc = st->first_index(st->ctx, &first)) || (rc = st->last_index(st->ctx, &last)))
		return rc;
	l->offset = last + 1;
	l->committed = first - 1;
	l->applied = first - 1;
	return 0;
}

/*
 * Entry data lives in blocks: one allocation per append holds the data of
 * every entry in it, with a count of the entries still using it. An append
 * of 64 entries costs one allocation, not 64; entries leave the unstable
 * tail in order (persisted) or from the back (truncated), and the block goes
 * when its last entry does.
 */
struct raft_block {
	size_t refs;
	unsigned char data[];
};

static void log_unref(struct raft_log *l, size_t i)
{
	struct raft_block *b = l->blks[i];

	if (b && --b->refs == 0)
		moor_free(l->alloc, b);
	l->blks[i] = NULL;
	l->ents[i].data = NULL;
}

static void log_drop_ents(struct raft_log *l, size_t from)
{
	for (size_t i = from; i < l->n_ents; i++)
		log_unref(l, i);
	l->n_ents = from;
}

void raft_log_free(struct raft_log *l)
{
	log_drop_ents(l, 0);
	moor_free(l->alloc, l->ents);
	moor_free(l->alloc, l->blks);
	moor_free(l->alloc, l->scratch);
	if (l->has_snap)
		moor_free(l->alloc, l->snap.data);
	memset(l, 0, sizeof *l);
}

uint64_t raft_log_first(struct raft *r)
{
	struct raft_log *l = &r->log;
	uint64_t i = 0;
	int rc;

	if (l->has_snap)
		return l->snap.meta.index + 1;
	if ((rc = l->st.first_index(l->st.ctx, &i)))
		raft_fail(r, rc);
	return i;
}

uint64_t raft_log_last(struct raft *r)
{
	struct raft_log *l = &r->log;
	uint64_t i = 0;
	int rc;

	if (l->n_ents)
		return l->offset + l->n_ents - 1;
	if (l->has_snap)
		return l->snap.meta.index;
	if ((rc = l->st.last_index(l->st.ctx, &i)))
		raft_fail(r, rc);
	return i;
}

int raft_log_term(struct raft *r, uint64_t i, uint64_t *t)
{
	struct raft_log *l = &r->log;
	int rc;

	*t = 0;
	if (i + 1 < raft_log_first(r))
		return MOOR_ECOMPACTEDLOG;
	if (i > raft_log_last(r))
		return MOOR_EUNAVAILLOG;
	if (l->n_ents && i >= l->offset) {
		*t = l->ents[i - l->offset].term;
		return 0;
	}
	if (l->has_snap) {
		if (i == l->snap.meta.index) {
			*t = l->snap.meta.term;
			return 0;
		}
		return MOOR_ECOMPACTEDLOG;
	}
	rc = l->st.term(l->st.ctx, i, t);
	if (rc && rc != MOOR_ECOMPACTEDLOG && rc != MOOR_EUNAVAILLOG)
		raft_fail(r, rc);
	return rc;
}

uint64_t raft_log_term0(struct raft *r, uint64_t i)
{
	uint64_t t;

	return raft_log_term(r, i, &t) ? 0 : t;
}

uint64_t raft_log_last_term(struct raft *r)
{
	return raft_log_term0(r, raft_log_last(r));
}

bool raft_log_match_term(struct raft *r, uint64_t i, uint64_t t)
{
	uint64_t have;

	return raft_log_term(r, i, &have) == 0 && have == t;
}

/* Raft §5.4.1: a candidate's log is at least as up to date as ours. */
bool raft_log_up_to_date(struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t lt = raft_log_last_term(r);

	return term > lt || (term == lt && index >= raft_log_last(r));
}

static int log_reserve(struct raft_log *l, size_t n)
{
	if (l->cap_ents >= n)
		return 0;
	size_t cap = l->cap_ents ? l->cap_ents * 2 : 64;
	while (cap < n)
		cap *= 2;
	struct raft_entry *e = moor_realloc(l->alloc, l->ents, cap * sizeof *e);
	if (!e)
		return MOOR_ENOMEM;
	l->ents = e;
	struct raft_block **b = moor_realloc(l->alloc, l->blks, cap * sizeof *b);
	if (!b)
		return MOOR_ENOMEM; /* ents grew, harmless: cap_ents is unchanged */
	l->blks = b;
	l->cap_ents = cap;
	return 0;
}

int raft_log_append(struct raft *r, const struct raft_entry *ents, size_t n)
{
	struct raft_log *l = &r->log;
	size_t keep;
	uint64_t after;

	if (r->err)
		return r->err; /* a failed storage read left the indexes unknown */
	if (!n)
		return 0;
	after = ents[0].index;
	MOOR_ASSERT(after > l->committed);
	if (after >= l->offset + l->n_ents) {
		MOOR_ASSERT(after == l->offset + l->n_ents);
		keep = l->n_ents;
	} else if (after <= l->offset) {
		keep = 0;
	} else {
		keep = (size_t)(after - l->offset);
	}
	/* Copy the data first, so that a failure leaves the log as it was. */
	size_t base = l->n_ents > keep ? l->n_ents : keep, total = 0, confs = 0;
	struct raft_block *blk = NULL;

	if (log_reserve(l, base + n))
		return MOOR_ENOMEM;
	for (size_t i = 0; i < n; i++)
		confs += ents[i].type == RAFT_ENTRY_CONF_CHANGE;
	if (confs && raft_conf_reserve(r, confs))
		return MOOR_ENOMEM;
	for (size_t i = 0; i < n; i++)
		total += ents[i].len;
	if (total) {
		blk = moor_malloc(l->alloc, sizeof *blk + total);
		if (!blk)
			return MOOR_ENOMEM;
		blk->refs = 0;
	}
	for (size_t i = 0, at = 0; i < n; i++) {
		struct raft_entry *d = &l->ents[base + i];

		*d = ents[i];
		d->data = NULL;
		l->blks[base + i] = NULL;
		if (ents[i].len) {
			d->data = blk->data + at;
			memcpy(d->data, ents[i].data, ents[i].len);
			at += ents[i].len;
			l->blks[base + i] = blk;
			blk->refs++;
		}
	}
	for (size_t i = keep; i < l->n_ents; i++)
		log_unref(l, i);
	if (base != keep) {
		memmove(&l->ents[keep], &l->ents[base], n * sizeof *l->ents);
		memmove(&l->blks[keep], &l->blks[base], n * sizeof *l->blks);
	}
	if (keep == 0)
		l->offset = after;
	l->n_ents = keep + n;
	/* A configuration takes effect when appended, and is undone when
	 * truncated (membership.c). */
	int rc = raft_conf_on_truncate(r, after);
	if (!rc && confs)
		rc = raft_conf_on_append(r, l->ents + keep, n);
	if (rc)
		raft_fail(r, rc);
	return 0;
}

static uint64_t log_find_conflict(struct raft *r, const struct raft_entry *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!raft_log_match_term(r, ents[i].index, ents[i].term))
			return ents[i].index;
	return 0;
}

int raft_log_maybe_append(struct raft *r, uint64_t index, uint64_t log_term, uint64_t commit,
                          const struct raft_entry *ents, size_t n, uint64_t *last_new)
{
	uint64_t ci;
	int rc;

	if (!raft_log_match_term(r, index, log_term))
		return 1;
	*last_new = index + n;
	ci = log_find_conflict(r, ents, n);
	if (ci) {
		/* Log matching: a committed entry never conflicts. If one does,
		 * the message is wrong, not our log: refuse it. */
		if (ci <= r->log.committed) {
			raft_logf(r, MOOR_LOG_ERROR,
			          "append conflicts with committed entry index=%llu commit=%llu",
			          (unsigned long long)ci, (unsigned long long)r->log.committed);
			return MOOR_EPROTO;
		}
		if ((rc =
		         raft_log_append(r, ents + (ci - index - 1), n - (size_t)(ci - index - 1))))
			return rc;
	}
	raft_log_commit_to(r, commit < *last_new ? commit : *last_new);
	return 0;
}

void raft_log_commit_to(struct raft *r, uint64_t c)
{
	if (c > r->log.committed) {
		uint64_t last = raft_log_last(r);

		if (r->err)
			return;
		MOOR_ASSERT(c <= last);
		r->log.committed = c;
	}
}

bool raft_log_maybe_commit(struct raft *r, uint64_t index, uint64_t term)
{
	if (index > r->log.committed && raft_log_term0(r, index) == term) {
		raft_log_commit_to(r, index);
		return true;
	}
	return false;
}

static int arena_copy_entry(struct raft *r, struct raft_entry *d, const struct raft_entry *s)
{
	*d = *s;
	d->data = NULL;
	if (s->len) {
		d->data = raft_arena_alloc(&r->arena[r->arena_cur], s->len);
		if (!d->data)
			return MOOR_ENOMEM;
		memcpy(d->data, s->data, s->len);
	}
	return 0;
}

int raft_log_slice(struct raft *r, uint64_t lo, uint64_t hi, size_t max_bytes,
                   struct raft_entry **out, size_t *n)
{
	struct raft_log *l = &r->log;
	struct raft_entry *dst;
	size_t got = 0, bytes = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (lo >= hi)
		return 0;
	uint64_t first = raft_log_first(r), last = raft_log_last(r);

	if (r->err)
		return r->err;
	if (lo < first)
		return MOOR_ECOMPACTEDLOG;
	MOOR_ASSERT(hi <= last + 1);
	if (hi - lo > RAFT_MAX_SLICE_ENTRIES)
		hi = lo + RAFT_MAX_SLICE_ENTRIES;
	dst = raft_arena_alloc(&r->arena[r->arena_cur], (size_t)(hi - lo) * sizeof *dst);
	if (!dst)
		return MOOR_ENOMEM;
	if (lo < l->offset) {
		uint64_t shi = hi < l->offset ? hi : l->offset;
		size_t cnt = (size_t)(shi - lo), sn = 0;

		if (l->cap_scratch < cnt) {
			struct raft_entry *s =
			    moor_realloc(l->alloc, l->scratch, RAFT_MAX_SLICE_ENTRIES * sizeof *s);
			if (!s)
				return MOOR_ENOMEM;
			l->scratch = s;
			l->cap_scratch = RAFT_MAX_SLICE_ENTRIES;
		}
		rc = l->st.entries(l->st.ctx, lo, shi, max_bytes, l->scratch, &sn);
		if (rc) {
			if (rc != MOOR_ECOMPACTEDLOG)
				raft_fail(r, rc);
			return rc;
		}
		MOOR_ASSERT(sn >= 1 && sn <= cnt);
		for (size_t i = 0; i < sn; i++) {
			if (got && bytes + l->scratch[i].len > max_bytes)
				goto done;
			if ((rc = arena_copy_entry(r, &dst[got], &l->scratch[i])))
				return rc;
			MOOR_ASSERT(dst[got].index == lo + got);
			bytes += l->scratch[i].len;
			got++;
		}
		if (sn < cnt)
			goto done;
	}
	for (uint64_t i = lo > l->offset ? lo : l->offset; i < hi; i++) {
		const struct raft_entry *s = &l->ents[i - l->offset];

		if (got && bytes + s->len > max_bytes)
			break;
		if ((rc = arena_copy_entry(r, &dst[got], s)))
			return rc;
		bytes += s->len;
		got++;
	}
done:
	*out = dst;
	*n = got;
	return 0;
}

uint64_t raft_log_find_conflict_by_term(struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t t;

	if (index > raft_log_last(r))
		return index;
	while (index > 0) {
		if (raft_log_term(r, index, &t) || t <= term)
			break;
		index--;
	}
	return index;
}

void raft_log_restore(struct raft *r, const struct raft_snapshot *s, int *err)
{
	struct raft_log *l = &r->log;
	unsigned char *data = NULL;

	*err = 0;
	if (s->len) {
		data = moor_malloc(l->alloc, s->len);
		if (!data) {
			*err = MOOR_ENOMEM;
			return;
		}
		memcpy(data, s->data, s->len);
	}
	if (l->has_snap)
		moor_free(l->alloc, l->snap.data);
	log_drop_ents(l, 0);
	l->has_snap = true;
	l->snap = *s;
	l->snap.data = data;
	l->offset = s->meta.index + 1;
	l->committed = s->meta.index;
}

void raft_log_stable_to(struct raft *r, uint64_t index)
{
	struct raft_log *l = &r->log;

	if (!l->n_ents || index < l->offset)
		return;
	size_t k = (size_t)(index - l->offset + 1);
	if (k > l->n_ents)
		k = l->n_ents;
	for (size_t i = 0; i < k; i++)
		log_unref(l, i);
	memmove(l->ents, l->ents + k, (l->n_ents - k) * sizeof *l->ents);
	memmove(l->blks, l->blks + k, (l->n_ents - k) * sizeof *l->blks);
	l->n_ents -= k;
	l->offset += k;
}

void raft_log_stable_snap(struct raft *r)
{
	struct raft_log *l = &r->log;

	if (!l->has_snap)
		return;
	moor_free(l->alloc, l->snap.data);
	l->snap.data = NULL;
	l->has_snap = false;
}

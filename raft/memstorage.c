/*
 * The in-memory storage: the caller's "disk" in tests and in the simulator,
 * where a crash keeps exactly what was written here. ents[0] is a dummy entry
 * holding the snapshot's index and term, so that the term of the snapshot
 * index is always known (the log-matching check of the first append after a
 * snapshot needs it).
 */
#include "raft/raft.h"

#include "common/assert.h"
#include "common/error.h"

#include <string.h>

struct raft_memstorage {
	const struct moor_alloc *alloc;
	struct raft_hard_state hs;
	struct raft_snapshot snap; /* data owned */
	struct raft_entry *ents;   /* ents[0]: dummy at the snapshot index */
	size_t n;
	size_t cap;
};

int raft_memstorage_create(const struct moor_alloc *alloc, struct raft_memstorage **out)
{
	struct raft_memstorage *ms = moor_calloc(alloc, 1, sizeof *ms);

	*out = NULL;
	if (!ms)
		return MOOR_ENOMEM;
	ms->alloc = alloc;
	ms->cap = 16;
	ms->ents = moor_calloc(alloc, ms->cap, sizeof *ms->ents);
	if (!ms->ents) {
		moor_free(alloc, ms);
		return MOOR_ENOMEM;
	}
	ms->n = 1;
	*out = ms;
	return 0;
}

static void ms_free_from(struct raft_memstorage *ms, size_t from)
{
	for (size_t i = from; i < ms->n; i++)
		moor_free(ms->alloc, ms->ents[i].data);
	ms->n = from;
}

void raft_memstorage_destroy(struct raft_memstorage *ms)
{
	if (!ms)
		return;
	ms_free_from(ms, 1);
	moor_free(ms->alloc, ms->ents);
	moor_free(ms->alloc, ms->snap.data);
	moor_free(ms->alloc, ms);
}

static uint64_t ms_offset(const struct raft_memstorage *ms)
{
	return ms->ents[0].index;
}

static uint64_t ms_last(const struct raft_memstorage *ms)
{
	return ms->ents[0].index + ms->n - 1;
}

static int ms_first_index(void *ctx, uint64_t *index)
{
	*index = ms_offset(ctx) + 1;
	return 0;
}

static int ms_last_index(void *ctx, uint64_t *index)
{
	*index = ms_last(ctx);
	return 0;
}

static int ms_term(void *ctx, uint64_t index, uint64_t *term)
{
	struct raft_memstorage *ms = ctx;

	*term = 0;
	if (index < ms_offset(ms))
		return MOOR_ECOMPACTEDLOG;
	if (index > ms_last(ms))
		return MOOR_EUNAVAILLOG;
	*term = ms->ents[index - ms_offset(ms)].term;
	return 0;
}

static int ms_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, struct raft_entry *out,
                      size_t *n)
{
	struct raft_memstorage *ms = ctx;
	size_t bytes = 0, k = 0;

	*n = 0;
	if (lo <= ms_offset(ms))
		return MOOR_ECOMPACTEDLOG;
	MOOR_ASSERT(hi <= ms_last(ms) + 1);
	for (uint64_t i = lo; i < hi; i++) {
		const struct raft_entry *e = &ms->ents[i - ms_offset(ms)];

		if (k && bytes + e->len > max_bytes)
			break;
		out[k++] = *e;
		bytes += e->len;
	}
	*n = k;
	return 0;
}

static int ms_snapshot(void *ctx, struct raft_snapshot *snap)
{
	struct raft_memstorage *ms = ctx;

	*snap = ms->snap;
	return 0;
}

static int ms_hard_state(void *ctx, struct raft_hard_state *hs)
{
	*hs = ((struct raft_memstorage *)ctx)->hs;
	return 0;
}

struct raft_storage raft_memstorage_storage(struct raft_memstorage *ms)
{
	struct raft_storage st = {
	    .first_index = ms_first_index,
	    .last_index = ms_last_index,
	    .term = ms_term,
	    .entries = ms_entries,
	    .snapshot = ms_snapshot,
	    .hard_state = ms_hard_state,
	    .ctx = ms,
	};
	return st;
}

static int ms_reserve(struct raft_memstorage *ms, size_t n)
{
	if (ms->cap >= n)
		return 0;
	size_t cap = ms->cap * 2;
	while (cap < n)
		cap *= 2;
	struct raft_entry *e = moor_realloc(ms->alloc, ms->ents, cap * sizeof *e);
	if (!e)
		return MOOR_ENOMEM;
	ms->ents = e;
	ms->cap = cap;
	return 0;
}

int raft_memstorage_append(struct raft_memstorage *ms, const struct raft_entry *ents, size_t n)
{
	uint64_t first, keep;

	if (!n)
		return 0;
	first = ents[0].index;
	if (first > ms_last(ms) + 1)
		return MOOR_EINVAL;
	/* Entries already compacted into the snapshot are skipped. */
	while (n && ents[0].index <= ms_offset(ms)) {
		ents++;
		n--;
	}
	if (!n)
		return 0;
	first = ents[0].index;
	keep = first - ms_offset(ms);
	if (ms_reserve(ms, (size_t)keep + n))
		return MOOR_ENOMEM;
	/* copy first, so that a failure leaves the log as it was */
	unsigned char *stack_bufs[64];
	unsigned char **bufs = stack_bufs;
	if (n > 64 && !(bufs = moor_calloc(ms->alloc, n, sizeof *bufs)))
		return MOOR_ENOMEM;
	memset(bufs, 0, (n > 64 ? n : 64) * sizeof *bufs);
	for (size_t i = 0; i < n; i++) {
		if (!ents[i].len)
			continue;
		bufs[i] = moor_malloc(ms->alloc, ents[i].len);
		if (!bufs[i]) {
			for (size_t j = 0; j < i; j++)
				moor_free(ms->alloc, bufs[j]);
			if (bufs != stack_bufs)
				moor_free(ms->alloc, bufs);
			return MOOR_ENOMEM;
		}
		memcpy(bufs[i], ents[i].data, ents[i].len);
	}
	ms_free_from(ms, (size_t)keep < ms->n ? (size_t)keep : ms->n);
	for (size_t i = 0; i < n; i++) {
		ms->ents[keep + i] = ents[i];
		ms->ents[keep + i].data = bufs[i];
	}
	ms->n = (size_t)keep + n;
	if (bufs != stack_bufs)
		moor_free(ms->alloc, bufs);
	return 0;
}

void raft_memstorage_set_hard_state(struct raft_memstorage *ms, const struct raft_hard_state *hs)
{
	ms->hs = *hs;
}

static int ms_set_snap(struct raft_memstorage *ms, const struct raft_snapshot_meta *meta,
                       const void *data, size_t len)
{
	unsigned char *d = NULL;

	if (len) {
		d = moor_malloc(ms->alloc, len);
		if (!d)
			return MOOR_ENOMEM;
		memcpy(d, data, len);
	}
	moor_free(ms->alloc, ms->snap.data);
	ms->snap.meta = *meta;
	ms->snap.data = d;
	ms->snap.len = len;
	return 0;
}

int raft_memstorage_apply_snapshot(struct raft_memstorage *ms, const struct raft_snapshot *snap)
{
	int rc;

	if (snap->meta.index <= ms->snap.meta.index)
		return MOOR_ESNAPOUTOFDATE;
	if ((rc = ms_set_snap(ms, &snap->meta, snap->data, snap->len)))
		return rc;
	ms_free_from(ms, 1);
	ms->ents[0].index = snap->meta.index;
	ms->ents[0].term = snap->meta.term;
	if (ms->hs.commit < snap->meta.index)
		ms->hs.commit = snap->meta.index;
	return 0;
}

int raft_memstorage_bootstrap(struct raft_memstorage *ms, const uint64_t *voters, size_t n)
{
	struct raft_snapshot s = {0};

	if (ms_last(ms) != 0 || n == 0 || n > RAFT_MAX_MEMBERS)
		return MOOR_EINVAL;
	s.meta.index = 1;
	s.meta.term = 1;
	s.meta.conf.n_voters = (uint32_t)n;
	memcpy(s.meta.conf.voters, voters, n * sizeof *voters);
	/* term 1 as well, so that the first leader's term (2) is above every
	 * entry it holds and its commit rule never meets the bootstrap entry */
	ms->hs.term = 1;
	return raft_memstorage_apply_snapshot(ms, &s);
}

int raft_memstorage_compact(struct raft_memstorage *ms, uint64_t index,
                            const struct raft_conf_state *conf, const void *data, size_t len)
{
	struct raft_snapshot_meta meta;
	size_t k;
	int rc;

	if (index <= ms_offset(ms))
		return MOOR_ESNAPOUTOFDATE;
	if (index > ms_last(ms))
		return MOOR_EUNAVAILLOG;
	meta.index = index;
	meta.term = ms->ents[index - ms_offset(ms)].term;
	meta.conf = *conf;
	if ((rc = ms_set_snap(ms, &meta, data, len)))
		return rc;
	k = (size_t)(index - ms_offset(ms));
	for (size_t i = 1; i <= k; i++)
		moor_free(ms->alloc, ms->ents[i].data);
	ms->ents[0].index = index;
	ms->ents[0].term = meta.term;
	ms->ents[0].data = NULL;
	ms->ents[0].len = 0;
	memmove(ms->ents + 1, ms->ents + k + 1, (ms->n - k - 1) * sizeof *ms->ents);
	ms->n -= k;
	return 0;
}

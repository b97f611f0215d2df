/*
 * The in-memory store model behind the watch tests and benchmark: a log of
 * compact records, events materialized per batch (see memstore.h).
 */
#include "tests/watch/memstore.h"

#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "memstore: out of memory\n");
		abort();
	}
	return q;
}

void memstore_init(struct memstore *ms)
{
	memset(ms, 0, sizeof *ms);
	ms->rev = 1; /* a new store starts at revision 1, as etcd's */
}

void memstore_free(struct memstore *ms)
{
	for (size_t i = 0; i < ms->nkeys; i++)
		free(ms->keys[i]);
	free(ms->keys);
	free(ms->key_lens);
	free(ms->key_last);
	free(ms->khash);
	free(ms->recs);
	free(ms->vals);
	memset(ms, 0, sizeof *ms);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void khash_rebuild(struct memstore *ms, size_t cap)
{
	free(ms->khash);
	ms->khash = xrealloc(NULL, cap * sizeof *ms->khash);
	memset(ms->khash, 0, cap * sizeof *ms->khash);
	ms->khash_cap = cap;
	for (size_t id = 0; id < ms->nkeys; id++) {
		size_t i = hash_bytes(ms->keys[id], ms->key_lens[id]) & (cap - 1);
		while (ms->khash[i])
			i = (i + 1) & (cap - 1);
		ms->khash[i] = (uint32_t)id + 1;
	}
}

static uint32_t key_id(struct memstore *ms, const void *key, size_t len)
{
	size_t i;

	if (ms->khash_cap == 0 || (ms->nkeys + 1) * 2 > ms->khash_cap)
		khash_rebuild(ms, ms->khash_cap ? ms->khash_cap * 2 : 64);
	i = hash_bytes(key, len) & (ms->khash_cap - 1);
	for (; ms->khash[i]; i = (i + 1) & (ms->khash_cap - 1)) {
		uint32_t id = ms->khash[i] - 1;
		if (ms->key_lens[id] == len && (len == 0 || !memcmp(ms->keys[id], key, len)))
			return id;
	}
	if (ms->nkeys == ms->keys_cap) {
		ms->keys_cap = ms->keys_cap ? ms->keys_cap * 2 : 16;
		ms->keys = xrealloc(ms->keys, ms->keys_cap * sizeof *ms->keys);
		ms->key_lens = xrealloc(ms->key_lens, ms->keys_cap * sizeof *ms->key_lens);
		ms->key_last = xrealloc(ms->key_last, ms->keys_cap * sizeof *ms->key_last);
	}
	ms->keys[ms->nkeys] = xrealloc(NULL, len);
	if (len)
		memcpy(ms->keys[ms->nkeys], key, len);
	ms->key_lens[ms->nkeys] = (uint32_t)len;
	ms->key_last[ms->nkeys] = -1;
	ms->khash[i] = (uint32_t)ms->nkeys + 1;
	return (uint32_t)ms->nkeys++;
}

static bool key_live(const struct memstore *ms, uint32_t id)
{
	int64_t last = ms->key_last[id];

	return last >= 0 && ms->recs[last].type == MVCCPB__EVENT__EVENT_TYPE__PUT;
}

int64_t memstore_txn(struct memstore *ms, const struct memstore_op *ops, size_t n)
{
	int64_t rev = ms->rev + 1;
	size_t before = ms->n;

	for (size_t i = 0; i < n; i++) {
		uint32_t id = key_id(ms, ops[i].key, ops[i].key_len);
		struct memstore_rec *r;
		int64_t last = ms->key_last[id];
		bool live = key_live(ms, id);

		if (ops[i].del && !live)
			continue;
		if (ms->n == ms->cap) {
			ms->cap = ms->cap ? ms->cap * 2 : 1024;
			ms->recs = xrealloc(ms->recs, ms->cap * sizeof *ms->recs);
		}
		r = &ms->recs[ms->n];
		memset(r, 0, sizeof *r);
		r->rev = rev;
		r->key_id = id;
		r->prev = last;
		if (ops[i].del) {
			r->type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
		} else {
			r->type = MVCCPB__EVENT__EVENT_TYPE__PUT;
			r->create_rev = live ? ms->recs[last].create_rev : rev;
			r->version = live ? ms->recs[last].version + 1 : 1;
			if (ms->vals_len + ops[i].val_len > ms->vals_cap) {
				while (ms->vals_len + ops[i].val_len > ms->vals_cap)
					ms->vals_cap = ms->vals_cap ? ms->vals_cap * 2 : 4096;
				ms->vals = xrealloc(ms->vals, ms->vals_cap);
			}
			if (ops[i].val_len)
				memcpy(ms->vals + ms->vals_len, ops[i].val, ops[i].val_len);
			r->val_off = ms->vals_len;
			r->val_len = (uint32_t)ops[i].val_len;
			ms->vals_len += ops[i].val_len;
		}
		ms->key_last[id] = (int64_t)ms->n;
		ms->n++;
	}
	if (ms->n == before)
		return 0;
	ms->rev = rev;
	return rev;
}

int64_t memstore_put(struct memstore *ms, const char *key, const char *val)
{
	struct memstore_op op = {false, key, strlen(key), val, strlen(val)};

	return memstore_txn(ms, &op, 1);
}

int64_t memstore_del(struct memstore *ms, const char *key)
{
	struct memstore_op op = {true, key, strlen(key), NULL, 0};

	return memstore_txn(ms, &op, 1);
}

void memstore_compact(struct memstore *ms, int64_t rev)
{
	if (rev > ms->compact_rev)
		ms->compact_rev = rev;
}

/* First record with revision >= rev. */
static size_t rec_lower_bound(const struct memstore *ms, int64_t rev)
{
	size_t lo = 0, hi = ms->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ms->recs[mid].rev < rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct mbatch {
	struct watch_batch b;
	struct memstore *ms;
};

static void mbatch_destroy(struct watch_batch *b)
{
	struct mbatch *mb = (struct mbatch *)b;

	mb->ms->live_batches--;
	free(mb);
}

/* The record's kv (no prev) into kv, its bytes copied to *bytes. */
static void fill_kv(const struct memstore *ms, const struct memstore_rec *r, Mvccpb__KeyValue *kv,
                    uint8_t **bytes)
{
	uint32_t klen = ms->key_lens[r->key_id];

	mvccpb__key_value__init(kv);
	kv->key.data = *bytes;
	kv->key.len = klen;
	if (klen)
		memcpy(*bytes, ms->keys[r->key_id], klen);
	*bytes += klen;
	kv->mod_revision = r->rev;
	if (r->type == MVCCPB__EVENT__EVENT_TYPE__PUT) {
		kv->create_revision = r->create_rev;
		kv->version = r->version;
		kv->value.data = *bytes;
		kv->value.len = r->val_len;
		if (r->val_len)
			memcpy(*bytes, ms->vals + r->val_off, r->val_len);
		*bytes += r->val_len;
	}
}

static size_t rec_bytes(const struct memstore *ms, const struct memstore_rec *r)
{
	return ms->key_lens[r->key_id] +
	       (r->type == MVCCPB__EVENT__EVENT_TYPE__PUT ? r->val_len : 0);
}

/* The previous value of r's key, if it had one and (when min_rev > 0) it
 * is readable at r->rev - 1. */
static const struct memstore_rec *prev_of(const struct memstore *ms, const struct memstore_rec *r,
                                          int64_t min_rev)
{
	const struct memstore_rec *p;

	if (r->prev < 0)
		return NULL;
	p = &ms->recs[r->prev];
	if (p->type != MVCCPB__EVENT__EVENT_TYPE__PUT)
		return NULL;
	if (min_rev > 0 && r->rev - 1 < min_rev)
		return NULL;
	return p;
}

/* Events of records idx[0..n). prev_min: -1 no prev_kv, 0 always, else the
 * compact revision below which it is omitted. */
static struct watch_batch *make_batch(struct memstore *ms, const size_t *idx, size_t n,
                                      int64_t prev_min)
{
	size_t bytes = 0;
	struct mbatch *mb;
	Mvccpb__Event **evp, *ev;
	Mvccpb__KeyValue *kv;
	uint8_t *data;

	if (n == 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct memstore_rec *r = &ms->recs[idx[i]], *p;
		bytes += rec_bytes(ms, r);
		if (prev_min >= 0 && (p = prev_of(ms, r, prev_min)) != NULL)
			bytes += rec_bytes(ms, p);
	}
	mb = xrealloc(NULL, sizeof *mb + n * (sizeof *evp + sizeof *ev + 2 * sizeof *kv) + bytes);
	evp = (Mvccpb__Event **)(mb + 1);
	ev = (Mvccpb__Event *)(evp + n);
	kv = (Mvccpb__KeyValue *)(ev + n);
	data = (uint8_t *)(kv + 2 * n);
	for (size_t i = 0; i < n; i++) {
		const struct memstore_rec *r = &ms->recs[idx[i]], *p;
		mvccpb__event__init(&ev[i]);
		ev[i].type = (Mvccpb__Event__EventType)r->type;
		fill_kv(ms, r, &kv[2 * i], &data);
		ev[i].kv = &kv[2 * i];
		if (prev_min >= 0 && (p = prev_of(ms, r, prev_min)) != NULL) {
			fill_kv(ms, p, &kv[2 * i + 1], &data);
			ev[i].prev_kv = &kv[2 * i + 1];
		}
		evp[i] = &ev[i];
	}
	mb->b.events = evp;
	mb->b.n_events = n;
	mb->b.destroy = mbatch_destroy;
	mb->b.data = NULL;
	mb->b.refs = 0;
	mb->ms = ms;
	ms->live_batches++;
	return &mb->b;
}

struct watch_batch *memstore_batch(struct memstore *ms, int64_t from, int64_t to)
{
	size_t lo = rec_lower_bound(ms, from), hi = rec_lower_bound(ms, to + 1);
	size_t *idx = xrealloc(NULL, (hi - lo) * sizeof *idx);
	struct watch_batch *b;

	for (size_t i = lo; i < hi; i++)
		idx[i - lo] = i;
	b = make_batch(ms, idx, hi - lo, 0);
	free(idx);
	return b;
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t m = alen < blen ? alen : blen;
	int c = m ? memcmp(a, b, m) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static bool in_query(const struct memstore *ms, const struct watch_history_query *q, uint32_t id)
{
	const uint8_t *k = ms->keys[id];
	size_t kl = ms->key_lens[id];
	int c = key_cmp(k, kl, q->key, q->key_len);

	if (q->range_end_len == 0)
		return c == 0;
	if (c < 0)
		return false;
	if (q->range_end_len == 1 && q->range_end[0] == 0)
		return true;
	return key_cmp(k, kl, q->range_end, q->range_end_len) < 0;
}

static int reader_read(void *ctx, const struct watch_history_query *q,
                       struct watch_history_result *res)
{
	struct memstore *ms = ctx;
	size_t i, n = 0, cap = 0, *idx = NULL;
	int64_t last_rev = 0;

	ms->reads++;
	if (ms->fail_next_reads > 0) {
		ms->fail_next_reads--;
		return MOOR_EUNAVAILABLE;
	}
	if (q->from_rev < ms->compact_rev) {
		res->compact_rev = ms->compact_rev;
		return MOOR_ECOMPACTED;
	}
	if (q->to_rev > ms->rev || q->from_rev > q->to_rev ||
	    (ms->applied_rev && q->to_rev > *ms->applied_rev)) {
		fprintf(stderr, "memstore: read [%lld, %lld] breaks the contract\n",
		        (long long)q->from_rev, (long long)q->to_rev);
		abort();
	}
	res->next_rev = q->to_rev + 1;
	for (i = rec_lower_bound(ms, q->from_rev); i < ms->n && ms->recs[i].rev <= q->to_rev; i++) {
		const struct memstore_rec *r = &ms->recs[i];
		if (r->rev != last_rev && n >= q->max_events) {
			res->next_rev = r->rev;
			break;
		}
		if (ms->filter_keys && !in_query(ms, q, r->key_id))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			idx = xrealloc(idx, cap * sizeof *idx);
		}
		idx[n++] = i;
		last_rev = r->rev;
	}
	res->batch =
	    make_batch(ms, idx, n, q->prev_kv ? (ms->compact_rev ? ms->compact_rev : 1) : -1);
	free(idx);
	return 0;
}

struct watch_store memstore_reader(struct memstore *ms)
{
	struct watch_store st = {reader_read, ms};

	return st;
}

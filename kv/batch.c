/*
 * The apply batch's life cycle: begin, one request at a time (save points so
 * a failed request leaves nothing behind), and the commit that joins the
 * indexed batch (what the batch reads back) with the per-table plain batches
 * into one RocksDB write carrying the applied index, publishes the new
 * revision to readers and hands the events to the callback.
 */
#include "kv/kv_int.h"

#include "common/assert.h"
#include "common/buf.h"
#include "common/error.h"

#include <string.h>

/* ---- batch life cycle --------------------------------------------------- */

int kv_batch_begin(struct kv *kv)
{
	if (kv->in_batch)
		return kv_fail(kv, MOOR_EBUSY, "kv: a batch is already open");
	if (!kv->ev_arena && !kv_arena_new_root(kv->alloc, 1, &kv->ev_arena))
		return MOOR_ENOMEM;
	kv->in_batch = true;
	kv->owner = pthread_self();
	kv->b_rev = kv->rev;
	kv->b_compact = kv->compact_rev;
	kv->b_index = 0;
	kv->b_dirty = false;
	kv->ev.n = 0;
	kv->ev.cap = 0;
	kv->ev.v = NULL;
	rocksdb_writebatch_wi_clear(kv->wb);
	for (int i = 0; i < 3; i++)
		rocksdb_writebatch_clear(kv->pb[i]);
	kv->pb_dirty = false;
	return 0;
}

static void batch_reset(struct kv *kv)
{
	rocksdb_writebatch_wi_clear(kv->wb);
	for (int i = 0; i < 3; i++)
		rocksdb_writebatch_clear(kv->pb[i]);
	kv->pb_dirty = false;
	if (kv->ev_arena)
		kv_arena_destroy(kv->ev_arena);
	kv->ev_arena = NULL;
	kv->ev.v = NULL;
	kv->ev.n = kv->ev.cap = 0;
	kv->in_batch = false;
}

void kv_batch_abort(struct kv *kv)
{
	if (kv->in_batch || kv->ev_arena)
		batch_reset(kv);
}

static int put_meta_u64(struct kv *kv, const char *name, const uint64_t *v, size_t n)
{
	unsigned char b[16];
	struct kv_kbuf k;

	MOOR_ASSERT(n <= 2);
	kv_kbuf_init(&k);
	if (kv_key_meta(kv->alloc, &k, name) != 0)
		return MOOR_ENOMEM;
	for (size_t i = 0; i < n; i++)
		moor_put_be64(b + 8 * i, v[i]);
	rocksdb_writebatch_wi_put(kv->wb, (char *)k.p, k.len, (char *)b, 8 * n);
	kv_kbuf_free(kv->alloc, &k);
	return 0;
}

static void expose_put(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
	rocksdb_writebatch_wi_put(ctx, k, kl, v, vl);
}

static void expose_del(void *ctx, const char *k, size_t kl)
{
	rocksdb_writebatch_wi_delete(ctx, k, kl);
}

void kv_batch_expose(struct kv *kv)
{
	/* Copies, not moves: the plain batch keeps its save points, and the same
	 * put twice in the final batch is harmless. Rare (a read inside a txn at
	 * a revision this batch created), so its cost does not matter. */
	for (int i = 0; kv->pb_dirty && i < 3; i++)
		rocksdb_writebatch_iterate(kv->pb[i], kv->wb, expose_put, expose_del);
}

/*
 * One RocksDB write for both batches: the plain batch's records appended to
 * the indexed one's. This is WriteBatch's documented serialized form (the
 * one its WAL records use): 8-byte sequence, 4-byte little-endian count,
 * then the records; appending records and adding the counts is what
 * RocksDB's own WriteBatchInternal::Append does.
 */
static int write_both(struct kv *kv, char **err)
{
	size_t n[4], total;
	const char *r[4];
	uint32_t count = 0;
	rocksdb_writebatch_t *all;
	char *buf, *p;

	r[0] = rocksdb_writebatch_wi_data(kv->wb, &n[0]);
	if (!kv->pb_dirty) {
		rocksdb_write_writebatch_wi(kv->db, kv->wo, kv->wb, err);
		return 0;
	}
	total = n[0];
	MOOR_ASSERT(n[0] >= 12);
	for (int i = 0; i < 3; i++) {
		r[i + 1] = rocksdb_writebatch_data(kv->pb[i], &n[i + 1]);
		MOOR_ASSERT(n[i + 1] >= 12);
		total += n[i + 1] - 12;
	}
	buf = moor_malloc(kv->alloc, total);
	if (!buf)
		return MOOR_ENOMEM;
	memcpy(buf, r[0], n[0]);
	p = buf + n[0];
	for (int i = 0; i < 4; i++) {
		count += moor_get_le32((const unsigned char *)r[i] + 8);
		if (i > 0) {
			memcpy(p, r[i] + 12, n[i] - 12);
			p += n[i] - 12;
		}
	}
	moor_put_le32((unsigned char *)buf + 8, count);
	all = rocksdb_writebatch_create_from(buf, total);
	moor_free(kv->alloc, buf);
	rocksdb_write(kv->db, kv->wo, all, err);
	rocksdb_writebatch_destroy(all);
	return 0;
}

int kv_batch_commit(struct kv *kv, uint64_t last_index, uint64_t term)
{
	char *err = NULL;
	uint64_t applied[2] = {last_index, term}, r, c;
	int rc;

	if (!kv->in_batch)
		return kv_fail(kv, MOOR_EINVAL, "kv: commit without a batch");
	if (last_index < kv->b_index) {
		batch_reset(kv);
		return kv_fail(kv, MOOR_EINVAL,
		               "kv: commit at index %llu below the batch's last entry %llu",
		               (unsigned long long)last_index, (unsigned long long)kv->b_index);
	}
	if (last_index <= kv->applied_index) {
		batch_reset(kv); /* every entry was a replay */
		return 0;
	}
	r = (uint64_t)kv->b_rev;
	c = (uint64_t)kv->b_compact;
	rc = put_meta_u64(kv, "applied", applied, 2);
	if (rc == 0)
		rc = put_meta_u64(kv, "rev", &r, 1);
	if (rc == 0)
		rc = put_meta_u64(kv, "compact", &c, 1);
	if (rc) {
		batch_reset(kv);
		return rc;
	}
	/* Readers see the data and the revisions change together: snapshot
	 * takers wait on mu, and single-key readers that skip the snapshot
	 * retry when seq moved or is odd. */
	pthread_mutex_lock(&kv->mu);
	atomic_fetch_add_explicit(&kv->seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	rc = write_both(kv, &err);
	if (rc || err) {
		atomic_fetch_add_explicit(&kv->seq, 1, memory_order_release);
		pthread_mutex_unlock(&kv->mu);
		batch_reset(kv);
		return rc ? rc : kv_rocks_err(kv, err, "kv: commit");
	}
	kv->applied_index = last_index;
	kv->applied_term = term;
	kv->rev = kv->b_rev;
	kv->compact_rev = kv->b_compact;
	atomic_fetch_add_explicit(&kv->seq, 1, memory_order_release);
	pthread_mutex_unlock(&kv->mu);
	if (kv->on_events && kv->ev.n)
		kv->on_events(kv->events_ctx, kv->ev.v, kv->ev.n);
	batch_reset(kv);
	return 0;
}

/* ---- one request ----------------------------------------------------------- */

/* Returns 1 when the entry must be skipped (already applied). */
int kv_req_start(struct kv *kv, uint64_t index, struct req_ctx *q)
{
	MOOR_ASSERT(kv->in_batch);
	MOOR_ASSERT(index > kv->b_index);
	kv->b_index = index;
	if (index <= kv->applied_index)
		return 1;
	memset(q, 0, sizeof *q);
	q->kv = kv;
	kv_view_open_batch(kv, &q->view);
	q->main = kv->b_rev + 1;
	q->ev_n = kv->ev.n;
	rocksdb_writebatch_wi_set_save_point(kv->wb);
	for (int i = 0; i < 3; i++)
		rocksdb_writebatch_set_save_point(kv->pb[i]);
	kv->errmsg[0] = 0;
	return 0;
}

/* Finish: on error roll everything back; on success advance the revision. */
int kv_req_end(struct req_ctx *q, int rc)
{
	struct kv *kv = q->kv;

	if (rc) {
		char *err = NULL;

		rocksdb_writebatch_wi_rollback_to_save_point(kv->wb, &err);
		MOOR_ASSERT(err == NULL);
		for (int i = 0; i < 3; i++) {
			rocksdb_writebatch_rollback_to_save_point(kv->pb[i], &err);
			MOOR_ASSERT(err == NULL);
		}
		kv->ev.n = q->ev_n;
		if (!kv->errmsg[0])
			kv_fail(kv, rc, "kv: %s", moor_strerror(rc));
		return rc;
	}
	if (q->sub > 0)
		kv->b_rev = q->main;
	kv->b_dirty = true;
	return 0;
}

static int ev_push(struct kv *kv, Mvccpb__Event *ev)
{
	if (kv->ev.n == kv->ev.cap) {
		size_t cap = kv->ev.cap ? kv->ev.cap * 2 : 64;
		Mvccpb__Event **v = kv_arena_alloc(kv->ev_arena, cap * sizeof *v);

		if (!v)
			return MOOR_ENOMEM;
		if (kv->ev.n)
			memcpy(v, kv->ev.v, kv->ev.n * sizeof *v);
		kv->ev.v = v;
		kv->ev.cap = cap;
	}
	kv->ev.v[kv->ev.n++] = ev;
	return 0;
}

int kv_add_event(struct kv *kv, const struct kv_rec *rec, const struct kv_rec *prev)
{
	Mvccpb__Event *ev = kv_arena_alloc(kv->ev_arena, sizeof *ev);

	if (!ev)
		return MOOR_ENOMEM;
	mvccpb__event__init(ev);
	ev->type = (rec->flags & KV_REC_TOMB) ? MVCCPB__EVENT__EVENT_TYPE__DELETE
	                                      : MVCCPB__EVENT__EVENT_TYPE__PUT;
	ev->kv = kv_arena_kv(kv->ev_arena, rec, false);
	if (!ev->kv)
		return MOOR_ENOMEM;
	if (prev) {
		ev->prev_kv = kv_arena_kv(kv->ev_arena, prev, false);
		if (!ev->prev_kv)
			return MOOR_ENOMEM;
	}
	return ev_push(kv, ev);
}

int kv_rebase(struct kv *kv, uint64_t index, uint64_t term)
{
	uint64_t applied[2] = {index, term};
	char *err = NULL;
	int rc;

	rc = kv_batch_begin(kv);
	if (rc)
		return rc;
	rc = put_meta_u64(kv, "applied", applied, 2);
	if (rc == 0) {
		pthread_mutex_lock(&kv->mu);
		atomic_fetch_add_explicit(&kv->seq, 1, memory_order_relaxed);
		rc = write_both(kv, &err);
		if (rc == 0 && !err) {
			kv->applied_index = index;
			kv->applied_term = term;
		}
		atomic_fetch_add_explicit(&kv->seq, 1, memory_order_release);
		pthread_mutex_unlock(&kv->mu);
	}
	batch_reset(kv);
	if (rc)
		return rc;
	if (err)
		return kv_rocks_err(kv, err, "kv: rebase");
	return 0;
}

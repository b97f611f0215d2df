/*
 * Physical compaction, one small step at a time.
 *
 * Logical compaction (kv_batch_compact) only moves the compact revision;
 * reads below it fail from then on. The garbage table names every record
 * that becomes removable, keyed by the revision at which it does (the
 * revision that superseded it; for a tombstone its own revision + 1, so the
 * tombstones of exactly the compact revision stay for watchers starting
 * there). A step walks that table up to the compact revision and deletes
 * the history record, its index entry and the garbage entry itself in one
 * RocksDB batch, separate from the apply batch, so writes never wait on it.
 *
 * Garbage entries are created only at revisions above the compact revision
 * of their time (and so with a higher `at` than any entry removed), so the
 * cursor, the last entry removed (kept in memory), only moves forward; after
 * a crash or reopen the next step starts from the beginning of what is left.
 */
#include "kv/kv_int.h"

#include "common/buf.h"
#include "common/error.h"

#include <string.h>

int kv_compact_step(struct kv *kv, size_t max_records, bool *done)
{
	const struct moor_alloc *a = kv->alloc;
	rocksdb_writebatch_t *wb = NULL;
	rocksdb_iterator_t *it = NULL;
	struct kv_kbuf k, last;
	int64_t c;
	size_t n = 0;
	char *err = NULL;
	int rc = 0;

	*done = false;
	pthread_mutex_lock(&kv->mu);
	c = kv->compact_rev;
	pthread_mutex_unlock(&kv->mu);
	if (kv->gc_done_rev >= c) {
		*done = true;
		return 0;
	}
	kv_kbuf_init(&k);
	kv_kbuf_init(&last);
	wb = rocksdb_writebatch_create();
	it = rocksdb_create_iterator(kv->db, kv->ro);
	if (!wb || !it) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	if (kv->gc_cursor.len)
		rocksdb_iter_seek(it, (char *)kv->gc_cursor.p, kv->gc_cursor.len);
	else
		rocksdb_iter_seek(it, "g", 1);
	for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *ik = rocksdb_iter_key(it, &kl), *iv;
		struct kv_rev at, victim;

		if (kl != 33 || ik[0] != KV_P_GARBAGE)
			break;
		at.main = (int64_t)moor_get_be64((const unsigned char *)ik + 1);
		if (at.main > c)
			break;
		if (n == max_records)
			goto save; /* more left */
		victim.main = (int64_t)moor_get_be64((const unsigned char *)ik + 17);
		victim.sub = (int64_t)moor_get_be64((const unsigned char *)ik + 25);
		iv = rocksdb_iter_value(it, &vl);
		if (vl == 0) {
			rc = kv_fail(kv, MOOR_ECORRUPT, "kv: garbage record without a key");
			goto out;
		}
		rocksdb_writebatch_delete(wb, ik, kl);
		/* The cursor is the last entry removed: garbage created later has a
		 * higher `at` than anything removed, so it always sorts after it. */
		last.len = 0;
		rc = kv_kbuf_add(a, &last, ik, kl);
		if (rc)
			goto out;
		rc = kv_key_hist(a, &k, victim);
		if (rc)
			goto out;
		rocksdb_writebatch_delete(wb, (char *)k.p, k.len);
		rc = kv_key_index(a, &k, iv, vl, victim);
		if (rc)
			goto out;
		rocksdb_writebatch_delete(wb, (char *)k.p, k.len);
		n++;
	}
	rocksdb_iter_get_error(it, &err);
	if (err) {
		rc = kv_rocks_err(kv, err, "kv: compaction scan");
		goto out;
	}
	*done = true;
save:
	if (n) {
		rocksdb_write(kv->db, kv->wo, wb, &err);
		if (err) {
			rc = kv_rocks_err(kv, err, "kv: compaction write");
			goto out;
		}
		kv->gc_cursor.len = 0;
		rc = kv_kbuf_add(a, &kv->gc_cursor, last.p, last.len);
		if (rc)
			goto out;
	}
	if (*done) {
		pthread_mutex_lock(&kv->mu);
		kv->gc_done_rev = c;
		pthread_mutex_unlock(&kv->mu);
		moor_log(kv->log, MOOR_LOG_DEBUG, "kv", "compaction done revision=%lld",
		         (long long)c);
	}
out:
	if (rc)
		*done = false;
	if (it)
		rocksdb_iter_destroy(it);
	if (wb)
		rocksdb_writebatch_destroy(wb);
	kv_kbuf_free(a, &k);
	kv_kbuf_free(a, &last);
	return rc;
}

int kv_defragment(struct kv *kv)
{
	char *err = NULL;
	rocksdb_compactoptions_t *o = rocksdb_compactoptions_create();

	if (!o)
		return MOOR_ENOMEM;
	/* Every level including the bottom one: that is where the deletes of
	 * compacted history finally drop the data they cover. */
	rocksdb_compactoptions_set_bottommost_level_compaction(o, 1 /* force */);
	rocksdb_compact_range_opt(kv->db, o, NULL, 0, NULL, 0);
	rocksdb_compactoptions_destroy(o);
	rocksdb_flush(kv->db, kv->fo, &err);
	if (err)
		return kv_rocks_err(kv, err, "kv: defragment");
	moor_log(kv->log, MOOR_LOG_INFO, "kv", "defragmented path=%s", kv->db_path);
	return 0;
}

/*
 * Snapshots: a RocksDB checkpoint of the committed state for a follower,
 * and the atomic replacement of the whole state by one (the checkpoint is
 * moved in as db-<n+1>, then a new CURRENT_DB is renamed over the old: the
 * rename is the commit point; see docs/kv-layout.md).
 */
#include "kv/kv_int.h"

#include "common/buf.h"
#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Read the applied index of a checkpoint directory (opened read-only). */
static int checkpoint_index(struct kv *kv, const char *dir, uint64_t *index)
{
	rocksdb_options_t *o = rocksdb_options_create();
	char *err = NULL, *val;
	size_t len;
	rocksdb_t *db;
	int rc = 0;

	if (!o)
		return MOOR_ENOMEM;
	db = rocksdb_open_for_read_only(o, dir, 0, &err);
	rocksdb_options_destroy(o);
	if (err) {
		rc = kv_fail(kv, MOOR_ECORRUPT, "kv: %s is not a kv checkpoint: %s", dir, err);
		rocksdb_free(err);
		return rc;
	}
	val = rocksdb_get(db, kv->ro, "mversion", 8, &len, &err);
	if (err || !val || len != 8 || moor_get_be64((unsigned char *)val) != KV_LAYOUT_VERSION)
		rc = kv_fail(kv, MOOR_ECORRUPT, "kv: %s has no kv layout version %d", dir,
		             KV_LAYOUT_VERSION);
	rocksdb_free(val);
	rocksdb_free(err);
	err = NULL;
	val = NULL;
	if (rc == 0) {
		val = rocksdb_get(db, kv->ro, "mapplied", 8, &len, &err);
		if (err || (val && len != 16))
			rc = kv_fail(kv, MOOR_ECORRUPT, "kv: %s has a bad applied index", dir);
		else
			*index = val ? moor_get_be64((unsigned char *)val) : 0;
		rocksdb_free(val);
		rocksdb_free(err);
	}
	rocksdb_close(db);
	return rc;
}

int kv_snapshot_create(struct kv *kv, const char *dir, uint64_t *applied_index)
{
	char *err = NULL;
	rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(kv->db, &err);

	if (err)
		return kv_rocks_err(kv, err, "kv: checkpoint");
	/* log_size_for_flush 0: flush memtables so the copy holds every
	 * committed batch (our WAL is off, so nothing lives in a log). */
	rocksdb_checkpoint_create(cp, dir, 0, &err);
	rocksdb_checkpoint_object_destroy(cp);
	if (err)
		return kv_rocks_err(kv, err, "kv: checkpoint");
	return checkpoint_index(kv, dir, applied_index);
}

int kv_snapshot_restore(struct kv *kv, const char *dir)
{
	unsigned old_gen = kv->db_gen, gen = old_gen + 1;
	char name[32], *target, *old_path;
	uint64_t index;
	int rc;

	if (kv->in_batch)
		return MOOR_EBUSY;
	rc = checkpoint_index(kv, dir, &index);
	if (rc)
		return rc;
	snprintf(name, sizeof name, "db-%u", gen);
	target = kv_path_join(kv->alloc, kv->path, name);
	if (!target)
		return MOOR_ENOMEM;
	kv_rm_tree(target);
	if (rename(dir, target) != 0) {
		rc = kv_fail(kv, -errno, "kv: cannot move %s to %s", dir, target);
		moor_free(kv->alloc, target);
		return rc;
	}
	moor_free(kv->alloc, target);
	rc = kv_write_current(kv, gen); /* the commit point */
	if (rc)
		return rc;
	old_path = kv->db_path;
	kv->db_path = NULL;
	rocksdb_close(kv->db);
	kv->db = NULL;
	kv->db_gen = gen;
	pthread_mutex_lock(&kv->mu);
	rc = kv_db_open(kv, false);
	kv->gc_done_rev = 0;
	pthread_mutex_unlock(&kv->mu);
	if (rc == 0) {
		kv_rm_tree(old_path);
		moor_log(kv->log, MOOR_LOG_INFO, "kv",
		         "restored snapshot index=%llu revision=%lld path=%s",
		         (unsigned long long)kv->applied_index, (long long)kv->rev, kv->db_path);
	}
	moor_free(kv->alloc, old_path);
	return rc;
}

/*
 * Read views: a consistent snapshot of committed state (the revisions read
 * under the state mutex together with the RocksDB snapshot), or the open
 * batch seen through RocksDB's indexed write batch. Every read in kv goes
 * through one.
 */
#include "kv/kv_int.h"

#include "common/error.h"

#include <string.h>

int kv_view_open_committed(struct kv *kv, struct kv_view *v)
{
	memset(v, 0, sizeof *v);
	v->kv = kv;
	v->ro = rocksdb_readoptions_create();
	if (!v->ro)
		return MOOR_ENOMEM;
	pthread_mutex_lock(&kv->mu);
	v->snap = rocksdb_create_snapshot(kv->db);
	v->rev = kv->rev;
	v->compact_rev = kv->compact_rev;
	pthread_mutex_unlock(&kv->mu);
	rocksdb_readoptions_set_snapshot(v->ro, v->snap);
	return 0;
}

void kv_view_open_batch(struct kv *kv, struct kv_view *v)
{
	memset(v, 0, sizeof *v);
	v->kv = kv;
	v->ro = kv->ro;
	v->wb = kv->wb;
	v->rev = kv->b_rev;
	v->compact_rev = kv->b_compact;
}

void kv_view_close(struct kv_view *v)
{
	if (v->snap) {
		rocksdb_readoptions_destroy(v->ro);
		rocksdb_release_snapshot(v->kv->db, v->snap);
	}
	v->snap = NULL;
}

int kv_view_get(struct kv_view *v, const void *key, size_t klen, char **val, size_t *vlen)
{
	char *err = NULL;

	if (v->wb)
		*val = rocksdb_writebatch_wi_get_from_batch_and_db(v->wb, v->kv->db, v->ro, key,
		                                                   klen, vlen, &err);
	else
		*val = rocksdb_get(v->kv->db, v->ro, key, klen, vlen, &err);
	if (err)
		return kv_rocks_err(v->kv, err, "kv: get");
	return *val ? 0 : MOOR_ENOTFOUND;
}

rocksdb_iterator_t *kv_view_iter(struct kv_view *v)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(v->kv->db, v->ro);

	if (it && v->wb)
		it = rocksdb_writebatch_wi_create_iterator_with_base(v->wb, it);
	return it;
}

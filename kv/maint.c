/*
 * Maintenance reads: HashKV for cross-member comparison, the lease table,
 * and physical statistics.
 */
#include "kv/kv_int.h"

#include "common/buf.h"
#include "common/crc32c.h"
#include "common/error.h"

#include <string.h>

static int iter_err(struct kv *kv, rocksdb_iterator_t *it)
{
	char *err = NULL;

	rocksdb_iter_get_error(it, &err);
	return err ? kv_rocks_err(kv, err, "kv: iterating") : 0;
}

/*
 * Whether compaction at `c` keeps the history record `rec`: everything above
 * c; at or below c only the newest version of its key, and a tombstone only
 * at exactly c (a watch from c must see that revision's deletes).
 */
static int kept(struct kv_view *v, rocksdb_iterator_t *it, const struct kv_rec *rec, int64_t c,
                bool *keep)
{
	const struct moor_alloc *a = v->kv->alloc;
	struct kv_kbuf t;
	size_t kl;
	int rc;

	*keep = true;
	if (rec->mod.main > c)
		return 0;
	if ((rec->flags & KV_REC_TOMB) && rec->mod.main < c) {
		*keep = false;
		return 0;
	}
	kv_kbuf_init(&t);
	rc = kv_key_index(a, &t, rec->key, rec->key_len,
	                  (struct kv_rev){rec->mod.main, rec->mod.sub + 1});
	if (rc)
		return rc;
	rocksdb_iter_seek(it, (char *)t.p, t.len);
	if (rocksdb_iter_valid(it)) {
		const char *ik = rocksdb_iter_key(it, &kl);
		size_t pl = t.len - 16;

		if (kl == t.len && memcmp(ik, t.p, pl) == 0 &&
		    (int64_t)moor_get_be64((const unsigned char *)ik + pl) <= c)
			*keep = false; /* superseded at or below c */
	}
	kv_kbuf_free(a, &t);
	return 0;
}

int kv_hash_kv(struct kv *kv, int64_t rev, uint32_t *hash, int64_t *compact_rev, int64_t *hash_rev)
{
	struct kv_view v;
	rocksdb_iterator_t *it = NULL, *xit = NULL;
	uint32_t crc = 0;
	int rc = kv_view_open_committed(kv, &v);

	if (rc)
		return rc;
	if (rev <= 0)
		rev = v.rev;
	*compact_rev = v.compact_rev;
	*hash_rev = rev;
	if (rev > v.rev) {
		rc = kv_fail(kv, MOOR_EFUTUREREV, "kv: hash at %lld above %lld", (long long)rev,
		             (long long)v.rev);
		goto out;
	}
	if (rev < v.compact_rev) {
		rc = kv_fail(kv, MOOR_ECOMPACTED, "kv: hash at %lld below compacted %lld",
		             (long long)rev, (long long)v.compact_rev);
		goto out;
	}
	it = rocksdb_create_iterator(kv->db, v.ro);
	xit = rocksdb_create_iterator(kv->db, v.ro);
	if (!it || !xit) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	for (rocksdb_iter_seek(it, "h", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *ik = rocksdb_iter_key(it, &kl), *iv;
		struct kv_rec rec;
		bool keep;

		if (kl != 17 || ik[0] != KV_P_HIST ||
		    (int64_t)moor_get_be64((const unsigned char *)ik + 1) > rev)
			break;
		iv = rocksdb_iter_value(it, &vl);
		rc = kv_rec_decode(iv, vl, &rec);
		if (rc) {
			rc = kv_fail(kv, rc, "kv: corrupt history record");
			goto out;
		}
		rc = kept(&v, xit, &rec, v.compact_rev, &keep);
		if (rc)
			goto out;
		if (!keep)
			continue;
		crc = moor_crc32c(crc, ik + 1, 16);
		crc = moor_crc32c(crc, iv, vl);
	}
	rc = iter_err(kv, it);
	*hash = crc;
out:
	if (it)
		rocksdb_iter_destroy(it);
	if (xit)
		rocksdb_iter_destroy(xit);
	kv_view_close(&v);
	return rc;
}

/* ---- leases --------------------------------------------------------------- */

int kv_lease_timetolive(struct kv *kv, const Etcdserverpb__LeaseTimeToLiveRequest *req,
                        Etcdserverpb__LeaseTimeToLiveResponse **out)
{
	Etcdserverpb__LeaseTimeToLiveResponse *resp;
	struct kv_arena *ar;
	struct kv_view v;
	struct kv_kbuf k;
	rocksdb_iterator_t *it = NULL;
	char *raw = NULL;
	size_t len, cap = 0;
	int rc;

	*out = NULL;
	resp = kv_arena_new_root(kv->alloc, sizeof *resp, &ar);
	if (!resp)
		return MOOR_ENOMEM;
	etcdserverpb__lease_time_to_live_response__init(resp);
	kv_kbuf_init(&k);
	rc = kv_view_open_committed(kv, &v);
	if (rc) {
		kv_response_free(resp);
		return rc;
	}
	rc = kv_key_lease(kv->alloc, &k, req->id);
	if (rc == 0)
		rc = kv_view_get(&v, k.p, k.len, &raw, &len);
	if (rc == MOOR_ENOTFOUND)
		rc = kv_fail(kv, MOOR_ELEASENOTFOUND, "kv: lease %lld not found",
		             (long long)req->id);
	if (rc)
		goto out;
	if (len != 8) {
		rc = kv_fail(kv, MOOR_ECORRUPT, "kv: corrupt lease %lld", (long long)req->id);
		goto out;
	}
	resp->id = req->id;
	resp->grantedttl = (int64_t)moor_get_be64((unsigned char *)raw);
	resp->ttl = resp->grantedttl;
	resp->header = kv_arena_header(ar, v.rev);
	if (!resp->header) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	if (!req->keys)
		goto out;
	rc = kv_key_attach(kv->alloc, &k, req->id, "", 0);
	it = rc ? NULL : kv_view_iter(&v);
	if (!it) {
		rc = rc ? rc : MOOR_ENOMEM;
		goto out;
	}
	for (rocksdb_iter_seek(it, (char *)k.p, k.len); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl;
		const char *ik = rocksdb_iter_key(it, &kl);

		if (kl <= k.len || memcmp(ik, k.p, k.len) != 0)
			break;
		if (resp->n_keys == cap) {
			size_t nc = cap ? cap * 2 : 16;
			ProtobufCBinaryData *nk = kv_arena_alloc(ar, nc * sizeof *nk);

			if (!nk) {
				rc = MOOR_ENOMEM;
				goto out;
			}
			if (cap)
				memcpy(nk, resp->keys, cap * sizeof *nk);
			resp->keys = nk;
			cap = nc;
		}
		resp->keys[resp->n_keys].len = kl - k.len;
		resp->keys[resp->n_keys].data = kv_arena_dup(ar, ik + k.len, kl - k.len);
		if (!resp->keys[resp->n_keys++].data) {
			rc = MOOR_ENOMEM;
			goto out;
		}
	}
	rc = iter_err(kv, it);
out:
	if (it)
		rocksdb_iter_destroy(it);
	rocksdb_free(raw);
	kv_kbuf_free(kv->alloc, &k);
	kv_view_close(&v);
	if (rc) {
		kv_response_free(resp);
		return rc;
	}
	*out = resp;
	return 0;
}

int kv_lease_leases(struct kv *kv, Etcdserverpb__LeaseLeasesResponse **out)
{
	Etcdserverpb__LeaseLeasesResponse *resp;
	struct kv_arena *ar;
	struct kv_view v;
	rocksdb_iterator_t *it;
	size_t cap = 0;
	int rc;

	*out = NULL;
	resp = kv_arena_new_root(kv->alloc, sizeof *resp, &ar);
	if (!resp)
		return MOOR_ENOMEM;
	etcdserverpb__lease_leases_response__init(resp);
	rc = kv_view_open_committed(kv, &v);
	if (rc) {
		kv_response_free(resp);
		return rc;
	}
	it = kv_view_iter(&v);
	resp->header = kv_arena_header(ar, v.rev);
	if (!it || !resp->header) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	for (rocksdb_iter_seek(it, "L", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl;
		const char *ik = rocksdb_iter_key(it, &kl);
		Etcdserverpb__LeaseStatus *st;

		if (kl != 9 || ik[0] != KV_P_LEASE)
			break;
		if (resp->n_leases == cap) {
			size_t nc = cap ? cap * 2 : 16;
			Etcdserverpb__LeaseStatus **nl = kv_arena_alloc(ar, nc * sizeof *nl);

			if (!nl) {
				rc = MOOR_ENOMEM;
				goto out;
			}
			if (cap)
				memcpy(nl, resp->leases, cap * sizeof *nl);
			resp->leases = nl;
			cap = nc;
		}
		st = kv_arena_alloc(ar, sizeof *st);
		if (!st) {
			rc = MOOR_ENOMEM;
			goto out;
		}
		etcdserverpb__lease_status__init(st);
		st->id = kv_lease_dec(moor_get_be64((const unsigned char *)ik + 1));
		resp->leases[resp->n_leases++] = st;
	}
	rc = iter_err(kv, it);
out:
	if (it)
		rocksdb_iter_destroy(it);
	kv_view_close(&v);
	if (rc) {
		kv_response_free(resp);
		return rc;
	}
	*out = resp;
	return 0;
}

/* ---- statistics ------------------------------------------------------------ */

int kv_stats(struct kv *kv, struct kv_stats *out)
{
	struct kv_view v;
	rocksdb_iterator_t *it;
	char *err = NULL;
	const char *start = "\x00", *limit = "\xff";
	size_t sl = 1, ll = 1;
	int rc;

	memset(out, 0, sizeof *out);
	rc = kv_view_open_committed(kv, &v);
	if (rc)
		return rc;
	it = rocksdb_create_iterator(kv->db, v.ro);
	if (!it) {
		kv_view_close(&v);
		return MOOR_ENOMEM;
	}
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl;
		const char *ik = rocksdb_iter_key(it, &kl);

		switch (ik[0]) {
		case KV_P_HIST:
			out->history_records++;
			break;
		case KV_P_INDEX:
			out->index_records++;
			break;
		case KV_P_LATEST:
			out->live_keys++;
			break;
		case KV_P_GARBAGE:
			out->garbage_records++;
			break;
		default:
			break;
		}
	}
	rc = iter_err(kv, it);
	rocksdb_iter_destroy(it);
	kv_view_close(&v);
	rocksdb_approximate_sizes(kv->db, 1, &start, &sl, &limit, &ll, &out->approx_bytes, &err);
	if (err)
		rocksdb_free(err);
	return rc;
}

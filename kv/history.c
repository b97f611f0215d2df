/*
 * Sequential reads of the history table: watch catch-up (kv_history_read),
 * HashKV, lease lookups and the physical statistics tests use.
 *
 * History is keyed by (main, sub) revision, so catch-up is one forward scan.
 * Logical compaction is applied on read where physical removal may lag:
 * HashKV skips records compaction will remove, so two members agree however
 * far their background compaction has gone.
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
 * The previous version of the key rec changed, if it was a live value. A
 * change that superseded a live version P wrote g<rec's revision><P> -> key
 * (write.c), so `git`, walking the garbage table in step with the history
 * scan, names P without a seek into the key index; P's record is then one
 * point get. (A delete at main revision m also wrote g<m+1,0><itself>: an
 * entry at the same place for the same key names a tombstone, which is no
 * previous value.)
 */
static int prev_of(struct kv_view *v, rocksdb_iterator_t *git, const struct kv_rec *rec,
                   struct kv_arena *ar, Mvccpb__KeyValue **out)
{
	struct kv_kbuf hk;
	size_t kl, vl;
	const char *ik, *iv;
	char *raw = NULL, *err = NULL;
	struct kv_rec prev;
	struct kv_rev victim = {0, 0};
	bool found = false;
	int rc;

	*out = NULL;
	for (; rocksdb_iter_valid(git); rocksdb_iter_next(git)) {
		ik = rocksdb_iter_key(git, &kl);
		if (kl != 33 || ik[0] != KV_P_GARBAGE)
			break;
		const unsigned char *u = (const unsigned char *)ik;
		struct kv_rev at = {(int64_t)moor_get_be64(u + 1), (int64_t)moor_get_be64(u + 9)};

		if (at.main > rec->mod.main || (at.main == rec->mod.main && at.sub > rec->mod.sub))
			break; /* a later event's: stay on it */
		if (at.main != rec->mod.main || at.sub != rec->mod.sub)
			continue;
		iv = rocksdb_iter_value(git, &vl);
		if (vl == rec->key_len && memcmp(iv, rec->key, vl) == 0) {
			victim = (struct kv_rev){(int64_t)moor_get_be64(u + 17),
			                         (int64_t)moor_get_be64(u + 25)};
			found = true;
			break;
		}
	}
	if (!found)
		return 0;
	kv_kbuf_init(&hk);
	rc = kv_key_hist(v->kv->alloc, &hk, victim);
	if (rc)
		goto out;
	raw = rocksdb_get(v->kv->db, v->ro, (char *)hk.p, hk.len, &vl, &err);
	if (err) {
		rc = kv_rocks_err(v->kv, err, "kv: get");
		goto out;
	}
	if (!raw)
		goto out; /* compacted */
	rc = kv_rec_decode(raw, vl, &prev);
	if (rc == 0 &&
	    (prev.key_len != rec->key_len || memcmp(prev.key, rec->key, prev.key_len) != 0))
		rc = MOOR_ECORRUPT;
	if (rc) {
		rc = kv_fail(v->kv, rc, "kv: corrupt history record %lld.%lld",
		             (long long)victim.main, (long long)victim.sub);
		goto out;
	}
	if (prev.flags & KV_REC_TOMB)
		goto out;
	*out = kv_arena_kv(ar, &prev, false);
	if (!*out)
		rc = MOOR_ENOMEM;
out:
	rocksdb_free(raw);
	kv_kbuf_free(v->kv->alloc, &hk);
	return rc;
}

int kv_history_read(struct kv *kv, int64_t from_rev, size_t max_events, bool want_prev,
                    struct kv_history *out)
{
	struct kv_view v;
	struct kv_arena *ar = NULL;
	rocksdb_iterator_t *it = NULL, *pit = NULL;
	rocksdb_readoptions_t *sro = NULL;
	unsigned char ub[17];
	struct kv_kbuf k;
	size_t cap = 0;
	int64_t last_main = 0;
	bool early = false;
	int rc;

	memset(out, 0, sizeof *out);
	rc = kv_view_open_committed(kv, &v);
	if (rc)
		return rc;
	out->compact_revision = v.compact_rev;
	out->revision = v.rev;
	if (from_rev < 1)
		from_rev = 1;
	if (from_rev < v.compact_rev) {
		kv_view_close(&v);
		return kv_fail(kv, MOOR_ECOMPACTED, "kv: history from %lld below compacted %lld",
		               (long long)from_rev, (long long)v.compact_rev);
	}
	if (!kv_arena_new_root(kv->alloc, 1, &ar)) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	out->arena_ = ar;
	kv_kbuf_init(&k);
	/* The scan stops at the current revision: RocksDB need not look past.
	 * A catch-up reads history once: its blocks are not worth evicting
	 * the block cache's hot ones for (and not inserting them is most of
	 * the gain: bench_kv --history, 0.53-0.65 -> 0.91-1.06 million events
	 * per CPU-second). */
	ub[0] = KV_P_HIST;
	moor_put_be64(ub + 1, (uint64_t)v.rev + 1);
	memset(ub + 9, 0, 8);
	sro = rocksdb_readoptions_create(); /* outlives `it`: it holds ub */
	if (sro) {
		rocksdb_readoptions_set_snapshot(sro, v.snap);
		rocksdb_readoptions_set_iterate_upper_bound(sro, (char *)ub, sizeof ub);
		rocksdb_readoptions_set_fill_cache(sro, 0);
		it = rocksdb_create_iterator(kv->db, sro);
	}
	pit = want_prev ? rocksdb_create_iterator(kv->db, v.ro) : NULL;
	rc = kv_key_garbage(kv->alloc, &k, (struct kv_rev){from_rev, 0}, (struct kv_rev){0, 0});
	if (rc == 0 && pit)
		rocksdb_iter_seek(pit, (char *)k.p, k.len);
	if (rc == 0)
		rc = kv_key_hist(kv->alloc, &k, (struct kv_rev){from_rev, 0});
	if (rc || !it || (want_prev && !pit)) {
		rc = rc ? rc : MOOR_ENOMEM;
		goto out_k;
	}
	for (rocksdb_iter_seek(it, (char *)k.p, k.len); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *ik = rocksdb_iter_key(it, &kl), *iv;
		struct kv_rec rec;
		Mvccpb__Event *ev;

		if (kl != 17 || ik[0] != KV_P_HIST)
			break;
		int64_t main = (int64_t)moor_get_be64((const unsigned char *)ik + 1);

		if (main > v.rev)
			break;
		if (out->n_events >= max_events && max_events > 0 && main != last_main) {
			early = true;
			break;
		}
		iv = rocksdb_iter_value(it, &vl);
		rc = kv_rec_decode(iv, vl, &rec);
		if (rc) {
			rc = kv_fail(kv, rc, "kv: corrupt history record at %lld", (long long)main);
			goto out_k;
		}
		if (out->n_events == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			Mvccpb__Event **nv = kv_arena_alloc(ar, ncap * sizeof *nv);

			if (!nv) {
				rc = MOOR_ENOMEM;
				goto out_k;
			}
			if (cap)
				memcpy(nv, out->events, cap * sizeof *nv);
			out->events = nv;
			cap = ncap;
		}
		ev = kv_arena_alloc(ar, sizeof *ev);
		if (!ev) {
			rc = MOOR_ENOMEM;
			goto out_k;
		}
		mvccpb__event__init(ev);
		ev->type = (rec.flags & KV_REC_TOMB) ? MVCCPB__EVENT__EVENT_TYPE__DELETE
		                                     : MVCCPB__EVENT__EVENT_TYPE__PUT;
		ev->kv = kv_arena_kv(ar, &rec, false);
		if (!ev->kv) {
			rc = MOOR_ENOMEM;
			goto out_k;
		}
		/* At the compact revision the previous version is compacted. */
		if (want_prev && main > v.compact_rev) {
			rc = prev_of(&v, pit, &rec, ar, &ev->prev_kv);
			if (rc)
				goto out_k;
		}
		out->events[out->n_events++] = ev;
		last_main = main;
	}
	rc = iter_err(kv, it);
	if (rc == 0 && pit)
		rc = iter_err(kv, pit);
	out->next_rev = early ? last_main + 1 : (from_rev > v.rev ? from_rev : v.rev + 1);
out_k:
	kv_kbuf_free(kv->alloc, &k);
out:
	if (it)
		rocksdb_iter_destroy(it);
	if (sro)
		rocksdb_readoptions_destroy(sro);
	if (pit)
		rocksdb_iter_destroy(pit);
	kv_view_close(&v);
	if (rc) {
		kv_history_free(out);
		out->compact_revision = v.compact_rev;
	}
	return rc;
}

void kv_history_free(struct kv_history *h)
{
	if (h->arena_)
		kv_arena_destroy(h->arena_);
	h->arena_ = NULL;
	h->events = NULL;
	h->n_events = 0;
}

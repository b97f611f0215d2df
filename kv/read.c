/*
 * Reads: ranges at the current or an old revision, point lookups through a
 * view, and the range request's validation. Shared by kv_range (a snapshot
 * of committed state) and by range ops inside a txn (the open batch).
 *
 * Current reads go to the latest table (one seek per key). Old-revision reads
 * walk the key index: per key, one seek-for-prev finds the newest revision at
 * or below the asked one, then one point get fetches its history record.
 */
#include "kv/kv_int.h"

#include "common/error.h"
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

int kv_check_key_range(struct kv *kv, const ProtobufCBinaryData *key,
                       const ProtobufCBinaryData *end)
{
	if (key->len == 0)
		return kv_fail(kv, MOOR_EEMPTYKEY, "kv: key is empty");
	if (key->len > kv->max_key || end->len > kv->max_key)
		return kv_fail(kv, MOOR_ETOOLARGE, "kv: key of %zu bytes over the limit of %zu",
		               key->len > end->len ? key->len : end->len, kv->max_key);
	/* A range_end below its key is an empty range, as in etcd (a range
	 * finds nothing, a delete deletes nothing); only a watch refuses it. */
	return 0;
}

int kv_check_range_req(struct kv *kv, const Etcdserverpb__RangeRequest *req)
{
	int rc = kv_check_key_range(kv, &req->key, &req->range_end);

	if (rc)
		return rc;
	/* a negative limit is no limit, as in etcd's mvcc (limit <= 0) */
	if ((unsigned)req->sort_order > ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND ||
	    (unsigned)req->sort_target > ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE)
		return kv_fail(kv, MOOR_ESORT, "kv: sort order %d target %d", req->sort_order,
		               req->sort_target);
	return 0;
}

/* end: empty = single key; "\0" = to the end of the key space. */
static bool is_all_from(const ProtobufCBinaryData *end)
{
	return end->len == 1 && end->data[0] == 0;
}

static int bytes_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = (al && bl) ? memcmp(a, b, al < bl ? al : bl) : 0;

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* In-range test for a user key against [key, end). */
static bool below_end(const unsigned char *k, size_t kl, const ProtobufCBinaryData *end)
{
	if (is_all_from(end))
		return true;
	return bytes_cmp(k, kl, end->data, end->len) < 0;
}

int kv_view_latest(struct kv_view *v, const void *key, size_t klen, char **raw, struct kv_rec *rec)
{
	struct kv_kbuf k;
	size_t len;
	int rc;

	kv_kbuf_init(&k);
	rc = kv_key_latest(v->kv->alloc, &k, key, klen);
	if (rc == 0)
		rc = kv_view_get(v, k.p, k.len, raw, &len);
	kv_kbuf_free(v->kv->alloc, &k);
	if (rc)
		return rc;
	rc = kv_rec_decode(*raw, len, rec);
	if (rc) {
		rocksdb_free(*raw);
		*raw = NULL;
		return kv_fail(v->kv, rc, "kv: corrupt latest record");
	}
	return 0;
}

/* Fetch the history record at r; NOTFOUND if compacted away. */
static int get_hist(struct kv_view *v, struct kv_rev r, char **raw, struct kv_rec *rec)
{
	struct kv_kbuf k;
	size_t len;
	int rc;

	kv_kbuf_init(&k);
	rc = kv_key_hist(v->kv->alloc, &k, r);
	if (rc == 0)
		rc = kv_view_get(v, k.p, k.len, raw, &len);
	kv_kbuf_free(v->kv->alloc, &k);
	if (rc)
		return rc;
	rc = kv_rec_decode(*raw, len, rec);
	if (rc) {
		rocksdb_free(*raw);
		*raw = NULL;
		return kv_fail(v->kv, rc, "kv: corrupt history record %lld.%lld", (long long)r.main,
		               (long long)r.sub);
	}
	return 0;
}

/*
 * With `it` on any entry, find the newest index entry of the key whose
 * escaped prefix is `pfx` at or below `r`; on success *found is its
 * revision and *tomb its flag.
 */
static int index_at(struct kv *kv, rocksdb_iterator_t *it, const struct kv_kbuf *pfx,
                    struct kv_rev r, bool *found, struct kv_rev *rev, bool *tomb)
{
	struct kv_kbuf t;
	const char *ik, *iv;
	size_t ikl, ivl;
	int rc;

	*found = false;
	kv_kbuf_init(&t);
	rc = kv_kbuf_add(kv->alloc, &t, pfx->p, pfx->len);
	if (rc == 0)
		rc = kv_kbuf_add_be64(kv->alloc, &t, (uint64_t)r.main);
	if (rc == 0)
		rc = kv_kbuf_add_be64(kv->alloc, &t, (uint64_t)r.sub);
	if (rc)
		goto out;
	rocksdb_iter_seek_for_prev(it, (char *)t.p, t.len);
	if (!rocksdb_iter_valid(it))
		goto out;
	ik = rocksdb_iter_key(it, &ikl);
	if (ikl != pfx->len + 16 || memcmp(ik, pfx->p, pfx->len) != 0)
		goto out;
	iv = rocksdb_iter_value(it, &ivl);
	if (ivl != 1) {
		rc = kv_fail(kv, MOOR_ECORRUPT, "kv: corrupt index record");
		goto out;
	}
	*found = true;
	*tomb = (iv[0] & KV_REC_TOMB) != 0;
	rev->main = (int64_t)moor_get_be64((const unsigned char *)ik + pfx->len);
	rev->sub = (int64_t)moor_get_be64((const unsigned char *)ik + pfx->len + 8);
out:
	kv_kbuf_free(kv->alloc, &t);
	return rc;
}

int kv_view_at(struct kv_view *v, const void *key, size_t klen, int64_t rev, char **raw,
               struct kv_rec *rec)
{
	struct kv_kbuf pfx;
	rocksdb_iterator_t *it = NULL;
	struct kv_rev r;
	bool found = false, tomb = false;
	int rc;

	kv_kbuf_init(&pfx);
	rc = kv_key_index_prefix(v->kv->alloc, &pfx, key, klen);
	if (rc == 0) {
		it = kv_view_iter(v);
		rc = it ? index_at(v->kv, it, &pfx, (struct kv_rev){rev, INT64_MAX}, &found, &r,
		                   &tomb)
		        : MOOR_ENOMEM;
	}
	if (it)
		rocksdb_iter_destroy(it);
	kv_kbuf_free(v->kv->alloc, &pfx);
	if (rc)
		return rc;
	if (!found || tomb)
		return MOOR_ENOTFOUND;
	return get_hist(v, r, raw, rec);
}

int kv_visit_latest(struct kv_view *v, const ProtobufCBinaryData *key,
                    const ProtobufCBinaryData *end, kv_visit_fn fn, void *ctx)
{
	struct kv_kbuf k;
	rocksdb_iterator_t *it;
	struct kv_rec rec;
	int rc;

	if (end->len == 0) {
		char *raw = NULL;

		rc = kv_view_latest(v, key->data, key->len, &raw, &rec);
		if (rc == MOOR_ENOTFOUND)
			return 0;
		if (rc == 0)
			rc = fn(ctx, &rec);
		rocksdb_free(raw);
		return rc;
	}
	kv_kbuf_init(&k);
	rc = kv_key_latest(v->kv->alloc, &k, key->data, key->len);
	if (rc)
		return rc;
	it = kv_view_iter(v);
	if (!it) {
		kv_kbuf_free(v->kv->alloc, &k);
		return MOOR_ENOMEM;
	}
	for (rocksdb_iter_seek(it, (char *)k.p, k.len); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *ik = rocksdb_iter_key(it, &kl), *iv;

		if (kl < 1 || ik[0] != KV_P_LATEST ||
		    !below_end((const unsigned char *)ik + 1, kl - 1, end))
			break;
		iv = rocksdb_iter_value(it, &vl);
		rc = kv_rec_decode(iv, vl, &rec);
		if (rc) {
			rc = kv_fail(v->kv, rc, "kv: corrupt latest record");
			break;
		}
		rc = fn(ctx, &rec);
		if (rc)
			break;
	}
	if (rc == 0) {
		char *err = NULL;

		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = kv_rocks_err(v->kv, err, "kv: iterating");
	}
	rocksdb_iter_destroy(it);
	kv_kbuf_free(v->kv->alloc, &k);
	return rc;
}

/* Every live record in [key, end) at revision rev < current, via the index. */
static int visit_at(struct kv_view *v, const ProtobufCBinaryData *key,
                    const ProtobufCBinaryData *end, int64_t rev, kv_visit_fn fn, void *ctx)
{
	const struct moor_alloc *a = v->kv->alloc;
	struct kv_kbuf seek, pfx, ukey;
	rocksdb_iterator_t *it;
	int rc = 0;

	if (end->len == 0) {
		char *raw = NULL;
		struct kv_rec rec;

		rc = kv_view_at(v, key->data, key->len, rev, &raw, &rec);
		if (rc == MOOR_ENOTFOUND)
			return 0;
		if (rc == 0)
			rc = fn(ctx, &rec);
		rocksdb_free(raw);
		return rc;
	}
	kv_kbuf_init(&seek);
	kv_kbuf_init(&pfx);
	kv_kbuf_init(&ukey);
	it = kv_view_iter(v);
	if (!it)
		return MOOR_ENOMEM;
	/* The escaped key without terminator sorts before its own entries. */
	rc = kv_key_index_prefix(a, &seek, key->data, key->len);
	if (rc)
		goto out;
	seek.len -= 2;
	rocksdb_iter_seek(it, (char *)seek.p, seek.len);
	while (rc == 0 && rocksdb_iter_valid(it)) {
		size_t kl;
		const char *ik = rocksdb_iter_key(it, &kl);
		struct kv_rev r, found_rev;
		bool found, tomb;
		static const unsigned char ff[17] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		                                     0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		                                     0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

		if (kl < 1 || ik[0] != KV_P_INDEX)
			break;
		rc = kv_key_index_parse(a, (const unsigned char *)ik, kl, &ukey, &r);
		if (rc) {
			rc = kv_fail(v->kv, rc, "kv: corrupt index key");
			break;
		}
		if (!below_end(ukey.p, ukey.len, end))
			break;
		rc = kv_key_index_prefix(a, &pfx, ukey.p, ukey.len);
		if (rc == 0)
			rc = index_at(v->kv, it, &pfx, (struct kv_rev){rev, INT64_MAX}, &found,
			              &found_rev, &tomb);
		if (rc == 0 && found && !tomb) {
			char *raw = NULL;
			struct kv_rec rec;

			rc = get_hist(v, found_rev, &raw, &rec);
			if (rc == 0)
				rc = fn(ctx, &rec);
			else if (rc == MOOR_ENOTFOUND)
				rc = 0; /* removed by physical compaction meanwhile */
			rocksdb_free(raw);
		}
		/* Past every entry of this key. */
		if (rc == 0)
			rc = kv_kbuf_add(a, &pfx, ff, sizeof ff);
		if (rc == 0)
			rocksdb_iter_seek(it, (char *)pfx.p, pfx.len);
	}
	if (rc == 0) {
		char *err = NULL;

		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = kv_rocks_err(v->kv, err, "kv: iterating");
	}
out:
	rocksdb_iter_destroy(it);
	kv_kbuf_free(a, &seek);
	kv_kbuf_free(a, &pfx);
	kv_kbuf_free(a, &ukey);
	return rc;
}

/* ---- range --------------------------------------------------------------- */

struct range_acc {
	const Etcdserverpb__RangeRequest *req;
	struct kv_arena *ar;
	Mvccpb__KeyValue **kvs;
	size_t n, cap;
	size_t keep;   /* stop materializing beyond this many (0: all) */
	int64_t count; /* every key in the range */
};

static bool passes_filters(const Etcdserverpb__RangeRequest *q, const struct kv_rec *r)
{
	if (q->min_mod_revision > 0 && r->mod.main < q->min_mod_revision)
		return false;
	if (q->max_mod_revision > 0 && r->mod.main > q->max_mod_revision)
		return false;
	if (q->min_create_revision > 0 && r->create_rev < q->min_create_revision)
		return false;
	if (q->max_create_revision > 0 && r->create_rev > q->max_create_revision)
		return false;
	return true;
}

static int range_visit(void *ctx, const struct kv_rec *rec)
{
	struct range_acc *acc = ctx;
	Mvccpb__KeyValue *kv;

	acc->count++;
	if (acc->req->count_only || !passes_filters(acc->req, rec))
		return 0;
	if (acc->keep && acc->n >= acc->keep)
		return 0;
	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 16;
		Mvccpb__KeyValue **v = kv_arena_alloc(acc->ar, cap * sizeof *v);

		if (!v)
			return MOOR_ENOMEM;
		if (acc->n)
			memcpy(v, acc->kvs, acc->n * sizeof *v);
		acc->kvs = v;
		acc->cap = cap;
	}
	kv = kv_arena_kv(acc->ar, rec, acc->req->keys_only);
	if (!kv)
		return MOOR_ENOMEM;
	acc->kvs[acc->n++] = kv;
	return 0;
}

struct sort_ctx {
	int target;
	int desc;
};

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
	const struct sort_ctx *s = arg;
	const Mvccpb__KeyValue *a = *(Mvccpb__KeyValue *const *)pa;
	const Mvccpb__KeyValue *b = *(Mvccpb__KeyValue *const *)pb;
	int c = 0;

	switch (s->target) {
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY:
		c = bytes_cmp(a->key.data, a->key.len, b->key.data, b->key.len);
		return s->desc ? -c : c;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION:
		c = (a->version > b->version) - (a->version < b->version);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE:
		c = (a->create_revision > b->create_revision) -
		    (a->create_revision < b->create_revision);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD:
		c = (a->mod_revision > b->mod_revision) - (a->mod_revision < b->mod_revision);
		break;
	default:
		c = bytes_cmp(a->value.data, a->value.len, b->value.data, b->value.len);
		break;
	}
	if (s->desc)
		c = -c;
	if (c == 0) /* ties: ascending key, so results never depend on qsort */
		c = bytes_cmp(a->key.data, a->key.len, b->key.data, b->key.len);
	return c;
}

int kv_do_range(struct kv_view *v, const Etcdserverpb__RangeRequest *req, struct kv_arena *ar,
                Etcdserverpb__RangeResponse *resp)
{
	struct range_acc acc = {.req = req, .ar = ar};
	int64_t rev = req->revision > 0 ? req->revision : v->rev;
	bool sorted = req->sort_order != ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE ||
	              req->sort_target != ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
	bool filtered = req->min_mod_revision > 0 || req->max_mod_revision > 0 ||
	                req->min_create_revision > 0 || req->max_create_revision > 0;
	int rc;

	/* Inside a txn that has written, its own revision is readable (etcd). */
	if (rev > v->rev + (v->pending ? 1 : 0))
		return kv_fail(v->kv, MOOR_EFUTUREREV, "kv: revision %lld above current %lld",
		               (long long)rev, (long long)v->rev);
	if (rev < v->compact_rev)
		return kv_fail(v->kv, MOOR_ECOMPACTED, "kv: revision %lld below compacted %lld",
		               (long long)rev, (long long)v->compact_rev);
	/* Only the first limit+1 results matter unless sorting or filtering
	 * needs them all (as etcd does); the count still covers every key. */
	if (req->limit > 0 && !sorted && !filtered)
		acc.keep = (size_t)req->limit + 1;
	/* The latest table answers current reads. Inside a txn that has written,
	 * it also holds this txn's writes, which an explicit revision must not
	 * see: those reads go through the index. */
	if (req->revision <= 0 || (rev == v->rev && !v->wb)) {
		rc = kv_visit_latest(v, &req->key, &req->range_end, range_visit, &acc);
	} else {
		/* A revision this batch created: its history must be readable. */
		if (v->wb && rev > atomic_load(&v->kv->rev))
			kv_batch_expose(v->kv);
		rc = visit_at(v, &req->key, &req->range_end, rev, range_visit, &acc);
	}
	if (rc)
		return rc;
	if (sorted && acc.n > 1) {
		struct sort_ctx s = {
		    .target = req->sort_target,
		    .desc = req->sort_order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND,
		};

		qsort_r(acc.kvs, acc.n, sizeof *acc.kvs, sort_cmp, &s);
	}
	if (req->limit > 0 && acc.n > (size_t)req->limit) {
		acc.n = (size_t)req->limit;
		resp->more = 1;
	}
	resp->kvs = acc.kvs;
	resp->n_kvs = acc.n;
	resp->count = acc.count;
	return 0;
}

int kv_range(struct kv *kv, const Etcdserverpb__RangeRequest *req,
             Etcdserverpb__RangeResponse **out)
{
	struct kv_view v;
	struct kv_arena *ar;
	Etcdserverpb__RangeResponse *resp;
	int rc;

	*out = NULL;
	rc = kv_check_range_req(kv, req);
	if (rc)
		return rc;
	resp = kv_arena_new_root(kv->alloc, sizeof *resp, &ar);
	if (!resp)
		return MOOR_ENOMEM;
	etcdserverpb__range_response__init(resp);
	/* A single key at the current revision is one Get: no snapshot needed
	 * if no commit ran meanwhile (seqlock), so try that first. */
	if (req->range_end.len == 0 && req->revision <= 0) {
		for (int i = 0; i < 4; i++) {
			uint64_t s1 = atomic_load_explicit(&kv->seq, memory_order_acquire);

			if (s1 & 1)
				continue;
			memset(&v, 0, sizeof v);
			v.kv = kv;
			v.ro = kv->ro;
			v.rev = atomic_load_explicit(&kv->rev, memory_order_relaxed);
			v.compact_rev =
			    atomic_load_explicit(&kv->compact_rev, memory_order_relaxed);
			rc = kv_do_range(&v, req, ar, resp);
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&kv->seq, memory_order_relaxed) != s1) {
				etcdserverpb__range_response__init(resp); /* arena keeps the rest */
				continue;
			}
			if (rc == 0) {
				resp->header = kv_arena_header(ar, v.rev);
				if (!resp->header)
					rc = MOOR_ENOMEM;
			}
			if (rc) {
				kv_response_free(resp);
				return rc;
			}
			*out = resp;
			return 0;
		}
	}
	rc = kv_view_open_committed(kv, &v);
	if (rc) {
		kv_response_free(resp);
		return rc;
	}
	rc = kv_do_range(&v, req, ar, resp);
	if (rc == 0) {
		resp->header = kv_arena_header(ar, v.rev);
		if (!resp->header)
			rc = MOOR_ENOMEM;
	}
	kv_view_close(&v);
	if (rc) {
		kv_response_free(resp);
		return rc;
	}
	*out = resp;
	return 0;
}

/*
 * The write requests of an apply batch: puts, deletes, leases, compaction
 * and meta records (batch.c holds the batch's life cycle and commit; txn.c
 * the transactions built from these).
 *
 * Per change the batch writes: the history record h<rev>, the index entry
 * k<key><rev>, the latest record l<key> (deleted for a delete), and when a
 * version is superseded a garbage entry g<at><victim> naming the user key:
 * compaction to C later removes exactly the victims whose `at` is <= C, in
 * revision order, without scanning live history (compact.c).
 *
 * Only what the batch reads back (latest records, leases, attachments, meta)
 * goes through RocksDB's indexed write batch, so later requests see earlier
 * ones; history, index and garbage entries go to one plain batch per table,
 * joined at commit (batch.c) into a single RocksDB write, table by table, so
 * that each table's entries reach the memtable in ascending runs (its
 * skiplist's sequential fast path).
 */
#include "kv/kv_int.h"

#include "common/assert.h"
#include "common/buf.h"
#include "common/error.h"

#include <string.h>

static void wb_put(struct kv *kv, const struct kv_kbuf *k, const void *v, size_t vl)
{
	rocksdb_writebatch_wi_put(kv->wb, (const char *)k->p, k->len, v, vl);
}

/* History, index and garbage entries are never read back inside the batch
 * except by reads at a revision this batch created (see kv_batch_expose):
 * they go to a plain write batch, sparing the indexed one's skiplist. */
static void pb_put(struct kv *kv, int table, const struct kv_kbuf *k, const void *v, size_t vl)
{
	rocksdb_writebatch_put(kv->pb[table], (const char *)k->p, k->len, v, vl);
	kv->pb_dirty = true;
}

static void wb_del(struct kv *kv, const struct kv_kbuf *k)
{
	rocksdb_writebatch_wi_delete(kv->wb, (const char *)k->p, k->len);
}

/* Write one change: history, index, latest, garbage, lease attachment. */
static int write_change(struct req_ctx *q, const struct kv_rec *rec, const struct kv_rec *prev)
{
	struct kv *kv = q->kv;
	const struct moor_alloc *a = kv->alloc;
	struct kv_kbuf k, v;
	unsigned char flag = (unsigned char)(rec->flags & KV_REC_TOMB);
	bool tomb = flag != 0;
	int rc;

	kv_kbuf_init(&k);
	kv_kbuf_init(&v);
	rc = kv_rec_encode(a, &v, rec);
	if (rc == 0)
		rc = kv_key_hist(a, &k, rec->mod);
	if (rc)
		goto out;
	pb_put(kv, KV_PB_HIST, &k, v.p, v.len);
	rc = kv_key_index(a, &k, rec->key, rec->key_len, rec->mod);
	if (rc)
		goto out;
	pb_put(kv, KV_PB_INDEX, &k, &flag, 1);
	rc = kv_key_latest(a, &k, rec->key, rec->key_len);
	if (rc)
		goto out;
	if (tomb)
		wb_del(kv, &k);
	else
		wb_put(kv, &k, v.p, v.len);
	if (prev) {
		rc = kv_key_garbage(a, &k, rec->mod, prev->mod);
		if (rc)
			goto out;
		pb_put(kv, KV_PB_GARBAGE, &k, rec->key, rec->key_len);
	}
	if (tomb) {
		/* The tombstone itself goes once compaction passes its revision. */
		rc = kv_key_garbage(a, &k, (struct kv_rev){rec->mod.main + 1, 0}, rec->mod);
		if (rc)
			goto out;
		pb_put(kv, KV_PB_GARBAGE, &k, rec->key, rec->key_len);
	}
	if (prev && prev->lease && (tomb || prev->lease != rec->lease)) {
		rc = kv_key_attach(a, &k, prev->lease, rec->key, rec->key_len);
		if (rc)
			goto out;
		wb_del(kv, &k);
	}
	if (!tomb && rec->lease && (!prev || prev->lease != rec->lease)) {
		rc = kv_key_attach(a, &k, rec->lease, rec->key, rec->key_len);
		if (rc)
			goto out;
		wb_put(kv, &k, "", 0);
	}
	rc = kv_add_event(kv, rec, prev);
out:
	kv_kbuf_free(a, &k);
	kv_kbuf_free(a, &v);
	return rc;
}

static int lease_exists(struct req_ctx *q, int64_t id)
{
	struct kv_kbuf k;
	char *raw = NULL;
	size_t len;
	int rc;

	kv_kbuf_init(&k);
	rc = kv_key_lease(q->kv->alloc, &k, id);
	if (rc == 0)
		rc = kv_view_get(&q->view, k.p, k.len, &raw, &len);
	rocksdb_free(raw);
	kv_kbuf_free(q->kv->alloc, &k);
	if (rc == MOOR_ENOTFOUND)
		return kv_fail(q->kv, MOOR_ELEASENOTFOUND, "kv: lease %lld not found",
		               (long long)id);
	return rc;
}

static int check_put(struct kv *kv, const Etcdserverpb__PutRequest *r)
{
	if (r->key.len == 0)
		return kv_fail(kv, MOOR_EEMPTYKEY, "kv: put with an empty key");
	if (r->key.len > kv->max_key || r->value.len > kv->max_value)
		return kv_fail(kv, MOOR_ETOOLARGE, "kv: put of %zu+%zu bytes over the limit",
		               r->key.len, r->value.len);
	if (r->ignore_value && r->value.len)
		return kv_fail(kv, MOOR_EVALUEPROVIDED, "kv: value given with ignore_value");
	if (r->ignore_lease && r->lease)
		return kv_fail(kv, MOOR_ELEASEPROVIDED, "kv: lease given with ignore_lease");
	return 0;
}

static int do_put(struct req_ctx *q, const Etcdserverpb__PutRequest *r,
                  Etcdserverpb__PutResponse *resp)
{
	struct kv *kv = q->kv;
	struct kv_rec prev, rec;
	char *raw = NULL;
	bool has_prev;
	int rc = kv_view_latest(&q->view, r->key.data, r->key.len, &raw, &prev);

	if (rc && rc != MOOR_ENOTFOUND)
		return rc;
	has_prev = rc == 0;
	if ((r->ignore_value || r->ignore_lease) && !has_prev) {
		rc = kv_fail(kv, MOOR_EKEYNOTFOUND,
		             "kv: ignore_value/ignore_lease on a missing key");
		goto out;
	}
	memset(&rec, 0, sizeof rec);
	rec.key = r->key.data;
	rec.key_len = r->key.len;
	rec.value = r->ignore_value ? prev.value : r->value.data;
	rec.value_len = r->ignore_value ? prev.value_len : r->value.len;
	rec.lease = r->ignore_lease ? prev.lease : r->lease;
	rec.mod = (struct kv_rev){q->main, q->sub};
	rec.create_rev = has_prev ? prev.create_rev : q->main;
	rec.version = has_prev ? prev.version + 1 : 1;
	if (rec.lease && rec.lease != (has_prev ? prev.lease : 0)) {
		rc = lease_exists(q, rec.lease);
		if (rc)
			goto out;
	}
	rc = write_change(q, &rec, has_prev ? &prev : NULL);
	if (rc)
		goto out;
	q->sub++;
	if (r->prev_kv && has_prev) {
		resp->prev_kv = kv_arena_kv(q->ar, &prev, false);
		if (!resp->prev_kv)
			rc = MOOR_ENOMEM;
	}
out:
	rocksdb_free(raw);
	return rc;
}

/* Delete one key whose latest record is `prev`. */
static int delete_one(struct req_ctx *q, const struct kv_rec *prev)
{
	struct kv_rec rec;
	int rc;

	memset(&rec, 0, sizeof rec);
	rec.flags = KV_REC_TOMB;
	rec.key = prev->key;
	rec.key_len = prev->key_len;
	rec.mod = (struct kv_rev){q->main, q->sub};
	rc = write_change(q, &rec, prev);
	if (rc == 0)
		q->sub++;
	return rc;
}

/* Collected latest records to delete (copied: the iterator moves on). */
struct del_acc {
	struct req_ctx *q;
	char **raws;
	size_t *lens;
	size_t n, cap;
};

static int del_visit(void *ctx, const struct kv_rec *rec)
{
	struct del_acc *d = ctx;
	const struct moor_alloc *a = d->q->kv->alloc;
	struct kv_kbuf v;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		char **r = moor_realloc(a, d->raws, cap * sizeof *r);

		if (!r)
			return MOOR_ENOMEM;
		d->raws = r;
		size_t *l = moor_realloc(a, d->lens, cap * sizeof *l);

		if (!l)
			return MOOR_ENOMEM;
		d->lens = l;
		d->cap = cap;
	}
	kv_kbuf_init(&v);
	if (kv_rec_encode(a, &v, rec) != 0)
		return MOOR_ENOMEM;
	d->raws[d->n] = moor_memdup(a, v.p, v.len);
	d->lens[d->n] = v.len;
	kv_kbuf_free(a, &v);
	if (!d->raws[d->n])
		return MOOR_ENOMEM;
	d->n++;
	return 0;
}

static void del_acc_free(struct del_acc *d)
{
	const struct moor_alloc *a = d->q->kv->alloc;

	for (size_t i = 0; i < d->n; i++)
		moor_free(a, d->raws[i]);
	moor_free(a, d->raws);
	moor_free(a, d->lens);
}

static int do_delete(struct req_ctx *q, const Etcdserverpb__DeleteRangeRequest *r,
                     Etcdserverpb__DeleteRangeResponse *resp)
{
	struct del_acc d = {.q = q};
	int rc = kv_visit_latest(&q->view, &r->key, &r->range_end, del_visit, &d);

	if (rc == 0 && r->prev_kv && d.n) {
		resp->prev_kvs = kv_arena_alloc(q->ar, d.n * sizeof *resp->prev_kvs);
		if (!resp->prev_kvs)
			rc = MOOR_ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		struct kv_rec prev;

		rc = kv_rec_decode(d.raws[i], d.lens[i], &prev);
		MOOR_ASSERT(rc == 0);
		rc = delete_one(q, &prev);
		if (rc == 0 && r->prev_kv) {
			resp->prev_kvs[resp->n_prev_kvs] = kv_arena_kv(q->ar, &prev, false);
			if (!resp->prev_kvs[resp->n_prev_kvs++])
				rc = MOOR_ENOMEM;
		}
	}
	resp->deleted = rc == 0 ? (int64_t)d.n : 0;
	del_acc_free(&d);
	return rc;
}

static int check_delete(struct kv *kv, const Etcdserverpb__DeleteRangeRequest *r)
{
	return kv_check_key_range(kv, &r->key, &r->range_end);
}

/* ---- public write calls ------------------------------------------------------ */

#define BEGIN_REQ(kv, index, out, T, init)                          \
	struct req_ctx q;                                           \
	T *resp;                                                    \
	int rc;                                                     \
	*(out) = NULL;                                              \
	if (kv_req_start((kv), (index), &q))                        \
		return 0;                                           \
	resp = kv_arena_new_root((kv)->alloc, sizeof *resp, &q.ar); \
	if (!resp)                                                  \
		return kv_req_end(&q, MOOR_ENOMEM);                 \
	init(resp)

static int finish(struct req_ctx *q, int rc, void *resp, Etcdserverpb__ResponseHeader **hdr,
                  void **out)
{
	if (rc == 0) {
		*hdr = kv_arena_header(q->ar, q->sub > 0 ? q->main : q->kv->b_rev);
		if (!*hdr)
			rc = MOOR_ENOMEM;
	}
	rc = kv_req_end(q, rc);
	if (rc) {
		kv_response_free(resp);
		return rc;
	}
	*out = resp;
	return 0;
}

int kv_batch_put(struct kv *kv, uint64_t index, const Etcdserverpb__PutRequest *req,
                 Etcdserverpb__PutResponse **out)
{
	BEGIN_REQ(kv, index, out, Etcdserverpb__PutResponse, etcdserverpb__put_response__init);
	rc = check_put(kv, req);
	if (rc == 0)
		rc = do_put(&q, req, resp);
	return finish(&q, rc, resp, &resp->header, (void **)out);
}

int kv_batch_delete_range(struct kv *kv, uint64_t index,
                          const Etcdserverpb__DeleteRangeRequest *req,
                          Etcdserverpb__DeleteRangeResponse **out)
{
	BEGIN_REQ(kv, index, out, Etcdserverpb__DeleteRangeResponse,
	          etcdserverpb__delete_range_response__init);
	rc = check_delete(kv, req);
	if (rc == 0)
		rc = do_delete(&q, req, resp);
	return finish(&q, rc, resp, &resp->header, (void **)out);
}

int kv_batch_compact(struct kv *kv, uint64_t index, const Etcdserverpb__CompactionRequest *req,
                     Etcdserverpb__CompactionResponse **out)
{
	BEGIN_REQ(kv, index, out, Etcdserverpb__CompactionResponse,
	          etcdserverpb__compaction_response__init);
	if (req->revision <= kv->b_compact)
		rc = kv_fail(kv, MOOR_ECOMPACTED,
		             "kv: compaction at %lld, already compacted at %lld",
		             (long long)req->revision, (long long)kv->b_compact);
	else if (req->revision > kv->b_rev)
		rc = kv_fail(kv, MOOR_EFUTUREREV, "kv: compaction at %lld above revision %lld",
		             (long long)req->revision, (long long)kv->b_rev);
	else {
		kv->b_compact = req->revision;
		rc = 0;
	}
	return finish(&q, rc, resp, &resp->header, (void **)out);
}

int kv_batch_lease_grant(struct kv *kv, uint64_t index, const Etcdserverpb__LeaseGrantRequest *req,
                         Etcdserverpb__LeaseGrantResponse **out)
{
	struct kv_kbuf k;
	unsigned char ttl[8];

	BEGIN_REQ(kv, index, out, Etcdserverpb__LeaseGrantResponse,
	          etcdserverpb__lease_grant_response__init);
	kv_kbuf_init(&k);
	if (req->id <= 0 || req->ttl <= 0) {
		rc = kv_fail(kv, MOOR_EINVAL, "kv: lease grant needs ID > 0 and TTL > 0");
	} else {
		rc = lease_exists(&q, req->id);
		if (rc == 0)
			rc = kv_fail(kv, MOOR_ELEASEEXISTS, "kv: lease %lld exists",
			             (long long)req->id);
		else if (rc == MOOR_ELEASENOTFOUND)
			rc = kv_key_lease(kv->alloc, &k, req->id);
	}
	if (rc == 0) {
		moor_put_be64(ttl, (uint64_t)req->ttl);
		wb_put(kv, &k, ttl, 8);
		resp->id = req->id;
		resp->ttl = req->ttl;
	}
	kv_kbuf_free(kv->alloc, &k);
	return finish(&q, rc, resp, &resp->header, (void **)out);
}

int kv_batch_lease_revoke(struct kv *kv, uint64_t index,
                          const Etcdserverpb__LeaseRevokeRequest *req,
                          Etcdserverpb__LeaseRevokeResponse **out)
{
	struct kv_kbuf k, pfx;
	struct del_acc d;
	rocksdb_iterator_t *it = NULL;

	BEGIN_REQ(kv, index, out, Etcdserverpb__LeaseRevokeResponse,
	          etcdserverpb__lease_revoke_response__init);
	kv_kbuf_init(&k);
	kv_kbuf_init(&pfx);
	d = (struct del_acc){.q = &q};
	rc = lease_exists(&q, req->id);
	if (rc == 0)
		rc = kv_key_attach(kv->alloc, &pfx, req->id, "", 0);
	if (rc == 0) {
		it = kv_view_iter(&q.view);
		if (!it)
			rc = MOOR_ENOMEM;
	}
	/* Gather the attached keys' latest records, then delete them all. */
	if (it)
		rocksdb_iter_seek(it, (char *)pfx.p, pfx.len);
	for (; rc == 0 && it && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl;
		const char *ik = rocksdb_iter_key(it, &kl);
		struct kv_rec rec;
		char *raw = NULL;

		if (kl <= pfx.len || memcmp(ik, pfx.p, pfx.len) != 0)
			break;
		rc = kv_view_latest(&q.view, ik + pfx.len, kl - pfx.len, &raw, &rec);
		if (rc == 0)
			rc = del_visit(&d, &rec);
		else if (rc == MOOR_ENOTFOUND)
			rc = kv_fail(kv, MOOR_ECORRUPT, "kv: lease %lld attaches a missing key",
			             (long long)req->id);
		rocksdb_free(raw);
	}
	if (it)
		rocksdb_iter_destroy(it);
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		struct kv_rec prev;

		rc = kv_rec_decode(d.raws[i], d.lens[i], &prev);
		MOOR_ASSERT(rc == 0);
		rc = delete_one(&q, &prev);
	}
	if (rc == 0)
		rc = kv_key_lease(kv->alloc, &k, req->id);
	if (rc == 0)
		wb_del(kv, &k);
	del_acc_free(&d);
	kv_kbuf_free(kv->alloc, &k);
	kv_kbuf_free(kv->alloc, &pfx);
	return finish(&q, rc, resp, &resp->header, (void **)out);
}

int kv_batch_meta_put(struct kv *kv, uint64_t index, const char *name, const void *val, size_t len)
{
	struct req_ctx q;
	struct kv_kbuf k;
	int rc;

	if (kv_req_start(kv, index, &q))
		return 0;
	kv_kbuf_init(&k);
	if (!name || strlen(name) == 0 || strlen(name) > KV_MAX_META_NAME_BYTES)
		rc = kv_fail(kv, MOOR_EINVAL, "kv: meta name must be 1..%d bytes",
		             KV_MAX_META_NAME_BYTES);
	else if (len > kv->max_value)
		rc = kv_fail(kv, MOOR_ETOOLARGE, "kv: meta record of %zu bytes", len);
	else
		rc = kv_kbuf_add(kv->alloc, &k, "mu/", 3);
	if (rc == 0)
		rc = kv_kbuf_add(kv->alloc, &k, name, strlen(name));
	if (rc == 0) {
		if (len)
			wb_put(kv, &k, val, len);
		else
			wb_del(kv, &k);
	}
	kv_kbuf_free(kv->alloc, &k);
	return kv_req_end(&q, rc);
}

/* ---- txn (txn.c) -------------------------------------------------------------- */

int kv_txn_put(struct req_ctx *q, const Etcdserverpb__PutRequest *r,
               Etcdserverpb__PutResponse *resp)
{
	return do_put(q, r, resp);
}

int kv_txn_delete(struct req_ctx *q, const Etcdserverpb__DeleteRangeRequest *r,
                  Etcdserverpb__DeleteRangeResponse *resp)
{
	return do_delete(q, r, resp);
}

int kv_txn_check_put(struct kv *kv, const Etcdserverpb__PutRequest *r)
{
	return check_put(kv, r);
}

int kv_txn_check_delete(struct kv *kv, const Etcdserverpb__DeleteRangeRequest *r)
{
	return check_delete(kv, r);
}

int kv_batch_txn(struct kv *kv, uint64_t index, const Etcdserverpb__TxnRequest *req,
                 Etcdserverpb__TxnResponse **out)
{
	BEGIN_REQ(kv, index, out, Etcdserverpb__TxnResponse, etcdserverpb__txn_response__init);
	rc = kv_txn_check(kv, req);
	if (rc == 0)
		rc = kv_txn_exec(&q, req, resp);
	if (rc == 0)
		rc = kv_txn_headers(q.ar, resp, q.sub > 0 ? q.main : kv->b_rev);
	return finish(&q, rc, resp, &resp->header, (void **)out);
}

/*
 * The store-versus-model harness (harness.h).
 */
#include "tests/kv/harness.h"

#include "common/error.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_events(void *ctx, Mvccpb__Event *const *events, size_t n)
{
	struct harness *h = ctx;

	for (size_t i = 0; i < n; i++) {
		if (h->nev == h->capev) {
			h->capev = h->capev ? h->capev * 2 : 64;
			h->ev = realloc(h->ev, h->capev * sizeof *h->ev);
			if (!h->ev)
				abort();
		}
		size_t sz = protobuf_c_message_get_packed_size(&events[i]->base);
		uint8_t *p = malloc(sz ? sz : 1);

		if (!p)
			abort();
		protobuf_c_message_pack(&events[i]->base, p);
		h->ev[h->nev++] = (struct packed){p, sz};
	}
}

static void events_clear(struct harness *h)
{
	for (size_t i = 0; i < h->nev; i++)
		free(h->ev[i].p);
	h->nev = 0;
}

int harness_reopen(struct harness *h)
{
	struct kv_config cfg = {
	    .path = h->store,
	    .on_events = on_events,
	    .events_ctx = h,
	    .write_buffer_bytes = h->write_buffer_bytes,
	    .block_cache_bytes = 8u << 20,
	};

	if (h->kv)
		kv_close(h->kv);
	h->kv = NULL;
	return kv_open(&cfg, &h->kv);
}

int harness_open(struct harness *h, uint64_t seed, size_t write_buffer_bytes)
{
	memset(h, 0, sizeof *h);
	snprintf(h->dir, sizeof h->dir, "/tmp/moor-kv-XXXXXX");
	if (!mkdtemp(h->dir))
		return -1;
	snprintf(h->store, sizeof h->store, "%s/store", h->dir);
	h->rng.s = seed;
	h->write_buffer_bytes = write_buffer_bytes;
	h->where = "";
	model_init(&h->m);
	return harness_reopen(h);
}

void harness_close(struct harness *h, bool remove_dir)
{
	kv_close(h->kv);
	h->kv = NULL;
	model_free(&h->m);
	events_clear(h);
	free(h->ev);
	if (remove_dir)
		rm_rf(h->dir);
}

static bool same_rc(struct harness *h, const char *what, int krc, int mrc)
{
	if (krc == mrc)
		return true;
	fprintf(stderr, "%s%s: store returned %d (%s: %s), model %d (%s)\n", h->where, what, krc,
	        moor_errname(krc), kv_errmsg(h->kv), mrc, moor_errname(mrc));
	return false;
}

static void pfree(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

static bool apply_replay(struct harness *h, const struct gen_op *op, uint64_t index)
{
	void *k = (void *)1, *mm = NULL;
	int krc = 0;

	switch (op->kind) {
	case GEN_PUT:
		krc = kv_batch_put(h->kv, index, op->put, (Etcdserverpb__PutResponse **)&k);
		model_put(&h->m, op->put, (Etcdserverpb__PutResponse **)&mm);
		break;
	case GEN_DELETE:
		krc = kv_batch_delete_range(h->kv, index, op->del,
		                            (Etcdserverpb__DeleteRangeResponse **)&k);
		model_delete(&h->m, op->del, (Etcdserverpb__DeleteRangeResponse **)&mm);
		break;
	case GEN_TXN:
		krc = kv_batch_txn(h->kv, index, op->txn, (Etcdserverpb__TxnResponse **)&k);
		model_txn(&h->m, op->txn, (Etcdserverpb__TxnResponse **)&mm);
		break;
	case GEN_COMPACT: {
		Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;

		req.revision = op->compact_rev;
		krc = kv_batch_compact(h->kv, index, &req, (Etcdserverpb__CompactionResponse **)&k);
		model_compact(&h->m, op->compact_rev);
		break;
	}
	case GEN_GRANT: {
		Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;

		req.id = op->lease_id;
		req.ttl = op->lease_ttl;
		krc = kv_batch_lease_grant(h->kv, index, &req,
		                           (Etcdserverpb__LeaseGrantResponse **)&k);
		model_lease_grant(&h->m, op->lease_id, op->lease_ttl);
		break;
	}
	case GEN_REVOKE: {
		Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;

		req.id = op->lease_id;
		krc = kv_batch_lease_revoke(h->kv, index, &req,
		                            (Etcdserverpb__LeaseRevokeResponse **)&k);
		model_lease_revoke(&h->m, op->lease_id, (Etcdserverpb__LeaseRevokeResponse **)&mm);
		break;
	}
	}
	if (mm)
		protobuf_c_message_free_unpacked(mm, NULL);
	if (krc != 0 || k != NULL) {
		fprintf(stderr, "%sreplayed index %llu was not ignored (rc %d)\n", h->where,
		        (unsigned long long)index, krc);
		kv_response_free(krc == 0 ? k : NULL);
		return false;
	}
	return true;
}

bool harness_apply(struct harness *h, const struct gen_op *op, bool model)
{
	uint64_t index = ++h->index;
	bool ok = true;
	int krc, mrc = 0;

	if (index <= h->replay_upto)
		return apply_replay(h, op, index);

	switch (op->kind) {
	case GEN_PUT: {
		Etcdserverpb__PutResponse *k = NULL, *mm = NULL;

		krc = kv_batch_put(h->kv, index, op->put, &k);
		if (model) {
			mrc = model_put(&h->m, op->put, &mm);
			ok = same_rc(h, "put", krc, mrc) &&
			     msg_equal("put response", k ? &k->base : NULL, mm ? &mm->base : NULL);
		}
		kv_response_free(k);
		pfree(mm);
		break;
	}
	case GEN_DELETE: {
		Etcdserverpb__DeleteRangeResponse *k = NULL, *mm = NULL;

		krc = kv_batch_delete_range(h->kv, index, op->del, &k);
		if (model) {
			mrc = model_delete(&h->m, op->del, &mm);
			ok = same_rc(h, "delete", krc, mrc) &&
			     msg_equal("delete response", k ? &k->base : NULL,
			               mm ? &mm->base : NULL);
		}
		kv_response_free(k);
		pfree(mm);
		break;
	}
	case GEN_TXN: {
		Etcdserverpb__TxnResponse *k = NULL, *mm = NULL;

		krc = kv_batch_txn(h->kv, index, op->txn, &k);
		if (model) {
			mrc = model_txn(&h->m, op->txn, &mm);
			ok = same_rc(h, "txn", krc, mrc) &&
			     msg_equal("txn response", k ? &k->base : NULL, mm ? &mm->base : NULL);
			if (!ok)
				harness_print_txn(op->txn, 1);
		}
		kv_response_free(k);
		pfree(mm);
		break;
	}
	case GEN_COMPACT: {
		Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
		Etcdserverpb__CompactionResponse *k = NULL;

		req.revision = op->compact_rev;
		krc = kv_batch_compact(h->kv, index, &req, &k);
		if (model) {
			mrc = model_compact(&h->m, op->compact_rev);
			ok = same_rc(h, "compact", krc, mrc);
			if (ok && k && k->header->revision != h->m.rev) {
				fprintf(stderr, "compact header revision %lld, model %lld\n",
				        (long long)k->header->revision, (long long)h->m.rev);
				ok = false;
			}
		}
		kv_response_free(k);
		break;
	}
	case GEN_GRANT: {
		Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
		Etcdserverpb__LeaseGrantResponse *k = NULL;

		req.id = op->lease_id;
		req.ttl = op->lease_ttl;
		krc = kv_batch_lease_grant(h->kv, index, &req, &k);
		if (model) {
			mrc = model_lease_grant(&h->m, op->lease_id, op->lease_ttl);
			ok = same_rc(h, "lease grant", krc, mrc);
			if (ok && k &&
			    (k->id != req.id || k->ttl != req.ttl ||
			     k->header->revision != h->m.rev))
				ok = false;
		}
		kv_response_free(k);
		break;
	}
	case GEN_REVOKE: {
		Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
		Etcdserverpb__LeaseRevokeResponse *k = NULL, *mm = NULL;

		req.id = op->lease_id;
		krc = kv_batch_lease_revoke(h->kv, index, &req, &k);
		if (model) {
			mrc = model_lease_revoke(&h->m, op->lease_id, &mm);
			ok = same_rc(h, "lease revoke", krc, mrc) &&
			     msg_equal("revoke response", k ? &k->base : NULL,
			               mm ? &mm->base : NULL);
		}
		kv_response_free(k);
		pfree(mm);
		break;
	}
	}
	return ok;
}

bool harness_commit(struct harness *h, uint64_t last_index, bool model)
{
	bool ok = true;
	int rc = kv_batch_commit(h->kv, last_index, 1);

	if (rc) {
		fprintf(stderr, "%scommit: %s\n", h->where, kv_errmsg(h->kv));
		return false;
	}
	if (model && last_index <= h->replay_upto) {
		/* a replayed batch: nothing new, no events */
		if (h->nev) {
			fprintf(stderr, "%sreplayed batch produced %zu events\n", h->where, h->nev);
			ok = false;
		}
		model_events_clear(&h->m);
	} else if (model) {
		if (h->nev != h->m.nev) {
			fprintf(stderr, "%sbatch events: store %zu, model %zu\n", h->where, h->nev,
			        h->m.nev);
			ok = false;
		}
		for (size_t i = 0; ok && i < h->nev; i++) {
			Mvccpb__Event *e = mvccpb__event__unpack(NULL, h->ev[i].n, h->ev[i].p);

			ok = e && msg_equal("event", &e->base, &h->m.ev[i]->base);
			pfree(e);
		}
		model_events_clear(&h->m);
	}
	events_clear(h);
	return ok;
}

static bool check_range(struct harness *h, const Etcdserverpb__RangeRequest *req)
{
	Etcdserverpb__RangeResponse *k = NULL, *mm = NULL;
	int krc = kv_range(h->kv, req, &k), mrc = model_range(&h->m, req, &mm);
	bool ok = same_rc(h, "range", krc, mrc) &&
	          msg_equal("range response", k ? &k->base : NULL, mm ? &mm->base : NULL);

	kv_response_free(k);
	pfree(mm);
	return ok;
}

bool harness_check_state(struct harness *h)
{
	Etcdserverpb__RangeRequest all = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__LeaseLeasesResponse *ll = NULL;
	struct kv_status st;
	bool ok;

	all.key = (ProtobufCBinaryData){1, (uint8_t *)""};
	all.range_end = (ProtobufCBinaryData){1, (uint8_t *)""};
	ok = check_range(h, &all);
	kv_status(h->kv, &st);
	if (st.revision != h->m.rev || st.compact_revision != h->m.compact) {
		fprintf(stderr, "%sstatus: revision %lld compact %lld, model %lld %lld\n", h->where,
		        (long long)st.revision, (long long)st.compact_revision, (long long)h->m.rev,
		        (long long)h->m.compact);
		ok = false;
	}
	if (kv_lease_leases(h->kv, &ll) != 0) {
		fprintf(stderr, "%sleases failed\n", h->where);
		return false;
	}
	if (ll->n_leases != h->m.nleases) {
		fprintf(stderr, "%sleases: store %zu, model %zu\n", h->where, ll->n_leases,
		        h->m.nleases);
		ok = false;
	}
	for (size_t i = 0; ok && i < ll->n_leases; i++)
		if (!model_lease_exists(&h->m, ll->leases[i]->id))
			ok = false;
	kv_response_free(ll);
	/* every lease's attached keys: the live keys carrying it, ascending */
	for (size_t i = 0; ok && i < h->m.nleases; i++) {
		Etcdserverpb__LeaseTimeToLiveRequest q =
		    ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
		Etcdserverpb__LeaseTimeToLiveResponse *t = NULL;
		size_t n = 0;

		q.id = h->m.leases[i].id;
		q.keys = 1;
		if (kv_lease_timetolive(h->kv, &q, &t) != 0 ||
		    t->grantedttl != h->m.leases[i].ttl) {
			fprintf(stderr, "%slease %lld: timetolive differs\n", h->where,
			        (long long)q.id);
			kv_response_free(t);
			return false;
		}
		for (int k = 0; ok && k < MODEL_NKEYS; k++) {
			const struct mkey *mk = &h->m.keys[k];
			const struct mver *v = mk->n ? &mk->v[mk->n - 1] : NULL;

			if (!v || v->tomb || v->lease != q.id)
				continue;
			ok = n < t->n_keys && t->keys[n].len == mk->klen &&
			     memcmp(t->keys[n].data, mk->key, mk->klen) == 0;
			n++;
		}
		if (!ok || n != t->n_keys) {
			fprintf(stderr, "%slease %lld: %zu attached keys, model %zu\n", h->where,
			        (long long)q.id, t->n_keys, n);
			ok = false;
		}
		kv_response_free(t);
	}
	return ok;
}

static bool check_history(struct harness *h, int64_t from, size_t max, bool prev)
{
	struct kv_history kh;
	Mvccpb__Event **mev = NULL;
	size_t mn = 0;
	int64_t mnext = 0;
	int krc = kv_history_read(h->kv, from, max, prev, &kh);
	int mrc = model_history(&h->m, from, max, prev, &mev, &mn, &mnext);
	bool ok = same_rc(h, "history", krc, mrc);

	if (ok && krc == 0) {
		if (kh.n_events != mn || kh.next_rev != mnext) {
			fprintf(
			    stderr,
			    "%shistory from %lld max %zu: store %zu events next %lld, model %zu "
			    "next %lld\n",
			    h->where, (long long)from, max, kh.n_events, (long long)kh.next_rev, mn,
			    (long long)mnext);
			ok = false;
		}
		for (size_t i = 0; ok && i < mn; i++)
			ok = msg_equal("history event", &kh.events[i]->base, &mev[i]->base);
	}
	if (krc == MOOR_ECOMPACTED && kh.compact_revision != h->m.compact) {
		fprintf(stderr, "%shistory compacted at %lld, model %lld\n", h->where,
		        (long long)kh.compact_revision, (long long)h->m.compact);
		ok = false;
	}
	if (krc == 0)
		kv_history_free(&kh);
	for (size_t i = 0; i < mn; i++)
		pfree(mev[i]);
	free(mev);
	return ok;
}

bool harness_random_read(struct harness *h)
{
	if (rng_below(&h->rng, 3) == 0) {
		int64_t lo = h->m.compact > 2 ? h->m.compact - 2 : 0;
		int64_t from = lo + (int64_t)rng_below(&h->rng, (unsigned)(h->m.rev + 2 - lo));

		return check_history(h, from, rng_below(&h->rng, 12), rng_below(&h->rng, 2));
	}
	Etcdserverpb__RangeRequest *req = gen_range(&h->rng, &h->m);
	bool ok = check_range(h, req);

	pfree(req);
	return ok;
}

static void print_bytes(const ProtobufCBinaryData *b)
{
	fputc('"', stderr);
	for (size_t i = 0; i < b->len; i++)
		if (b->data[i] >= 0x20 && b->data[i] < 0x7f)
			fputc(b->data[i], stderr);
		else
			fprintf(stderr, "\\x%02x", b->data[i]);
	fputc('"', stderr);
}

static void print_ops(Etcdserverpb__RequestOp **ops, size_t n, int depth);

void harness_print_txn(const Etcdserverpb__TxnRequest *t, int depth)
{
	for (size_t i = 0; i < t->n_compare; i++) {
		fprintf(stderr, "%*scompare target %d result %d key ", depth * 2, "",
		        t->compare[i]->target, t->compare[i]->result);
		print_bytes(&t->compare[i]->key);
		fprintf(stderr, " end ");
		print_bytes(&t->compare[i]->range_end);
		fprintf(stderr, "\n");
	}
	fprintf(stderr, "%*ssuccess:\n", depth * 2, "");
	print_ops(t->success, t->n_success, depth + 1);
	fprintf(stderr, "%*sfailure:\n", depth * 2, "");
	print_ops(t->failure, t->n_failure, depth + 1);
}

static void print_ops(Etcdserverpb__RequestOp **ops, size_t n, int depth)
{
	for (size_t i = 0; i < n; i++) {
		const Etcdserverpb__RequestOp *o = ops[i];

		fprintf(stderr, "%*s", depth * 2, "");
		switch (o->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			fprintf(stderr, "range ");
			print_bytes(&o->request_range->key);
			print_bytes(&o->request_range->range_end);
			fprintf(stderr, " rev %lld\n", (long long)o->request_range->revision);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			fprintf(stderr, "put ");
			print_bytes(&o->request_put->key);
			fprintf(stderr, " lease %lld\n", (long long)o->request_put->lease);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
			fprintf(stderr, "delete ");
			print_bytes(&o->request_delete_range->key);
			print_bytes(&o->request_delete_range->range_end);
			fprintf(stderr, "\n");
			break;
		default:
			fprintf(stderr, "txn\n");
			harness_print_txn(o->request_txn, depth + 1);
			break;
		}
	}
}

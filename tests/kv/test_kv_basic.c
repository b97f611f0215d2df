/*
 * The store's semantics, one behaviour per test: revisions and versions,
 * bad input, events, txns, leases, compaction (logical and physical),
 * history reads, snapshots, meta records, reopen, allocation failures.
 */
#include "kv/kv.h"
#include "tests/kv/harness.h"

#include "common/alloc.h"
#include "common/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>

struct fx {
	char dir[64];
	char path[128];
	struct kv *kv;
	uint64_t index;
	Mvccpb__Event *ev[64]; /* packed copies unpacked again */
	size_t nev;
	struct moor_alloc_failing fa;
	bool use_fa;
	size_t max_key;
};

static void on_events(void *ctx, Mvccpb__Event *const *events, size_t n)
{
	struct fx *f = ctx;

	for (size_t i = 0; i < n && f->nev < 64; i++) {
		size_t sz = protobuf_c_message_get_packed_size(&events[i]->base);
		uint8_t *p = malloc(sz + 1);

		protobuf_c_message_pack(&events[i]->base, p);
		f->ev[f->nev++] = mvccpb__event__unpack(NULL, sz, p);
		free(p);
	}
}

static void clear_events(struct fx *f)
{
	for (size_t i = 0; i < f->nev; i++)
		mvccpb__event__free_unpacked(f->ev[i], NULL);
	f->nev = 0;
}

static int fx_open(struct fx *f)
{
	struct kv_config cfg = {
	    .path = f->path,
	    .on_events = on_events,
	    .events_ctx = f,
	    .block_cache_bytes = 4u << 20,
	    .alloc = f->use_fa ? &f->fa.alloc : NULL,
	    .max_key_bytes = f->max_key,
	    .max_txn_ops = 8,
	};

	return kv_open(&cfg, &f->kv);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/moor-kvb-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/kv", f->dir);
	f->max_key = 64;
	assert_int_equal(fx_open(f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kv_close(f->kv);
	clear_events(f);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static ProtobufCBinaryData B(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

/* One put in its own batch; returns the rc. */
static int put(struct fx *f, const char *k, const char *v, int64_t lease)
{
	Etcdserverpb__PutRequest r = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutResponse *resp = NULL;
	int rc;

	r.key = B(k);
	r.value = B(v);
	r.lease = lease;
	assert_int_equal(kv_batch_begin(f->kv), 0);
	rc = kv_batch_put(f->kv, ++f->index, &r, &resp);
	kv_response_free(resp);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
	return rc;
}

static int del(struct fx *f, const char *k, const char *end)
{
	Etcdserverpb__DeleteRangeRequest r = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__DeleteRangeResponse *resp = NULL;
	int rc;

	r.key = B(k);
	r.range_end = B(end);
	assert_int_equal(kv_batch_begin(f->kv), 0);
	rc = kv_batch_delete_range(f->kv, ++f->index, &r, &resp);
	kv_response_free(resp);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
	return rc;
}

static int compact(struct fx *f, int64_t rev)
{
	Etcdserverpb__CompactionRequest r = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	Etcdserverpb__CompactionResponse *resp = NULL;
	int rc;

	r.revision = rev;
	assert_int_equal(kv_batch_begin(f->kv), 0);
	rc = kv_batch_compact(f->kv, ++f->index, &r, &resp);
	kv_response_free(resp);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
	return rc;
}

/* Get one key at rev; returns rc; fills *kv copy fields. */
static int get(struct fx *f, const char *k, int64_t rev, Mvccpb__KeyValue *out, bool *found)
{
	Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *resp = NULL;
	int rc;

	r.key = B(k);
	r.revision = rev;
	rc = kv_range(f->kv, &r, &resp);
	*found = false;
	if (rc == 0 && resp->n_kvs == 1) {
		*found = true;
		*out = *resp->kvs[0];
		out->key.data = NULL;
		out->value.data = NULL;
	}
	kv_response_free(resp);
	return rc;
}

static int64_t revision(struct fx *f)
{
	struct kv_status st;

	kv_status(f->kv, &st);
	return st.revision;
}

static void a_new_store_starts_at_revision_one(void **state)
{
	struct fx *f = *state;
	struct kv_status st;

	kv_status(f->kv, &st);
	assert_int_equal(st.revision, 1);
	assert_int_equal(st.compact_revision, 0);
	assert_int_equal(st.applied_index, 0);
}

static void puts_advance_revision_and_version_and_a_delete_resets_the_version(void **state)
{
	struct fx *f = *state;
	Mvccpb__KeyValue kv;
	bool found;

	assert_int_equal(put(f, "k", "v1", 0), 0);
	assert_int_equal(put(f, "k", "v2", 0), 0);
	assert_int_equal(get(f, "k", 0, &kv, &found), 0);
	assert_true(found);
	assert_int_equal(kv.create_revision, 2);
	assert_int_equal(kv.mod_revision, 3);
	assert_int_equal(kv.version, 2);
	assert_int_equal(del(f, "k", ""), 0);
	assert_int_equal(revision(f), 4);
	assert_int_equal(get(f, "k", 0, &kv, &found), 0);
	assert_false(found);
	assert_int_equal(put(f, "k", "v3", 0), 0);
	assert_int_equal(get(f, "k", 0, &kv, &found), 0);
	assert_int_equal(kv.create_revision, 5);
	assert_int_equal(kv.version, 1);
	/* the old value is still readable at its revision */
	assert_int_equal(get(f, "k", 3, &kv, &found), 0);
	assert_true(found);
	assert_int_equal(kv.version, 2);
	assert_int_equal(get(f, "k", 4, &kv, &found), 0);
	assert_false(found);
	assert_int_equal(get(f, "k", 6, &kv, &found), MOOR_EFUTUREREV);
}

static void deleting_a_missing_key_does_not_advance_the_revision(void **state)
{
	struct fx *f = *state;

	assert_int_equal(del(f, "nothing", ""), 0);
	assert_int_equal(revision(f), 1);
}

static uint32_t hash(struct fx *f)
{
	uint32_t h;
	int64_t c, r;

	assert_int_equal(kv_hash_kv(f->kv, 0, &h, &c, &r), 0);
	return h;
}

static void bad_input_gets_distinct_codes_and_leaves_the_store_unchanged(void **state)
{
	struct fx *f = *state;
	Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *rresp = NULL;
	Etcdserverpb__PutRequest pr = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutResponse *presp = NULL;
	Etcdserverpb__TxnRequest tr = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__TxnResponse *tresp = NULL;
	Etcdserverpb__RequestOp ops[9], *opp[9];
	Etcdserverpb__PutRequest puts[9];
	char big[100];
	uint32_t h0;

	assert_int_equal(put(f, "a", "1", 0), 0);
	h0 = hash(f);

	rr.key = B("");
	assert_int_equal(kv_range(f->kv, &rr, &rresp), MOOR_EEMPTYKEY);
	rr.key = B("b");
	rr.range_end = B("a"); /* below the key: empty, as in etcd */
	assert_int_equal(kv_range(f->kv, &rr, &rresp), 0);
	assert_int_equal(rresp->n_kvs, 0);
	assert_int_equal(rresp->count, 0);
	kv_response_free(rresp);
	rresp = NULL;
	rr.range_end = B("c");
	rr.sort_target = 9;
	assert_int_equal(kv_range(f->kv, &rr, &rresp), MOOR_ESORT);
	rr.sort_target = 0;
	rr.limit = -1; /* no limit, as in etcd */
	rr.key = B("a");
	assert_int_equal(kv_range(f->kv, &rr, &rresp), 0);
	assert_int_equal(rresp->n_kvs, 1);
	assert_false(rresp->more);
	kv_response_free(rresp);
	rresp = NULL;

	assert_int_equal(kv_batch_begin(f->kv), 0);
	pr.key = B("");
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &pr, &presp), MOOR_EEMPTYKEY);
	memset(big, 'x', sizeof big);
	pr.key = (ProtobufCBinaryData){sizeof big, (uint8_t *)big};
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &pr, &presp), MOOR_ETOOLARGE);
	pr.key = B("a");
	pr.value = B("v");
	pr.ignore_value = 1;
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &pr, &presp), MOOR_EVALUEPROVIDED);
	pr.ignore_value = 0;
	pr.ignore_lease = 1;
	pr.lease = 5;
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &pr, &presp), MOOR_ELEASEPROVIDED);
	pr.ignore_lease = 0;
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &pr, &presp), MOOR_ELEASENOTFOUND);
	pr.lease = 0;
	pr.key = B("missing");
	pr.value = B("");
	pr.ignore_value = 1;
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &pr, &presp), MOOR_EKEYNOTFOUND);
	assert_null(presp);

	/* a txn putting one key twice; then one with too many ops (max 8) */
	for (int i = 0; i < 9; i++) {
		etcdserverpb__request_op__init(&ops[i]);
		etcdserverpb__put_request__init(&puts[i]);
		puts[i].key =
		    B(i < 2 ? "dup"
		            : (const char *[]){"k2", "k3", "k4", "k5", "k6", "k7", "k8"}[i - 2]);
		ops[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		ops[i].request_put = &puts[i];
		opp[i] = &ops[i];
	}
	tr.success = opp;
	tr.n_success = 2;
	assert_int_equal(kv_batch_txn(f->kv, ++f->index, &tr, &tresp), MOOR_EDUPKEY);
	tr.success = opp + 1;
	tr.n_success = 8;
	assert_int_equal(kv_batch_txn(f->kv, ++f->index, &tr, &tresp), 0);
	kv_response_free(tresp);
	tr.success = opp;
	tr.n_success = 9;
	assert_int_equal(kv_batch_txn(f->kv, ++f->index, &tr, &tresp), MOOR_ETOOMANYOPS);
	assert_null(tresp);
	kv_batch_abort(f->kv); /* drop the one valid txn: nothing was written */
	assert_int_equal(revision(f), 2);
	assert_int_equal(hash(f), h0);
	assert_int_equal(f->nev, 1);
	/* and every code has its own message */
	assert_string_not_equal(moor_strerror(MOOR_EEMPTYKEY), moor_strerror(MOOR_ERANGEEND));
}

static void events_arrive_after_commit_in_revision_order_with_prev_kv(void **state)
{
	struct fx *f = *state;
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__PutResponse *pr;
	Etcdserverpb__DeleteRangeResponse *dr;

	assert_int_equal(kv_batch_begin(f->kv), 0);
	p.key = B("x");
	p.value = B("1");
	assert_int_equal(kv_batch_put(f->kv, 1, &p, &pr), 0);
	kv_response_free(pr);
	p.value = B("2");
	assert_int_equal(kv_batch_put(f->kv, 2, &p, &pr), 0);
	kv_response_free(pr);
	d.key = B("x");
	assert_int_equal(kv_batch_delete_range(f->kv, 3, &d, &dr), 0);
	assert_int_equal(dr->deleted, 1);
	kv_response_free(dr);
	assert_int_equal(f->nev, 0); /* nothing before the commit */
	assert_int_equal(kv_batch_commit(f->kv, 3, 7), 0);
	assert_int_equal(f->nev, 3);
	assert_int_equal(f->ev[0]->kv->mod_revision, 2);
	assert_null(f->ev[0]->prev_kv);
	assert_int_equal(f->ev[1]->kv->mod_revision, 3);
	assert_int_equal(f->ev[1]->prev_kv->mod_revision, 2);
	assert_int_equal(f->ev[2]->type, MVCCPB__EVENT__EVENT_TYPE__DELETE);
	assert_int_equal(f->ev[2]->kv->mod_revision, 4);
	assert_int_equal(f->ev[2]->prev_kv->version, 2);
	struct kv_status st;

	kv_status(f->kv, &st);
	assert_int_equal(st.applied_index, 3);
	assert_int_equal(st.applied_term, 7);
}

static void a_txn_that_writes_nothing_does_not_advance_the_revision(void **state)
{
	struct fx *f = *state;
	Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__Compare c = ETCDSERVERPB__COMPARE__INIT, *cp = &c;
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT, *opp = &op;
	Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__TxnResponse *resp;

	assert_int_equal(put(f, "a", "1", 0), 0);
	c.key = B("a");
	c.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
	c.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
	c.mod_revision = 2;
	r.key = B("a");
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	op.request_range = &r;
	t.compare = &cp;
	t.n_compare = 1;
	t.success = &opp;
	t.n_success = 1;
	assert_int_equal(kv_batch_begin(f->kv), 0);
	assert_int_equal(kv_batch_txn(f->kv, ++f->index, &t, &resp), 0);
	assert_true(resp->succeeded);
	assert_int_equal(resp->header->revision, 2);
	assert_int_equal(resp->responses[0]->response_range->n_kvs, 1);
	kv_response_free(resp);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
	assert_int_equal(revision(f), 2);
}

static void revoking_a_lease_deletes_its_keys_in_one_revision(void **state)
{
	struct fx *f = *state;
	Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	Etcdserverpb__LeaseGrantResponse *gr;
	Etcdserverpb__LeaseRevokeRequest rv = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	Etcdserverpb__LeaseRevokeResponse *rvr;
	Etcdserverpb__LeaseTimeToLiveRequest tq = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	Etcdserverpb__LeaseTimeToLiveResponse *tr;
	Mvccpb__KeyValue kv;
	bool found;

	g.id = 42;
	g.ttl = 10;
	assert_int_equal(kv_batch_begin(f->kv), 0);
	assert_int_equal(kv_batch_lease_grant(f->kv, ++f->index, &g, &gr), 0);
	kv_response_free(gr);
	assert_int_equal(kv_batch_lease_grant(f->kv, ++f->index, &g, &gr), MOOR_ELEASEEXISTS);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
	assert_int_equal(put(f, "l1", "v", 42), 0);
	assert_int_equal(put(f, "l2", "v", 42), 0);
	assert_int_equal(put(f, "l3", "v", 42), 0);
	assert_int_equal(put(f, "l3", "v", 0), 0); /* re-put without the lease detaches */
	tq.id = 42;
	tq.keys = 1;
	assert_int_equal(kv_lease_timetolive(f->kv, &tq, &tr), 0);
	assert_int_equal(tr->grantedttl, 10);
	assert_int_equal(tr->n_keys, 2);
	kv_response_free(tr);
	int64_t before = revision(f);

	clear_events(f);
	rv.id = 42;
	assert_int_equal(kv_batch_begin(f->kv), 0);
	assert_int_equal(kv_batch_lease_revoke(f->kv, ++f->index, &rv, &rvr), 0);
	assert_int_equal(rvr->header->revision, before + 1);
	kv_response_free(rvr);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
	assert_int_equal(revision(f), before + 1);
	assert_int_equal(f->nev, 2);
	assert_int_equal(get(f, "l1", 0, &kv, &found), 0);
	assert_false(found);
	assert_int_equal(get(f, "l3", 0, &kv, &found), 0);
	assert_true(found);
	assert_int_equal(kv_lease_timetolive(f->kv, &tq, &tr), MOOR_ELEASENOTFOUND);
}

static void compaction_removes_superseded_history_and_keeps_the_latest_versions(void **state)
{
	struct fx *f = *state;
	struct kv_stats s0, s1;
	Mvccpb__KeyValue kv;
	bool found, done = false;
	int64_t rev;

	for (int i = 0; i < 50; i++) {
		char k[8];

		snprintf(k, sizeof k, "k%d", i % 5);
		assert_int_equal(put(f, k, "value", 0), 0);
	}
	assert_int_equal(del(f, "k4", ""), 0);
	rev = revision(f);
	assert_int_equal(compact(f, rev + 1), MOOR_EFUTUREREV);
	assert_int_equal(compact(f, rev), 0);
	assert_int_equal(compact(f, rev), MOOR_ECOMPACTED);
	assert_int_equal(get(f, "k1", rev - 1, &kv, &found), MOOR_ECOMPACTED);
	assert_int_equal(kv_stats(f->kv, &s0), 0);
	assert_int_equal(s0.history_records, 51);
	for (int i = 0; i < 100 && !done; i++)
		assert_int_equal(kv_compact_step(f->kv, 7, &done), 0);
	assert_true(done);
	assert_int_equal(kv_stats(f->kv, &s1), 0);
	/* the latest of k0..k3, and k4's tombstone at exactly the compact rev */
	assert_int_equal(s1.history_records, 5);
	assert_int_equal(s1.index_records, 5);
	assert_int_equal(s1.live_keys, 4);
	assert_int_equal(get(f, "k1", rev, &kv, &found), 0);
	assert_true(found);
	assert_int_equal(kv.version, 10);

	/* a watch from the compact revision still sees its delete */
	struct kv_history h;

	assert_int_equal(kv_history_read(f->kv, rev, 10, true, &h), 0);
	assert_int_equal(h.n_events, 1);
	assert_int_equal(h.events[0]->type, MVCCPB__EVENT__EVENT_TYPE__DELETE);
	assert_int_equal(h.next_rev, rev + 1);
	kv_history_free(&h);
	assert_int_equal(kv_history_read(f->kv, rev - 1, 10, true, &h), MOOR_ECOMPACTED);
	assert_int_equal(h.compact_revision, rev);

	/* the next compaction takes the tombstone too */
	assert_int_equal(put(f, "k0", "again", 0), 0);
	assert_int_equal(compact(f, revision(f)), 0);
	for (done = false; !done;)
		assert_int_equal(kv_compact_step(f->kv, 100, &done), 0);
	assert_int_equal(kv_stats(f->kv, &s1), 0);
	assert_int_equal(s1.history_records, 4);
}

static void a_history_read_never_splits_a_revision(void **state)
{
	struct fx *f = *state;
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__DeleteRangeResponse *dr;
	struct kv_history h;

	for (int i = 0; i < 5; i++) {
		char k[8];

		snprintf(k, sizeof k, "p%d", i);
		assert_int_equal(put(f, k, "v", 0), 0);
	}
	d.key = B("p");
	d.range_end = B("q");
	assert_int_equal(kv_batch_begin(f->kv), 0);
	assert_int_equal(kv_batch_delete_range(f->kv, ++f->index, &d, &dr), 0);
	kv_response_free(dr);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
	/* revisions 2..6 one put each, 7 five deletes */
	assert_int_equal(kv_history_read(f->kv, 6, 2, false, &h), 0);
	assert_int_equal(h.n_events, 6);
	assert_int_equal(h.next_rev, 8);
	kv_history_free(&h);
	assert_int_equal(kv_history_read(f->kv, 2, 2, false, &h), 0);
	assert_int_equal(h.n_events, 2);
	assert_int_equal(h.next_rev, 4);
	kv_history_free(&h);
	assert_int_equal(kv_history_read(f->kv, 8, 2, false, &h), 0);
	assert_int_equal(h.n_events, 0);
	assert_int_equal(h.next_rev, 8);
	kv_history_free(&h);
}

/* prev_kv in history comes from the garbage table (history.c); a delete at
 * revision m also leaves an entry at (m+1, 0) for its own tombstone, which
 * must not pass for the previous value of a key written at m+1. */
static void history_prev_kv_is_the_live_version_before_each_change(void **state)
{
	struct fx *f = *state;
	struct kv_history h;
	int64_t r0 = revision(f);

	assert_int_equal(put(f, "a", "1", 0), 0); /* r0+1 */
	assert_int_equal(put(f, "b", "1", 0), 0); /* r0+2 */
	assert_int_equal(del(f, "a", ""), 0);     /* r0+3: a's tombstone entry at r0+4 */
	assert_int_equal(put(f, "a", "2", 0), 0); /* r0+4: created again, no prev */
	assert_int_equal(put(f, "b", "2", 0), 0); /* r0+5: prev b=1 */
	assert_int_equal(put(f, "a", "3", 0), 0); /* r0+6: prev a=2 */
	assert_int_equal(kv_history_read(f->kv, r0 + 1, 0, true, &h), 0);
	assert_int_equal(h.n_events, 6);
	assert_null(h.events[0]->prev_kv);
	assert_null(h.events[1]->prev_kv);
	assert_int_equal(h.events[2]->type, MVCCPB__EVENT__EVENT_TYPE__DELETE);
	assert_non_null(h.events[2]->prev_kv);
	assert_memory_equal(h.events[2]->prev_kv->value.data, "1", 1);
	assert_int_equal(h.events[2]->prev_kv->mod_revision, r0 + 1);
	assert_null(h.events[3]->prev_kv);
	assert_non_null(h.events[4]->prev_kv);
	assert_memory_equal(h.events[4]->prev_kv->key.data, "b", 1);
	assert_int_equal(h.events[4]->prev_kv->mod_revision, r0 + 2);
	assert_non_null(h.events[5]->prev_kv);
	assert_memory_equal(h.events[5]->prev_kv->value.data, "2", 1);
	assert_int_equal(h.events[5]->prev_kv->version, 1);
	kv_history_free(&h);
	/* from the middle: the garbage scan starts where the history scan does */
	assert_int_equal(kv_history_read(f->kv, r0 + 5, 0, true, &h), 0);
	assert_int_equal(h.n_events, 2);
	assert_int_equal(h.events[0]->prev_kv->mod_revision, r0 + 2);
	assert_int_equal(h.events[1]->prev_kv->mod_revision, r0 + 4);
	kv_history_free(&h);
}

static void a_snapshot_restore_replaces_the_whole_state(void **state)
{
	struct fx *f = *state;
	char snap[160];
	uint64_t idx;
	uint32_t h1;
	Mvccpb__KeyValue kv;
	bool found;

	assert_int_equal(put(f, "kept", "1", 0), 0);
	assert_int_equal(put(f, "kept", "2", 0), 0);
	h1 = hash(f);
	snprintf(snap, sizeof snap, "%s/snap", f->dir);
	assert_int_equal(kv_snapshot_create(f->kv, snap, &idx), 0);
	assert_int_equal(idx, f->index);
	assert_int_equal(put(f, "later", "x", 0), 0);
	assert_int_not_equal(hash(f), h1);
	assert_int_equal(kv_snapshot_restore(f->kv, snap), 0);
	assert_int_equal(hash(f), h1);
	assert_int_equal(get(f, "later", 0, &kv, &found), 0);
	assert_false(found);
	assert_int_equal(access(snap, F_OK), -1); /* moved in */
	/* and it survives a reopen */
	kv_close(f->kv);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(hash(f), h1);
	struct kv_status st;

	kv_status(f->kv, &st);
	assert_int_equal(st.applied_index, idx);
	/* not a checkpoint: refused, state kept */
	assert_int_equal(kv_snapshot_restore(f->kv, f->dir), MOOR_ECORRUPT);
	assert_int_equal(hash(f), h1);
}

static void meta_records_commit_with_the_batch_and_survive_reopen(void **state)
{
	struct fx *f = *state;
	void *v;
	size_t n;

	assert_int_equal(kv_meta_get(f->kv, "membership", &v, &n), MOOR_ENOTFOUND);
	assert_int_equal(kv_batch_begin(f->kv), 0);
	assert_int_equal(kv_batch_meta_put(f->kv, 1, "membership", "abc", 3), 0);
	assert_int_equal(kv_meta_get(f->kv, "membership", &v, &n), MOOR_ENOTFOUND);
	assert_int_equal(kv_batch_commit(f->kv, 1, 1), 0);
	kv_close(f->kv);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(kv_meta_get(f->kv, "membership", &v, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "abc", 3);
	free(v);
}

/* Everything after open, on a fresh store; 0 or the first error. */
static int alloc_workload(struct fx *f)
{
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT, p2 = p;
	Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT, inner = t;
	Etcdserverpb__Compare c = ETCDSERVERPB__COMPARE__INIT, *cp = &c;
	Etcdserverpb__RequestOp ops[4], *opp[4], iop, *iopp = &iop;
	Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	Etcdserverpb__LeaseRevokeRequest rv = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	Etcdserverpb__LeaseTimeToLiveRequest tq = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	Etcdserverpb__CompactionRequest cq = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	void *resp = NULL;
	struct kv_history h;
	uint32_t hash;
	int64_t c1, c2;
	bool done = false;
	int rc;

	p.key = B("key");
	p.value = B("value");
	p.prev_kv = 1;
	p.lease = 9;
	g.id = 9;
	g.ttl = 5;
	rc = kv_batch_begin(f->kv);
#define STEP(call)                              \
	do {                                    \
		if (rc == 0) {                  \
			resp = NULL;            \
			rc = (call);            \
			kv_response_free(resp); \
		}                               \
	} while (0)
	STEP(kv_batch_lease_grant(f->kv, ++f->index, &g,
	                          (Etcdserverpb__LeaseGrantResponse **)&resp));
	STEP(kv_batch_put(f->kv, ++f->index, &p, (Etcdserverpb__PutResponse **)&resp));
	/* txn: if version(key) == 1 then put t1, delete key, range all desc,
	 * txn{put t2} */
	c.key = B("key");
	c.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
	c.version = 1;
	for (int i = 0; i < 4; i++) {
		etcdserverpb__request_op__init(&ops[i]);
		opp[i] = &ops[i];
	}
	p2.key = B("t1");
	p2.value = B("v");
	ops[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	ops[0].request_put = &p2;
	d.key = B("key");
	d.prev_kv = 1;
	ops[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	ops[1].request_delete_range = &d;
	r.key = (ProtobufCBinaryData){1, (uint8_t *)""};
	r.range_end = (ProtobufCBinaryData){1, (uint8_t *)""};
	r.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
	r.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD;
	ops[2].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	ops[2].request_range = &r;
	etcdserverpb__request_op__init(&iop);
	Etcdserverpb__PutRequest p3 = ETCDSERVERPB__PUT_REQUEST__INIT;

	p3.key = B("t2");
	iop.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	iop.request_put = &p3;
	inner.success = &iopp;
	inner.n_success = 1;
	ops[3].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	ops[3].request_txn = &inner;
	t.compare = &cp;
	t.n_compare = 1;
	t.success = opp;
	t.n_success = 4;
	STEP(kv_batch_txn(f->kv, ++f->index, &t, (Etcdserverpb__TxnResponse **)&resp));
	STEP(kv_batch_meta_put(f->kv, ++f->index, "m", "x", 1));
	if (rc == 0)
		rc = kv_batch_commit(f->kv, f->index, 1);
	else
		kv_batch_abort(f->kv);
	STEP(kv_range(f->kv, &r, (Etcdserverpb__RangeResponse **)&resp));
	r.revision = 2;
	STEP(kv_range(f->kv, &r, (Etcdserverpb__RangeResponse **)&resp));
	if (rc == 0) {
		rc = kv_history_read(f->kv, 1, 0, true, &h);
		if (rc == 0)
			kv_history_free(&h);
	}
	if (rc == 0)
		rc = kv_hash_kv(f->kv, 0, &hash, &c1, &c2);
	tq.id = 9;
	tq.keys = 1;
	STEP(kv_lease_timetolive(f->kv, &tq, (Etcdserverpb__LeaseTimeToLiveResponse **)&resp));
	STEP(kv_lease_leases(f->kv, (Etcdserverpb__LeaseLeasesResponse **)&resp));
	if (rc == 0)
		rc = kv_batch_begin(f->kv);
	rv.id = 9;
	cq.revision = 3;
	STEP(kv_batch_lease_revoke(f->kv, ++f->index, &rv,
	                           (Etcdserverpb__LeaseRevokeResponse **)&resp));
	STEP(kv_batch_compact(f->kv, ++f->index, &cq, (Etcdserverpb__CompactionResponse **)&resp));
	if (rc == 0)
		rc = kv_batch_commit(f->kv, f->index, 1);
	else
		kv_batch_abort(f->kv);
	while (rc == 0 && !done)
		rc = kv_compact_step(f->kv, 1, &done);
#undef STEP
	return rc;
}

static void every_failed_allocation_is_a_clean_enomem(void **state)
{
	struct fx *f = *state;
	long n;
	int rc;

	kv_close(f->kv);
	f->kv = NULL;
	f->use_fa = true;
	/* open and a workload of every call, failing allocation n, n = 0, 1, ... */
	for (n = 0;; n++) {
		rm_rf(f->path);
		f->index = 0;
		moor_alloc_failing_init(&f->fa, n);
		rc = fx_open(f);
		if (rc == 0) {
			rc = alloc_workload(f);
			kv_close(f->kv);
			f->kv = NULL;
		}
		if (rc != 0 && rc != MOOR_ENOMEM)
			fprintf(stderr, "allocation %ld failed: %s\n", n, moor_strerror(rc));
		assert_true(rc == 0 || rc == MOOR_ENOMEM);
		assert_int_equal(f->fa.live, 0);
		if (rc == 0)
			break;
	}
	assert_true(n > 20);
	f->use_fa = false;
	assert_int_equal(fx_open(f), 0);
}

struct reader_ctx {
	struct kv *kv;
	atomic_bool stop;
	long reads, bad;
};

/* Reads "a" alone (the snapshot-free path) and ["a","c") (a snapshot):
 * no answer may be older than its header, nor show half a batch. */
static void *reader(void *arg)
{
	struct reader_ctx *c = arg;
	Etcdserverpb__RangeRequest one = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeRequest two = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *r;

	one.key = B("a");
	two.key = B("a");
	two.range_end = B("c");
	while (!atomic_load(&c->stop)) {
		if (kv_range(c->kv, &one, &r) != 0) {
			c->bad++;
			continue;
		}
		if (r->n_kvs == 1 && r->kvs[0]->mod_revision > r->header->revision)
			c->bad++;
		kv_response_free(r);
		if (kv_range(c->kv, &two, &r) != 0) {
			c->bad++;
			continue;
		}
		if (r->n_kvs == 2 &&
		    (r->kvs[1]->mod_revision > r->header->revision ||
		     r->kvs[0]->value.len != r->kvs[1]->value.len ||
		     memcmp(r->kvs[0]->value.data, r->kvs[1]->value.data, r->kvs[0]->value.len)))
			c->bad++;
		kv_response_free(r);
		c->reads += 2;
	}
	return NULL;
}

static void reads_concurrent_with_commits_never_see_part_of_a_batch(void **state)
{
	struct fx *f = *state;
	struct reader_ctx c = {.kv = f->kv};
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutResponse *pr;
	pthread_t t;
	char v[32];

	assert_int_equal(pthread_create(&t, NULL, reader, &c), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(v, sizeof v, "batch-%d", i);
		p.value = B(v);
		assert_int_equal(kv_batch_begin(f->kv), 0);
		p.key = B("a");
		assert_int_equal(kv_batch_put(f->kv, ++f->index, &p, &pr), 0);
		kv_response_free(pr);
		p.key = B("b");
		assert_int_equal(kv_batch_put(f->kv, ++f->index, &p, &pr), 0);
		kv_response_free(pr);
		assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
		clear_events(f);
	}
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	assert_int_equal(c.bad, 0);
	assert_true(c.reads > 0);
}

static void a_txn_reads_revisions_created_earlier_in_the_same_batch(void **state)
{
	struct fx *f = *state;
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutResponse *pr;
	Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT, *opp = &op;
	Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__TxnResponse *tr;

	assert_int_equal(kv_batch_begin(f->kv), 0);
	p.key = B("x");
	p.value = B("first");
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &p, &pr), 0);
	kv_response_free(pr);
	p.value = B("second");
	assert_int_equal(kv_batch_put(f->kv, ++f->index, &p, &pr), 0);
	kv_response_free(pr);
	r.key = B("x");
	r.revision = 2; /* written by this batch, not committed yet */
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	op.request_range = &r;
	t.success = &opp;
	t.n_success = 1;
	assert_int_equal(kv_batch_txn(f->kv, ++f->index, &t, &tr), 0);
	assert_int_equal(tr->responses[0]->response_range->n_kvs, 1);
	assert_int_equal(tr->responses[0]->response_range->kvs[0]->mod_revision, 2);
	assert_int_equal(tr->responses[0]->response_range->kvs[0]->value.len, 5);
	kv_response_free(tr);
	assert_int_equal(kv_batch_commit(f->kv, f->index, 1), 0);
}

struct compactor_ctx {
	struct kv *kv;
	atomic_bool stop;
	long steps, errors;
};

static void *compactor(void *arg)
{
	struct compactor_ctx *c = arg;
	bool done;

	while (!atomic_load(&c->stop)) {
		if (kv_compact_step(c->kv, 16, &done) != 0)
			c->errors++;
		c->steps++;
	}
	return NULL;
}

static void physical_compaction_runs_alongside_commits(void **state)
{
	struct fx *f = *state;
	struct compactor_ctx c = {.kv = f->kv};
	struct kv_stats st;
	pthread_t t;
	bool done = false;
	char k[8], v[16];

	assert_int_equal(pthread_create(&t, NULL, compactor, &c), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof k, "k%d", i % 10);
		snprintf(v, sizeof v, "v%d", i);
		assert_int_equal(put(f, k, v, 0), 0);
		if (i % 100 == 99)
			assert_int_equal(compact(f, revision(f) - 5), 0);
		clear_events(f);
	}
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	assert_int_equal(c.errors, 0);
	assert_int_equal(compact(f, revision(f)), 0);
	while (!done)
		assert_int_equal(kv_compact_step(f->kv, 1000, &done), 0);
	assert_int_equal(kv_stats(f->kv, &st), 0);
	assert_int_equal(st.history_records, 10);
	assert_int_equal(st.index_records, 10);
	assert_int_equal(st.garbage_records, 0);
	assert_int_equal(st.live_keys, 10);
}

/* Recreate the "new" checkpoint: open, make the same state as before, copy. */
static int put_back_snapshot(struct fx *f, const char *snap, uint64_t *idx)
{
	int rc = fx_open(f);

	if (rc)
		return rc;
	/* the current store is the old state; rebuild the new one elsewhere */
	kv_close(f->kv);
	f->kv = NULL;
	char path[160];

	snprintf(path, sizeof path, "%s/other", f->dir);
	struct kv_config cfg = {.path = path, .block_cache_bytes = 4u << 20};
	struct kv *o;
	Etcdserverpb__PutRequest r = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutResponse *resp;

	rc = kv_open(&cfg, &o);
	if (rc)
		return rc;
	r.key = B("k");
	r.value = B("new");
	rc = kv_batch_begin(o);
	if (rc == 0)
		rc = kv_batch_put(o, 1, &r, &resp);
	if (rc == 0) {
		kv_response_free(resp);
		rc = kv_batch_commit(o, 1, 1);
	}
	if (rc == 0)
		rc = kv_snapshot_create(o, snap, idx);
	kv_close(o);
	return rc;
}

/*
 * The two on-disk states a crash inside kv_snapshot_restore can leave, built
 * by hand: the checkpoint moved in but CURRENT_DB not yet switched (the old
 * state must open, the stray directory go), and CURRENT_DB switched before
 * the old directory was removed (the new state must open, the old go).
 */
static void a_restore_interrupted_at_any_step_opens_old_or_new_state(void **state)
{
	struct fx *f = *state;
	char snap[160], moved[160], cur[160];
	uint64_t idx;
	uint32_t h_old, h_new;
	FILE *fp;

	assert_int_equal(put(f, "k", "new", 0), 0);
	h_new = hash(f);
	snprintf(snap, sizeof snap, "%s/snap", f->dir);
	assert_int_equal(kv_snapshot_create(f->kv, snap, &idx), 0);
	assert_int_equal(put(f, "k", "old", 0), 0);
	h_old = hash(f);
	kv_close(f->kv);

	/* 1. moved in, not committed */
	snprintf(moved, sizeof moved, "%s/db-2", f->path);
	assert_int_equal(rename(snap, moved), 0);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(hash(f), h_old);
	assert_int_equal(access(moved, F_OK), -1);
	kv_close(f->kv);

	/* 2. committed, old directory still there */
	assert_int_equal(put_back_snapshot(f, snap, &idx), 0);
	assert_int_equal(rename(snap, moved), 0);
	snprintf(cur, sizeof cur, "%s/CURRENT_DB", f->path);
	fp = fopen(cur, "w");
	assert_non_null(fp);
	fputs("db-2\n", fp);
	fclose(fp);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(hash(f), h_new);
	snprintf(moved, sizeof moved, "%s/db-1", f->path);
	assert_int_equal(access(moved, F_OK), -1);
}

static void compaction_then_defragment_gives_disk_space_back(void **state)
{
	struct fx *f = *state;
	struct kv_stats before, after;
	char big[2048], k[8];
	bool done = false;

	memset(big, 'z', sizeof big);
	for (int i = 0; i < 2000; i++) {
		big[i % sizeof big] = (char)('a' + i % 26); /* defeat compression a bit */
		snprintf(k, sizeof k, "k%d", i % 4);
		big[sizeof big - 1] = 0;
		assert_int_equal(put(f, k, big, 0), 0);
		clear_events(f);
	}
	assert_int_equal(kv_flush(f->kv, NULL), 0);
	assert_int_equal(kv_defragment(f->kv), 0);
	assert_int_equal(kv_stats(f->kv, &before), 0);
	assert_int_equal(compact(f, revision(f)), 0);
	while (!done)
		assert_int_equal(kv_compact_step(f->kv, 100, &done), 0);
	assert_int_equal(kv_defragment(f->kv), 0);
	assert_int_equal(kv_stats(f->kv, &after), 0);
	printf("approximate bytes: %llu before compaction, %llu after\n",
	       (unsigned long long)before.approx_bytes, (unsigned long long)after.approx_bytes);
	assert_int_equal(after.history_records, 4);
	/* the history of 2000 versions of ~2 KiB is gone from disk */
	assert_true(after.approx_bytes * 20 < before.approx_bytes);
}

/* Write raw bytes under a RocksDB key of the closed store. */
static void raw_put(struct fx *f, const char *k, size_t kl, const char *v, size_t vl)
{
	char db[200], *err = NULL;
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_t *r;

	snprintf(db, sizeof db, "%s/db-1", f->path);
	r = rocksdb_open(o, db, &err);
	assert_null(err);
	rocksdb_put(r, wo, k, kl, v, vl, &err);
	assert_null(err);
	rocksdb_close(r);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(o);
}

static void corrupt_records_are_errors_not_crashes(void **state)
{
	struct fx *f = *state;
	Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *rr = NULL;
	struct kv_history h;
	char v99[8] = {0, 0, 0, 0, 0, 0, 0, 99};

	assert_int_equal(put(f, "k", "v", 0), 0);
	kv_close(f->kv);
	f->kv = NULL;
	/* a latest record cut short, a history record with unknown flags */
	raw_put(f, "lk", 2, "\x01\x00short", 7);
	raw_put(f, "h\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\0", 17,
	        "\x01\x80xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 54);
	assert_int_equal(fx_open(f), 0);
	r.key = B("k");
	assert_int_equal(kv_range(f->kv, &r, &rr), MOOR_ECORRUPT);
	assert_null(rr);
	assert_int_equal(kv_history_read(f->kv, 1, 10, false, &h), MOOR_ECORRUPT);
	kv_close(f->kv);
	f->kv = NULL;
	/* CURRENT_DB naming a missing database: corruption, not a new store */
	char db[200], other[200];

	snprintf(db, sizeof db, "%s/db-1", f->path);
	snprintf(other, sizeof other, "%s/moved-away", f->dir);
	assert_int_equal(rename(db, other), 0);
	assert_int_equal(fx_open(f), MOOR_ECORRUPT);
	assert_int_equal(rename(other, db), 0);
	/* an unknown layout version: the store refuses to open */
	raw_put(f, "mversion", 8, v99, 8);
	assert_int_equal(fx_open(f), MOOR_ECORRUPT);
	assert_null(f->kv);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(a_new_store_starts_at_revision_one),
	    T(puts_advance_revision_and_version_and_a_delete_resets_the_version),
	    T(deleting_a_missing_key_does_not_advance_the_revision),
	    T(bad_input_gets_distinct_codes_and_leaves_the_store_unchanged),
	    T(events_arrive_after_commit_in_revision_order_with_prev_kv),
	    T(a_txn_that_writes_nothing_does_not_advance_the_revision),
	    T(a_txn_reads_revisions_created_earlier_in_the_same_batch),
	    T(revoking_a_lease_deletes_its_keys_in_one_revision),
	    T(compaction_removes_superseded_history_and_keeps_the_latest_versions),
	    T(a_history_read_never_splits_a_revision),
	    T(history_prev_kv_is_the_live_version_before_each_change),
	    T(a_snapshot_restore_replaces_the_whole_state),
	    T(a_restore_interrupted_at_any_step_opens_old_or_new_state),
	    T(meta_records_commit_with_the_batch_and_survive_reopen),
	    T(every_failed_allocation_is_a_clean_enomem),
	    T(reads_concurrent_with_commits_never_see_part_of_a_batch),
	    T(physical_compaction_runs_alongside_commits),
	    T(compaction_then_defragment_gives_disk_space_back),
	    T(corrupt_records_are_errors_not_crashes),
	};

	return cmocka_run_group_tests_name("kv_basic", tests, NULL, NULL);
}

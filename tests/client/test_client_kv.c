/*
 * libmoor against a real 3-member moord cluster on loopback: every KV call
 * and option, txns, compaction, leases, watches, member list and status,
 * and how server errors map to MOOR_E* codes. Calls the server does not
 * implement yet are skipped with a message naming them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/moor.h"
#include "tests/client/fixture.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fx_cluster fx;
static moor_client *cli;

#define S(x) x, strlen(x)

static int64_t put(const char *k, const char *v)
{
	struct moor_response *r = NULL;
	int64_t rev;

	assert_int_equal(moor_put(cli, S(k), S(v), NULL, &r), 0);
	rev = r->header.revision;
	moor_response_free(r);
	return rev;
}

static bool kv_is(const struct moor_kv *kv, const char *k, const char *v)
{
	return kv->key_len == strlen(k) && memcmp(kv->key, k, kv->key_len) == 0 &&
	       (!v || (kv->value_len == strlen(v) && memcmp(kv->value, v, kv->value_len) == 0));
}

static void skip_unsupported(int rc, const char *what)
{
	if (rc == MOOR_EUNSUPPORTED) {
		printf("SKIP %s: the server answers Unimplemented (code 12): %s\n", what,
		       moor_error_detail());
		skip();
	}
}

static void put_then_get_returns_the_value_with_its_revisions(void **state)
{
	struct moor_response *r = NULL;
	int64_t rev1, rev2;

	(void)state;
	rev1 = put("a/one", "1");
	rev2 = put("a/one", "uno");
	assert_true(rev2 > rev1);
	assert_int_equal(moor_get(cli, S("a/one"), NULL, &r), 0);
	assert_int_equal(r->type, MOOR_OP_GET);
	assert_int_equal(r->n_kvs, 1);
	assert_true(kv_is(&r->kvs[0], "a/one", "uno"));
	assert_int_equal(r->kvs[0].create_revision, rev1);
	assert_int_equal(r->kvs[0].mod_revision, rev2);
	assert_int_equal(r->kvs[0].version, 2);
	assert_true(r->header.revision >= rev2);
	assert_int_not_equal(r->header.member_id, 0);
	moor_response_free(r);
	assert_int_equal(moor_get(cli, S("a/absent"), NULL, &r), 0);
	assert_int_equal(r->n_kvs, 0);
	assert_int_equal(r->count, 0);
	moor_response_free(r);
}

static void get_honours_every_range_option(void **state)
{
	struct moor_response *r = NULL;
	int64_t revs[5];
	const char *keys[5] = {"r/a", "r/b", "r/c", "r/d", "s/x"};
	const char *vals[5] = {"5", "3", "4", "1", "2"};

	(void)state;
	for (int i = 0; i < 5; i++)
		revs[i] = put(keys[i], vals[i]);
	put("r/b", "9"); /* r/b: version 2, highest mod revision */

	struct moor_get_opts o = {.range.prefix = true};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 4);
	assert_true(kv_is(&r->kvs[0], "r/a", "5") && kv_is(&r->kvs[3], "r/d", "1"));
	moor_response_free(r);

	o = (struct moor_get_opts){.range = {.range_end = "r/c", .range_end_len = 3}};
	assert_int_equal(moor_get(cli, S("r/a"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 2);
	assert_true(kv_is(&r->kvs[1], "r/b", "9"));
	moor_response_free(r);

	o = (struct moor_get_opts){.range.from_key = true};
	assert_int_equal(moor_get(cli, S("r/c"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 3); /* r/c r/d s/x */
	assert_true(kv_is(&r->kvs[2], "s/x", "2"));
	moor_response_free(r);

	o = (struct moor_get_opts){.range.prefix = true, .limit = 2};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 2);
	assert_true(r->more);
	assert_int_equal(r->count, 4);
	moor_response_free(r);

	o = (struct moor_get_opts){.range.prefix = true, .count_only = true};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 0);
	assert_int_equal(r->count, 4);
	moor_response_free(r);

	o = (struct moor_get_opts){.range.prefix = true, .keys_only = true};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 4);
	assert_int_equal(r->kvs[0].value_len, 0);
	assert_true(kv_is(&r->kvs[0], "r/a", NULL));
	moor_response_free(r);

	/* sorting: by value descending, by key descending, by version, mod, create */
	o = (struct moor_get_opts){
	    .range.prefix = true, .sort_target = MOOR_SORT_VALUE, .sort_order = MOOR_ORDER_DESCEND};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_true(kv_is(&r->kvs[0], "r/b", "9") && kv_is(&r->kvs[3], "r/d", "1"));
	moor_response_free(r);
	o.sort_target = MOOR_SORT_KEY;
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_true(kv_is(&r->kvs[0], "r/d", NULL) && kv_is(&r->kvs[3], "r/a", NULL));
	moor_response_free(r);
	o.sort_target = MOOR_SORT_VERSION;
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_true(kv_is(&r->kvs[0], "r/b", NULL));
	moor_response_free(r);
	o.sort_target = MOOR_SORT_MOD;
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_true(kv_is(&r->kvs[0], "r/b", NULL) && kv_is(&r->kvs[1], "r/d", NULL));
	moor_response_free(r);
	o.sort_target = MOOR_SORT_CREATE;
	o.sort_order = MOOR_ORDER_ASCEND;
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_true(kv_is(&r->kvs[0], "r/a", NULL) && kv_is(&r->kvs[3], "r/d", NULL));
	moor_response_free(r);

	/* history: r/b as of its first write */
	o = (struct moor_get_opts){.revision = revs[1]};
	assert_int_equal(moor_get(cli, S("r/b"), &o, &r), 0);
	assert_true(kv_is(&r->kvs[0], "r/b", "3"));
	moor_response_free(r);
	o = (struct moor_get_opts){.range.prefix = true, .revision = revs[0]};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 1);
	moor_response_free(r);

	/* revision filters */
	o = (struct moor_get_opts){.range.prefix = true, .min_create_revision = revs[2]};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 2); /* r/c r/d */
	moor_response_free(r);
	o = (struct moor_get_opts){.range.prefix = true, .max_create_revision = revs[1]};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 2); /* r/a r/b */
	moor_response_free(r);
	o = (struct moor_get_opts){.range.prefix = true, .min_mod_revision = revs[3] + 1};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 1); /* r/b rewritten */
	moor_response_free(r);
	o = (struct moor_get_opts){.range.prefix = true, .max_mod_revision = revs[0]};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_int_equal(r->n_kvs, 1);
	moor_response_free(r);

	/* a serializable read answers too */
	o = (struct moor_get_opts){.range.prefix = true, .read_mode = MOOR_READ_SERIALIZABLE};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), 0);
	assert_true(r->n_kvs <= 4);
	moor_response_free(r);

	/* the whole key space: empty key with prefix */
	o = (struct moor_get_opts){.range.prefix = true, .count_only = true};
	assert_int_equal(moor_get(cli, "", 0, &o, &r), 0);
	assert_true(r->count >= 5);
	moor_response_free(r);
	/* options that exclude each other */
	o = (struct moor_get_opts){.range = {.prefix = true, .from_key = true}};
	assert_int_equal(moor_get(cli, S("r/"), &o, &r), MOOR_EINVAL);
}

static void put_returns_the_previous_value_and_attaches_a_lease(void **state)
{
	struct moor_response *r = NULL;
	struct moor_put_opts po = {.prev_kv = true};
	int64_t lease = 0;

	(void)state;
	put("p/k", "old");
	assert_int_equal(moor_put(cli, S("p/k"), S("new"), &po, &r), 0);
	assert_int_equal(r->type, MOOR_OP_PUT);
	assert_int_equal(r->n_prev_kvs, 1);
	assert_true(kv_is(&r->prev_kvs[0], "p/k", "old"));
	moor_response_free(r);
	assert_int_equal(moor_put(cli, S("p/fresh"), S("x"), &po, &r), 0);
	assert_int_equal(r->n_prev_kvs, 0);
	moor_response_free(r);

	assert_int_equal(moor_lease_grant(cli, 60, 0, &lease, NULL), 0);
	po = (struct moor_put_opts){.lease = lease};
	assert_int_equal(moor_put(cli, S("p/leased"), S("v"), &po, NULL), 0);
	assert_int_equal(moor_get(cli, S("p/leased"), NULL, &r), 0);
	assert_int_equal(r->kvs[0].lease, lease);
	moor_response_free(r);
	/* ignore_value keeps the value, ignore_lease keeps the lease */
	po = (struct moor_put_opts){.ignore_value = true, .lease = lease};
	assert_int_equal(moor_put(cli, S("p/leased"), "", 0, &po, NULL), 0);
	po = (struct moor_put_opts){.ignore_lease = true};
	assert_int_equal(moor_put(cli, S("p/leased"), S("w"), &po, NULL), 0);
	assert_int_equal(moor_get(cli, S("p/leased"), NULL, &r), 0);
	assert_true(kv_is(&r->kvs[0], "p/leased", "w"));
	assert_int_equal(r->kvs[0].lease, lease);
	moor_response_free(r);
	assert_int_equal(moor_lease_revoke(cli, lease), 0);
	assert_int_equal(moor_get(cli, S("p/leased"), NULL, &r), 0);
	assert_int_equal(r->n_kvs, 0);
	moor_response_free(r);
}

static void delete_removes_a_key_a_range_or_a_prefix_and_returns_what_it_removed(void **state)
{
	struct moor_response *r = NULL;
	struct moor_delete_opts o = {.prev_kv = true};

	(void)state;
	put("d/a", "1");
	put("d/b", "2");
	put("d/c", "3");
	put("d/d", "4");
	put("e/x", "5");
	assert_int_equal(moor_delete(cli, S("d/a"), &o, &r), 0);
	assert_int_equal(r->type, MOOR_OP_DELETE);
	assert_int_equal(r->deleted, 1);
	assert_true(kv_is(&r->prev_kvs[0], "d/a", "1"));
	moor_response_free(r);
	o = (struct moor_delete_opts){.range = {.range_end = "d/c", .range_end_len = 3}};
	assert_int_equal(moor_delete(cli, S("d/b"), &o, &r), 0);
	assert_int_equal(r->deleted, 1);
	assert_int_equal(r->n_prev_kvs, 0);
	moor_response_free(r);
	o = (struct moor_delete_opts){.range.prefix = true, .prev_kv = true};
	assert_int_equal(moor_delete(cli, S("d/"), &o, &r), 0);
	assert_int_equal(r->deleted, 2);
	assert_int_equal(r->n_prev_kvs, 2);
	moor_response_free(r);
	assert_int_equal(moor_delete(cli, S("d/none"), NULL, &r), 0);
	assert_int_equal(r->deleted, 0);
	moor_response_free(r);
	assert_int_equal(moor_get(cli, S("e/x"), NULL, &r), 0);
	assert_int_equal(r->n_kvs, 1);
	moor_response_free(r);
}

static void txn_runs_the_branch_its_compares_choose(void **state)
{
	struct moor_response *r = NULL, *g = NULL;
	moor_txn *t = NULL;
	int64_t mod;

	(void)state;
	mod = put("t/k", "v1");
	/* optimistic concurrency: write only if nobody wrote since mod */
	assert_int_equal(moor_txn_new(&t), 0);
	struct moor_cmp c1 = {.key = "t/k",
	                      .key_len = 3,
	                      .target = MOOR_CMP_MOD,
	                      .op = MOOR_CMP_EQUAL,
	                      .number = mod};
	struct moor_cmp c2 = {.key = "t/k",
	                      .key_len = 3,
	                      .target = MOOR_CMP_VALUE,
	                      .op = MOOR_CMP_EQUAL,
	                      .value = "v1",
	                      .value_len = 2};
	struct moor_cmp c3 = {.key = "t/k",
	                      .key_len = 3,
	                      .target = MOOR_CMP_VERSION,
	                      .op = MOOR_CMP_GREATER,
	                      .number = 0};
	struct moor_cmp c4 = {.key = "t/k",
	                      .key_len = 3,
	                      .target = MOOR_CMP_CREATE,
	                      .op = MOOR_CMP_LESS,
	                      .number = mod + 1};
	struct moor_cmp c5 = {.key = "t/k",
	                      .key_len = 3,
	                      .target = MOOR_CMP_LEASE,
	                      .op = MOOR_CMP_EQUAL,
	                      .number = 0};
	assert_int_equal(moor_txn_if(t, &c1), 0);
	assert_int_equal(moor_txn_if(t, &c2), 0);
	assert_int_equal(moor_txn_if(t, &c3), 0);
	assert_int_equal(moor_txn_if(t, &c4), 0);
	assert_int_equal(moor_txn_if(t, &c5), 0);
	assert_int_equal(moor_txn_put(t, MOOR_TXN_THEN, S("t/k"), S("v2"), NULL), 0);
	assert_int_equal(moor_txn_put(t, MOOR_TXN_THEN, S("t/other"), S("o"), NULL), 0);
	assert_int_equal(moor_txn_get(t, MOOR_TXN_THEN, S("t/k"), NULL), 0);
	assert_int_equal(moor_txn_get(t, MOOR_TXN_ELSE, S("t/k"), NULL), 0);
	assert_int_equal(moor_txn_commit(cli, t, &r), 0);
	assert_true(r->succeeded);
	assert_int_equal(r->n_responses, 3);
	assert_int_equal(r->responses[0].type, MOOR_OP_PUT);
	assert_int_equal(r->responses[2].type, MOOR_OP_GET);
	assert_true(kv_is(&r->responses[2].kvs[0], "t/k", "v2"));
	/* one revision for the whole txn */
	assert_int_equal(r->responses[2].kvs[0].mod_revision, r->header.revision);
	moor_response_free(r);
	/* the same txn again: mod changed, the else branch runs */
	assert_int_equal(moor_txn_commit(cli, t, &r), 0);
	assert_false(r->succeeded);
	assert_int_equal(r->n_responses, 1);
	assert_true(kv_is(&r->responses[0].kvs[0], "t/k", "v2"));
	moor_response_free(r);
	moor_txn_free(t);

	/* deletes and range compares; a txn of reads only */
	assert_int_equal(moor_txn_new(&t), 0);
	struct moor_cmp cr = {.key = "t/",
	                      .key_len = 2,
	                      .range_end = "t0",
	                      .range_end_len = 2,
	                      .target = MOOR_CMP_VERSION,
	                      .op = MOOR_CMP_GREATER,
	                      .number = 0};
	assert_int_equal(moor_txn_if(t, &cr), 0);
	struct moor_delete_opts dop = {.range.prefix = true, .prev_kv = true};
	assert_int_equal(moor_txn_delete(t, MOOR_TXN_THEN, S("t/"), &dop), 0);
	assert_int_equal(moor_txn_commit(cli, t, &r), 0);
	assert_true(r->succeeded);
	assert_int_equal(r->responses[0].type, MOOR_OP_DELETE);
	assert_int_equal(r->responses[0].deleted, 2);
	moor_response_free(r);
	moor_txn_free(t);
	assert_int_equal(moor_get(cli, S("t/k"), NULL, &g), 0);
	assert_int_equal(g->n_kvs, 0);
	moor_response_free(g);
	/* the same key twice in one branch is refused by the server */
	assert_int_equal(moor_txn_new(&t), 0);
	assert_int_equal(moor_txn_put(t, MOOR_TXN_THEN, S("t/dup"), S("1"), NULL), 0);
	assert_int_equal(moor_txn_put(t, MOOR_TXN_THEN, S("t/dup"), S("2"), NULL), 0);
	assert_int_equal(moor_txn_commit(cli, t, &r), MOOR_EDUPKEY);
	assert_null(r);
	moor_txn_free(t);
}

/* A number from bytes that are not NUL-terminated. */
static long num(const uint8_t *p, size_t len)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%.*s", (int)(len < 23 ? len : 23), (const char *)p);
	return strtol(buf, NULL, 10);
}

#define CAS_THREADS 8
#define CAS_ROUNDS 25

/* One increment of the counter by compare-and-swap on its mod_revision;
 * returns the number of attempts it took, or -1. */
static int cas_increment(void)
{
	for (int attempt = 1; attempt < 1000; attempt++) {
		struct moor_response *g = NULL, *r = NULL;
		moor_txn *t = NULL;
		char next[24];
		long v = 0;
		int64_t mod = 0;

		if (moor_get(cli, S("cas/counter"), NULL, &g) != 0)
			return -1;
		if (g->n_kvs == 1) {
			v = num(g->kvs[0].value, g->kvs[0].value_len);
			mod = g->kvs[0].mod_revision;
		}
		moor_response_free(g);
		snprintf(next, sizeof next, "%ld", v + 1);
		struct moor_cmp c = {.key = "cas/counter",
		                     .key_len = 11,
		                     .target = MOOR_CMP_MOD,
		                     .op = MOOR_CMP_EQUAL,
		                     .number = mod};
		if (moor_txn_new(&t) || moor_txn_if(t, &c) ||
		    moor_txn_put(t, MOOR_TXN_THEN, S("cas/counter"), S(next), NULL) ||
		    moor_txn_commit(cli, t, &r)) {
			moor_txn_free(t);
			return -1;
		}
		moor_txn_free(t);
		bool ok = r->succeeded;
		moor_response_free(r);
		if (ok)
			return attempt;
	}
	return -1;
}

static void *cas_worker(void *arg)
{
	atomic_int *conflicts = arg;

	for (int i = 0; i < CAS_ROUNDS; i++) {
		int n = cas_increment();
		if (n < 0)
			return (void *)1;
		atomic_fetch_add(conflicts, n - 1);
	}
	return NULL;
}

static void threads_sharing_one_client_increment_a_counter_by_compare_and_swap(void **state)
{
	pthread_t th[CAS_THREADS];
	atomic_int conflicts = 0;
	struct moor_response *g = NULL;
	struct moor_watch_opts wo = {.prev_kv = true, .queue_max = 4096};
	moor_watch *w = NULL;
	void *ret;
	int anomalies = 0, events = 0;

	(void)state;
	/* every write of the counter, to show what went wrong if anything does */
	assert_int_equal(moor_put(cli, S("cas/start"), S(""), NULL, &g), 0);
	wo.start_revision = g->header.revision + 1;
	moor_response_free(g);
	assert_int_equal(moor_watch_start(cli, S("cas/counter"), &wo, &w), 0);
	for (int i = 0; i < CAS_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, cas_worker, &conflicts), 0);
	for (int i = 0; i < CAS_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(moor_get(cli, S("cas/counter"), NULL, &g), 0);
	int64_t last = g->kvs[0].mod_revision;
	for (int64_t seen = 0; seen < last;) {
		struct moor_watch_response *r = NULL;
		if (moor_watch_next(w, 10000, &r) != 0)
			break;
		for (size_t i = 0; i < r->n_events; i++, events++) {
			const struct moor_event *e = &r->events[i];
			seen = e->kv.mod_revision;
			long v = num(e->kv.value, e->kv.value_len);
			long pv = e->has_prev_kv ? num(e->prev_kv.value, e->prev_kv.value_len) : 0;
			if (v != pv + 1 && anomalies++ < 10)
				printf("anomaly: revision %lld version %lld value %ld after %ld "
				       "(prev mod %lld)\n",
				       (long long)e->kv.mod_revision, (long long)e->kv.version, v,
				       pv, (long long)e->prev_kv.mod_revision);
		}
		moor_watch_response_free(r);
	}
	moor_watch_stop(w);
	printf("%d increments, %d conflicts retried, %d writes watched, %d not +1\n",
	       CAS_THREADS * CAS_ROUNDS, atomic_load(&conflicts), events, anomalies);
	/* no increment lost, none doubled, no write but the increments */
	assert_int_equal(num(g->kvs[0].value, g->kvs[0].value_len), CAS_THREADS * CAS_ROUNDS);
	assert_int_equal(anomalies, 0);
	assert_int_equal(g->kvs[0].version, CAS_THREADS * CAS_ROUNDS);
	moor_response_free(g);
}

static void server_errors_map_to_their_codes(void **state)
{
	struct moor_response *r = NULL;
	struct moor_get_opts future = {.revision = 1000000000};
	struct moor_config cfg = {0};
	const char *bad[] = {"ftp://x"};
	moor_client *c = NULL;

	(void)state;
	assert_int_equal(moor_get(cli, "", 0, NULL, &r), MOOR_EEMPTYKEY);
	assert_non_null(strstr(moor_error_detail(), "key is not provided"));
	assert_int_equal(moor_get(cli, S("x"), &future, &r), MOOR_EFUTUREREV);
	assert_int_equal(moor_lease_revoke(cli, 0x7777), MOOR_ELEASENOTFOUND);
	assert_int_equal(moor_put(cli, "", 0, S("v"), NULL, NULL), MOOR_EEMPTYKEY);
	cfg.endpoints = bad;
	cfg.n_endpoints = 1;
	assert_int_equal(moor_client_open(&cfg, &c), MOOR_EINVAL);
	cfg.n_endpoints = 0;
	assert_int_equal(moor_client_open(&cfg, &c), MOOR_EINVAL);
	assert_string_equal(moor_strerror(MOOR_EINDETERMINATE),
	                    "outcome unknown: the request may or may not have applied");
}

static void calls_to_no_reachable_member_time_out_and_writes_are_not_indeterminate(void **state)
{
	const char *eps[] = {"127.0.0.1:1"};
	struct moor_config cfg = {
	    .endpoints = eps, .n_endpoints = 1, .request_timeout_ms = 300, .dial_timeout_ms = 100};
	struct moor_response *r = NULL;
	moor_client *c = NULL;

	(void)state;
	assert_int_equal(moor_client_open(&cfg, &c), 0);
	assert_int_equal(moor_get(c, S("k"), NULL, &r), MOOR_ETIMEOUT);
	/* a refused connection proves the write never left */
	assert_int_equal(moor_put(c, S("k"), S("v"), NULL, NULL), MOOR_ETIMEOUT);
	moor_client_close(c);
}

static void compaction_makes_old_revisions_unreadable(void **state)
{
	struct moor_response *r = NULL;
	struct moor_header h;
	int64_t old, now;

	(void)state;
	old = put("c/k", "1");
	now = put("c/k", "2");
	assert_int_equal(moor_compact(cli, now, false, &h), 0);
	assert_true(h.revision >= now);
	struct moor_get_opts o = {.revision = old};
	assert_int_equal(moor_get(cli, S("c/k"), &o, &r), MOOR_ECOMPACTED);
	o.revision = now;
	assert_int_equal(moor_get(cli, S("c/k"), &o, &r), 0);
	assert_true(kv_is(&r->kvs[0], "c/k", "2"));
	moor_response_free(r);
	/* compacting again at the same revision is an error */
	assert_int_equal(moor_compact(cli, now, true, NULL), MOOR_ECOMPACTED);
}

struct collect {
	pthread_mutex_t mu;
	int n;
	int64_t revs[64];
	int types[64];
	char vals[64][16];
	bool prev[64];
	int err;
	int64_t compact;
};

static void collect_cb(void *ctx, const struct moor_watch_response *r)
{
	struct collect *c = ctx;

	pthread_mutex_lock(&c->mu);
	if (r->err) {
		c->err = r->err;
		c->compact = r->compact_revision;
	}
	for (size_t i = 0; i < r->n_events && c->n < 64; i++, c->n++) {
		c->revs[c->n] = r->events[i].kv.mod_revision;
		c->types[c->n] = r->events[i].type;
		c->prev[c->n] = r->events[i].has_prev_kv;
		snprintf(c->vals[c->n], 16, "%.*s", (int)r->events[i].kv.value_len,
		         r->events[i].kv.value);
	}
	pthread_mutex_unlock(&c->mu);
}

static bool wait_for(struct collect *c, int n, int err)
{
	uint64_t deadline = fx_now_ms() + 10000;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		bool ok = c->n >= n && (!err || c->err == err);
		pthread_mutex_unlock(&c->mu);
		if (ok)
			return true;
		if (fx_now_ms() > deadline)
			return false;
		fx_sleep_ms(10);
	}
}

static void watch_delivers_puts_and_deletes_in_order_with_previous_values(void **state)
{
	struct collect col = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct moor_watch_opts o = {
	    .range.prefix = true, .prev_kv = true, .cb = collect_cb, .cb_ctx = &col};
	moor_watch *w = NULL;
	int64_t start, r1, r2, r3;

	(void)state;
	start = put("w/a", "0");
	o.start_revision = start + 1;
	assert_int_equal(moor_watch_start(cli, S("w/"), &o, &w), 0);
	r1 = put("w/a", "1");
	r2 = put("w/b", "2");
	assert_int_equal(moor_delete(cli, S("w/a"), NULL, NULL), 0);
	r3 = put("x/outside", "3");
	assert_true(wait_for(&col, 3, 0));
	moor_watch_stop(w);
	assert_int_equal(col.n, 3);
	assert_int_equal(col.revs[0], r1);
	assert_int_equal(col.revs[1], r2);
	assert_true(col.revs[2] > r2 && col.revs[2] < r3);
	assert_int_equal(col.types[0], MOOR_EVENT_PUT);
	assert_int_equal(col.types[2], MOOR_EVENT_DELETE);
	assert_string_equal(col.vals[0], "1");
	assert_true(col.prev[0]);
	assert_false(col.prev[1]);

	/* from the past: every revision since start again, without deletes */
	struct collect c2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
	o = (struct moor_watch_opts){.range.prefix = true,
	                             .start_revision = start,
	                             .no_delete = true,
	                             .cb = collect_cb,
	                             .cb_ctx = &c2};
	assert_int_equal(moor_watch_start(cli, S("w/"), &o, &w), 0);
	assert_true(wait_for(&c2, 3, 0));
	moor_watch_stop(w);
	assert_int_equal(c2.revs[0], start);
	assert_int_equal(c2.revs[2], r2);
	for (int i = 0; i < c2.n; i++)
		assert_int_equal(c2.types[i], MOOR_EVENT_PUT);
}

static void a_watch_from_now_sees_only_later_changes_through_a_pollable_fd(void **state)
{
	struct moor_watch_opts o = {0};
	struct moor_watch_response *r = NULL;
	moor_watch *w = NULL;
	struct pollfd pfd;
	int64_t rev;

	(void)state;
	put("f/k", "before");
	assert_int_equal(moor_watch_start(cli, S("f/k"), &o, &w), 0);
	/* the created answer sets where it starts */
	for (int i = 0; i < 500 && moor_watch_next_revision(w) == 0; i++)
		fx_sleep_ms(10);
	assert_true(moor_watch_next_revision(w) > 0);
	assert_int_equal(moor_watch_next(w, 0, &r), MOOR_ETIMEOUT);
	rev = put("f/k", "after");
	pfd = (struct pollfd){.fd = moor_watch_fd(w), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(moor_watch_next(w, 0, &r), 0);
	assert_int_equal(r->n_events, 1);
	assert_int_equal(r->events[0].kv.mod_revision, rev);
	assert_true(kv_is(&r->events[0].kv, "f/k", "after"));
	moor_watch_response_free(r);
	assert_int_equal(moor_watch_next_revision(w), rev + 1);
	pfd.revents = 0;
	assert_int_equal(poll(&pfd, 1, 0), 0);
	moor_watch_stop(w);
}

static void a_watch_from_a_compacted_revision_ends_with_the_compact_revision(void **state)
{
	struct collect col = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct moor_watch_opts o = {.start_revision = 1, .cb = collect_cb, .cb_ctx = &col};
	moor_watch *w = NULL;
	int64_t now;

	(void)state;
	now = put("wc/k", "1");
	put("wc/k", "2");
	assert_int_equal(moor_compact(cli, now, false, NULL), 0);
	assert_int_equal(moor_watch_start(cli, S("wc/k"), &o, &w), 0);
	assert_true(wait_for(&col, 0, MOOR_ECOMPACTED));
	moor_watch_stop(w);
	assert_int_equal(col.err, MOOR_ECOMPACTED);
	assert_int_equal(col.compact, now);
}

static void leases_are_granted_listed_looked_up_and_revoked(void **state)
{
	struct moor_lease_info *info = NULL;
	int64_t id = 0, ttl = 0, *ids = NULL;
	size_t n = 0;
	bool found = false;

	(void)state;
	assert_int_equal(moor_lease_grant(cli, 30, 0, &id, &ttl), 0);
	assert_int_not_equal(id, 0);
	assert_int_equal(ttl, 30);
	assert_int_equal(moor_lease_grant(cli, 0, 0, NULL, NULL), MOOR_EINVAL);
	struct moor_put_opts po = {.lease = id};
	assert_int_equal(moor_put(cli, S("l/a"), S("1"), &po, NULL), 0);
	assert_int_equal(moor_put(cli, S("l/b"), S("2"), &po, NULL), 0);
	assert_int_equal(moor_lease_timetolive(cli, id, true, &info), 0);
	assert_int_equal(info->id, id);
	assert_int_equal(info->granted_ttl, 30);
	assert_true(info->ttl > 0 && info->ttl <= 30);
	assert_int_equal(info->n_keys, 2);
	moor_lease_info_free(info);
	assert_int_equal(moor_lease_list(cli, &ids, &n), 0);
	for (size_t i = 0; i < n; i++)
		found |= ids[i] == id;
	free(ids);
	assert_true(found);
	/* a chosen id, then the same id again */
	assert_int_equal(moor_lease_grant(cli, 30, 0x1234, &ttl, NULL), 0);
	assert_int_equal(ttl, 0x1234);
	assert_int_equal(moor_lease_grant(cli, 30, 0x1234, NULL, NULL), MOOR_ELEASEEXISTS);
	assert_int_equal(moor_lease_revoke(cli, 0x1234), 0);
	assert_int_equal(moor_lease_revoke(cli, id), 0);
	assert_int_equal(moor_lease_timetolive(cli, id, false, &info), 0);
	assert_int_equal(info->ttl, -1);
	moor_lease_info_free(info);
	struct moor_response *r = NULL;
	struct moor_get_opts go = {.range.prefix = true};
	assert_int_equal(moor_get(cli, S("l/"), &go, &r), 0);
	assert_int_equal(r->n_kvs, 0);
	moor_response_free(r);
}

static void lost_cb(void *ctx, int64_t id, int err)
{
	(void)id;
	*(int *)ctx = err;
}

static void keepalive_keeps_a_lease_and_reports_its_loss(void **state)
{
	moor_keepalive *k = NULL;
	int64_t id = 0, ttl = 0;
	int lost = 0, rc;

	(void)state;
	assert_int_equal(moor_lease_grant(cli, 2, 0, &id, NULL), 0);
	rc = moor_lease_keepalive_once(cli, id, &ttl);
	if (rc == MOOR_EUNSUPPORTED)
		moor_lease_revoke(cli, id);
	skip_unsupported(rc, "lease keep-alive");
	assert_int_equal(rc, 0);
	assert_int_equal(ttl, 2);
	assert_int_equal(moor_keepalive_start(cli, id, lost_cb, &lost, &k), 0);
	/* alive well past its TTL */
	uint64_t until = fx_now_ms() + 4000;
	while (fx_now_ms() < until) {
		struct moor_lease_info *info = NULL;
		assert_int_equal(moor_lease_timetolive(cli, id, false, &info), 0);
		assert_true(info->ttl > 0);
		moor_lease_info_free(info);
		fx_sleep_ms(200);
	}
	assert_int_equal(moor_keepalive_status(k), 0);
	assert_int_equal(moor_lease_revoke(cli, id), 0);
	for (int i = 0; i < 500 && moor_keepalive_status(k) == 0; i++)
		fx_sleep_ms(10);
	assert_int_equal(moor_keepalive_status(k), MOOR_ELEASENOTFOUND);
	assert_int_equal(lost, MOOR_ELEASENOTFOUND);
	moor_keepalive_stop(k);
	assert_int_equal(moor_keepalive_start(cli, id, NULL, NULL, &k), MOOR_ELEASENOTFOUND);
}

static void member_list_and_status_describe_the_cluster(void **state)
{
	struct moor_members *m = NULL;
	struct moor_status st;
	uint32_t h1 = 0, h2 = 0;
	int64_t hrev = 0;

	(void)state;
	assert_int_equal(moor_member_list(cli, &m), 0);
	assert_int_equal(m->n_members, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_not_equal(m->members[i].id, 0);
		assert_true(m->members[i].n_peer_urls >= 1);
		assert_true(m->members[i].name[0] == 'm');
	}
	moor_members_free(m);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(moor_status(cli, fx.url[i], &st), 0);
		assert_int_not_equal(st.leader, 0);
		assert_true(st.raft_index > 0);
		assert_true(st.version[0] != '\0');
	}
	put("h/k", "v");
	assert_int_equal(moor_hashkv(cli, fx.url[0], 0, &h1, &hrev, NULL), 0);
	/* the other member may not have applied hrev yet */
	for (uint64_t until = fx_now_ms() + 10000;;) {
		int rc = moor_hashkv(cli, fx.url[1], hrev, &h2, NULL, NULL);
		if (rc != MOOR_EFUTUREREV || fx_now_ms() > until) {
			assert_int_equal(rc, 0);
			break;
		}
		fx_sleep_ms(10);
	}
	assert_int_equal(h1, h2);
}

static void a_learner_is_added_updated_and_removed(void **state)
{
	const char *urls[] = {"http://127.9.9.9:2380"};
	const char *urls2[] = {"http://127.9.9.8:2380"};
	struct moor_members *m = NULL;
	uint64_t id;
	int rc;

	(void)state;
	rc = moor_member_add(cli, urls, 1, true, &m);
	skip_unsupported(rc, "member add");
	assert_int_equal(rc, 0);
	id = m->added.id;
	assert_int_not_equal(id, 0);
	assert_true(m->added.is_learner);
	assert_int_equal(m->n_members, 4);
	moor_members_free(m);
	/* etcd says "Peer URLs already exists"; moord now says the member exists */
	rc = moor_member_add(cli, urls, 1, true, NULL);
	assert_true(rc == MOOR_EPEERURLEXISTS || rc == MOOR_EMEMBEREXISTS);
	rc = moor_member_update(cli, id, urls2, 1, NULL);
	if (rc != MOOR_EUNSUPPORTED)
		assert_int_equal(rc, 0);
	assert_int_equal(moor_member_list(cli, &m), 0);
	bool seen = false;
	for (size_t i = 0; i < m->n_members; i++)
		if (m->members[i].id == id) {
			seen = true;
			assert_true(m->members[i].is_learner);
			assert_string_equal(m->members[i].name, ""); /* not started */
			if (rc == 0)
				assert_string_equal(m->members[i].peer_urls[0], urls2[0]);
		}
	assert_true(seen);
	moor_members_free(m);
	assert_int_equal(moor_member_remove(cli, id, NULL), 0);
	assert_int_equal(moor_member_list(cli, &m), 0);
	assert_int_equal(m->n_members, 3);
	moor_members_free(m);
	assert_int_equal(moor_member_remove(cli, id, NULL), MOOR_EMEMBERNOTFOUND);
}

static void leadership_moves_to_the_member_named(void **state)
{
	struct moor_status st;
	int leader = fx_wait_leader(&fx, 10000), target = (leader + 1) % 3, rc;
	bool moved = false;

	(void)state;
	assert_true(leader >= 0);
	rc = moor_move_leader(cli, fx.id[target]);
	skip_unsupported(rc, "move-leader");
	assert_int_equal(rc, 0);
	for (uint64_t until = fx_now_ms() + 10000; !moved && fx_now_ms() < until;) {
		moved = moor_status(cli, fx.url[leader], &st) == 0 && st.leader == fx.id[target];
		if (!moved)
			fx_sleep_ms(20);
	}
	assert_true(moved);
	assert_int_not_equal(moor_move_leader(cli, 0x1234), 0);
}

static void maintenance_calls_the_server_may_not_have_yet_work_or_say_unsupported(void **state)
{
	struct moor_alarm *alarms = NULL;
	size_t n = 0;
	int rc;

	(void)state;
	rc = moor_alarm(cli, MOOR_ALARM_GET, 0, 0, &alarms, &n);
	free(alarms);
	if (rc == MOOR_EUNSUPPORTED)
		printf("SKIP alarm: the server answers Unimplemented (code 12)\n");
	else
		assert_int_equal(rc, 0);
	rc = moor_defragment(cli, fx.url[0]);
	if (rc == MOOR_EUNSUPPORTED)
		printf("SKIP defragment: the server answers Unimplemented (code 12)\n");
	else
		assert_int_equal(rc, 0);
	char path[128];
	snprintf(path, sizeof path, "%s/snap.db", fx.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	uint64_t bytes = 0;
	rc = moor_snapshot(cli, fileno(f), &bytes);
	fclose(f);
	if (rc == MOOR_EUNSUPPORTED) {
		printf("SKIP snapshot: the server answers Unimplemented (code 12)\n");
	} else {
		assert_int_equal(rc, 0);
		assert_true(bytes > 0);
	}
}

static int setup(void **state)
{
	(void)state;
	if (fx_cluster_start(&fx, 3) != 0) {
		fprintf(stderr, "cannot start a 3-member cluster of %s\n", fx.moord);
		fx_cluster_stop(&fx);
		return -1;
	}
	cli = fx_client(&fx, -1, 10000);
	return cli ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	moor_client_close(cli);
	fx_cluster_stop(&fx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(put_then_get_returns_the_value_with_its_revisions),
	    cmocka_unit_test(get_honours_every_range_option),
	    cmocka_unit_test(put_returns_the_previous_value_and_attaches_a_lease),
	    cmocka_unit_test(delete_removes_a_key_a_range_or_a_prefix_and_returns_what_it_removed),
	    cmocka_unit_test(txn_runs_the_branch_its_compares_choose),
	    cmocka_unit_test(threads_sharing_one_client_increment_a_counter_by_compare_and_swap),
	    cmocka_unit_test(server_errors_map_to_their_codes),
	    cmocka_unit_test(
	        calls_to_no_reachable_member_time_out_and_writes_are_not_indeterminate),
	    cmocka_unit_test(compaction_makes_old_revisions_unreadable),
	    cmocka_unit_test(watch_delivers_puts_and_deletes_in_order_with_previous_values),
	    cmocka_unit_test(a_watch_from_now_sees_only_later_changes_through_a_pollable_fd),
	    cmocka_unit_test(a_watch_from_a_compacted_revision_ends_with_the_compact_revision),
	    cmocka_unit_test(leases_are_granted_listed_looked_up_and_revoked),
	    cmocka_unit_test(keepalive_keeps_a_lease_and_reports_its_loss),
	    cmocka_unit_test(member_list_and_status_describe_the_cluster),
	    cmocka_unit_test(a_learner_is_added_updated_and_removed),
	    cmocka_unit_test(leadership_moves_to_the_member_named),
	    cmocka_unit_test(maintenance_calls_the_server_may_not_have_yet_work_or_say_unsupported),
	};
	return cmocka_run_group_tests_name("libmoor against a cluster", tests, setup, teardown);
}

/*
 * Model-based randomized test: tens of thousands of generated requests
 * (puts, deletes, txns with nested txns, compactions, lease grants and
 * revokes, many invalid) applied in batches to the store and to the
 * reference model; every response, every event, the whole state after every
 * batch, random ranges with every option at old revisions, and history reads
 * are compared. Physical compaction steps, hash checks, replays of applied
 * entries and reopens are interleaved.
 *
 * Seeded and replayable: MOOR_KV_SEED=<n> runs that seed alone; the seed is
 * printed on failure. MOOR_KV_OPS=<n> sets the number of operations.
 */
#include "kv/kv.h"
#include "tests/kv/harness.h"

#include "common/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#ifdef MOOR_SAN
#define DEFAULT_OPS 4000
#else
#define DEFAULT_OPS 25000
#endif

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 0) : def;
}

static bool hash_stable_across_compaction(struct harness *h)
{
	uint32_t h1, h2;
	int64_t c1, c2, r1, r2;
	bool done = false;
	int rc = kv_hash_kv(h->kv, 0, &h1, &c1, &r1);

	for (int i = 0; rc == 0 && !done && i < 1000; i++)
		rc = kv_compact_step(h->kv, 1 + rng_below(&h->rng, 64), &done);
	if (rc == 0)
		rc = kv_hash_kv(h->kv, r1, &h2, &c2, &r2);
	if (rc || h1 != h2) {
		fprintf(stderr,
		        "hash at %lld: %08x before physical compaction, %08x after (rc %d)\n",
		        (long long)r1, h1, h2, rc);
		return false;
	}
	struct kv_stats st;

	if (kv_stats(h->kv, &st) != 0 || st.history_records != model_kept_records(&h->m) ||
	    st.index_records != st.history_records) {
		fprintf(stderr,
		        "%safter compaction: %llu history and %llu index records, model %zu\n",
		        h->where, (unsigned long long)st.history_records,
		        (unsigned long long)st.index_records, model_kept_records(&h->m));
		return false;
	}
	return true;
}

/* Entries at or below the applied index do nothing; a lower commit neither. */
static bool replay_is_ignored(struct harness *h)
{
	struct kv_status before, after;
	struct gen_op op;
	Etcdserverpb__PutResponse *resp = (void *)1;
	bool ok;

	kv_status(h->kv, &before);
	if (before.applied_index == 0)
		return true;
	gen_write(&h->rng, &h->m, &op);
	if (op.kind != GEN_PUT) {
		gen_op_free(&op);
		return true;
	}
	ok = kv_batch_begin(h->kv) == 0 &&
	     kv_batch_put(h->kv, before.applied_index, op.put, &resp) == 0 && resp == NULL &&
	     kv_batch_commit(h->kv, before.applied_index, 1) == 0;
	gen_op_free(&op);
	kv_status(h->kv, &after);
	if (!ok || after.revision != before.revision ||
	    after.applied_index != before.applied_index) {
		fprintf(stderr, "replaying index %llu changed the store\n",
		        (unsigned long long)before.applied_index);
		return false;
	}
	return true;
}

static bool run_seed(uint64_t seed, long nops)
{
	struct harness h;
	char where[96];
	long done = 0;
	bool ok = true;
	int batch = 0;

	if (harness_open(&h, seed, 0) != 0) {
		fprintf(stderr, "cannot open store\n");
		return false;
	}
	while (ok && done < nops) {
		unsigned n = 1 + rng_below(&h.rng, 6);

		snprintf(where, sizeof where, "seed %llu batch %d: ", (unsigned long long)seed,
		         batch);
		h.where = where;
		ok = kv_batch_begin(h.kv) == 0;
		for (unsigned i = 0; ok && i < n; i++, done++) {
			struct gen_op op;

			gen_write(&h.rng, &h.m, &op);
			ok = harness_apply(&h, &op, true);
			gen_op_free(&op);
		}
		/* sometimes non-kv entries (conf changes, empty) end the batch */
		h.index += rng_below(&h.rng, 3) == 0 ? 1 : 0;
		ok = ok && harness_commit(&h, h.index, true);
		ok = ok && harness_check_state(&h);
		for (unsigned i = rng_below(&h.rng, 4); ok && i > 0; i--)
			ok = harness_random_read(&h);
		if (ok && rng_below(&h.rng, 20) == 0)
			ok = hash_stable_across_compaction(&h);
		if (ok && rng_below(&h.rng, 50) == 0)
			ok = replay_is_ignored(&h);
		if (ok && rng_below(&h.rng, 400) == 0) {
			ok = harness_reopen(&h) == 0 && harness_check_state(&h);
			if (!ok)
				fprintf(stderr, "%sstate differs after reopen\n", where);
		}
		batch++;
	}
	if (!ok)
		fprintf(stderr, "FAILED: replay with MOOR_KV_SEED=%llu MOOR_KV_OPS=%ld\n",
		        (unsigned long long)seed, nops);
	else
		printf("seed %llu: %ld ops in %d batches, revision %lld, compacted at %lld\n",
		       (unsigned long long)seed, done, batch, (long long)h.m.rev,
		       (long long)h.m.compact);
	harness_close(&h, true);
	return ok;
}

static void random_operations_match_the_reference_model(void **state)
{
	long nops = env_long("MOOR_KV_OPS", DEFAULT_OPS);
	long one = env_long("MOOR_KV_SEED", -1);

	(void)state;
	if (one >= 0) {
		assert_true(run_seed((uint64_t)one, nops));
		return;
	}
	static const uint64_t seeds[] = {1, 2, 3, 0xdecafbad};

	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
		assert_true(run_seed(seeds[i], nops / 4));
}

/*
 * Two members applying the same entries, one compacting physically after
 * every batch and the other never: HashKV must agree at every revision
 * either can still answer, and so must every range.
 */
static bool run_two_members(uint64_t seed, long nops)
{
	struct harness a, b;
	struct rng side = {seed ^ 0x5eed};
	long done = 0;
	int batch = 0;
	bool ok;

	if (harness_open(&a, seed, 0) != 0)
		return false;
	if (harness_open(&b, seed, 0) != 0) {
		harness_close(&a, true);
		return false;
	}
	ok = true;
	while (ok && done < nops) {
		unsigned n = 1 + rng_below(&a.rng, 6);

		(void)rng_below(&b.rng, 6);
		ok = kv_batch_begin(a.kv) == 0 && kv_batch_begin(b.kv) == 0;
		for (unsigned i = 0; ok && i < n; i++, done++) {
			struct gen_op oa, ob;

			gen_write(&a.rng, &a.m, &oa);
			gen_write(&b.rng, &b.m, &ob);
			ok = harness_apply(&a, &oa, true) && harness_apply(&b, &ob, true);
			gen_op_free(&oa);
			gen_op_free(&ob);
		}
		ok = ok && harness_commit(&a, a.index, true) && harness_commit(&b, b.index, true);
		for (bool fin = false; ok && !fin;)
			ok = kv_compact_step(a.kv, 1 + rng_below(&side, 8), &fin) == 0;
		if (ok && batch % 5 == 0) {
			int64_t lo = a.m.compact > 0 ? a.m.compact : 1;
			int64_t rev = lo + (int64_t)rng_below(&side, (unsigned)(a.m.rev - lo + 1));
			uint32_t ha, hb;
			int64_t ca, cb, ra, rb;

			ok = kv_hash_kv(a.kv, rev, &ha, &ca, &ra) == 0 &&
			     kv_hash_kv(b.kv, rev, &hb, &cb, &rb) == 0 && ha == hb && ca == cb;
			if (!ok)
				fprintf(stderr,
				        "seed %llu batch %d: hash at %lld differs: %08x vs %08x\n",
				        (unsigned long long)seed, batch, (long long)rev, ha, hb);
		}
		batch++;
	}
	struct kv_stats sa, sb;

	if (ok && kv_stats(a.kv, &sa) == 0 && kv_stats(b.kv, &sb) == 0)
		printf("seed %llu: %d batches; history records %llu compacted, %llu not\n",
		       (unsigned long long)seed, batch, (unsigned long long)sa.history_records,
		       (unsigned long long)sb.history_records);
	harness_close(&a, true);
	harness_close(&b, true);
	return ok;
}

static void members_agree_on_hashkv_whatever_their_compaction_progress(void **state)
{
	(void)state;
	assert_true(run_two_members(7, DEFAULT_OPS / 5));
	assert_true(run_two_members(8, DEFAULT_OPS / 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(random_operations_match_the_reference_model),
	    cmocka_unit_test(members_agree_on_hashkv_whatever_their_compaction_progress),
	};

	return cmocka_run_group_tests_name("kv_model", tests, NULL, NULL);
}

/*
 * Swarm test: seeded random runs mixing appends (with overwrites of a
 * conflicting suffix, hard states and snapshot markers), syncs, releases,
 * injected write and fdatasync failures, clean reopens and power losses that
 * drop or tear unsynced writes — on 4 KiB segments, so rotations are frequent.
 * After every reopen the recovered log must equal the state after some whole
 * batch at or after the last one a successful sync covered (never older,
 * never a partial batch), entry by entry. A failing seed is printed and
 * replays exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "tests/wal/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEG 4096u
#ifdef MOOR_SAN
#define SEEDS 12
#else
#define SEEDS 40
#endif
#define STEPS 400

struct run {
	uint64_t rs;
	struct memfs *fs;
	struct wal *w;
	struct model *pts; /* state after each batch since the last reopen */
	size_t npts, cap;
	size_t durable; /* pts[0..durable] are covered by a sync */
	bool stopped;
};

static uint64_t rnd(struct run *r, uint64_t n)
{
	r->rs ^= r->rs << 13, r->rs ^= r->rs >> 7, r->rs ^= r->rs << 17;
	return n ? r->rs % n : 0;
}

static void push(struct run *r, const struct model *m)
{
	if (r->npts == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->pts = realloc(r->pts, r->cap * sizeof *r->pts);
		assert_non_null(r->pts);
	}
	r->pts[r->npts++] = *m;
}

static bool matches(struct wal *w, const struct wal_recovered *rec, const struct model *m)
{
	struct wal_entries es;
	bool ok = true;

	if (rec->last_index != m->last || rec->has_hard_state != m->has_hs ||
	    rec->has_snapshot != m->has_snap)
		return false;
	if (m->has_hs && memcmp(&rec->hard_state, &m->hs, sizeof m->hs) != 0)
		return false;
	if (m->has_snap && memcmp(&rec->snapshot, &m->snap, sizeof m->snap) != 0)
		return false;
	if (rec->first_index > rec->last_index)
		return true;
	assert_int_equal(wal_read(w, rec->first_index, rec->last_index + 1, 0, &es), 0);
	for (size_t i = 0; i < es.n && ok; i++)
		ok = es.v[i].term == m->term[es.v[i].index];
	wal_entries_free(&es);
	return ok;
}

static void reopen(struct run *r, uint64_t seed, int loss)
{
	struct wal_recovered rec;
	size_t k;

	wal_close(r->w);
	memfs_fail_write(r->fs, 0, 0); /* faults armed but not hit are disarmed */
	memfs_fail_sync(r->fs, 0, 0);
	memfs_fail_dir_sync(r->fs, 0, 0);
	if (loss)
		memfs_power_loss(r->fs, loss == 1 ? MEMFS_DROP_UNSYNCED : MEMFS_TEAR_UNSYNCED,
		                 rnd(r, 1u << 30));
	if (getenv("WAL_SWARM_DUMP")) {
		/* Debugging aid: the image about to be recovered, for wal-dump. */
		static int n;
		char names[64][64], path[512];
		size_t k2 = memfs_list(r->fs, names, 64);
		snprintf(path, sizeof path, "mkdir -p %s/%d", getenv("WAL_SWARM_DUMP"), ++n);
		if (system(path) != 0)
			abort();
		for (size_t q = 0; q < k2; q++) {
			unsigned char *d;
			size_t dl;
			FILE *f;
			snprintf(path, sizeof path, "%s/%d/%s", getenv("WAL_SWARM_DUMP"), n,
			         names[q]);
			memfs_read_file(r->fs, names[q], &d, &dl);
			if ((f = fopen(path, "wb"))) {
				fwrite(d, 1, dl, f);
				fclose(f);
			}
			free(d);
		}
	}
	{
		char err[512];
		int rc = try_open_mem(r->fs, SEG, &r->w, &rec, err, sizeof err);
		if (rc != 0)
			fprintf(stderr, "swarm: seed %" PRIu64 ": loss=%d: %s\n", seed, loss, err);
		assert_int_equal(rc, 0);
	}
	/* Without a loss, everything written is there (close does not lose
	 * what reached the file system); with one, at least what was synced. */
	for (k = loss ? r->durable : r->npts - 1; k < r->npts; k++)
		if (matches(r->w, &rec, &r->pts[k]))
			break;
	if (k == r->npts) {
		for (size_t j = 0; j < r->npts; j++)
			fprintf(stderr,
			        "  pt %zu last=%" PRIu64 " hs=%d/%" PRIu64 " snap=%d/%" PRIu64
			        "%s\n",
			        j, r->pts[j].last, r->pts[j].has_hs, r->pts[j].hs.commit,
			        r->pts[j].has_snap, r->pts[j].snap.index,
			        j == r->durable ? " <durable" : "");
		fprintf(stderr,
		        "  rec last=%" PRIu64 " first=%" PRIu64 " hs=%d/%" PRIu64
		        " snap=%d/%" PRIu64 " loss=%d\n",
		        rec.last_index, rec.first_index, rec.has_hard_state, rec.hard_state.commit,
		        rec.has_snapshot, rec.snapshot.index, loss);
	}
	if (k == r->npts)
		fprintf(stderr,
		        "swarm: seed %" PRIu64 ": recovered last=%" PRIu64
		        " matches no state at or after the durable one\n",
		        seed, rec.last_index);
	assert_true(k < r->npts);
	r->pts[0] = r->pts[k];
	r->npts = 1;
	r->durable = 0;
	r->stopped = false;
}

static void append_random(struct run *r)
{
	struct model m = r->pts[r->npts - 1];
	uint64_t snap_index = m.has_snap ? m.snap.index : 0, first = m.last + 1, term;
	size_t n = (size_t)rnd(r, 5);
	struct wal_hard_state hs;
	struct wal_snapshot snap;
	bool with_hs = rnd(r, 2), with_snap = rnd(r, 20) == 0;
	int rc;

	term = (m.has_hs ? m.hs.term : 1) + (rnd(r, 10) == 0);
	if (rnd(r, 8) == 0 && m.last > snap_index + 1) /* a new leader's suffix */
		first = m.last - rnd(r, m.last - snap_index - 1 < 4 ? m.last - snap_index - 1 : 4);
	if (with_snap) {
		snap.index = snap_index + rnd(r, m.last + 3 - snap_index);
		snap.term = term;
		if (first <= snap.index)
			first = (snap.index > m.last ? snap.index : m.last) + 1;
	}
	if (first + n >= MODEL_MAX)
		return;
	hs = (struct wal_hard_state){term, rnd(r, 3), first > 1 ? first - 1 : 0};
	if (!n && !with_hs && !with_snap)
		with_hs = true;
	rc = append_entries(r->w, &m, first, n, term, with_hs ? &hs : NULL,
	                    with_snap ? &snap : NULL);
	if (rc == 0) {
		push(r, &m);
	} else {
		assert_true(rc == -EIO || rc == -ENOSPC);
		r->stopped = true;
	}
}

static void run_seed(uint64_t seed)
{
	int trace = getenv("WAL_SWARM_TRACE") != NULL;
	struct run r = {.rs = seed * 0x9E3779B97F4A7C15ull + 1};
	struct model m;

	r.fs = memfs_new();
	r.w = open_mem(r.fs, SEG, NULL);
	model_init(&m);
	push(&r, &m);
	for (int step = 0; step < STEPS; step++) {
		uint64_t op = rnd(&r, 100);
		if (trace) {
			const struct model *t = &r.pts[r.npts - 1];
			fprintf(stderr,
			        "step %d op %" PRIu64 " last=%" PRIu64 " snap=%" PRIu64
			        " npts=%zu durable=%zu stopped=%d\n",
			        step, op, t->last, t->has_snap ? t->snap.index : 0, r.npts,
			        r.durable, r.stopped);
		}
		if (r.stopped || op < 4) {
			reopen(&r, seed, 1 + (int)rnd(&r, 2));
		} else if (op < 8) {
			reopen(&r, seed, 0);
		} else if (op < 22) {
			int rc = wal_sync(r.w, NULL);
			if (rc == 0)
				r.durable = r.npts - 1;
			else
				r.stopped = true;
		} else if (op < 26) {
			const struct model *last = &r.pts[r.npts - 1];
			unsigned released;
			int rc = wal_release(r.w, last->has_snap ? last->snap.index : 0, &released);
			if (rc == 0) {
				r.durable = r.npts - 1; /* release syncs first */
			} else {
				assert_true(rc == -EIO || rc == -ENOSPC);
				r.stopped = true;
			}
		} else if (op < 27) {
			memfs_fail_sync(r.fs, 1 + (long)rnd(&r, 3), EIO);
		} else if (op < 28) {
			memfs_fail_write(r.fs, 1 + (long)rnd(&r, 3), rnd(&r, 2) ? EIO : ENOSPC);
		} else if (op < 29) {
			memfs_fail_dir_sync(r.fs, 1, EIO);
		} else {
			append_random(&r);
		}
	}
	reopen(&r, seed, 2);
	wal_close(r.w);
	memfs_free(r.fs);
	free(r.pts);
}

static void
random_runs_with_crashes_always_recover_a_whole_batch_at_or_after_the_synced_one(void **state)
{
	const char *env = getenv("WAL_SWARM_SEEDS"); /* longer manual runs */
	uint64_t seeds = env ? strtoull(env, NULL, 10) : SEEDS;

	(void)state;
	const char *one = getenv("WAL_SWARM_SEED");
	if (one) {
		run_seed(strtoull(one, NULL, 10));
		return;
	}
	for (uint64_t seed = 1; seed <= seeds; seed++)
		run_seed(seed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
	        random_runs_with_crashes_always_recover_a_whole_batch_at_or_after_the_synced_one),
	};

	return cmocka_run_group_tests_name("wal_swarm", tests, NULL, NULL);
}

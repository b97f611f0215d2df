/*
 * I/O faults and group commit: a failed fdatasync or write stops the log for
 * good and nothing unsynced is ever reported durable; short writes are
 * completed; concurrent callers arriving while an fdatasync is in flight are
 * written with one write call and synced with one fdatasync, never two in
 * flight. Group-commit tests hold fdatasync at a gate in memfs and wait on
 * conditions, never on the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "tests/wal/util.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SEG 4096u

static void a_failed_fdatasync_stops_the_log_and_nothing_unsynced_is_durable(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct wal_recovered rec;
	struct wal_entries es;
	struct wal_stats st;
	struct model m, synced;
	uint64_t durable = 0;
	struct wal_hard_state hs = {7, 7, 7};
	struct wal_batch b = {NULL, NULL, 0, &hs};

	(void)state;
	model_init(&m);
	assert_int_equal(append_entries(w, &m, 1, 10, 1, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, &durable), 0);
	synced = m;
	assert_int_equal(append_entries(w, &m, 11, 5, 1, NULL, NULL), 0);
	memfs_fail_sync(fs, 1, EIO);
	assert_int_equal(wal_sync(w, &durable), -EIO);
	assert_int_equal(durable, 10);
	wal_stats_get(w, &st);
	assert_int_equal(st.durable_index, 10);
	assert_int_equal(st.error, -EIO);
	assert_non_null(strstr(wal_errmsg(w), "fdatasync"));
	/* Never retried: every later call fails with the same error. */
	assert_int_equal(append_entries(w, &m, 16, 1, 1, NULL, NULL), -EIO);
	assert_int_equal(wal_sync(w, &durable), -EIO);
	assert_int_equal(wal_append_sync(w, &b, &durable), -EIO);
	assert_int_equal(wal_read(w, 1, 2, 0, &es), -EIO);
	assert_int_equal(wal_release(w, 0, NULL), -EIO);
	wal_close(w);

	memfs_power_loss(fs, MEMFS_DROP_UNSYNCED, 1);
	w = open_mem(fs, SEG, &rec);
	check_recovered(&rec, &synced);
	check_entries(w, &synced);
	wal_close(w);
	memfs_free(fs);
}

static void failed_writes_stop_the_log_with_their_error(void **state)
{
	static const int errs[] = {EIO, ENOSPC};

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct memfs *fs = memfs_new();
		struct wal *w = open_mem(fs, SEG, NULL);
		struct wal_recovered rec;
		struct model m, synced;
		uint64_t durable = 0;
		model_init(&m);
		assert_int_equal(append_entries(w, &m, 1, 3, 1, NULL, NULL), 0);
		assert_int_equal(wal_sync(w, &durable), 0);
		synced = m;
		memfs_fail_write(fs, 1, errs[k]);
		assert_int_equal(append_entries(w, &m, 4, 3, 1, NULL, NULL), -errs[k]);
		assert_int_equal(append_entries(w, &m, 4, 3, 1, NULL, NULL), -errs[k]);
		assert_int_equal(wal_sync(w, &durable), -errs[k]);
		assert_int_equal(durable, 3);
		wal_close(w);
		memfs_power_loss(fs, MEMFS_DROP_UNSYNCED, 1);
		w = open_mem(fs, SEG, &rec);
		check_recovered(&rec, &synced);
		wal_close(w);
		memfs_free(fs);
	}
}

static void failures_while_rotating_segments_stop_the_log(void **state)
{
	(void)state;
	for (int which = 0; which < 3; which++) {
		struct memfs *fs = memfs_new();
		struct wal *w = open_mem(fs, SEG, NULL);
		struct model m;
		uint64_t i = 1;
		int rc = 0;
		model_init(&m);
		assert_int_equal(append_entries(w, &m, i, 4, 1, NULL, NULL), 0);
		i += 4;
		if (which == 0)
			memfs_fail_dir_sync(fs, 1, EIO);
		else if (which == 1)
			memfs_fail_sync(fs, 2, EIO); /* the old segment's, then the header's */
		else
			memfs_fail_write(fs, 5, ENOSPC); /* some write, maybe a header */
		while (rc == 0 && i < 1000) {
			rc = append_entries(w, &m, i, 4, 1, NULL, NULL);
			i += 4;
		}
		assert_true(rc == -EIO || rc == -ENOSPC);
		assert_int_equal(append_entries(w, &m, i, 1, 1, NULL, NULL), rc);
		assert_int_equal(wal_sync(w, NULL), rc);
		wal_close(w);
		memfs_free(fs);
	}
}

static void short_writes_are_completed_and_recover_intact(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct wal_recovered rec;
	struct model m;

	(void)state;
	model_init(&m);
	memfs_short_writes(fs, 7);
	for (uint64_t i = 1; i <= 400; i += 8) {
		struct wal_hard_state hs = {1, 1, i};
		assert_int_equal(append_entries(w, &m, i, 8, 1, &hs, NULL), 0);
	}
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	memfs_short_writes(fs, 0);
	memfs_power_loss(fs, MEMFS_DROP_UNSYNCED, 1);
	w = open_mem(fs, SEG, &rec);
	check_recovered(&rec, &m);
	check_entries(w, &m);
	wal_close(w);
	memfs_free(fs);
}

struct caller {
	struct wal *w;
	struct wal_hard_state hs;
	struct wal_entry e;
	struct wal_batch b;
	uint64_t durable;
	int rc;
	int loops;
	pthread_t t;
};

static void *call_append_sync(void *arg)
{
	struct caller *c = arg;

	for (int i = 0; i < (c->loops ? c->loops : 1); i++) {
		c->hs.commit++;
		c->rc = wal_append_sync(c->w, &c->b, &c->durable);
		if (c->rc != 0)
			break;
	}
	return NULL;
}

static void wait_queued(struct wal *w, unsigned n)
{
	struct wal_stats st;

	for (long spins = 0;; spins++) {
		wal_stats_get(w, &st);
		if (st.queued >= n)
			return;
		assert_true(spins < 100000000L);
		sched_yield();
	}
}

static void callers_arriving_during_an_fdatasync_share_one_write_and_one_fdatasync(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, 1u << 20, NULL);
	struct caller c[4];
	struct memfs_counts before, after;
	struct wal_recovered rec;

	(void)state;
	memset(c, 0, sizeof c);
	for (int i = 0; i < 4; i++) {
		c[i].w = w;
		c[i].hs = (struct wal_hard_state){1, 1, (uint64_t)i * 100};
		c[i].b.hard_state = &c[i].hs;
	}
	c[0].e = (struct wal_entry){1, 1, 0, "x", 1};
	c[0].b.entries = &c[0].e;
	c[0].b.n_entries = 1;
	/* Start the writer (first segment) outside the measurement. */
	assert_int_equal(wal_append(w, &c[0].b), 0);
	c[0].e.index = 2;
	memfs_gate_close(fs);
	assert_int_equal(pthread_create(&c[0].t, NULL, call_append_sync, &c[0]), 0);
	memfs_gate_wait(fs, 1); /* c[0]'s fdatasync is in flight */
	memfs_counts(fs, &before);
	for (int i = 1; i < 4; i++)
		assert_int_equal(pthread_create(&c[i].t, NULL, call_append_sync, &c[i]), 0);
	wait_queued(w, 3);
	memfs_gate_open(fs);
	for (int i = 0; i < 4; i++) {
		pthread_join(c[i].t, NULL);
		assert_int_equal(c[i].rc, 0);
		assert_int_equal(c[i].durable, 2);
	}
	memfs_counts(fs, &after);
	assert_int_equal(after.writes - before.writes, 1);
	/* c[0]'s fdatasync was counted in `before`; one more served the rest. */
	assert_int_equal(after.syncs - before.syncs, 1);
	assert_int_equal(after.max_syncs_in_flight, 1);
	wal_close(w);
	w = open_mem(fs, 1u << 20, &rec);
	assert_true(rec.has_hard_state);
	assert_int_equal(rec.last_index, 2);
	wal_close(w);
	memfs_free(fs);
}

static void many_concurrent_callers_never_have_two_fdatasyncs_in_flight(void **state)
{
	enum { N = 16 };
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct caller c[N];
	struct memfs_counts mc;
	struct wal_stats st;
	struct wal_recovered rec;

	(void)state;
	memset(c, 0, sizeof c);
	for (int i = 0; i < N; i++) {
		c[i].w = w;
		c[i].hs = (struct wal_hard_state){2, 1, 0};
		c[i].b.hard_state = &c[i].hs;
		c[i].loops = 200;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&c[i].t, NULL, call_append_sync, &c[i]), 0);
	for (int i = 0; i < N; i++) {
		pthread_join(c[i].t, NULL);
		assert_int_equal(c[i].rc, 0);
	}
	memfs_counts(fs, &mc);
	wal_stats_get(w, &st);
	assert_int_equal(mc.max_syncs_in_flight, 1);
	assert_int_equal(st.batches, N * 200);
	assert_true(st.segments_created > 1); /* rotations happened under load */
	wal_close(w);
	w = open_mem(fs, SEG, &rec);
	assert_true(rec.has_hard_state);
	assert_int_equal(rec.hard_state.commit, 200);
	wal_close(w);
	memfs_free(fs);
}

static void a_failed_group_fdatasync_fails_every_caller_in_the_group(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, 1u << 20, NULL);
	struct caller c[3];

	(void)state;
	memset(c, 0, sizeof c);
	for (int i = 0; i < 3; i++) {
		c[i].w = w;
		c[i].hs = (struct wal_hard_state){1, 1, (uint64_t)i};
		c[i].b.hard_state = &c[i].hs;
	}
	assert_int_equal(wal_append(w, &c[0].b), 0);
	memfs_gate_close(fs);
	assert_int_equal(pthread_create(&c[0].t, NULL, call_append_sync, &c[0]), 0);
	memfs_gate_wait(fs, 1);
	for (int i = 1; i < 3; i++)
		assert_int_equal(pthread_create(&c[i].t, NULL, call_append_sync, &c[i]), 0);
	wait_queued(w, 2);
	memfs_fail_sync(fs, 1, EIO);
	memfs_gate_open(fs);
	for (int i = 0; i < 3; i++) {
		pthread_join(c[i].t, NULL);
		assert_int_equal(c[i].rc, -EIO);
	}
	assert_int_equal(wal_append_sync(w, &c[0].b, NULL), -EIO);
	wal_close(w);
	memfs_free(fs);
}

struct ordered {
	struct wal *w;
	pthread_mutex_t order;
	uint64_t next;
	atomic_int bad;
};

static void *submit_in_order(void *arg)
{
	struct ordered *o = arg;

	for (int i = 0; i < 100; i++) {
		unsigned char data[64];
		struct wal_entry e = {0, 1, 0, data, 0};
		struct wal_batch b = {NULL, &e, 1, NULL};
		struct wal_req req;
		uint64_t durable = 0;
		int rc;
		pthread_mutex_lock(&o->order);
		e.index = o->next++;
		e.type = (uint32_t)(e.index % 3);
		e.len = entry_len(e.index, 1);
		entry_fill(data, e.index, 1);
		rc = wal_submit(o->w, &req, &b);
		pthread_mutex_unlock(&o->order);
		if (rc != 0 || wal_wait(o->w, &req, &durable) != 0 || durable < e.index)
			atomic_store(&o->bad, 1);
	}
	return NULL;
}

static void concurrent_submitters_keep_their_index_order_across_rotations(void **state)
{
	enum { N = 16 };
	struct memfs *fs = memfs_new();
	struct ordered o = {.w = open_mem(fs, SEG, NULL), .next = 1};
	struct wal_recovered rec;
	pthread_t t[N];
	struct model m;
	struct wal *w;

	(void)state;
	pthread_mutex_init(&o.order, NULL);
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&t[i], NULL, submit_in_order, &o), 0);
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	assert_false(atomic_load(&o.bad));
	wal_close(o.w);
	pthread_mutex_destroy(&o.order);
	memfs_power_loss(fs, MEMFS_DROP_UNSYNCED, 1);
	model_init(&m);
	for (uint64_t i = 1; i <= N * 100; i++)
		m.term[i] = 1;
	m.last = N * 100;
	w = open_mem(fs, SEG, &rec);
	assert_true(rec.segments > 5);
	check_recovered(&rec, &m);
	check_entries(w, &m);
	wal_close(w);
	memfs_free(fs);
}

struct reader {
	struct wal *w;
	atomic_int stop;
	atomic_long reads;
	long compacted;
	atomic_int bad;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(&r->stop)) {
		uint64_t first, last;
		struct wal_entries es;
		int rc;
		wal_index_range(r->w, &first, &last);
		if (first > last)
			continue;
		rc = wal_read(r->w, first, last + 1, 4096, &es);
		if (rc == MOOR_ECOMPACTEDLOG) {
			r->compacted++;
			continue;
		}
		if (rc != 0 || es.n == 0 || es.v[0].index != first) {
			atomic_store(&r->bad, 1);
			break;
		}
		for (size_t i = 0; i < es.n; i++) {
			unsigned char buf[64];
			entry_fill(buf, es.v[i].index, es.v[i].term);
			if (es.v[i].index != first + i ||
			    es.v[i].len != entry_len(es.v[i].index, 1) ||
			    memcmp(es.v[i].data, buf, es.v[i].len) != 0)
				atomic_store(&r->bad, 1);
		}
		wal_entries_free(&es);
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

static void reads_run_beside_appends_rotations_and_releases(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct reader r = {.w = w};
	struct model m;
	pthread_t t;
	unsigned released = 0, total = 0;

	(void)state;
	model_init(&m);
	assert_int_equal(append_entries(w, &m, 1, 4, 1, NULL, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, read_loop, &r), 0);
	for (uint64_t i = 5; i < 3000; i += 4) {
		assert_int_equal(append_entries(w, &m, i, 4, 1, NULL, NULL), 0);
		if (i % 200 == 1) {
			struct wal_snapshot snap = {i - 100, 1};
			assert_int_equal(append_entries(w, &m, i + 4, 0, 1, NULL, &snap), 0);
			assert_int_equal(wal_sync(w, NULL), 0);
			assert_int_equal(wal_release(w, snap.index, &released), 0);
			total += released;
			/* Let the reader through at least once per round (bounded). */
			for (long seen = atomic_load(&r.reads), spins = 0;
			     atomic_load(&r.reads) == seen && !atomic_load(&r.bad); spins++) {
				assert_true(spins < 100000000L);
				sched_yield();
			}
		}
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	assert_false(atomic_load(&r.bad));
	assert_true(atomic_load(&r.reads) >= 10);
	assert_true(total > 10);
	wal_close(w);
	memfs_free(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_failed_fdatasync_stops_the_log_and_nothing_unsynced_is_durable),
	    cmocka_unit_test(failed_writes_stop_the_log_with_their_error),
	    cmocka_unit_test(failures_while_rotating_segments_stop_the_log),
	    cmocka_unit_test(short_writes_are_completed_and_recover_intact),
	    cmocka_unit_test(
	        callers_arriving_during_an_fdatasync_share_one_write_and_one_fdatasync),
	    cmocka_unit_test(many_concurrent_callers_never_have_two_fdatasyncs_in_flight),
	    cmocka_unit_test(a_failed_group_fdatasync_fails_every_caller_in_the_group),
	    cmocka_unit_test(reads_run_beside_appends_rotations_and_releases),
	    cmocka_unit_test(concurrent_submitters_keep_their_index_order_across_rotations),
	};

	return cmocka_run_group_tests_name("wal_faults", tests, NULL, NULL);
}

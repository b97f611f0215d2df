/*
 * Scenario tests of the watch hub: each proves one behaviour of watch.h
 * with a handful of writes against the in-memory store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "tests/watch/harness.h"

#include <stdio.h>
#include <string.h>

static void a_key_watcher_receives_puts_and_deletes_of_its_key_in_order(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t id, r1, r2;

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	id = th_watch(&ts, "a", NULL, 0);
	assert_int_equal(id, 0);
	assert_int_equal(th_next(&ts, &g), 0);
	r1 = th_put(&t, "a", "1");
	th_put(&t, "b", "x");
	r2 = th_del(&t, "a");
	assert_int_equal(ts.notifies, 1);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, id);
	/* Both revisions fit in one response. */
	assert_int_equal(g.n, 2);
	assert_int_equal(g.ev[0].rev, r1);
	assert_string_equal(g.ev[0].key, "a");
	assert_string_equal(g.ev[0].val, "1");
	assert_int_equal(g.ev[0].type, MVCCPB__EVENT__EVENT_TYPE__PUT);
	assert_int_equal(g.ev[1].rev, r2);
	assert_int_equal(g.ev[1].type, MVCCPB__EVENT__EVENT_TYPE__DELETE);
	assert_int_equal(g.rev, r2);
	assert_int_equal(th_next(&ts, &g), 0);
	th_fini(&t);
}

static void range_prefix_and_from_key_watchers_match_only_keys_inside(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t range, prefix, fromkey, all;
	const char *keys[] = {"a", "ab", "abc", "abd", "b", "ba", "c"};

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	range = th_watch(&ts, "ab", "b", 0); /* [ab, b) */
	prefix = th_watch(&ts, "ab", "ac", 0);
	fromkey = th_watch(&ts, "b", "", 0); /* >= b */
	all = th_watch(&ts, "", "", 0);
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		th_put(&t, keys[i], "v");
	for (int k = 0; k < 4; k++) {
		char seen[64] = "";
		assert_int_equal(th_next(&ts, &g), 1);
		for (size_t i = 0; i < g.n; i++) {
			strcat(seen, g.ev[i].key);
			strcat(seen, " ");
		}
		if (g.id == range || g.id == prefix)
			assert_string_equal(seen, "ab abc abd ");
		else if (g.id == fromkey)
			assert_string_equal(seen, "b ba c ");
		else if (g.id == all)
			assert_string_equal(seen, "a ab abc abd b ba c ");
		else
			fail();
	}
	assert_int_equal(th_next(&ts, &g), 0);
	th_fini(&t);
}

static void every_event_of_one_revision_arrives_in_one_response(void **state)
{
	struct watch_hub_config cfg = {0};
	struct th t;
	struct th_stream ts;
	struct got g;
	struct memstore_op ops[5];
	char keys[5][4];
	int64_t rev;

	(void)state;
	cfg.max_response_events = 2; /* between revisions only */
	th_init(&t, &cfg);
	th_stream_open(&t, &ts);
	th_watch(&ts, "k", "l", 0);
	for (int i = 0; i < 5; i++) {
		snprintf(keys[i], sizeof keys[i], "k%d", i);
		ops[i] = (struct memstore_op){false, keys[i], 2, "v", 1};
	}
	rev = memstore_txn(&t.ms, ops, 5);
	th_put(&t, "k9", "w"); /* applies both revisions in one batch */
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(g.ev[i].rev, rev);
	assert_false(g.fragment);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ev[0].rev, rev + 1);
	th_fini(&t);
}

static void a_watcher_starting_in_the_past_catches_up_then_gets_live_events(void **state)
{
	struct watch_hub_config cfg = {0};
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t first = 0, want;
	char v[16];

	(void)state;
	cfg.history_batch_events = 3;
	th_init(&t, &cfg);
	for (int i = 0; i < 10; i++) {
		snprintf(v, sizeof v, "%d", i);
		int64_t r = th_put(&t, "x", v);
		if (!first)
			first = r;
		th_put(&t, "y", v);
	}
	th_stream_open(&t, &ts);
	th_watch(&ts, "x", NULL, first);
	assert_true(t.wakeups > 0);
	assert_int_equal(th_next(&ts, &g), 0);         /* nothing before a sync */
	assert_int_equal(watch_hub_sync(t.hub, 1), 1); /* one bounded read, more to do */
	th_sync(&t);
	want = first;
	for (int i = 0; i < 10;) {
		assert_int_equal(th_next(&ts, &g), 1);
		for (size_t j = 0; j < g.n; j++, i++) {
			assert_int_equal(g.ev[j].rev, want);
			want += 2;
		}
	}
	want = th_put(&t, "x", "live");
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ev[0].rev, want);
	assert_int_equal(th_next(&ts, &g), 0);
	th_fini(&t);
}

static void the_hand_over_takes_history_only_up_to_the_hubs_revision(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t r1, r2, r3;

	(void)state;
	th_init(&t, NULL);
	r1 = th_put(&t, "k", "1");
	th_stream_open(&t, &ts);
	th_watch(&ts, "k", NULL, r1);
	/* The store runs ahead: r2 and r3 are committed but not applied. */
	r2 = memstore_put(&t.ms, "k", "2");
	r3 = memstore_put(&t.ms, "k", "3");
	th_sync(&t);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ev[0].rev, r1);
	assert_int_equal(g.rev, r1);
	/* Now live: r2 and r3 come from apply, once each. */
	th_apply_to(&t, r2);
	th_apply_to(&t, r3);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.ev[0].rev, r2);
	assert_int_equal(g.ev[1].rev, r3);
	assert_int_equal(th_next(&ts, &g), 0);
	th_fini(&t);
}

static void a_compacted_start_revision_gets_the_compact_revision_and_ends(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t id, r1;

	(void)state;
	th_init(&t, NULL);
	r1 = th_put(&t, "k", "1");
	th_put(&t, "k", "2");
	th_put(&t, "k", "3");
	memstore_compact(&t.ms, r1 + 2);
	th_stream_open(&t, &ts);
	id = th_watch(&ts, "k", NULL, r1);
	th_sync(&t);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, id);
	assert_true(g.canceled);
	assert_int_equal(g.compact, r1 + 2);
	assert_int_equal(g.n, 0);
	assert_int_equal(th_next(&ts, &g), 0);
	assert_int_equal(watch_stream_cancel(ts.s, id), MOOR_ENOTFOUND);
	/* Resuming from the compact revision works. */
	th_watch(&ts, "k", NULL, r1 + 2);
	th_sync(&t);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ev[0].rev, r1 + 2);
	th_fini(&t);
}

static void a_slow_watcher_falls_back_to_history_and_loses_nothing(void **state)
{
	struct watch_hub_config cfg = {0};
	struct watch_hub_stats st;
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t want, first = 0, last = 0;

	(void)state;
	cfg.max_pending_events = 4;
	th_init(&t, &cfg);
	th_stream_open(&t, &ts);
	th_watch(&ts, "k", NULL, 0);
	for (int i = 0; i < 20; i++) {
		last = th_put(&t, "k", "v");
		if (!first)
			first = last;
	}
	watch_hub_stats(t.hub, &st);
	assert_int_equal(st.overflows, 1);
	assert_int_equal(st.unsynced, 1);
	assert_true(st.queued_events <= 4);
	want = first;
	while (want <= last) {
		th_sync(&t);
		assert_int_equal(th_next(&ts, &g), 1);
		for (size_t j = 0; j < g.n; j++)
			assert_int_equal(g.ev[j].rev, want++);
		watch_hub_stats(t.hub, &st);
		assert_true(st.queued_events <= 4);
	}
	th_sync(&t);
	watch_hub_stats(t.hub, &st);
	assert_int_equal(st.synced, 1);
	assert_int_equal(th_put(&t, "k", "w"), last + 1);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.ev[0].rev, last + 1);
	th_fini(&t);
}

static void a_watcher_compacted_while_lagging_gets_its_events_then_the_compacted_end(void **state)
{
	struct watch_hub_config cfg = {0};
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t id, first = 0, last = 0;

	(void)state;
	cfg.max_pending_events = 2;
	th_init(&t, &cfg);
	th_stream_open(&t, &ts);
	id = th_watch(&ts, "k", NULL, 0);
	for (int i = 0; i < 6; i++) {
		last = th_put(&t, "k", "v");
		if (!first)
			first = last;
	}
	memstore_compact(&t.ms, last);
	th_sync(&t); /* parked: its queue is full */
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 2); /* what was queued before it fell behind */
	assert_int_equal(g.ev[0].rev, first);
	assert_int_equal(g.ev[1].rev, first + 1);
	assert_int_equal(g.rev, first + 1);
	assert_int_equal(th_next(&ts, &g), 0);
	th_sync(&t);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, id);
	assert_true(g.canceled);
	assert_int_equal(g.compact, last);
	assert_int_equal(th_next(&ts, &g), 0);
	th_fini(&t);
}

static void filters_drop_puts_or_deletes(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	struct watch_create req = {
	    (const uint8_t *)"k", 1, NULL, 0, 0, WATCH_AUTO_ID, false, false, false, false, false};
	int64_t noput, nodel;

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	req.no_put = true;
	noput = th_watch_req(&ts, &req);
	req.no_put = false;
	req.no_delete = true;
	nodel = th_watch_req(&ts, &req);
	th_put(&t, "k", "1");
	th_del(&t, "k");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(th_next(&ts, &g), 1);
		assert_int_equal(g.n, 1);
		if (g.id == noput)
			assert_int_equal(g.ev[0].type, MVCCPB__EVENT__EVENT_TYPE__DELETE);
		else if (g.id == nodel)
			assert_int_equal(g.ev[0].type, MVCCPB__EVENT__EVENT_TYPE__PUT);
		else
			fail();
	}
	assert_int_equal(th_next(&ts, &g), 0);
	th_fini(&t);
}

static void prev_kv_goes_only_to_watchers_that_asked_for_it(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	struct watch_create req = {
	    (const uint8_t *)"k", 1, NULL, 0, 0, WATCH_AUTO_ID, false, false, false, false, false};
	int64_t with, without, r1;

	(void)state;
	th_init(&t, NULL);
	r1 = th_put(&t, "k", "old");
	th_stream_open(&t, &ts);
	req.prev_kv = true;
	with = th_watch_req(&ts, &req);
	req.prev_kv = false;
	without = th_watch_req(&ts, &req);
	req.prev_kv = true;
	req.start_rev = r1;
	th_watch_req(&ts, &req); /* from history */
	th_put(&t, "k", "new");
	th_sync(&t);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(th_next(&ts, &g), 1);
		if (g.id == with) {
			assert_true(g.ev[0].has_prev);
			assert_string_equal(g.ev[0].prev_val, "old");
		} else if (g.id == without) {
			assert_false(g.ev[0].has_prev);
			assert_string_equal(g.ev[0].val, "new");
		} else {
			assert_int_equal(g.n, 2);
			assert_false(g.ev[0].has_prev); /* a create has none */
			assert_true(g.ev[1].has_prev);
			assert_string_equal(g.ev[1].prev_val, "old");
		}
	}
	th_fini(&t);
}

static void a_revision_over_the_size_limit_is_fragmented_only_for_watchers_that_asked(void **state)
{
	struct watch_hub_config cfg = {0};
	struct th t;
	struct th_stream ts;
	struct got g;
	struct memstore_op ops[10];
	char keys[10][4], val[200];
	struct watch_create req = {(const uint8_t *)"f",
	                           1,
	                           (const uint8_t *)"g",
	                           1,
	                           0,
	                           WATCH_AUTO_ID,
	                           false,
	                           false,
	                           false,
	                           false,
	                           true};
	int64_t frag, whole, rev;
	size_t total = 0;
	int parts = 0, whole_seen = 0;

	(void)state;
	cfg.max_response_bytes = 700; /* about three events */
	th_init(&t, &cfg);
	th_stream_open(&t, &ts);
	frag = th_watch_req(&ts, &req);
	req.fragment = false;
	whole = th_watch_req(&ts, &req);
	memset(val, 'v', sizeof val - 1);
	val[sizeof val - 1] = 0;
	for (int i = 0; i < 10; i++) {
		snprintf(keys[i], sizeof keys[i], "f%d", i);
		ops[i] = (struct memstore_op){false, keys[i], 2, val, strlen(val)};
	}
	rev = memstore_txn(&t.ms, ops, 10);
	th_put(&t, "f", "small");
	for (;;) {
		assert_int_equal(th_next(&ts, &g), 1);
		/* Fragments go out back to back: nothing in between. */
		assert_int_equal(g.id, frag);
		for (size_t i = 0; i < g.n; i++)
			assert_int_equal(g.ev[i].rev, rev);
		assert_true(g.n >= 1 && g.n <= 3);
		total += g.n;
		parts++;
		if (!g.fragment)
			break;
	}
	assert_int_equal(total, 10);
	assert_true(parts >= 4);
	/* The other gets the revision whole; both get the next one after it. */
	while (th_next(&ts, &g)) {
		assert_false(g.fragment);
		if (g.id == whole && whole_seen++ == 0) {
			assert_int_equal(g.n, 10);
			assert_int_equal(g.ev[0].rev, rev);
			continue;
		}
		assert_int_equal(g.n, 1);
		assert_int_equal(g.ev[0].rev, rev + 1);
	}
	assert_int_equal(whole_seen, 2);
	th_fini(&t);
}

static void periodic_progress_goes_to_idle_live_watchers_that_asked(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	struct watch_create req = {
	    (const uint8_t *)"p", 1, NULL, 0, 0, WATCH_AUTO_ID, false, false, false, true, false};
	int64_t idle, busy, past, r1;

	(void)state;
	th_init(&t, NULL);
	r1 = th_put(&t, "q", "1");
	th_stream_open(&t, &ts);
	idle = th_watch_req(&ts, &req);
	req.key = (const uint8_t *)"q";
	busy = th_watch_req(&ts, &req);
	req.start_rev = r1;
	past = th_watch_req(&ts, &req); /* not synced yet: no progress */
	th_watch(&ts, "p", NULL, 0);    /* did not ask */
	watch_hub_progress_tick(t.hub);
	th_put(&t, "q", "2");
	watch_hub_progress_tick(t.hub);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, idle);
	assert_true(g.progress);
	assert_int_equal(g.n, 0);
	assert_int_equal(g.rev, watch_hub_revision(t.hub));
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, busy);
	assert_false(g.progress);
	assert_int_equal(g.n, 1);
	assert_int_equal(th_next(&ts, &g), 0);
	(void)past;
	th_fini(&t);
}

static void requested_progress_waits_until_every_watcher_is_synced_and_drained(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t r1, r2, late;

	(void)state;
	th_init(&t, NULL);
	r1 = th_put(&t, "a", "1");
	th_stream_open(&t, &ts);
	th_watch(&ts, "a", NULL, r1);
	assert_int_equal(watch_stream_request_progress(ts.s), 0); /* one is catching up */
	th_sync(&t);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(th_next(&ts, &g), 0);
	r2 = th_put(&t, "a", "2");
	assert_int_equal(watch_stream_request_progress(ts.s), 1);
	/* A watcher created now, from the past, must deliver first too. */
	late = th_watch(&ts, "a", NULL, r1);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.ev[0].rev, r2);
	assert_int_equal(th_next(&ts, &g), 0);
	th_sync(&t);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, late);
	assert_int_equal(g.n, 2);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, -1);
	assert_true(g.progress);
	assert_int_equal(g.rev, r2);
	assert_int_equal(th_next(&ts, &g), 0);
	th_fini(&t);
}

static void cancel_drops_queued_events_and_their_references(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	struct watch_hub_stats st;
	int64_t a, b;

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	a = th_watch(&ts, "k", NULL, 0);
	b = th_watch(&ts, "k", NULL, 0);
	th_put(&t, "k", "1");
	assert_int_equal(t.ms.live_batches, 1);
	assert_int_equal(watch_stream_cancel(ts.s, a), 0);
	assert_int_equal(watch_stream_cancel(ts.s, a), MOOR_ENOTFOUND);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.id, b);
	assert_int_equal(th_next(&ts, &g), 0);
	assert_int_equal(t.ms.live_batches, 0);
	watch_hub_stats(t.hub, &st);
	assert_int_equal(st.watchers, 1);
	assert_int_equal(st.queued_events, 0);
	watch_stream_close(ts.s);
	watch_hub_stats(t.hub, &st);
	assert_int_equal(st.watchers, 0);
	assert_int_equal(st.streams, 0);
	th_fini(&t);
}

static void ids_are_assigned_lowest_free_first_and_duplicates_are_refused(void **state)
{
	struct th t;
	struct th_stream ts, other;
	struct watch_create req = {
	    (const uint8_t *)"k", 1, NULL, 0, 0, 1, false, false, false, false, false};
	int64_t id, rev;

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	th_stream_open(&t, &other);
	assert_int_equal(th_watch_req(&ts, &req), 1);
	assert_int_equal(watch_stream_watch(ts.s, &req, &id, &rev), MOOR_EEXIST);
	assert_int_equal(th_watch_req(&other, &req), 1); /* ids are per stream */
	assert_int_equal(th_watch(&ts, "k", NULL, 0), 0);
	assert_int_equal(th_watch(&ts, "k", NULL, 0), 2);
	req.watch_id = -2;
	assert_int_equal(watch_stream_watch(ts.s, &req, &id, &rev), MOOR_EINVAL);
	req.watch_id = WATCH_AUTO_ID;
	req.start_rev = -1;
	assert_int_equal(watch_stream_watch(ts.s, &req, &id, &rev), MOOR_EINVAL);
	req.start_rev = 0;
	req.range_end = (const uint8_t *)"a";
	req.range_end_len = 1;
	assert_int_equal(watch_stream_watch(ts.s, &req, &id, &rev), MOOR_ERANGEEND);
	th_fini(&t);
}

static void a_future_start_revision_delivers_from_that_revision_on(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t now;

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	now = watch_hub_revision(t.hub);
	th_watch(&ts, "k", NULL, now + 3);
	th_put(&t, "k", "1");
	th_put(&t, "k", "2");
	th_put(&t, "k", "3");
	th_put(&t, "k", "4");
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.ev[0].rev, now + 3);
	assert_int_equal(g.ev[1].rev, now + 4);
	th_fini(&t);
}

static void notify_fires_once_until_the_stream_is_drained(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	th_watch(&ts, "a", NULL, 0);
	th_watch(&ts, "b", NULL, 0);
	th_put(&t, "a", "1");
	th_put(&t, "b", "1");
	assert_int_equal(ts.notifies, 1);
	assert_int_equal(th_next(&ts, &g), 1);
	th_put(&t, "a", "2");
	assert_int_equal(ts.notifies, 1);
	while (th_next(&ts, &g))
		;
	th_put(&t, "a", "3");
	assert_int_equal(ts.notifies, 2);
	th_fini(&t);
}

static void a_store_error_is_reported_and_the_watcher_retries(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t r1;

	(void)state;
	th_init(&t, NULL);
	r1 = th_put(&t, "k", "1");
	th_stream_open(&t, &ts);
	th_watch(&ts, "k", NULL, r1);
	t.ms.fail_next_reads = 1;
	assert_int_equal(watch_hub_sync(t.hub, 100), MOOR_EUNAVAILABLE);
	th_sync(&t);
	assert_int_equal(th_next(&ts, &g), 1);
	assert_int_equal(g.ev[0].rev, r1);
	th_fini(&t);
}

/* Many watchers on keys and ranges, half of them cancelled again (the
 * interval treap rotates and rebalances), then writes to random keys: every
 * watcher gets exactly the events of its range, as a brute-force scan says. */
static void matching_many_keys_and_ranges_agrees_with_a_brute_force_scan(void **state)
{
	enum { NW = 3000, NWRITES = 400 };
	static struct {
		char key[16], end[16];
		int64_t id;
		bool range, end_inf, alive;
		int want, got;
	} w[NW];
	struct th t;
	struct th_stream ts;
	struct got g;
	uint64_t x = 0x2545F4914F6CDD1Dull;

	(void)state;
	th_init(&t, NULL);
	th_stream_open(&t, &ts);
	for (int i = 0; i < NW; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* Half the keys share a 9-byte prefix: past the treap's 8-byte
		 * fast comparison. */
		snprintf(w[i].key, sizeof w[i].key, "%s%c%c", x >> 40 & 1 ? "registry/" : "",
		         (char)('a' + x % 26), (char)('a' + (x >> 8) % 26));
		w[i].range = (x >> 16) % 3 != 0;
		w[i].end_inf = w[i].range && (x >> 20) % 10 == 0;
		snprintf(w[i].end, sizeof w[i].end, "%s%c%c", x >> 41 & 1 ? "registry/" : "",
		         (char)('a' + x % 26 + (x >> 24) % 3), (char)('a' + (x >> 32) % 26));
		if (w[i].range && !w[i].end_inf && strcmp(w[i].end, w[i].key) <= 0)
			w[i].range = false;
		w[i].id = th_watch(&ts, w[i].key,
		                   w[i].end_inf ? ""
		                   : w[i].range ? w[i].end
		                                : NULL,
		                   0);
		assert_int_equal(w[i].id, i);
		w[i].alive = true;
	}
	for (int i = 0; i < NW; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (x % 2) {
			assert_int_equal(watch_stream_cancel(ts.s, w[i].id), 0);
			w[i].alive = false;
		}
	}
	for (int k = 0; k < NWRITES; k++) {
		char key[16];
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* a few keys past every range's start */
		snprintf(key, sizeof key, "%s%c%c", x >> 40 & 1 ? "registry/" : "",
		         (char)('a' + x % 28), (char)('a' + (x >> 8) % 26));
		th_put(&t, key, "v");
		for (int i = 0; i < NW; i++) {
			int c = strcmp(key, w[i].key);
			bool in = w[i].range ? c >= 0 && (w[i].end_inf || strcmp(key, w[i].end) < 0)
			                     : c == 0;
			w[i].want += in && w[i].alive;
		}
		while (th_next(&ts, &g)) {
			assert_true(g.id >= 0 && g.id < NW && w[g.id].alive);
			w[g.id].got += (int)g.n;
		}
	}
	for (int i = 0; i < NW; i++)
		assert_int_equal(w[i].got, w[i].want);
	th_fini(&t);
}

static void catching_up_watchers_at_or_ahead_of_the_first_share_one_history_read(void **state)
{
	struct th t;
	struct th_stream ts;
	struct got g;
	int64_t first = 0, start[100];
	int got[100] = {0};
	char key[8];

	(void)state;
	th_init(&t, NULL);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof key, "k%02d", i % 10);
		int64_t r = th_put(&t, key, "v");
		if (!first)
			first = r;
	}
	th_stream_open(&t, &ts);
	for (int i = 0; i < 100; i++) {
		/* The first (the lead) is the furthest behind; the others are
		 * spread over the history. */
		start[i] = first + (i * 37) % 50;
		snprintf(key, sizeof key, "k%02d", i % 10);
		th_watch(&ts, key, i % 20 == 0 ? "" : NULL, start[i]);
	}
	t.ms.reads = 0;
	th_sync(&t);
	assert_int_equal(t.ms.reads, 1);
	while (th_next(&ts, &g)) {
		for (size_t e = 0; e < g.n; e++)
			assert_true(g.ev[e].rev >= start[g.id]);
		got[g.id] += (int)g.n;
	}
	for (int i = 0; i < 100; i++) {
		/* Key kNN is written at first + NN + 10j; a from-key watcher on kNN
		 * sees every key >= kNN. */
		int want = 0;
		for (int64_t r = start[i]; r < first + 50; r++) {
			int k = (int)((r - first) % 10);
			want += i % 20 == 0 ? k >= i % 10 : k == i % 10;
		}
		assert_int_equal(got[i], want);
	}
	th_fini(&t);
}

static void a_stream_at_its_limit_sends_its_busiest_watchers_back_to_history(void **state)
{
	struct watch_hub_config cfg = {0};
	struct watch_hub_stats st;
	struct th t;
	struct th_stream ts;
	struct got g;
	int got[5] = {0};

	(void)state;
	cfg.max_stream_pending_events = 10;
	th_init(&t, &cfg);
	th_stream_open(&t, &ts);
	for (int i = 0; i < 5; i++)
		th_watch(&ts, "k", NULL, 0);
	for (int i = 0; i < 20; i++) {
		th_put(&t, "k", "v");
		watch_hub_stats(t.hub, &st);
		/* The limit, plus one revision for a watcher with nothing queued. */
		assert_true(st.queued_events <= 10 + 5);
	}
	watch_hub_stats(t.hub, &st);
	assert_int_equal(st.unsynced, 5);
	for (int round = 0; round < 100; round++) {
		th_sync(&t);
		while (th_next(&ts, &g))
			got[g.id] += (int)g.n;
		watch_hub_stats(t.hub, &st);
		assert_true(st.queued_events <= 10 + 5);
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(got[i], 20);
	assert_int_equal(st.synced, 5);
	th_fini(&t);
}

static void prefix_end_is_etcds_get_prefix_range_end(void **state)
{
	uint8_t out[8];

	(void)state;
	assert_int_equal(watch_prefix_end((const uint8_t *)"ab", 2, out), 2);
	assert_memory_equal(out, "ac", 2);
	assert_int_equal(watch_prefix_end((const uint8_t *)"a\xff\xff", 3, out), 1);
	assert_memory_equal(out, "b", 1);
	assert_int_equal(watch_prefix_end((const uint8_t *)"\xff", 1, out), 1);
	assert_int_equal(out[0], 0); /* every key */
	assert_int_equal(watch_prefix_end((const uint8_t *)"", 0, out), 1);
	assert_int_equal(out[0], 0);
}

static void a_stream_refuses_watchers_past_its_limit(void **state)
{
	struct watch_hub_config cfg = {0};
	struct th t;
	struct th_stream ts;
	struct watch_create req = {
	    (const uint8_t *)"k", 1, NULL, 0, 0, WATCH_AUTO_ID, false, false, false, false, false};
	int64_t id, rev;

	(void)state;
	cfg.max_watchers_per_stream = 3;
	th_init(&t, &cfg);
	th_stream_open(&t, &ts);
	for (int i = 0; i < 3; i++)
		th_watch_req(&ts, &req);
	assert_int_equal(watch_stream_watch(ts.s, &req, &id, &rev), MOOR_ETOOMANYREQUESTS);
	assert_int_equal(watch_stream_cancel(ts.s, 1), 0);
	assert_int_equal(th_watch_req(&ts, &req), 3);
	th_fini(&t);
}

static void apply_refuses_a_batch_out_of_order_and_leaves_it_to_the_caller(void **state)
{
	struct th t;
	struct watch_batch *b;
	int64_t r1;

	(void)state;
	th_init(&t, NULL);
	r1 = th_put(&t, "k", "1");
	b = memstore_batch(&t.ms, r1, r1); /* already applied */
	assert_int_equal(watch_hub_apply(t.hub, b), MOOR_EINVAL);
	assert_int_equal(t.ms.live_batches, 1);
	b->destroy(b);
	assert_int_equal(watch_hub_set_revision(t.hub, r1 - 1), MOOR_EINVAL);
	th_fini(&t);
}

static int stuck_read(void *ctx, const struct watch_history_query *q,
                      struct watch_history_result *res)
{
	int *calls = ctx;

	(*calls)++;
	res->batch = NULL;
	res->next_rev = q->from_rev; /* no progress: a broken store */
	return 0;
}

static void a_store_that_makes_no_progress_is_reported_as_corrupt(void **state)
{
	struct watch_hub_config cfg = {0};
	struct watch_hub *hub;
	struct watch_stream *s;
	struct watch_create req = {
	    (const uint8_t *)"k", 1, NULL, 0, 1, WATCH_AUTO_ID, false, false, false, false, false};
	int calls = 0;
	int64_t id, rev;

	(void)state;
	cfg.store.read = stuck_read;
	cfg.store.ctx = &calls;
	cfg.revision = 10;
	assert_int_equal(watch_hub_new(&cfg, &hub), 0);
	assert_int_equal(watch_stream_open(hub, NULL, &s), 0);
	assert_int_equal(watch_stream_watch(s, &req, &id, &rev), 0);
	assert_int_equal(watch_hub_sync(hub, 100), MOOR_ECORRUPT);
	assert_int_equal(watch_hub_sync(hub, 100), MOOR_ECORRUPT); /* it retries */
	assert_int_equal(calls, 2);
	watch_hub_free(hub);
}

/* Runs a small scenario under an allocator that fails after n calls;
 * returns 1 when it completed without any failure. */
static int scenario_with_failing_alloc(long n)
{
	struct moor_alloc_failing fa;
	struct watch_hub_config cfg = {0};
	struct th t;
	struct th_stream ts;
	struct watch_stream_config sc = {0};
	struct watch_create req = {
	    (const uint8_t *)"k", 1, NULL, 0, 0, WATCH_AUTO_ID, false, false, false, false, false};
	struct watch_response r;
	int64_t id, rev, r1 = 0, seen = 0;
	int rc, done = 0;

	moor_alloc_failing_init(&fa, n);
	memset(&t, 0, sizeof t);
	memstore_init(&t.ms);
	for (int i = 0; i < 5; i++)
		r1 = memstore_put(&t.ms, "k", "v");
	cfg.alloc = &fa.alloc;
	cfg.store = memstore_reader(&t.ms);
	cfg.revision = t.ms.rev;
	cfg.max_pending_events = 2;
	rc = watch_hub_new(&cfg, &t.hub);
	if (rc) {
		assert_int_equal(rc, MOOR_ENOMEM);
		goto out_store;
	}
	t.applied = t.ms.rev;
	rc = watch_stream_open(t.hub, &sc, &ts.s);
	if (rc) {
		assert_int_equal(rc, MOOR_ENOMEM);
		goto out_hub;
	}
	for (int i = 0; i < 3; i++) {
		req.start_rev = i == 0 ? r1 - 3 : 0;
		req.key = (const uint8_t *)(i == 2 ? "a" : "k");
		req.range_end = (const uint8_t *)(i == 2 ? "z" : NULL);
		req.range_end_len = i == 2;
		rc = watch_stream_watch(ts.s, &req, &id, &rev);
		if (rc) {
			assert_int_equal(rc, MOOR_ENOMEM);
			goto out_hub;
		}
	}
	/* Apply never fails; out of memory sends watchers to history. */
	for (int i = 0; i < 4; i++) {
		memstore_put(&t.ms, "k", "w");
		th_apply(&t);
	}
	for (int round = 0; round < 50; round++) {
		rc = watch_hub_sync(t.hub, 10);
		if (rc < 0) {
			assert_int_equal(rc, MOOR_ENOMEM);
			goto out_hub;
		}
		rc = watch_stream_next(ts.s, &r);
		if (rc < 0) {
			assert_int_equal(rc, MOOR_ENOMEM);
			goto out_hub;
		}
		if (rc == 1) {
			seen += (int64_t)r.n_events;
			watch_response_release(&r);
		}
	}
	/* 4 + 4 events on "k" for the first, 4 each for the others. */
	assert_int_equal(seen, 8 + 4 + 4);
	done = fa.failures == 0;
out_hub:
	watch_hub_free(t.hub);
out_store:
	assert_int_equal(t.ms.live_batches, 0);
	memstore_free(&t.ms);
	assert_int_equal(fa.live, 0);
	return done;
}

static void every_allocation_failure_is_clean_and_leaks_nothing(void **state)
{
	long n;

	(void)state;
	for (n = 0; n < 10000; n++)
		if (scenario_with_failing_alloc(n))
			break;
	assert_true(n > 5 && n < 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_key_watcher_receives_puts_and_deletes_of_its_key_in_order),
	    cmocka_unit_test(range_prefix_and_from_key_watchers_match_only_keys_inside),
	    cmocka_unit_test(every_event_of_one_revision_arrives_in_one_response),
	    cmocka_unit_test(a_watcher_starting_in_the_past_catches_up_then_gets_live_events),
	    cmocka_unit_test(the_hand_over_takes_history_only_up_to_the_hubs_revision),
	    cmocka_unit_test(a_compacted_start_revision_gets_the_compact_revision_and_ends),
	    cmocka_unit_test(a_slow_watcher_falls_back_to_history_and_loses_nothing),
	    cmocka_unit_test(
	        a_watcher_compacted_while_lagging_gets_its_events_then_the_compacted_end),
	    cmocka_unit_test(filters_drop_puts_or_deletes),
	    cmocka_unit_test(prev_kv_goes_only_to_watchers_that_asked_for_it),
	    cmocka_unit_test(
	        a_revision_over_the_size_limit_is_fragmented_only_for_watchers_that_asked),
	    cmocka_unit_test(periodic_progress_goes_to_idle_live_watchers_that_asked),
	    cmocka_unit_test(requested_progress_waits_until_every_watcher_is_synced_and_drained),
	    cmocka_unit_test(cancel_drops_queued_events_and_their_references),
	    cmocka_unit_test(ids_are_assigned_lowest_free_first_and_duplicates_are_refused),
	    cmocka_unit_test(a_future_start_revision_delivers_from_that_revision_on),
	    cmocka_unit_test(notify_fires_once_until_the_stream_is_drained),
	    cmocka_unit_test(a_store_error_is_reported_and_the_watcher_retries),
	    cmocka_unit_test(matching_many_keys_and_ranges_agrees_with_a_brute_force_scan),
	    cmocka_unit_test(catching_up_watchers_at_or_ahead_of_the_first_share_one_history_read),
	    cmocka_unit_test(a_stream_at_its_limit_sends_its_busiest_watchers_back_to_history),
	    cmocka_unit_test(prefix_end_is_etcds_get_prefix_range_end),
	    cmocka_unit_test(a_stream_refuses_watchers_past_its_limit),
	    cmocka_unit_test(apply_refuses_a_batch_out_of_order_and_leaves_it_to_the_caller),
	    cmocka_unit_test(a_store_that_makes_no_progress_is_reported_as_corrupt),
	    cmocka_unit_test(every_allocation_failure_is_clean_and_leaks_nothing),
	};
	return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}

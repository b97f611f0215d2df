/*
 * Tests of the set, watch and lock checkers with hand-written histories:
 * each legal behaviour accepted, each anomaly rejected with its count and a
 * message that names it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/faults/checker/checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*checker_fn)(const struct hist *h, struct chk_result *r);

/* Runs checker on text; returns the verdict and leaves the result in *r. */
static enum chk_verdict run(checker_fn fn, const char *text, struct chk_result *r)
{
	struct hist h;

	assert_int_equal(hist_load_string(&h, text), 0);
	assert_int_equal(fn(&h, r), 0);
	hist_free(&h);
	return r->verdict;
}

static json_int_t count(const struct chk_result *r, const char *name)
{
	return json_integer_value(json_object_get(r->detail, name));
}

/* The first violation message contains needle. */
static void first_violation_mentions(const struct chk_result *r, const char *field,
                                     const char *needle)
{
	const char *msg = json_string_value(json_array_get(json_object_get(r->detail, field), 0));

	if (!msg || !strstr(msg, needle)) {
		fprintf(stderr, "expected \"%s\" in: %s\n", needle, msg ? msg : "(none)");
		fail();
	}
}

/* ---- set ---------------------------------------------------------------- */

#define ADD(p, t, v, time)                                                                 \
	"{\"process\":" #p ",\"type\":\"" t "\",\"f\":\"add\",\"key\":\"s\",\"value\":" #v \
	",\"time_ns\":" #time "}\n"
#define FINAL(p, t, v, time)                                                                     \
	"{\"process\":" #p ",\"type\":\"" t "\",\"f\":\"final-read\",\"key\":\"s\",\"value\":" v \
	",\"time_ns\":" #time "}\n"

static void a_final_read_with_every_acknowledged_add_is_valid_and_counts_recoveries(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_set,
	                     ADD(0, "invoke", 1, 0) ADD(0, "ok", 1, 1) ADD(1, "invoke", 2, 2)
	                         ADD(1, "info", 2, 3) ADD(2, "invoke", 3, 4) ADD(2, "info", 3, 5)
	                             ADD(3, "invoke", 4, 6) ADD(3, "fail", 4, 7)
	                                 FINAL(4, "invoke", "null", 10) FINAL(4, "ok", "[1,2]", 11),
	                     &r),
	                 CHK_VALID);
	assert_int_equal(count(&r, "recovered_count"), 1);
	assert_int_equal(count(&r, "indeterminate_absent"), 1);
	assert_int_equal(count(&r, "lost_count"), 0);
	chk_result_free(&r);
}

static void an_acknowledged_add_missing_from_the_final_read_is_lost(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_set,
	                     ADD(0, "invoke", 1, 0) ADD(0, "ok", 1, 1) ADD(0, "invoke", 2, 2)
	                         ADD(0, "ok", 2, 3) FINAL(4, "invoke", "null", 10)
	                             FINAL(4, "ok", "[2]", 11),
	                     &r),
	                 CHK_INVALID);
	assert_int_equal(count(&r, "lost_count"), 1);
	first_violation_mentions(&r, "lost", "add s 1");
	chk_result_free(&r);
}

static void elements_never_added_failed_or_repeated_are_unexpected(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_set,
	                     ADD(0, "invoke", 1, 0) ADD(0, "ok", 1, 1) ADD(1, "invoke", 2, 2)
	                         ADD(1, "fail", 2, 3) FINAL(4, "invoke", "null", 10)
	                             FINAL(4, "ok", "[1,1,2,9]", 11),
	                     &r),
	                 CHK_INVALID);
	assert_int_equal(count(&r, "unexpected_count"), 3);
	assert_int_equal(count(&r, "lost_count"), 0);
	chk_result_free(&r);
}

static void an_add_acknowledged_after_the_final_read_began_may_be_absent(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_set,
	                     ADD(0, "invoke", 1, 0) FINAL(4, "invoke", "null", 1) ADD(0, "ok", 1, 2)
	                         FINAL(4, "ok", "[]", 3),
	                     &r),
	                 CHK_VALID);
	chk_result_free(&r);
}

static void adds_without_a_final_read_give_unknown(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_set, ADD(0, "invoke", 1, 0) ADD(0, "ok", 1, 1), &r), CHK_UNKNOWN);
	chk_result_free(&r);
}

/* ---- watch -------------------------------------------------------------- */

#define LOG(rev, key, op, val)                                                     \
	"{\"type\":\"log\",\"revision\":" #rev ",\"key\":\"" key "\",\"op\":\"" op \
	"\",\"value\":" val "}\n"
#define START(w, key, extra, rev)                                                        \
	"{\"f\":\"watch\",\"type\":\"start\",\"watch\":" #w ",\"key\":\"" key "\"" extra \
	",\"start_revision\":" #rev "}\n"
#define EVENTS(w, list) \
	"{\"f\":\"watch\",\"type\":\"event\",\"watch\":" #w ",\"events\":[" list "]}\n"
#define EV(rev, key, op, val) \
	"{\"revision\":" #rev ",\"key\":\"" key "\",\"op\":\"" op "\",\"value\":" val "}"
#define PROGRESS(w, rev) \
	"{\"f\":\"watch\",\"type\":\"progress\",\"watch\":" #w ",\"revision\":" #rev "}\n"

/* Revisions 2..6: a=1, b=1, {a=2, b=2} in one txn, delete a, b=3. */
#define WRITE_LOG               \
	LOG(2, "a", "put", "1") \
	LOG(3, "b", "put", "1") \
	LOG(4, "a", "put", "2") \
	LOG(4, "b", "put", "2") LOG(5, "a", "delete", "null") LOG(6, "b", "put", "3")

#define PREFIX ",\"prefix\":true"

static void streams_that_match_the_write_log_are_valid(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(
	    run(chk_watch,
	        WRITE_LOG START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1"))
	            EVENTS(1, EV(4, "a", "put", "2") "," EV(5, "a", "delete", "null"))
	                PROGRESS(1, 6) START(2, "", PREFIX, 2)
	                    EVENTS(2, EV(2, "a", "put", "1") "," EV(3, "b", "put", "1"))
	        /* the stream broke; resumed from the next revision */
	        START(2, "", PREFIX, 4) EVENTS(2, EV(4, "a", "put", "2") "," EV(4, "b", "put", "2"))
	            EVENTS(2, EV(5, "a", "delete", "null")) EVENTS(2, EV(6, "b", "put", "3")),
	        &r),
	    CHK_VALID);
	assert_int_equal(count(&r, "watchers"), 2);
	assert_int_equal(count(&r, "events"), 9);
	chk_result_free(&r);
}

static void a_missed_revision_is_a_gap(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "b", "", 2) EVENTS(1, EV(3, "b", "put", "1"))
	                         EVENTS(1, EV(6, "b", "put", "3")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "missed the put of b at revision 4");
	chk_result_free(&r);
}

static void only_revisions_up_to_the_last_one_reached_or_bookmarked_are_owed(void **state)
{
	struct chk_result r;

	(void)state;
	/* Nothing after revision 4 was delivered, so 5 and 6 are not yet owed; 4 is. */
	assert_int_equal(
	    run(chk_watch, WRITE_LOG START(1, "b", "", 2) EVENTS(1, EV(3, "b", "put", "1")), &r),
	    CHK_VALID);
	chk_result_free(&r);
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "b", "", 2) EVENTS(1, EV(3, "b", "put", "1"))
	                         PROGRESS(1, 5),
	                     &r),
	                 CHK_INVALID);
	chk_result_free(&r);
}

static void a_repeated_event_is_a_duplicate(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1"))
	                         EVENTS(1, EV(2, "a", "put", "1")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "duplicate");
	chk_result_free(&r);
}

static void a_revision_split_across_responses_is_not_atomic(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "", PREFIX, 4) EVENTS(1, EV(4, "a", "put", "2"))
	                         EVENTS(1, EV(4, "b", "put", "2")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "split");
	chk_result_free(&r);
}

static void events_out_of_revision_order_are_rejected(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "b", "", 3) EVENTS(1, EV(4, "b", "put", "2"))
	                         EVENTS(1, EV(3, "b", "put", "1"))
	                             EVENTS(1, EV(6, "b", "put", "3")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "revision 3 delivered after the stream");
	chk_result_free(&r);
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "b", "", 3)
	                         EVENTS(1, EV(4, "b", "put", "2") "," EV(3, "b", "put", "1")),
	                     &r),
	                 CHK_INVALID);
	chk_result_free(&r);
}

static void an_event_that_disagrees_with_the_write_log_is_rejected(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(
	    run(chk_watch, WRITE_LOG START(1, "b", "", 3) EVENTS(1, EV(3, "b", "put", "7")), &r),
	    CHK_INVALID);
	first_violation_mentions(&r, "violations", "disagrees with the write log");
	chk_result_free(&r);
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "b", "", 3) EVENTS(1, EV(3, "b", "delete", "null")),
	                     &r),
	                 CHK_INVALID);
	chk_result_free(&r);
	/* An event of a key at a revision the log gives to another key. */
	assert_int_equal(
	    run(chk_watch, WRITE_LOG START(1, "", PREFIX, 2) EVENTS(1, EV(2, "c", "put", "1")), &r),
	    CHK_INVALID);
	first_violation_mentions(&r, "violations", "not in the write log");
	chk_result_free(&r);
}

static void the_events_of_a_txn_arrive_in_its_order(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "", PREFIX, 4)
	                         EVENTS(1, EV(4, "b", "put", "2") "," EV(4, "a", "put", "2")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "txn's order (b before a)");
	chk_result_free(&r);
}

static void events_outside_the_watched_range_are_rejected(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "a", ",\"range_end\":\"b\"", 2)
	                         EVENTS(1, EV(2, "a", "put", "1") "," EV(3, "b", "put", "1")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "outside its range");
	chk_result_free(&r);
}

static void a_resume_that_skips_revisions_is_rejected(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     WRITE_LOG START(1, "b", "", 2) EVENTS(1, EV(3, "b", "put", "1"))
	                         START(1, "b", "", 5) EVENTS(1, EV(6, "b", "put", "3")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "resumed at revision 5");
	chk_result_free(&r);
}

static void revisions_removed_by_compaction_are_not_owed(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(
	    run(chk_watch,
	        WRITE_LOG START(1, "b", "", 2) EVENTS(
	            1, EV(3, "b", "put", "1")) "{\"f\":\"watch\",\"type\":\"compacted\",\"watch\":"
	                                       "1,\"compact_revision\":5}\n" START(1, "b", "", 5)
	                                           EVENTS(1, EV(6, "b", "put", "3")),
	        &r),
	    CHK_VALID);
	chk_result_free(&r);
}

#define W(p, t, key, v, extra, time)                                            \
	"{\"process\":" #p ",\"type\":\"" t "\",\"f\":\"write\",\"key\":\"" key \
	"\",\"value\":" #v extra ",\"time_ns\":" #time "}\n"

static void without_a_log_events_are_checked_against_acknowledgements(void **state)
{
	struct chk_result r;

	(void)state;
	/* Acknowledged at revision 2 with value 1; the watcher saw 5. */
	assert_int_equal(run(chk_watch,
	                     W(0, "invoke", "a", 1, "", 0) W(0, "ok", "a", 1, ",\"revision\":2", 1)
	                         W(0, "invoke", "a", 5, "", 2) W(0, "info", "a", 5, "", 3)
	                             START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "5")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "acknowledged");
	chk_result_free(&r);
	/* An indeterminate write may show up at a revision nobody acknowledged. */
	assert_int_equal(run(chk_watch,
	                     W(0, "invoke", "a", 1, "", 0) W(0, "ok", "a", 1, ",\"revision\":2", 1)
	                         W(1, "invoke", "a", 5, "", 2) W(1, "info", "a", 5, "", 3)
	                             START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1"))
	                                 EVENTS(1, EV(3, "a", "put", "5")),
	                     &r),
	                 CHK_VALID);
	chk_result_free(&r);
	/* A value nobody wrote. */
	assert_int_equal(run(chk_watch,
	                     W(0, "invoke", "a", 1, "", 0) W(0, "ok", "a", 1, ",\"revision\":2", 1)
	                         START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1"))
	                             EVENTS(1, EV(3, "a", "put", "8")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "never written");
	chk_result_free(&r);
	/* An acknowledged write the watcher passed over. */
	assert_int_equal(run(chk_watch,
	                     W(0, "invoke", "a", 1, "", 0) W(0, "ok", "a", 1, ",\"revision\":2", 1)
	                         W(0, "invoke", "a", 3, "", 2)
	                             W(0, "ok", "a", 3, ",\"revision\":3", 3) START(1, "a", "", 2)
	                                 EVENTS(1, EV(3, "a", "put", "3")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "missed the put of a at revision 2");
	chk_result_free(&r);
	/* An event of b at the revision acknowledged to a write of a. */
	assert_int_equal(run(chk_watch,
	                     W(0, "invoke", "a", 1, "", 0) W(0, "ok", "a", 1, ",\"revision\":2", 1)
	                         W(1, "invoke", "b", 7, "", 2) W(1, "info", "b", 7, "", 3)
	                             START(1, "b", "", 2) EVENTS(1, EV(2, "b", "put", "7")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "acknowledged to a write of a");
	chk_result_free(&r);
}

static void watchers_must_agree_and_one_reveals_the_others_gaps(void **state)
{
	struct chk_result r;
	const char *writes = W(0, "invoke", "a", 1, "", 0) W(0, "info", "a", 1, "", 1)
	    W(1, "invoke", "a", 2, "", 2) W(1, "info", "a", 2, "", 3);

	(void)state;
	char text[4096];

	snprintf(text, sizeof text, "%s%s", writes,
	         START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1")) START(2, "a", "", 2)
	             EVENTS(2, EV(2, "a", "put", "2")));
	assert_int_equal(run(chk_watch, text, &r), CHK_INVALID);
	first_violation_mentions(&r, "violations", "other watcher");
	chk_result_free(&r);
	snprintf(text, sizeof text, "%s%s", writes,
	         START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1"))
	             EVENTS(1, EV(3, "a", "put", "2")) START(2, "a", "", 2)
	                 EVENTS(2, EV(3, "a", "put", "2")));
	assert_int_equal(run(chk_watch, text, &r), CHK_INVALID);
	first_violation_mentions(&r, "violations", "another watcher");
	chk_result_free(&r);
}

static void an_acknowledged_write_missing_from_the_write_log_is_rejected(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_watch,
	                     W(0, "invoke", "b", 9, "", 0) W(0, "ok", "b", 9, ",\"revision\":3", 1)
	                         WRITE_LOG START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1")),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "not in the write log");
	chk_result_free(&r);
}

/* ---- lock --------------------------------------------------------------- */

#define L(p, t, f, extra, time)                                                         \
	"{\"process\":" #p ",\"type\":\"" t "\",\"f\":\"" f "\",\"key\":\"lock\"" extra \
	",\"time_ns\":" #time "}\n"

static void holders_in_fence_order_are_valid(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(
	    run(chk_lock,
	        L(0, "invoke", "acquire", "", 0) L(0, "ok", "acquire", ",\"fence\":10", 1)
	            L(1, "invoke", "acquire", "", 2) L(0, "invoke", "fenced-write",
	                                               ",\"fence\":10,\"value\":1", 3)
	                L(0, "ok", "fenced-write", ",\"revision\":11", 4)
	                    L(0, "invoke", "release", "", 5) L(0, "ok", "release", "", 6)
	                        L(1, "ok", "acquire", ",\"fence\":12", 7)
	                            L(1, "invoke", "fenced-write", ",\"fence\":12,\"value\":2", 8)
	                                L(1, "ok", "fenced-write", ",\"revision\":13", 9)
	        /* the old holder's late write is refused: fine */
	        L(0, "invoke", "fenced-write", ",\"fence\":10,\"value\":3", 10)
	            L(0, "fail", "fenced-write", "", 11),
	        &r),
	    CHK_VALID);
	assert_int_equal(count(&r, "ok_fenced_writes"), 2);
	chk_result_free(&r);
}

static void an_older_holder_writing_after_a_newer_one_is_rejected(void **state)
{
	struct chk_result r;

	(void)state;
	/* By revision. */
	assert_int_equal(
	    run(chk_lock,
	        L(0, "invoke", "acquire", "", 0) L(0, "ok", "acquire", ",\"fence\":10", 1)
	            L(1, "invoke", "acquire", "", 2) L(1, "ok", "acquire", ",\"fence\":12", 3)
	                L(0, "invoke", "fenced-write", ",\"fence\":10", 4)
	                    L(1, "invoke", "fenced-write", ",\"fence\":12", 5)
	                        L(1, "ok", "fenced-write", ",\"revision\":13", 6)
	                            L(0, "ok", "fenced-write", ",\"revision\":14", 7),
	        &r),
	    CHK_INVALID);
	first_violation_mentions(&r, "violations", "overlapping holds");
	chk_result_free(&r);
	/* By real time, without revisions. */
	assert_int_equal(
	    run(chk_lock,
	        L(0, "invoke", "acquire", "", 0) L(0, "ok", "acquire", ",\"fence\":10", 1)
	            L(1, "invoke", "acquire", "", 2) L(1, "ok", "acquire", ",\"fence\":12", 3)
	                L(1, "invoke", "fenced-write", ",\"fence\":12", 4)
	                    L(1, "ok", "fenced-write", "", 5)
	                        L(0, "invoke", "fenced-write", ",\"fence\":10", 6)
	                            L(0, "ok", "fenced-write", "", 7),
	        &r),
	    CHK_INVALID);
	chk_result_free(&r);
}

static void a_shared_fence_a_write_after_release_or_before_the_lock_is_rejected(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(
	    run(chk_lock,
	        L(0, "invoke", "acquire", "", 0) L(0, "ok", "acquire", ",\"fence\":10", 1)
	            L(1, "invoke", "acquire", "", 2) L(1, "ok", "acquire", ",\"fence\":10", 3),
	        &r),
	    CHK_INVALID);
	first_violation_mentions(&r, "violations", "same fence");
	chk_result_free(&r);
	assert_int_equal(run(chk_lock,
	                     L(0, "invoke", "acquire", "", 0)
	                         L(0, "ok", "acquire", ",\"fence\":10", 1)
	                             L(0, "invoke", "release", "", 2) L(0, "ok", "release", "", 3)
	                                 L(0, "invoke", "fenced-write", ",\"fence\":10", 4)
	                                     L(0, "ok", "fenced-write", "", 5),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "after its holder released");
	chk_result_free(&r);
	assert_int_equal(run(chk_lock,
	                     L(0, "invoke", "fenced-write", ",\"fence\":10", 4)
	                         L(0, "ok", "fenced-write", "", 5),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "did not hold");
	chk_result_free(&r);
	assert_int_equal(run(chk_lock,
	                     L(0, "invoke", "acquire", "", 0)
	                         L(0, "ok", "acquire", ",\"fence\":10", 1)
	                             L(0, "invoke", "fenced-write", ",\"fence\":10", 4)
	                                 L(0, "ok", "fenced-write", ",\"revision\":9", 5),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "not after its lock");
	chk_result_free(&r);
}

/* ---- revision ------------------------------------------------------------ */

#define RV(p, t, f, key, rev, time)                                                              \
	"{\"process\":" #p ",\"type\":\"" t "\",\"f\":\"" f "\",\"key\":\"" key "\",\"value\":1" \
	",\"revision\":" #rev ",\"time_ns\":" #time "}\n"

static void revisions_that_follow_real_time_are_valid(void **state)
{
	struct chk_result r;

	(void)state;
	/* Concurrent ops may come back in any revision order. */
	assert_int_equal(
	    run(chk_revision,
	        RV(0, "invoke", "write", "a", 0, 0) RV(1, "invoke", "read", "b", 0, 1)
	            RV(0, "ok", "write", "a", 7, 2) RV(1, "ok", "read", "b", 6, 3)
	                RV(1, "invoke", "read", "a", 0, 4) RV(1, "ok", "read", "a", 7, 5)
	                    RV(0, "invoke", "write", "b", 0, 6) RV(0, "ok", "write", "b", 8, 7),
	        &r),
	    CHK_VALID);
	assert_int_equal(count(&r, "ops_with_revision"), 4);
	chk_result_free(&r);
}

static void a_read_behind_a_completed_write_goes_back_in_time(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_revision,
	                     RV(0, "invoke", "write", "a", 0, 0) RV(0, "ok", "write", "a", 7, 1)
	                         RV(1, "invoke", "read", "b", 0, 2) RV(1, "ok", "read", "b", 6, 3),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "back in time");
	chk_result_free(&r);
}

static void a_write_must_get_a_revision_above_everything_before_it(void **state)
{
	struct chk_result r;

	(void)state;
	assert_int_equal(run(chk_revision,
	                     RV(0, "invoke", "read", "a", 0, 0) RV(0, "ok", "read", "a", 7, 1) RV(
	                         1, "invoke", "write", "b", 0, 2) RV(1, "ok", "write", "b", 7, 3),
	                     &r),
	                 CHK_INVALID);
	chk_result_free(&r);
	assert_int_equal(run(chk_revision,
	                     RV(0, "invoke", "write", "a", 0, 0) RV(1, "invoke", "write", "b", 0, 1)
	                         RV(0, "ok", "write", "a", 9, 2) RV(1, "ok", "write", "b", 9, 3),
	                     &r),
	                 CHK_INVALID);
	first_violation_mentions(&r, "violations", "share a revision");
	chk_result_free(&r);
}

/* ---- robustness ------------------------------------------------------------ */

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void mangled_histories_are_refused_or_judged_without_crashing(void **state)
{
	static const char *const seeds[] = {
	    WRITE_LOG START(1, "a", "", 2) EVENTS(1, EV(2, "a", "put", "1")) PROGRESS(1, 6)
	        START(2, "", PREFIX, 2)
	            EVENTS(2, EV(2, "a", "put", "1")) "{\"f\":\"watch\",\"type\":\"compacted\","
	                                              "\"watch\":2,\"compact_revision\":5}\n",
	    ADD(0, "invoke", 1, 0) ADD(0, "ok", 1, 1) ADD(1, "invoke", 2, 2) ADD(1, "info", 2, 3)
	        FINAL(4, "invoke", "null", 10) FINAL(4, "ok", "[1,2]", 11),
	    L(0, "invoke", "acquire", "", 0) L(0, "ok", "acquire", ",\"fence\":10", 1)
	        L(0, "invoke", "fenced-write", ",\"fence\":10", 4)
	            L(0, "ok", "fenced-write", ",\"revision\":11", 5),
	    W(0, "invoke", "a", 1, "", 0) W(0, "ok", "a", 1, ",\"revision\":2", 1) W(1, "invoke",
	                                                                             "a", 5, "", 2)
	        W(1, "info", "a", 5, "",
	          3) "{\"process\":2,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"a\",\"expect\":1,"
	             "\"value\":3,\"time_ns\":4}\n"
	             "{\"process\":2,\"type\":\"fail\",\"f\":\"cas\",\"key\":\"a\",\"time_ns\":5}"
	             "\n",
	};
	static const char alphabet[] = "{}[]\":,0123456789-aefklnoprstuvwx \n";
	uint64_t x = 0x243F6A8885A308D3ull;
	int runs = 4000, loaded = 0;

	(void)state;
	for (int i = 0; i < runs; i++) {
		const char *seed = seeds[i % 4];
		size_t n = strlen(seed);
		char *text = malloc(n + 1);
		struct hist h;

		assert_non_null(text);
		memcpy(text, seed, n + 1);
		for (int m = 0; m < 1 + (int)(next_rand(&x) % 4); m++) {
			size_t at = next_rand(&x) % n;

			if (next_rand(&x) % 3 == 0)
				memmove(text + at, text + at + 1, n - at); /* delete a byte */
			else
				text[at] = alphabet[next_rand(&x) % (sizeof alphabet - 1)];
			n = strlen(text);
			if (n == 0)
				break;
		}
		if (hist_load_string(&h, text) == 0) {
			checker_fn fns[] = {chk_set, chk_watch, chk_lock, chk_revision};
			struct chk_result r;

			loaded++;
			for (size_t f = 0; f < 4; f++) {
				assert_int_equal(fns[f](&h, &r), 0);
				assert_true(r.verdict <= CHK_UNKNOWN);
				chk_result_free(&r);
			}
			assert_int_equal(chk_linear(&h, NULL, &r), 0);
			chk_result_free(&r);
		} else {
			assert_true(h.err[0] != '\0');
		}
		hist_free(&h);
		free(text);
	}
	/* Some mutations must leave a loadable history, or this proves little. */
	assert_true(loaded > runs / 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
	        a_final_read_with_every_acknowledged_add_is_valid_and_counts_recoveries),
	    cmocka_unit_test(an_acknowledged_add_missing_from_the_final_read_is_lost),
	    cmocka_unit_test(elements_never_added_failed_or_repeated_are_unexpected),
	    cmocka_unit_test(an_add_acknowledged_after_the_final_read_began_may_be_absent),
	    cmocka_unit_test(adds_without_a_final_read_give_unknown),
	    cmocka_unit_test(streams_that_match_the_write_log_are_valid),
	    cmocka_unit_test(a_missed_revision_is_a_gap),
	    cmocka_unit_test(only_revisions_up_to_the_last_one_reached_or_bookmarked_are_owed),
	    cmocka_unit_test(a_repeated_event_is_a_duplicate),
	    cmocka_unit_test(a_revision_split_across_responses_is_not_atomic),
	    cmocka_unit_test(events_out_of_revision_order_are_rejected),
	    cmocka_unit_test(an_event_that_disagrees_with_the_write_log_is_rejected),
	    cmocka_unit_test(the_events_of_a_txn_arrive_in_its_order),
	    cmocka_unit_test(events_outside_the_watched_range_are_rejected),
	    cmocka_unit_test(a_resume_that_skips_revisions_is_rejected),
	    cmocka_unit_test(revisions_removed_by_compaction_are_not_owed),
	    cmocka_unit_test(without_a_log_events_are_checked_against_acknowledgements),
	    cmocka_unit_test(watchers_must_agree_and_one_reveals_the_others_gaps),
	    cmocka_unit_test(an_acknowledged_write_missing_from_the_write_log_is_rejected),
	    cmocka_unit_test(holders_in_fence_order_are_valid),
	    cmocka_unit_test(an_older_holder_writing_after_a_newer_one_is_rejected),
	    cmocka_unit_test(a_shared_fence_a_write_after_release_or_before_the_lock_is_rejected),
	    cmocka_unit_test(revisions_that_follow_real_time_are_valid),
	    cmocka_unit_test(a_read_behind_a_completed_write_goes_back_in_time),
	    cmocka_unit_test(a_write_must_get_a_revision_above_everything_before_it),
	    cmocka_unit_test(mangled_histories_are_refused_or_judged_without_crashing),
	};
	return cmocka_run_group_tests_name("faults_workloads", tests, NULL, NULL);
}

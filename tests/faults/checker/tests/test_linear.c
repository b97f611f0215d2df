/*
 * Tests of the history loader and the register linearizability checker:
 * hand-written histories for each anomaly the checker must catch and each
 * legal behaviour it must accept, then generated ones: linearizable by
 * construction (every one must be accepted), mutated (the verdict must agree
 * with an exhaustive search written independently of the checker), and
 * large (the search must end within its step budget).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "tests/faults/checker/checker.h"
#include "tests/faults/checker/tests/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MOOR_SAN
#define SCALE 4
#else
#define SCALE 1
#endif

static enum chk_verdict verdict_of(const char *text, uint64_t max_steps, struct chk_result *out)
{
	struct chk_budget b = {.max_steps = max_steps, .max_bytes = 256u << 20, .deadline_ns = 0};
	struct chk_result r;
	struct hist h;
	enum chk_verdict v;

	assert_int_equal(hist_load_string(&h, text), 0);
	assert_int_equal(chk_linear(&h, &b, &r), 0);
	v = r.verdict;
	if (out)
		*out = r;
	else
		chk_result_free(&r);
	hist_free(&h);
	return v;
}

static enum chk_verdict check(const char *text)
{
	return verdict_of(text, 10000000, NULL);
}

#define OP(p, t, f, rest, time)                                                     \
	"{\"process\":" #p ",\"type\":\"" t "\",\"f\":\"" f "\",\"key\":\"x\"" rest \
	",\"time_ns\":" #time "}\n"

static void concurrent_reads_may_see_the_old_or_the_new_value(void **state)
{
	(void)state;
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":1", 0)
	                           OP(1, "invoke", "read", "", 1) OP(2, "invoke", "read", "", 2)
	                               OP(1, "ok", "read", ",\"value\":null", 3)
	                                   OP(2, "ok", "read", ",\"value\":1", 4)
	                                       OP(0, "ok", "write", ",\"value\":1", 5)),
	                 CHK_VALID);
}

static void a_read_that_sees_the_new_value_then_one_that_sees_the_old_is_rejected(void **state)
{
	(void)state;
	/* Both reads run during the write, but one finished before the other began. */
	assert_int_equal(
	    check(OP(0, "invoke", "write", ",\"value\":1", 0) OP(1, "invoke", "read", "", 1)
	              OP(1, "ok", "read", ",\"value\":1", 2) OP(2, "invoke", "read", "", 3)
	                  OP(2, "ok", "read", ",\"value\":null", 4)
	                      OP(0, "ok", "write", ",\"value\":1", 5)),
	    CHK_INVALID);
}

static void a_stale_read_after_an_acknowledged_write_is_rejected(void **state)
{
	(void)state;
	assert_int_equal(
	    check(OP(0, "invoke", "write", ",\"value\":1", 0) OP(
	        0, "ok", "write", ",\"value\":1", 1) OP(0, "invoke", "write", ",\"value\":2", 2)
	              OP(0, "ok", "write", ",\"value\":2", 3) OP(1, "invoke", "read", "", 4)
	                  OP(1, "ok", "read", ",\"value\":1", 5)),
	    CHK_INVALID);
}

static void a_lost_write_is_rejected(void **state)
{
	(void)state;
	/* The write of 2 was acknowledged, yet later reads never see it after the write of 1. */
	assert_int_equal(
	    check(OP(0, "invoke", "write", ",\"value\":1", 0) OP(
	        1, "invoke", "write", ",\"value\":2", 1) OP(0, "ok", "write", ",\"value\":1", 2)
	              OP(1, "ok", "write", ",\"value\":2", 3) OP(2, "invoke", "read", "", 4)
	                  OP(2, "ok", "read", ",\"value\":1", 5) OP(2, "invoke", "read", "", 6)
	                      OP(2, "ok", "read", ",\"value\":null", 7)),
	    CHK_INVALID);
}

static void two_cas_from_the_same_value_cannot_both_succeed(void **state)
{
	(void)state;
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":0", 0) OP(0, "ok", "write",
	                                                                      ",\"value\":0", 1)
	                           OP(1, "invoke", "cas", ",\"expect\":0,\"value\":1", 2)
	                               OP(2, "invoke", "cas", ",\"expect\":0,\"value\":2", 3)
	                                   OP(1, "ok", "cas", ",\"expect\":0,\"value\":1", 4)
	                                       OP(2, "ok", "cas", ",\"expect\":0,\"value\":2", 5)),
	                 CHK_INVALID);
	/* One success and one failed compare is fine. */
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":0",
	                          0) OP(0, "ok", "write", ",\"value\":0",
	                                1) OP(1, "invoke", "cas", ",\"expect\":0,\"value\":1", 2)
	                           OP(2, "invoke", "cas", ",\"expect\":0,\"value\":2", 3)
	                               OP(1, "ok", "cas", ",\"expect\":0,\"value\":1", 4)
	                                   OP(2, "fail", "cas", ",\"expect\":0,\"value\":2", 5)),
	                 CHK_VALID);
}

static void a_cas_that_failed_its_compare_while_the_value_matched_is_rejected(void **state)
{
	(void)state;
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":3", 0)
	                           OP(0, "ok", "write", ",\"value\":3", 1)
	                               OP(1, "invoke", "cas", ",\"expect\":3,\"value\":4", 2)
	                                   OP(1, "fail", "cas", ",\"expect\":3,\"value\":4", 3)),
	                 CHK_INVALID);
	/* With "error" the cas never ran: it tells nothing. */
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":3", 0) OP(0, "ok", "write",
	                                                                      ",\"value\":3", 1)
	                           OP(1, "invoke", "cas", ",\"expect\":3,\"value\":4", 2)
	                               OP(1, "fail", "cas",
	                                  ",\"expect\":3,\"value\":4,\"error\":\"no leader\"", 3)),
	                 CHK_VALID);
}

static void a_read_of_a_value_never_written_is_rejected_and_named(void **state)
{
	struct chk_result r;
	const json_t *bad;

	(void)state;
	assert_int_equal(verdict_of(OP(0, "invoke", "write", ",\"value\":1", 0)
	                                OP(0, "ok", "write", ",\"value\":1", 1)
	                                    OP(1, "invoke", "read", "", 2)
	                                        OP(1, "ok", "read", ",\"value\":7", 3),
	                            1000, &r),
	                 CHK_INVALID);
	bad = json_array_get(json_object_get(r.detail, "invalid_keys"), 0);
	assert_string_equal(json_string_value(json_object_get(bad, "reason")),
	                    "read of a value never written");
	assert_non_null(
	    strstr(json_string_value(json_object_get(bad, "cannot_place")), "read x 7"));
	chk_result_free(&r);
}

static void a_definitely_failed_write_must_not_be_seen(void **state)
{
	(void)state;
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":1", 0) OP(
	                     0, "fail", "write", ",\"value\":1", 1) OP(1, "invoke", "read", "", 2)
	                           OP(1, "ok", "read", ",\"value\":1", 3)),
	                 CHK_INVALID);
}

static void an_indeterminate_write_may_take_effect_long_after_it_timed_out(void **state)
{
	(void)state;
	assert_int_equal(
	    check(OP(0, "invoke", "write", ",\"value\":5", 0)
	              OP(0, "info", "write", ",\"value\":5", 1) OP(1, "invoke", "read", "", 10)
	                  OP(1, "ok", "read", ",\"value\":null", 11) OP(1, "invoke", "read", "", 20)
	                      OP(1, "ok", "read", ",\"value\":5", 21)),
	    CHK_VALID);
}

static void an_indeterminate_write_that_never_took_effect_is_accepted(void **state)
{
	(void)state;
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":5", 0) OP(
	                     0, "info", "write", ",\"value\":5", 1) OP(1, "invoke", "read", "", 10)
	                           OP(1, "ok", "read", ",\"value\":null", 11)
	                               OP(1, "invoke", "write", ",\"value\":6", 12)
	                                   OP(1, "ok", "write", ",\"value\":6", 13)
	                                       OP(1, "invoke", "read", "", 20)
	                                           OP(1, "ok", "read", ",\"value\":6", 21)),
	                 CHK_VALID);
	/* An op the history ends before completing is indeterminate too. */
	assert_int_equal(check(OP(0, "invoke", "write", ",\"value\":5", 0)
	                           OP(1, "invoke", "read", "", 10)
	                               OP(1, "ok", "read", ",\"value\":null", 11)),
	                 CHK_VALID);
}

static void an_indeterminate_write_cannot_take_effect_before_it_was_invoked(void **state)
{
	(void)state;
	assert_int_equal(check(OP(1, "invoke", "read", "", 0) OP(1, "ok", "read", ",\"value\":5", 1)
	                           OP(0, "invoke", "write", ",\"value\":5", 2)
	                               OP(0, "info", "write", ",\"value\":5", 3)),
	                 CHK_INVALID);
}

static void an_indeterminate_write_takes_effect_at_most_once(void **state)
{
	(void)state;
	/* 5 appears, is overwritten by 6, and cannot come back. */
	assert_int_equal(
	    check(OP(0, "invoke", "write", ",\"value\":5", 0)
	              OP(0, "info", "write", ",\"value\":5", 1) OP(1, "invoke", "read", "", 2)
	                  OP(1, "ok", "read", ",\"value\":5", 3) OP(1, "invoke", "write",
	                                                            ",\"value\":6", 4)
	                      OP(1, "ok", "write", ",\"value\":6", 5) OP(1, "invoke", "read", "", 6)
	                          OP(1, "ok", "read", ",\"value\":5", 7)),
	    CHK_INVALID);
}

static void keys_are_checked_independently_and_the_explanation_names_the_culprit(void **state)
{
	const char *text =
	    "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"a\",\"value\":1,\"time_"
	    "ns\":0}\n"
	    "{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"b\",\"value\":1,\"time_"
	    "ns\":1}\n"
	    "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"a\",\"value\":1,\"time_ns\":"
	    "2}\n"
	    "{\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"key\":\"b\",\"value\":1,\"time_ns\":"
	    "3}\n"
	    "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"b\",\"time_ns\":4}\n"
	    "{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"key\":\"b\",\"value\":1,\"time_ns\":5}"
	    "\n"
	    "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"a\",\"time_ns\":6}\n"
	    "{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"key\":\"a\",\"value\":null,\"time_"
	    "ns\":7}\n";
	struct chk_result r;
	const json_t *bad;

	(void)state;
	assert_int_equal(verdict_of(text, 1000, &r), CHK_INVALID);
	assert_int_equal(json_integer_value(json_object_get(r.detail, "keys")), 2);
	assert_int_equal(json_array_size(json_object_get(r.detail, "invalid_keys")), 1);
	bad = json_array_get(json_object_get(r.detail, "invalid_keys"), 0);
	assert_string_equal(json_string_value(json_object_get(bad, "key")), "a");
	assert_int_equal(json_integer_value(json_object_get(bad, "linearizable_prefix_length")), 1);
	assert_non_null(
	    strstr(json_string_value(json_object_get(bad, "cannot_place")), "read a null"));
	assert_string_equal(json_string_value(json_object_get(bad, "value_after_prefix")), "1");
	assert_non_null(strstr(r.summary, "key a"));
	chk_result_free(&r);
}

static void the_loader_rejects_histories_that_break_the_format(void **state)
{
	struct hist h;

	(void)state;
	/* A process that got info must not issue another op. */
	assert_int_equal(hist_load_string(&h, OP(0, "invoke", "write", ",\"value\":1", 0)
	                                          OP(0, "info", "write", "", 1)
	                                              OP(0, "invoke", "read", "", 2)),
	                 MOOR_EINVAL);
	assert_non_null(strstr(h.err, "line 3"));
	hist_free(&h);
	assert_int_equal(hist_load_string(&h, OP(0, "ok", "read", "", 1)), MOOR_EINVAL);
	hist_free(&h);
	assert_int_equal(
	    hist_load_string(&h, OP(0, "invoke", "read", "", 1) OP(0, "invoke", "read", "", 2)),
	    MOOR_EINVAL);
	hist_free(&h);
	assert_int_equal(
	    hist_load_string(&h, OP(0, "invoke", "read", "", 1) OP(0, "ok", "write", "", 2)),
	    MOOR_EINVAL);
	hist_free(&h);
	assert_int_equal(hist_load_string(&h, "\n# comment\n{\"process\":1,\"type\":\"invoke\"\n"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(h.err, "line 3"));
	hist_free(&h);
	/* Without time_ns the line numbers order the events. */
	assert_int_equal(hist_load_string(&h, "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n"
	                                      "{\"process\":0,\"type\":\"ok\",\"f\":\"read\"}\n"),
	                 0);
	assert_true(h.line_times);
	assert_int_equal(h.n_ops, 1);
	assert_int_equal(h.ops[0].call_time, 1);
	assert_int_equal(h.ops[0].ret_time, 2);
	hist_free(&h);
}

/* ---- an independent oracle: exhaustive search without memoization ---------- */

struct bop {
	int kind;                 /* 0 read, 1 write, 2 cas, 3 failed cas */
	const char *arg, *expect; /* canonical JSON text */
	bool info;
	int64_t call, ret;
};

static bool bf(const struct bop *ops, size_t n, bool *done, const char *st, size_t left)
{
	int64_t minret = INT64_MAX;

	if (left == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (!done[i] && !ops[i].info && ops[i].ret < minret)
			minret = ops[i].ret;
	for (size_t i = 0; i < n; i++) {
		const struct bop *o = &ops[i];
		const char *next = st;
		bool ok;

		if (done[i] || o->call > minret)
			continue;
		ok = o->kind == 0   ? strcmp(st, o->arg) == 0
		     : o->kind == 1 ? true
		     : o->kind == 2 ? strcmp(st, o->expect) == 0
		                    : strcmp(st, o->expect) != 0;
		if (!ok)
			continue;
		if (o->kind == 1 || o->kind == 2)
			next = o->arg;
		done[i] = true;
		if (bf(ops, n, done, next, left - !o->info))
			return true;
		done[i] = false;
	}
	return false;
}

static const char *val_or_null(const char *v)
{
	return v ? v : "null";
}

/* Linearizable per key by brute force (keys "k0".."k9"). */
static bool oracle(const struct hist *h)
{
	for (int key = 0; key < 10; key++) {
		char name[8];
		struct bop ops[64];
		bool done[64] = {false};
		size_t n = 0, left = 0;

		snprintf(name, sizeof name, "k%d", key);
		for (size_t i = 0; i < h->n_ops; i++) {
			const struct hist_op *o = &h->ops[i];
			struct bop b = {0};

			if (strcmp(o->key, name) != 0)
				continue;
			b.info = o->status == HIST_INFO;
			b.call = o->call_time;
			b.ret = o->ret_time;
			if (strcmp(o->f, "read") == 0) {
				if (o->status != HIST_OK)
					continue;
				b.kind = 0;
				b.arg = val_or_null(o->result);
			} else if (strcmp(o->f, "write") == 0) {
				if (o->status == HIST_FAIL)
					continue;
				b.kind = 1;
				b.arg = val_or_null(o->value);
			} else {
				b.kind = o->status == HIST_FAIL ? 3 : 2;
				b.arg = val_or_null(o->value);
				b.expect = val_or_null(o->expect);
			}
			assert_true(n < 64);
			left += !b.info;
			ops[n++] = b;
		}
		if (!bf(ops, n, done, "null", left))
			return false;
	}
	return true;
}

static void random_linearizable_histories_are_all_accepted(void **state)
{
	int runs = 300 / SCALE;

	(void)state;
	for (int seed = 1; seed <= runs; seed++) {
		struct gen_cfg cfg = {.seed = (uint64_t)seed,
		                      .processes = 2 + seed % 7,
		                      .ops = 40 + seed % 120,
		                      .keys = 1 + seed % 3,
		                      .values = 2 + seed % 4,
		                      .read_pct = 40,
		                      .cas_pct = 30,
		                      .info_pct = seed % 4 == 0 ? 10 : 0,
		                      .info_lost_pct = 50};
		struct gen_history g;
		struct chk_result r;
		char *text;

		assert_int_equal(gen_register(&cfg, &g), 0);
		text = gen_to_jsonl(&g);
		assert_non_null(text);
		if (verdict_of(text, 20000000, &r) != CHK_VALID) {
			fprintf(stderr, "seed %d: %s\n", seed, r.summary);
			fail();
		}
		chk_result_free(&r);
		free(text);
		gen_free(&g);
	}
}

static void mutated_histories_are_judged_as_an_exhaustive_search_judges_them(void **state)
{
	int runs = 600 / SCALE, rejected = 0, accepted = 0;

	(void)state;
	for (int seed = 1; seed <= runs; seed++) {
		struct gen_cfg cfg = {.seed = (uint64_t)seed * 7919,
		                      .processes = 2 + seed % 3,
		                      .ops = 8 + seed % 7,
		                      .keys = 1,
		                      .values = 3,
		                      .read_pct = 50,
		                      .cas_pct = 25,
		                      .info_pct = seed % 3 == 0 ? 15 : 0,
		                      .info_lost_pct = 50};
		uint64_t rs = (uint64_t)seed;
		struct gen_history g;
		struct hist h;
		size_t reads[64], n_reads = 0;
		char *text;
		bool truth;
		enum chk_verdict v;

		assert_int_equal(gen_register(&cfg, &g), 0);
		for (size_t i = 0; i < g.n; i++)
			if (((g.ev[i].kind == GEN_READ && g.ev[i].type == 1) ||
			     (g.ev[i].kind == GEN_CAS &&
			      (g.ev[i].type == 1 || g.ev[i].type == 2))) &&
			    n_reads < 64)
				reads[n_reads++] = i;
		if (n_reads == 0) {
			gen_free(&g);
			continue;
		}
		/*
		 * Swap one read's value for another value that was or could be
		 * written, or turn a cas's success into a lost compare or back.
		 */
		struct gen_event *e = &g.ev[reads[gen_rand(&rs) % n_reads]];
		if (e->kind == GEN_READ)
			e->value = (e->value + 1 + (int)(gen_rand(&rs) % 3)) % 4;
		else
			e->type = 3 - e->type;
		text = gen_to_jsonl(&g);
		assert_non_null(text);
		assert_int_equal(hist_load_string(&h, text), 0);
		truth = oracle(&h);
		hist_free(&h);
		v = verdict_of(text, 20000000, NULL);
		if (v != (truth ? CHK_VALID : CHK_INVALID)) {
			fprintf(stderr, "seed %d: oracle says %s, checker %s\n%s", seed,
			        truth ? "valid" : "invalid", chk_verdict_name(v), text);
			fail();
		}
		rejected += !truth;
		accepted += truth;
		free(text);
		gen_free(&g);
	}
	/* The mutation must truly break some histories and leave others legal. */
	assert_true(rejected > runs / 10);
	assert_true(accepted > runs / 20);
}

static void a_read_mutated_to_a_value_never_written_is_always_rejected(void **state)
{
	int runs = 100 / SCALE;

	(void)state;
	for (int seed = 1; seed <= runs; seed++) {
		struct gen_cfg cfg = {.seed = (uint64_t)seed * 31,
		                      .processes = 5,
		                      .ops = 300,
		                      .keys = 2,
		                      .values = 5,
		                      .read_pct = 50,
		                      .cas_pct = 25,
		                      .info_pct = 5,
		                      .info_lost_pct = 50};
		struct gen_history g;
		char *text;

		assert_int_equal(gen_register(&cfg, &g), 0);
		for (size_t i = g.n; i-- > 0;)
			if (g.ev[i].kind == GEN_READ && g.ev[i].type == 1) {
				g.ev[i].value = 99;
				break;
			}
		text = gen_to_jsonl(&g);
		assert_int_equal(check(text), CHK_INVALID);
		free(text);
		gen_free(&g);
	}
}

static void many_concurrent_ops_are_checked_within_the_step_budget(void **state)
{
	struct gen_cfg cfg = {.seed = 42,
	                      .processes = 24,
	                      .ops = 6000 / SCALE,
	                      .keys = 1,
	                      .values = 6,
	                      .read_pct = 50,
	                      .cas_pct = 30,
	                      .info_pct = 2,
	                      .info_lost_pct = 50};
	struct gen_history g;
	struct chk_result r;
	char *text;

	(void)state;
	assert_int_equal(gen_register(&cfg, &g), 0);
	text = gen_to_jsonl(&g);
	if (verdict_of(text, 50000000, &r) != CHK_VALID) {
		fprintf(stderr, "%s\n", r.summary);
		fail();
	}
	fprintf(stderr, "%zu events on one key: %s, %lld steps\n", g.n, r.summary,
	        (long long)json_integer_value(json_object_get(r.detail, "steps")));
	chk_result_free(&r);
	free(text);
	gen_free(&g);
}

static void an_exhausted_budget_gives_unknown_rather_than_a_guess(void **state)
{
	struct gen_cfg cfg = {.seed = 7,
	                      .processes = 10,
	                      .ops = 400,
	                      .keys = 1,
	                      .values = 3,
	                      .read_pct = 50,
	                      .cas_pct = 30,
	                      .info_pct = 5,
	                      .info_lost_pct = 50};
	struct gen_history g;
	struct chk_result r;
	char *text;

	(void)state;
	assert_int_equal(gen_register(&cfg, &g), 0);
	text = gen_to_jsonl(&g);
	assert_int_equal(verdict_of(text, 50, &r), CHK_UNKNOWN);
	assert_non_null(strstr(r.summary, "step budget"));
	chk_result_free(&r);
	free(text);
	gen_free(&g);
}

static void
a_violation_is_confirmed_by_independent_fingerprints_when_exact_memory_runs_out(void **state)
{
	struct gen_cfg cfg = {.seed = 11,
	                      .processes = 4,
	                      .ops = 3000,
	                      .keys = 1,
	                      .values = 1000000000,
	                      .read_pct = 50,
	                      .cas_pct = 0,
	                      .info_pct = 0,
	                      .info_lost_pct = 0};
	/*
	 * ~3000 ops: the fingerprint cache (24 bytes per configuration) fits
	 * in 2 MB, exact bitsets (~400 bytes per configuration) do not.
	 */
	struct chk_budget b = {.max_steps = 0, .max_bytes = 2000000, .deadline_ns = 0};
	struct gen_history g;
	struct chk_result r;
	struct hist h;
	char *text, *bad;
	int first = 0;
	const json_t *ex;

	(void)state;
	assert_int_equal(gen_register(&cfg, &g), 0);
	for (size_t i = 0; i < g.n && !first; i++)
		if (g.ev[i].kind == GEN_WRITE)
			first = g.ev[i].value;
	text = gen_to_jsonl(&g);
	bad = malloc(strlen(text) + 256);
	assert_non_null(bad);
	/* A last read returns the first value written, long overwritten. */
	sprintf(bad,
	        "%s{\"process\":999,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k0\","
	        "\"time_ns\":%zu}\n{\"process\":999,\"type\":\"ok\",\"f\":\"read\",\"key\":"
	        "\"k0\",\"value\":%d,\"time_ns\":%zu}\n",
	        text, g.n + 1, first, g.n + 2);
	assert_int_equal(hist_load_string(&h, bad), 0);
	assert_int_equal(chk_linear(&h, &b, &r), 0);
	assert_int_equal(r.verdict, CHK_INVALID);
	ex = json_array_get(json_object_get(r.detail, "invalid_keys"), 0);
	assert_string_equal(json_string_value(json_object_get(ex, "confirmed_by")),
	                    "two searches with independent 128-bit fingerprints");
	chk_result_free(&r);
	/* With room for exact bitsets, the exact search confirms it. */
	b.max_bytes = 0;
	assert_int_equal(chk_linear(&h, &b, &r), 0);
	assert_int_equal(r.verdict, CHK_INVALID);
	ex = json_array_get(json_object_get(r.detail, "invalid_keys"), 0);
	assert_string_equal(json_string_value(json_object_get(ex, "confirmed_by")),
	                    "an exact search");
	chk_result_free(&r);
	hist_free(&h);
	free(bad);
	free(text);
	gen_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(concurrent_reads_may_see_the_old_or_the_new_value),
	    cmocka_unit_test(a_read_that_sees_the_new_value_then_one_that_sees_the_old_is_rejected),
	    cmocka_unit_test(a_stale_read_after_an_acknowledged_write_is_rejected),
	    cmocka_unit_test(a_lost_write_is_rejected),
	    cmocka_unit_test(two_cas_from_the_same_value_cannot_both_succeed),
	    cmocka_unit_test(a_cas_that_failed_its_compare_while_the_value_matched_is_rejected),
	    cmocka_unit_test(a_read_of_a_value_never_written_is_rejected_and_named),
	    cmocka_unit_test(a_definitely_failed_write_must_not_be_seen),
	    cmocka_unit_test(an_indeterminate_write_may_take_effect_long_after_it_timed_out),
	    cmocka_unit_test(an_indeterminate_write_that_never_took_effect_is_accepted),
	    cmocka_unit_test(an_indeterminate_write_cannot_take_effect_before_it_was_invoked),
	    cmocka_unit_test(an_indeterminate_write_takes_effect_at_most_once),
	    cmocka_unit_test(keys_are_checked_independently_and_the_explanation_names_the_culprit),
	    cmocka_unit_test(the_loader_rejects_histories_that_break_the_format),
	    cmocka_unit_test(random_linearizable_histories_are_all_accepted),
	    cmocka_unit_test(mutated_histories_are_judged_as_an_exhaustive_search_judges_them),
	    cmocka_unit_test(a_read_mutated_to_a_value_never_written_is_always_rejected),
	    cmocka_unit_test(many_concurrent_ops_are_checked_within_the_step_budget),
	    cmocka_unit_test(an_exhausted_budget_gives_unknown_rather_than_a_guess),
	    cmocka_unit_test(
	        a_violation_is_confirmed_by_independent_fingerprints_when_exact_memory_runs_out),
	};
	return cmocka_run_group_tests_name("faults_linear", tests, NULL, NULL);
}

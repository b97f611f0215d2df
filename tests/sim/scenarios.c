/*
 * Scripted simulator scenarios: each runs a short story on a fault-free
 * simulated cluster (every message takes one tick), writes the whole trace,
 * every delivered message included, and compares it with
 * tests/sim/expected/NAME.txt. A change in behaviour shows as a diff to
 * review; regenerate with MOOR_SIM_UPDATE=1 and read the diff before
 * committing it. Also here: the simulator's own determinism (the same seed
 * gives the same trace hash; another seed a different one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECTED_DIR "tests/sim/expected/"

struct scen {
	struct sim s;
	char *buf;
	size_t len;
};

static struct scen *scen_new(unsigned voters)
{
	struct scen *c = calloc(1, sizeof *c);
	struct sim_opts o = {0};

	o.n_voters = voters;
	sim_init(&c->s, 7, &o);
	c->s.trace_out = open_memstream(&c->buf, &c->len);
	return c;
}

static void run(struct scen *c, unsigned ticks)
{
	for (unsigned i = 0; i < ticks && !c->s.failed; i++)
		sim_step(&c->s);
}

static uint64_t run_until_leader(struct scen *c, unsigned max)
{
	for (unsigned i = 0; i < max && !sim_leader(&c->s); i++)
		sim_step(&c->s);
	return sim_leader(&c->s);
}

/* Compares the trace with the expected file, or writes it when asked. */
static void scen_finish(struct scen *c, const char *name)
{
	char path[256];
	FILE *f;

	fclose(c->s.trace_out);
	c->s.trace_out = NULL;
	if (c->s.failed)
		sim_report(&c->s, stderr, "sim_scenarios");
	assert_false(c->s.failed);
	snprintf(path, sizeof path, EXPECTED_DIR "%s.txt", name);
	if (getenv("MOOR_SIM_UPDATE")) {
		f = fopen(path, "w");
		assert_non_null(f);
		fwrite(c->buf, 1, c->len, f);
		fclose(f);
	} else {
		char *want = NULL;
		size_t wlen = 0;
		f = fopen(path, "r");
		if (!f)
			fail_msg("missing %s: run with MOOR_SIM_UPDATE=1 and review it", path);
		fseek(f, 0, SEEK_END);
		wlen = (size_t)ftell(f);
		fseek(f, 0, SEEK_SET);
		want = malloc(wlen + 1);
		assert_int_equal(fread(want, 1, wlen, f), wlen);
		want[wlen] = 0;
		fclose(f);
		if (wlen != c->len || memcmp(want, c->buf, wlen)) {
			size_t i = 0, line = 1;
			while (i < wlen && i < c->len && want[i] == c->buf[i])
				line += want[i++] == '\n';
			fprintf(stderr, "%s: trace differs from line %zu\n", path, line);
			fprintf(stderr, "expected: %.160s\n", want + (i < wlen ? i : wlen));
			fprintf(stderr, "got:      %.160s\n", c->buf + (i < c->len ? i : c->len));
			free(want);
			fail_msg("trace of %s changed", name);
		}
		free(want);
	}
	free(c->buf);
	sim_free(&c->s);
	free(c);
}

static void a_three_member_cluster_elects_replicates_forwards_and_reads(void **state)
{
	struct scen *c = scen_new(3);
	uint64_t l, f;

	(void)state;
	l = run_until_leader(c, 100);
	assert_true(l != 0);
	run(c, 3);
	f = l % 3 + 1;
	sim_propose(&c->s, l);
	sim_propose(&c->s, f); /* forwarded */
	run(c, 6);
	sim_read(&c->s, f);
	run(c, 6);
	assert_int_equal(c->s.acked, 2);
	assert_int_equal(c->s.reads_ok, 1);
	scen_finish(c, "elect_replicate_read");
}

static void a_cut_off_leader_is_replaced_and_its_uncommitted_entry_discarded(void **state)
{
	struct scen *c = scen_new(3);
	uint64_t old, nl;

	(void)state;
	old = run_until_leader(c, 100);
	run(c, 3);
	sim_isolate(&c->s, old);
	sim_propose(&c->s, old); /* can never commit */
	for (int i = 0; i < 60 && ((nl = sim_leader(&c->s)) == old || !nl); i++)
		run(c, 1);
	/* with check-quorum, the old leader steps down on its own */
	assert_true(nl != old && nl != 0);
	sim_propose(&c->s, nl);
	run(c, 5);
	sim_heal_net(&c->s);
	run(c, 10);
	assert_int_equal(c->s.acked, 1);
	assert_false(c->s.props[0].acked);
	scen_finish(c, "leader_cut_off");
}

static void a_leadership_transfer_completes_despite_a_one_way_cut(void **state)
{
	struct scen *c = scen_new(5);
	uint64_t l, target;

	(void)state;
	l = run_until_leader(c, 100);
	run(c, 3);
	target = l % 5 + 1;
	/* the target cannot talk to one other member; the transfer does not need it */
	sim_cut(&c->s, target, target % 5 + 1 == l ? (target + 1) % 5 + 1 : target % 5 + 1);
	sim_propose(&c->s, l);
	sim_transfer(&c->s, target);
	run(c, 8);
	assert_int_equal(sim_leader(&c->s), target);
	sim_propose(&c->s, target);
	run(c, 5);
	assert_int_equal(c->s.acked, 2);
	scen_finish(c, "transfer_one_way_cut");
}

static void a_learner_is_added_promoted_and_the_old_leader_removed(void **state)
{
	struct scen *c = scen_new(3);
	uint64_t l;

	(void)state;
	l = run_until_leader(c, 100);
	run(c, 3);
	assert_int_equal(sim_conf_change(&c->s, RAFT_CONF_ADD_LEARNER, 4), 0);
	run(c, 12); /* it starts empty: a snapshot, then appends */
	assert_int_equal(sim_conf_change(&c->s, RAFT_CONF_PROMOTE, 4), 0);
	run(c, 5);
	assert_int_equal(sim_conf_change(&c->s, RAFT_CONF_REMOVE, l), 0);
	run(c, 5);
	assert_true(sim_leader(&c->s) != l);
	for (int i = 0; i < 60 && (!sim_leader(&c->s) || sim_leader(&c->s) == l); i++)
		run(c, 1);
	uint64_t nl = sim_leader(&c->s);
	assert_true(nl != 0 && nl != l);
	sim_propose(&c->s, nl);
	run(c, 5);
	assert_int_equal(c->s.acked, 1);
	scen_finish(c, "learner_promote_remove_leader");
}

static void a_crashed_follower_restarts_from_what_it_persisted_and_catches_up(void **state)
{
	struct scen *c = scen_new(3);
	uint64_t l, f;

	(void)state;
	c->s.o.compact_every = 3;
	l = run_until_leader(c, 100);
	run(c, 3);
	f = l % 3 + 1;
	sim_crash(&c->s, f);
	for (int i = 0; i < 8; i++) {
		sim_propose(&c->s, l);
		run(c, 2);
	}
	sim_restart(&c->s, f); /* the leader compacted: it needs a snapshot */
	run(c, 10);
	struct raft_status a, b;
	raft_status(c->s.nodes[l].r, &a);
	raft_status(c->s.nodes[f].r, &b);
	assert_int_equal(a.commit, b.commit);
	scen_finish(c, "crash_restart_snapshot");
}

static void a_change_appended_by_a_cut_off_leader_is_undone_when_its_entry_is_replaced(void **state)
{
	struct scen *c = scen_new(3);
	struct raft_conf_state cs;
	uint64_t old, nl;

	(void)state;
	old = run_until_leader(c, 100);
	run(c, 3);
	assert_int_equal(sim_conf_change(&c->s, RAFT_CONF_ADD_LEARNER, 4), 0);
	sim_isolate(&c->s, old); /* its appends never arrive */
	raft_conf_state(c->s.nodes[old].r, &cs);
	assert_int_equal(cs.n_learners, 1); /* in force on the old leader at once */
	for (int i = 0; i < 80 && ((nl = sim_leader(&c->s)) == old || !nl); i++)
		run(c, 1);
	assert_true(nl != 0 && nl != old);
	sim_propose(&c->s, nl);
	run(c, 5);
	sim_heal_net(&c->s);
	run(c, 15);
	/* the new leader's entry replaced the change on the old leader */
	raft_conf_state(c->s.nodes[old].r, &cs);
	assert_int_equal(cs.n_learners, 0);
	assert_int_equal(cs.n_voters, 3);
	assert_int_equal(c->s.acked, 1);
	scen_finish(c, "conf_change_undone");
}

static void the_same_seed_replays_the_same_trace_and_another_seed_does_not(void **state)
{
	bool ok1, ok2, ok3;
	uint64_t seed = 12345;

	(void)state;
	uint64_t h1 = sim_swarm_run(seed, false, "sim_swarm", &ok1);
	uint64_t h2 = sim_swarm_run(seed, false, "sim_swarm", &ok2);
	uint64_t h3 = sim_swarm_run(seed + 1, false, "sim_swarm", &ok3);
	assert_true(ok1 && ok2 && ok3);
	assert_true(h1 == h2);
	assert_true(h1 != h3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_three_member_cluster_elects_replicates_forwards_and_reads),
	    cmocka_unit_test(a_cut_off_leader_is_replaced_and_its_uncommitted_entry_discarded),
	    cmocka_unit_test(a_leadership_transfer_completes_despite_a_one_way_cut),
	    cmocka_unit_test(a_learner_is_added_promoted_and_the_old_leader_removed),
	    cmocka_unit_test(a_crashed_follower_restarts_from_what_it_persisted_and_catches_up),
	    cmocka_unit_test(
	        a_change_appended_by_a_cut_off_leader_is_undone_when_its_entry_is_replaced),
	    cmocka_unit_test(the_same_seed_replays_the_same_trace_and_another_seed_does_not),
	};

	return cmocka_run_group_tests_name("sim_scenarios", tests, NULL, NULL);
}

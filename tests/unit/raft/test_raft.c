/*
 * Unit tests for raft/: one small scenario per rule of the Raft paper and
 * per promise of raft.h, on the hand-driven cluster of fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "raft/raft.h"
#include "tests/unit/raft/fixture.h"

#include <stdlib.h>
#include <string.h>

static uint64_t elect(struct fx *f, uint64_t id)
{
	fx_flush_all(f);
	assert_int_equal(raft_campaign(f->nodes[id].r), 0);
	fx_settle(f);
	assert_int_equal(fx_leader(f), id);
	return fx_status(f, id).term;
}

static struct raft_message msg(enum raft_msg_type t, uint64_t from, uint64_t to, uint64_t term)
{
	struct raft_message m = {0};

	m.type = t;
	m.from = from;
	m.to = to;
	m.term = term;
	return m;
}

/* Takes the first queued message of type t to `to` (caller frees). */
static bool take(struct fx *f, enum raft_msg_type t, uint64_t to, struct raft_message *out)
{
	for (unsigned i = 0; i < f->nq; i++) {
		if (f->q[i].type == t && f->q[i].to == to) {
			*out = f->q[i];
			memmove(&f->q[i], &f->q[i + 1], (f->nq - i - 1) * sizeof f->q[0]);
			f->nq--;
			return true;
		}
	}
	return false;
}

/* ---- elections (§5.2, §5.4.1) ---- */

static void a_member_that_campaigns_wins_with_a_majority_of_votes(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	uint64_t term = elect(&f, 1);
	assert_int_equal(term, 2); /* bootstrap leaves every member at term 1 */
	assert_int_equal(fx_status(&f, 2).lead, 1);
	assert_int_equal(fx_status(&f, 3).lead, 1);
	assert_int_equal(fx_status(&f, 2).vote, 1);
	fx_free(&f);
}

static void a_follower_that_hears_no_leader_campaigns_after_its_randomized_timeout(void **state)
{
	struct fx f;
	unsigned ticks = 0;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	while (fx_status(&f, 2).role == RAFT_FOLLOWER) {
		fx_tick(&f, 2, 1);
		ticks++;
	}
	assert_true(ticks >= 10 && ticks < 20);
	assert_int_equal(fx_status(&f, 2).role, RAFT_CANDIDATE);
	fx_free(&f);
}

static void a_candidate_with_a_less_up_to_date_log_is_refused_votes(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	/* 1 and 2 hold an entry that 3 lacks */
	f.cut[1][3] = true;
	assert_int_equal(fx_propose_str(&f, 1, "x"), 0);
	fx_settle(&f);
	fx_crash(&f, 1);
	fx_isolate(&f, 1, true);
	assert_int_equal(raft_campaign(f.nodes[3].r), 0);
	fx_settle(&f);
	assert_int_not_equal(fx_status(&f, 3).role, RAFT_LEADER);
	assert_true(f.sent[3][RAFT_MSG_VOTE_RESP] >= 1);
	/* 2 has everything committed and can win */
	assert_int_equal(raft_campaign(f.nodes[2].r), 0);
	fx_settle(&f);
	assert_int_equal(fx_leader(&f), 2);
	fx_free(&f);
}

static void a_member_grants_one_vote_per_term(void **state)
{
	struct fx f;
	struct raft_message m, resp;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	m = msg(RAFT_MSG_VOTE, 2, 1, 5);
	m.index = 1;
	m.log_term = 1;
	assert_int_equal(raft_step(f.nodes[1].r, &m), 0);
	m.from = 3;
	assert_int_equal(raft_step(f.nodes[1].r, &m), 0);
	fx_flush(&f, 1);
	assert_true(take(&f, RAFT_MSG_VOTE_RESP, 2, &resp));
	assert_false(resp.reject);
	fx_msg_free(&resp);
	assert_true(take(&f, RAFT_MSG_VOTE_RESP, 3, &resp));
	assert_true(resp.reject);
	fx_msg_free(&resp);
	assert_int_equal(fx_status(&f, 1).vote, 2);
	fx_free(&f);
}

static void the_vote_is_persisted_before_the_answer_is_sent(void **state)
{
	struct fx f;
	struct raft_message m = msg(RAFT_MSG_VOTE, 2, 1, 5);
	struct raft_ready rd;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	m.index = 1;
	m.log_term = 1;
	raft_step(f.nodes[1].r, &m);
	assert_int_equal(raft_ready(f.nodes[1].r, &rd), 0);
	assert_int_equal(rd.n_msgs_now, 0);
	assert_int_equal(rd.n_msgs_after_persist, 1);
	assert_true(rd.must_sync);
	assert_int_equal(rd.hard_state.vote, 2);
	assert_int_equal(rd.hard_state.term, 5);
	raft_advance(f.nodes[1].r, &rd);
	fx_free(&f);
}

/* ---- term checks (§5.1) ---- */

static void a_leader_that_sees_a_higher_term_becomes_a_follower(void **state)
{
	struct fx f;
	struct raft_message m;

	(void)state;
	fx_init(&f, 3, false, false);
	uint64_t term = elect(&f, 1);
	m = msg(RAFT_MSG_APP_RESP, 2, 1, term + 3);
	assert_int_equal(raft_step(f.nodes[1].r, &m), 0);
	assert_int_equal(fx_status(&f, 1).role, RAFT_FOLLOWER);
	assert_int_equal(fx_status(&f, 1).term, term + 3);
	assert_int_equal(fx_status(&f, 1).lead, 0);
	fx_free(&f);
}

static void an_append_from_a_stale_term_is_answered_with_the_current_term_and_ignored(void **state)
{
	struct fx f;
	struct raft_message m, resp;
	struct raft_entry e = {.term = 1, .index = 2};

	(void)state;
	fx_init(&f, 3, true, true);
	uint64_t term = elect(&f, 1);
	uint64_t last = fx_status(&f, 2).last_index;
	assert_true(term > 1);
	m = msg(RAFT_MSG_APP, 3, 2, term - 1); /* 3 thinks it leads an older term */
	m.index = 1;
	m.log_term = 1;
	m.entries = &e;
	m.n_entries = 1;
	assert_int_equal(raft_step(f.nodes[2].r, &m), 0);
	fx_drop_queue(&f);
	fx_flush(&f, 2);
	assert_true(take(&f, RAFT_MSG_APP_RESP, 3, &resp));
	assert_int_equal(resp.term, fx_status(&f, 2).term);
	assert_true(resp.term > m.term);
	fx_msg_free(&resp);
	assert_int_equal(fx_status(&f, 2).last_index, last);
	fx_free(&f);
}

static void every_message_type_obeys_the_term_rules(void **state)
{
	/* §5.1 for each type a peer can send: a stale term changes nothing; a
	 * higher term makes the receiver a follower of that term, except a
	 * pre-vote and a granted pre-vote answer, which never change terms. */
	static const enum raft_msg_type types[] = {
	    RAFT_MSG_APP,         RAFT_MSG_APP_RESP,
	    RAFT_MSG_VOTE,        RAFT_MSG_VOTE_RESP,
	    RAFT_MSG_PRE_VOTE,    RAFT_MSG_PRE_VOTE_RESP,
	    RAFT_MSG_HEARTBEAT,   RAFT_MSG_HEARTBEAT_RESP,
	    RAFT_MSG_SNAP,        RAFT_MSG_READ_INDEX_RESP,
	    RAFT_MSG_TIMEOUT_NOW,
	};
	struct raft_snapshot snap = {.meta = {.index = 1, .term = 1}};

	(void)state;
	snap.meta.conf.n_voters = 3;
	for (uint32_t i = 0; i < 3; i++)
		snap.meta.conf.voters[i] = i + 1;
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		for (int higher = 0; higher <= 1; higher++) {
			struct fx f;
			struct raft_message m;
			struct raft_status before, after;

			fx_init(&f, 3, false, false);
			uint64_t term = elect(&f, 1);
			before = fx_status(&f, 1);
			m = msg(types[k], 2, 1, higher ? term + 1 : term - 1);
			m.snapshot = types[k] == RAFT_MSG_SNAP ? &snap : NULL;
			assert_int_equal(raft_step(f.nodes[1].r, &m), 0);
			after = fx_status(&f, 1);
			assert_int_equal(after.last_index, before.last_index);
			if (!higher || types[k] == RAFT_MSG_PRE_VOTE ||
			    types[k] == RAFT_MSG_PRE_VOTE_RESP) {
				assert_int_equal(after.term, term);
				assert_int_equal(after.role, RAFT_LEADER);
			} else if (types[k] == RAFT_MSG_TIMEOUT_NOW) {
				/* a follower of the new term told to campaign does so */
				assert_int_equal(after.term, term + 2);
				assert_int_equal(after.role, RAFT_CANDIDATE);
			} else {
				assert_int_equal(after.term, term + 1);
				assert_int_equal(after.role, RAFT_FOLLOWER);
				bool from_leader = types[k] == RAFT_MSG_APP ||
				                   types[k] == RAFT_MSG_HEARTBEAT ||
				                   types[k] == RAFT_MSG_SNAP;
				assert_int_equal(after.lead, from_leader ? 2 : 0);
			}
			fx_free(&f);
		}
	}
}

static void a_stale_vote_answer_does_not_count(void **state)
{
	struct fx f;
	struct raft_message m;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	raft_campaign(f.nodes[1].r); /* candidate in term 2 */
	raft_campaign(f.nodes[1].r); /* ... and again: term 3 */
	fx_drop_queue(&f);
	fx_flush(&f, 1);
	assert_int_equal(fx_status(&f, 1).term, 3);
	m = msg(RAFT_MSG_VOTE_RESP, 2, 1, 2);
	raft_step(f.nodes[1].r, &m);
	assert_int_equal(fx_status(&f, 1).role, RAFT_CANDIDATE);
	m.term = 3;
	raft_step(f.nodes[1].r, &m);
	assert_int_equal(fx_status(&f, 1).role, RAFT_LEADER);
	fx_free(&f);
}

/* ---- replication and commitment (§5.3, §5.4.2) ---- */

static void a_leader_never_commits_an_earlier_terms_entry_by_counting_replicas(void **state)
{
	/* Figure 8: leader 1 of term 4 holds index 2 from term 2. Even once a
	 * majority holds index 2, it must not commit it until an entry of term
	 * 4 (its empty entry at index 3) is on a majority too. */
	struct fx f;
	const uint64_t t2[] = {2};
	struct raft_message m;

	(void)state;
	fx_init(&f, 5, false, false);
	fx_preload(&f, 1, t2, 1, 3);
	fx_flush_all(&f);
	raft_campaign(f.nodes[1].r);
	for (uint64_t v = 2; v <= 3; v++) {
		m = msg(RAFT_MSG_VOTE_RESP, v, 1, 4);
		raft_step(f.nodes[1].r, &m);
	}
	assert_int_equal(fx_status(&f, 1).role, RAFT_LEADER);
	assert_int_equal(fx_status(&f, 1).term, 4);
	fx_flush(&f, 1); /* persists its empty entry at index 3 */
	fx_drop_queue(&f);
	for (uint64_t v = 2; v <= 3; v++) {
		m = msg(RAFT_MSG_APP_RESP, v, 1, 4);
		m.index = 2;
		raft_step(f.nodes[1].r, &m);
	}
	fx_flush(&f, 1);
	assert_int_equal(fx_status(&f, 1).commit, 1); /* a majority has 2: not enough */
	m = msg(RAFT_MSG_APP_RESP, 2, 1, 4);
	m.index = 3;
	raft_step(f.nodes[1].r, &m);
	assert_int_equal(fx_status(&f, 1).commit, 1); /* 1 and 2 have 3: not a majority */
	m.from = 3;
	raft_step(f.nodes[1].r, &m);
	assert_int_equal(fx_status(&f, 1).commit, 3); /* index 2 commits with index 3 */
	fx_free(&f);
}

static void a_rejected_append_backs_up_a_whole_term_in_one_round_trip(void **state)
{
	struct fx f;
	const uint64_t lead_terms[] = {1, 1, 1, 1, 1};
	const uint64_t fol_terms[] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
	uint64_t t;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_preload(&f, 1, lead_terms, 5, 2);
	fx_preload(&f, 2, fol_terms, 10, 2);
	fx_isolate(&f, 3, true);
	fx_flush_all(&f);
	/* 1 needs 2's vote: 2's log is longer in term 2, so let 1 win by hand */
	raft_campaign(f.nodes[1].r);
	struct raft_message v = msg(RAFT_MSG_VOTE_RESP, 3, 1, 3);
	raft_step(f.nodes[1].r, &v);
	assert_int_equal(fx_status(&f, 1).role, RAFT_LEADER);
	fx_drop_queue(&f);
	memset(f.sent, 0, sizeof f.sent);
	raft_tick(f.nodes[1].r); /* heartbeat: 2 answers, 1 probes */
	fx_settle(&f);
	/* a probe at index 6 is rejected with a hint at index 1; the next append
	 * starts at index 2 and matches: one rejection for five divergent entries */
	assert_int_equal(f.rejects[2], 1);
	assert_int_equal(fx_status(&f, 2).last_index, 7);
	assert_int_equal(raft_term_at(f.nodes[2].r, 6, &t), 0);
	assert_int_equal(t, 1); /* 2's conflicting term-2 entries are gone */
	assert_int_equal(raft_term_at(f.nodes[2].r, 7, &t), 0);
	assert_int_equal(t, 3);
	assert_int_equal(fx_status(&f, 1).commit, 7);
	fx_free(&f);
}

static void a_follower_rejects_an_append_whose_previous_entry_does_not_match(void **state)
{
	struct fx f;
	const uint64_t terms[] = {1, 1};
	struct raft_entry e = {.term = 3, .index = 5};
	struct raft_message m = msg(RAFT_MSG_APP, 1, 2, 3), resp;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_preload(&f, 2, terms, 2, 1); /* 2 holds indexes 1..3 */
	fx_flush_all(&f);
	m.index = 4;
	m.log_term = 3;
	m.entries = &e;
	m.n_entries = 1;
	raft_step(f.nodes[2].r, &m);
	fx_flush(&f, 2);
	assert_true(take(&f, RAFT_MSG_APP_RESP, 1, &resp));
	assert_true(resp.reject);
	assert_int_equal(resp.index, 4);
	assert_int_equal(resp.reject_hint, 3); /* its last index */
	assert_int_equal(resp.log_term, 1);
	fx_msg_free(&resp);
	assert_int_equal(fx_status(&f, 2).last_index, 3);
	fx_free(&f);
}

static void the_leader_sends_appends_before_persisting_but_counts_itself_only_after(void **state)
{
	struct fx f;
	struct raft_ready rd;
	struct raft *l;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	l = f.nodes[1].r;
	uint64_t c0 = fx_status(&f, 1).commit;
	assert_int_equal(fx_propose_str(&f, 1, "x"), 0);
	assert_int_equal(raft_ready(l, &rd), 0);
	assert_int_equal(rd.n_entries, 1);
	assert_int_equal(rd.n_msgs_now, 2); /* appends to 2 and 3, sendable at once */
	assert_int_equal(rd.msgs_now[0].type, RAFT_MSG_APP);
	raft_memstorage_append(f.nodes[1].ms, rd.entries, rd.n_entries);
	for (size_t i = 0; i < rd.n_msgs_now; i++)
		raft_step(f.nodes[rd.msgs_now[i].to].r, &rd.msgs_now[i]);
	raft_advance(l, &rd);
	/* followers persist, then acknowledge (after-persist messages) */
	for (uint64_t id = 2; id <= 3; id++) {
		assert_int_equal(raft_ready(f.nodes[id].r, &rd), 0);
		assert_int_equal(rd.n_msgs_now, 0);
		assert_int_equal(rd.n_msgs_after_persist, 1);
		assert_int_equal(rd.msgs_after_persist[0].type, RAFT_MSG_APP_RESP);
		raft_memstorage_append(f.nodes[id].ms, rd.entries, rd.n_entries);
		raft_advance(f.nodes[id].r, &rd);
	}
	fx_drop_queue(&f);
	/* a single-member cluster commits only once its own write is acknowledged */
	struct fx g;
	fx_init(&g, 1, false, false);
	elect(&g, 1);
	uint64_t c1 = fx_status(&g, 1).commit;
	fx_propose_str(&g, 1, "y");
	assert_int_equal(raft_ready(g.nodes[1].r, &rd), 0);
	assert_int_equal(rd.n_committed, 0);
	assert_int_equal(rd.hard_state.commit, c1);
	raft_memstorage_append(g.nodes[1].ms, rd.entries, rd.n_entries);
	raft_advance(g.nodes[1].r, &rd);
	assert_int_equal(fx_status(&g, 1).commit, c1 + 1);
	fx_free(&g);
	(void)c0;
	fx_free(&f);
}

static void committed_entries_are_applied_once_each_in_order_on_every_member(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(fx_propose_str(&f, 1 + i % 3, "entry"), 0);
		fx_settle(&f);
	}
	for (uint64_t id = 1; id <= 3; id++) {
		struct fx_node *n = &f.nodes[id];

		assert_int_equal(n->n_applied, 20);
		for (unsigned i = 1; i < n->n_applied; i++)
			assert_int_equal(n->applied[i], n->applied[i - 1] + 1);
		assert_int_equal(fx_status(&f, id).applied, fx_status(&f, id).commit);
	}
	fx_free(&f);
}

static void a_follower_in_replicate_state_gets_at_most_the_in_flight_window(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	f.tmpl.max_inflight_msgs = 4;
	elect(&f, 1);
	f.cut[2][1] = true; /* 2 receives but its answers are lost */
	memset(f.sent_entries, 0, sizeof f.sent_entries);
	for (int i = 0; i < 10; i++) {
		fx_propose_str(&f, 1, "z");
		fx_settle(&f);
	}
	assert_int_equal(f.sent_entries[2], 4);
	assert_int_equal(f.sent_entries[3], 10);
	fx_free(&f);
}

static void entries_are_batched_into_messages_under_the_byte_limit(void **state)
{
	struct fx f;
	char big[200];

	(void)state;
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = 0;
	fx_init(&f, 3, false, false);
	f.tmpl.max_msg_bytes = 1000;
	elect(&f, 1);
	fx_isolate(&f, 2, true);
	for (int i = 0; i < 20; i++)
		fx_propose_str(&f, 1, big);
	fx_settle(&f);
	fx_isolate(&f, 2, false);
	memset(f.sent, 0, sizeof f.sent);
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	/* 20 entries of 199 bytes: 5 per message -> 4 messages, plus the probe */
	assert_true(f.sent[2][RAFT_MSG_APP] >= 4 && f.sent[2][RAFT_MSG_APP] <= 6);
	assert_int_equal(fx_status(&f, 2).last_index, fx_status(&f, 1).last_index);
	fx_free(&f);
}

/* ---- proposals ---- */

static void a_proposal_on_a_follower_is_forwarded_to_the_leader(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	assert_int_equal(fx_propose_str(&f, 3, "fwd"), 0);
	fx_settle(&f);
	assert_int_equal(f.nodes[1].n_applied, 1);
	assert_int_equal(f.nodes[3].n_applied, 1);
	fx_free(&f);
}

static void a_batch_of_proposals_travels_as_one_message_and_applies_in_order(void **state)
{
	struct fx f;
	struct raft_buf b[5];
	const char *words[5] = {"a", "bb", "ccc", "dddd", "eeeee"};

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	for (int i = 0; i < 5; i++) {
		b[i].data = words[i];
		b[i].len = strlen(words[i]);
	}
	memset(f.sent, 0, sizeof f.sent);
	assert_int_equal(raft_propose_batch(f.nodes[2].r, b, 5), 0); /* forwarded */
	fx_settle(&f);
	assert_int_equal(f.sent[1][RAFT_MSG_PROP], 1);
	assert_int_equal(f.sent_entries[3], 2); /* the noop round, then one batch */
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(f.nodes[id].n_applied, 5);
		assert_int_equal(f.nodes[id].applied[4], f.nodes[id].applied[0] + 4);
	}
	assert_int_equal(raft_propose_batch(f.nodes[1].r, b, RAFT_MAX_PROPOSE_BATCH + 1),
	                 MOOR_EINVAL);
	fx_free(&f);
}

static void a_leader_refuses_proposals_beyond_its_uncommitted_limit(void **state)
{
	struct fx f;
	char kb[1024];
	int accepted = 0;

	(void)state;
	memset(kb, 'k', sizeof kb - 1);
	kb[sizeof kb - 1] = 0;
	fx_init(&f, 3, false, false);
	f.tmpl.max_uncommitted_bytes = 8 * 1024;
	elect(&f, 1);
	fx_isolate(&f, 1, true); /* nothing commits */
	while (accepted < 100 && fx_propose_str(&f, 1, kb) == 0)
		accepted++;
	assert_int_equal(accepted, 8);
	assert_int_equal(fx_propose_str(&f, 1, kb), MOOR_EDROPPED);
	fx_isolate(&f, 1, false);
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	assert_int_equal(fx_propose_str(&f, 1, kb), 0); /* committed: room again */
	fx_free(&f);
}

static void committed_entries_come_in_batches_under_the_byte_limit(void **state)
{
	struct fx f;
	char big[600];
	struct raft_ready rd;
	size_t most = 0, total = 0;

	(void)state;
	memset(big, 'c', sizeof big - 1);
	big[sizeof big - 1] = 0;
	fx_init(&f, 1, false, false);
	f.tmpl.max_committed_bytes = 2000;
	elect(&f, 1);
	for (int i = 0; i < 10; i++)
		fx_propose_str(&f, 1, big);
	while (raft_has_ready(f.nodes[1].r)) {
		raft_ready(f.nodes[1].r, &rd);
		raft_memstorage_append(f.nodes[1].ms, rd.entries, rd.n_entries);
		if (rd.hard_state_changed)
			raft_memstorage_set_hard_state(f.nodes[1].ms, &rd.hard_state);
		most = rd.n_committed > most ? rd.n_committed : most;
		total += rd.n_committed;
		raft_advance(f.nodes[1].r, &rd);
	}
	assert_int_equal(total, 10);
	assert_int_equal(most, 3); /* 3 x 599 bytes fit in 2000, a 4th does not */
	fx_free(&f);
}

static void a_proposal_without_a_leader_is_refused_with_no_leader(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	assert_int_equal(fx_propose_str(&f, 1, "x"), MOOR_ENOLEADER);
	raft_campaign(f.nodes[1].r);
	assert_int_equal(fx_propose_str(&f, 1, "x"), MOOR_ENOLEADER); /* candidate */
	fx_free(&f);
}

/* ---- pre-vote and check-quorum (§9.6) ---- */

static void pre_vote_keeps_a_returning_partitioned_member_from_raising_the_term(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, true, true);
	uint64_t term = elect(&f, 1);
	fx_isolate(&f, 3, true);
	fx_tick(&f, 3, 100);
	fx_settle(&f);
	assert_int_equal(fx_status(&f, 3).term, term);
	fx_isolate(&f, 3, false);
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	assert_int_equal(fx_leader(&f), 1);
	assert_int_equal(fx_status(&f, 1).term, term);
	assert_int_equal(fx_status(&f, 3).lead, 1);
	fx_free(&f);
}

static void a_leader_that_cannot_hear_a_majority_steps_down(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, true, true);
	elect(&f, 1);
	fx_isolate(&f, 1, true);
	fx_tick(&f, 1, 25);
	assert_int_equal(fx_status(&f, 1).role, RAFT_FOLLOWER);
	fx_free(&f);
}

static void a_follower_that_hears_a_live_leader_ignores_vote_requests(void **state)
{
	struct fx f;
	struct raft_message m = msg(RAFT_MSG_VOTE, 3, 2, 9);

	(void)state;
	fx_init(&f, 3, false, true);
	uint64_t term = elect(&f, 1);
	m.index = 100;
	m.log_term = 9;
	raft_step(f.nodes[2].r, &m);
	assert_int_equal(fx_status(&f, 2).term, term);
	assert_int_equal(fx_status(&f, 2).lead, 1);
	/* a transfer campaign is not disruptive: it is obeyed */
	m.context = RAFT_CAMPAIGN_TRANSFER;
	raft_step(f.nodes[2].r, &m);
	assert_int_equal(fx_status(&f, 2).term, 9);
	fx_free(&f);
}

/* ---- leadership transfer ---- */

static void leadership_transfer_catches_the_target_up_then_hands_over(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, true, true);
	elect(&f, 1);
	fx_isolate(&f, 3, true);
	fx_propose_str(&f, 1, "a");
	fx_settle(&f);
	fx_isolate(&f, 3, false);
	assert_int_equal(raft_transfer_leadership(f.nodes[1].r, 3), 0);
	assert_int_equal(fx_propose_str(&f, 1, "refused"), MOOR_ETRANSFERRING);
	fx_settle(&f);
	assert_int_equal(fx_leader(&f), 3);
	assert_int_equal(f.nodes[3].n_applied, 1);
	fx_free(&f);
}

static void a_transfer_to_an_unreachable_target_is_abandoned_after_an_election_timeout(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, true, true);
	elect(&f, 1);
	f.cut[1][3] = true;
	assert_int_equal(raft_transfer_leadership(f.nodes[1].r, 3), 0);
	assert_int_equal(fx_status(&f, 1).transferee, 3);
	for (int i = 0; i < 10; i++) {
		fx_tick(&f, 1, 1);
		fx_settle(&f);
	}
	assert_int_equal(fx_leader(&f), 1);
	assert_int_equal(fx_status(&f, 1).transferee, 0);
	assert_int_equal(fx_propose_str(&f, 1, "ok again"), 0);
	fx_free(&f);
}

/* ---- ReadIndex (§6.4) ---- */

static void a_read_is_released_only_after_a_majority_confirms_the_leader(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	uint64_t commit = fx_status(&f, 1).commit;
	fx_isolate(&f, 1, true);
	for (uint64_t c = 1; c <= 10; c++)
		assert_int_equal(raft_read_index(f.nodes[1].r, c), 0);
	fx_settle(&f);
	assert_int_equal(f.nodes[1].n_reads, 0);
	fx_isolate(&f, 1, false);
	memset(f.sent, 0, sizeof f.sent);
	fx_tick(&f, 1, 1); /* the next heartbeat carries the round */
	fx_settle(&f);
	assert_int_equal(f.nodes[1].n_reads, 10);
	assert_int_equal(f.nodes[1].reads[9].context, 10);
	assert_int_equal(f.nodes[1].reads[0].index, commit);
	/* ten reads, one round: one heartbeat per follower */
	assert_int_equal(f.sent[2][RAFT_MSG_HEARTBEAT], 1);
	fx_free(&f);
}

static void a_new_leader_serves_no_read_before_it_commits_an_entry_of_its_term(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	raft_campaign(f.nodes[1].r);
	fx_flush_all(&f);
	fx_deliver_queued(&f); /* votes reach 2 and 3 */
	fx_flush_all(&f);
	fx_deliver_queued(&f); /* answers reach 1: leader, empty entry not committed */
	assert_int_equal(fx_status(&f, 1).role, RAFT_LEADER);
	assert_int_equal(raft_read_index(f.nodes[1].r, 7), 0);
	fx_flush(&f, 1);
	assert_int_equal(f.nodes[1].n_reads, 0);
	fx_settle(&f);
	assert_int_equal(f.nodes[1].n_reads, 1);
	assert_int_equal(f.nodes[1].reads[0].index, 2); /* the new term's empty entry */
	fx_free(&f);
}

static void a_read_on_a_follower_is_answered_by_the_leader(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	fx_propose_str(&f, 1, "w");
	fx_settle(&f);
	assert_int_equal(raft_read_index(f.nodes[2].r, 42), 0);
	fx_settle(&f);
	assert_int_equal(f.nodes[2].n_reads, 1);
	assert_int_equal(f.nodes[2].reads[0].context, 42);
	assert_int_equal(f.nodes[2].reads[0].index, fx_status(&f, 1).commit);
	fx_free(&f);
}

/* ---- snapshots ---- */

static void
a_follower_behind_the_compacted_log_gets_a_snapshot_and_no_appends_meanwhile(void **state)
{
	struct fx f;
	struct raft_conf_state cs;
	struct raft_message snap;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	fx_isolate(&f, 3, true);
	for (int i = 0; i < 10; i++) {
		fx_propose_str(&f, 1, "s");
		fx_settle(&f);
	}
	raft_conf_state_applied(f.nodes[1].r, &cs);
	uint64_t applied = fx_status(&f, 1).applied;
	assert_int_equal(raft_memstorage_compact(f.nodes[1].ms, applied, &cs, "S", 1), 0);
	fx_isolate(&f, 3, false);
	memset(f.sent, 0, sizeof f.sent);
	fx_tick(&f, 1, 1);
	/* heartbeat, answer, a probe that 3 rejects, and 1 finds the log compacted */
	bool got = false;
	for (int i = 0; i < 10 && !got; i++) {
		fx_flush_all(&f);
		got = take(&f, RAFT_MSG_SNAP, 3, &snap);
		fx_deliver_queued(&f);
	}
	assert_true(got);
	assert_int_equal(snap.snapshot->meta.index, applied);
	/* until the snapshot is reported, 3 gets no append */
	unsigned apps = f.sent[3][RAFT_MSG_APP];
	fx_propose_str(&f, 1, "more");
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	assert_int_equal(f.sent[3][RAFT_MSG_APP], apps);
	raft_step(f.nodes[3].r, &snap);
	fx_msg_free(&snap);
	raft_report_snapshot(f.nodes[1].r, 3, true);
	fx_settle(&f);
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	assert_int_equal(fx_status(&f, 3).last_index, fx_status(&f, 1).last_index);
	assert_int_equal(fx_status(&f, 3).commit, fx_status(&f, 1).commit);
	fx_free(&f);
}

/* ---- membership ---- */

static int conf(struct fx *f, uint64_t leader, enum raft_conf_change_type t, uint64_t id)
{
	struct raft_conf_change cc = {t, id};

	return raft_propose_conf_change(f->nodes[leader].r, &cc);
}

static void a_learner_receives_the_log_but_never_counts_towards_a_quorum(void **state)
{
	struct fx f;
	struct raft_conf_state cs;

	(void)state;
	fx_init(&f, 2, false, false);
	elect(&f, 1);
	fx_add_empty(&f, 3);
	assert_int_equal(conf(&f, 1, RAFT_CONF_ADD_LEARNER, 3), 0);
	fx_settle(&f);
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	raft_conf_state(f.nodes[1].r, &cs);
	assert_int_equal(cs.n_voters, 2);
	assert_int_equal(cs.n_learners, 1);
	fx_isolate(&f, 2, true);
	uint64_t c = fx_status(&f, 1).commit;
	fx_propose_str(&f, 1, "needs 2");
	fx_settle(&f);
	assert_int_equal(fx_status(&f, 3).last_index, fx_status(&f, 1).last_index);
	assert_int_equal(fx_status(&f, 1).commit, c); /* 1 + learner is no majority */
	/* a learner never campaigns */
	fx_tick(&f, 3, 100);
	assert_int_equal(fx_status(&f, 3).role, RAFT_FOLLOWER);
	fx_isolate(&f, 2, false);
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	assert_int_equal(conf(&f, 1, RAFT_CONF_PROMOTE, 3), 0);
	fx_settle(&f);
	raft_conf_state(f.nodes[3].r, &cs);
	assert_int_equal(cs.n_voters, 3);
	fx_free(&f);
}

static void a_configuration_takes_effect_when_appended_and_is_undone_when_truncated(void **state)
{
	struct fx f;
	struct raft_conf_state cs;
	unsigned char enc[RAFT_CONF_CHANGE_BYTES];
	struct raft_conf_change cc = {RAFT_CONF_ADD_LEARNER, 4};
	struct raft_entry e = {.term = 2, .index = 2, .type = RAFT_ENTRY_CONF_CHANGE};
	struct raft_message m = msg(RAFT_MSG_APP, 1, 2, 2);

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	raft_conf_change_encode(&cc, enc);
	e.data = enc;
	e.len = sizeof enc;
	m.index = 1;
	m.log_term = 1;
	m.entries = &e;
	m.n_entries = 1;
	raft_step(f.nodes[2].r, &m); /* leader 1 of term 2 appends the change on 2 */
	fx_flush(&f, 2);
	raft_conf_state(f.nodes[2].r, &cs);
	assert_int_equal(cs.n_learners, 1); /* in force though not committed */
	raft_conf_state_applied(f.nodes[2].r, &cs);
	assert_int_equal(cs.n_learners, 0);
	/* leader 3 of term 3 never had it: its entry at index 2 replaces it */
	struct raft_entry other = {.term = 3, .index = 2};
	m = msg(RAFT_MSG_APP, 3, 2, 3);
	m.index = 1;
	m.log_term = 1;
	m.entries = &other;
	m.n_entries = 1;
	raft_step(f.nodes[2].r, &m);
	fx_flush(&f, 2);
	raft_conf_state(f.nodes[2].r, &cs);
	assert_int_equal(cs.n_learners, 0);
	assert_int_equal(cs.n_voters, 3);
	/* leader 3 appends the change itself; after a restart the configuration
	 * is read back from the log */
	e.index = 3;
	e.term = 3;
	assert_int_equal(raft_step(f.nodes[2].r, &(struct raft_message){.type = RAFT_MSG_APP,
	                                                                .from = 3,
	                                                                .to = 2,
	                                                                .term = 3,
	                                                                .index = 2,
	                                                                .log_term = 3,
	                                                                .entries = &e,
	                                                                .n_entries = 1}),
	                 0);
	fx_flush(&f, 2);
	assert_int_equal(fx_status(&f, 2).last_index, 3);
	fx_crash(&f, 2);
	fx_start(&f, 2);
	raft_conf_state(f.nodes[2].r, &cs);
	assert_int_equal(cs.n_learners, 1);
	fx_free(&f);
}

static void a_second_configuration_change_waits_until_the_first_is_applied(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	raft_campaign(f.nodes[1].r);
	fx_flush_all(&f);
	fx_deliver_queued(&f);
	fx_flush_all(&f);
	fx_deliver_queued(&f);
	/* its empty entry is not applied yet */
	assert_int_equal(conf(&f, 1, RAFT_CONF_ADD_LEARNER, 4), MOOR_EPENDINGCONF);
	fx_settle(&f);
	fx_add_empty(&f, 4);
	assert_int_equal(conf(&f, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
	assert_int_equal(conf(&f, 1, RAFT_CONF_ADD_LEARNER, 5), MOOR_EPENDINGCONF);
	fx_settle(&f);
	assert_int_equal(conf(&f, 1, RAFT_CONF_ADD_LEARNER, 4), MOOR_EMEMBEREXISTS);
	assert_int_equal(conf(&f, 1, RAFT_CONF_REMOVE, 6), MOOR_EMEMBERNOTFOUND);
	assert_int_equal(conf(&f, 1, RAFT_CONF_PROMOTE, 2), MOOR_EINVAL);
	assert_int_equal(conf(&f, 2, RAFT_CONF_REMOVE, 3), MOOR_ENOTLEADER);
	fx_free(&f);
}

static void promoting_a_learner_that_lags_is_refused(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	fx_add_empty(&f, 4);
	fx_isolate(&f, 4, true);
	assert_int_equal(conf(&f, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
	fx_settle(&f);
	assert_int_equal(conf(&f, 1, RAFT_CONF_PROMOTE, 4), MOOR_ELEARNERNOTREADY);
	fx_free(&f);
}

static void promoting_a_learner_within_ten_percent_of_the_commit_index_is_allowed(void **state)
{
	struct fx f;
	uint64_t c;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	fx_add_empty(&f, 4);
	assert_int_equal(conf(&f, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
	fx_settle(&f);
	for (int i = 0; i < 40; i++)
		assert_int_equal(fx_propose_str(&f, 1, "x"), 0);
	fx_settle(&f);
	assert_int_equal(fx_status(&f, 4).last_index, fx_status(&f, 1).commit);
	/* cut off, the learner falls behind by 10% and one entry, then less */
	fx_isolate(&f, 4, true);
	c = fx_status(&f, 1).commit;
	while (fx_status(&f, 4).last_index * 10 >= fx_status(&f, 1).commit * 9) {
		assert_int_equal(fx_propose_str(&f, 1, "y"), 0);
		fx_settle(&f);
	}
	assert_true(fx_status(&f, 1).commit > c);
	assert_int_equal(conf(&f, 1, RAFT_CONF_PROMOTE, 4), MOOR_ELEARNERNOTREADY);
	fx_isolate(&f, 4, false);
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	fx_isolate(&f, 4, true);
	assert_int_equal(fx_propose_str(&f, 1, "z"), 0);
	fx_settle(&f);
	assert_true(fx_status(&f, 4).last_index < fx_status(&f, 1).commit);
	assert_int_equal(conf(&f, 1, RAFT_CONF_PROMOTE, 4), 0);
	fx_free(&f);
}

static void a_leader_removing_itself_no_longer_counts_itself_or_takes_proposals(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, true, true);
	elect(&f, 1);
	f.cut[1][3] = true;
	uint64_t c = fx_status(&f, 1).commit;
	assert_int_equal(conf(&f, 1, RAFT_CONF_REMOVE, 1), 0);
	assert_int_equal(fx_propose_str(&f, 1, "x"), MOOR_EDROPPED);
	fx_settle(&f);
	/* 1 and 2 hold the removal, but in the new configuration {2, 3} that
	 * is no majority: counting itself, 1 would have committed it */
	assert_int_equal(fx_status(&f, 2).last_index, c + 1);
	assert_int_equal(fx_status(&f, 1).commit, c);
	assert_int_equal(fx_status(&f, 1).role, RAFT_LEADER);
	f.cut[1][3] = false;
	fx_tick(&f, 1, 1);
	fx_settle(&f);
	assert_int_equal(fx_status(&f, 1).role, RAFT_FOLLOWER);
	assert_true(fx_leader(&f) == 2 || fx_leader(&f) == 3);
	fx_free(&f);
}

static void
a_leader_that_removes_itself_hands_over_and_steps_down_once_the_change_is_applied(void **state)
{
	struct fx f;
	struct raft_conf_state cs;

	(void)state;
	fx_init(&f, 3, true, true);
	elect(&f, 1);
	assert_int_equal(conf(&f, 1, RAFT_CONF_REMOVE, 1), 0);
	assert_int_equal(fx_status(&f, 1).role, RAFT_LEADER);
	fx_settle(&f);
	/* it handed over to a remaining voter with its whole log */
	assert_int_equal(fx_status(&f, 1).role, RAFT_FOLLOWER);
	assert_true(fx_leader(&f) == 2 || fx_leader(&f) == 3);
	raft_conf_state(f.nodes[2].r, &cs);
	assert_int_equal(cs.n_voters, 2);
	fx_isolate(&f, 1, true);
	/* the removed member does not campaign */
	fx_tick(&f, 1, 100);
	assert_int_equal(fx_status(&f, 1).role, RAFT_FOLLOWER);
	fx_free(&f);
}

/* ---- restart and resources ---- */

static void a_restarted_member_keeps_its_term_vote_and_log(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, 3, false, false);
	elect(&f, 1);
	fx_propose_str(&f, 1, "kept");
	fx_settle(&f);
	struct raft_status before = fx_status(&f, 2);
	fx_crash(&f, 2);
	fx_start(&f, 2);
	struct raft_status after = fx_status(&f, 2);
	assert_int_equal(after.term, before.term);
	assert_int_equal(after.vote, before.vote);
	assert_int_equal(after.last_index, before.last_index);
	assert_int_equal(after.commit, before.commit);
	assert_int_equal(after.role, RAFT_FOLLOWER);
	fx_free(&f);
}

static void memstorage_truncates_conflicts_compacts_and_refuses_older_snapshots(void **state)
{
	struct raft_memstorage *ms;
	struct raft_storage st;
	struct raft_entry e[4], out[4];
	struct raft_conf_state cs = {.n_voters = 1, .voters = {1}};
	struct raft_snapshot snap = {0};
	uint64_t first, last, t;
	size_t n;

	(void)state;
	assert_int_equal(raft_memstorage_create(NULL, &ms), 0);
	st = raft_memstorage_storage(ms);
	for (int i = 0; i < 4; i++)
		e[i] = (struct raft_entry){.term = 1,
		                           .index = (uint64_t)i + 1,
		                           .len = 1,
		                           .data = (unsigned char *)"abcd" + i};
	assert_int_equal(raft_memstorage_append(ms, e, 4), 0);
	/* a conflicting suffix from index 3 replaces 3 and 4 */
	e[2].term = 2;
	assert_int_equal(raft_memstorage_append(ms, &e[2], 1), 0);
	st.last_index(st.ctx, &last);
	assert_int_equal(last, 3);
	st.term(st.ctx, 3, &t);
	assert_int_equal(t, 2);
	/* a gap is refused */
	e[3].index = 9;
	assert_int_equal(raft_memstorage_append(ms, &e[3], 1), MOOR_EINVAL);
	/* compaction keeps the term of its last index */
	assert_int_equal(raft_memstorage_compact(ms, 2, &cs, "S", 1), 0);
	st.first_index(st.ctx, &first);
	assert_int_equal(first, 3);
	assert_int_equal(st.term(st.ctx, 2, &t), 0);
	assert_int_equal(t, 1);
	assert_int_equal(st.term(st.ctx, 1, &t), MOOR_ECOMPACTEDLOG);
	assert_int_equal(st.term(st.ctx, 4, &t), MOOR_EUNAVAILLOG);
	assert_int_equal(st.entries(st.ctx, 2, 4, SIZE_MAX, out, &n), MOOR_ECOMPACTEDLOG);
	assert_int_equal(st.entries(st.ctx, 3, 4, SIZE_MAX, out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].data[0], 'c');
	assert_int_equal(raft_memstorage_compact(ms, 2, &cs, NULL, 0), MOOR_ESNAPOUTOFDATE);
	/* an older snapshot is refused, a newer one replaces everything */
	snap.meta.index = 2;
	snap.meta.term = 1;
	assert_int_equal(raft_memstorage_apply_snapshot(ms, &snap), MOOR_ESNAPOUTOFDATE);
	snap.meta.index = 10;
	snap.meta.term = 5;
	assert_int_equal(raft_memstorage_apply_snapshot(ms, &snap), 0);
	st.first_index(st.ctx, &first);
	st.last_index(st.ctx, &last);
	assert_int_equal(first, 11);
	assert_int_equal(last, 10);
	raft_memstorage_destroy(ms);
}

static void invalid_input_is_refused_with_einval(void **state)
{
	struct fx f;
	struct raft_message m = msg(RAFT_MSG_APP, 2, 9, 1);
	struct raft_config c = {0};
	struct raft *r;

	(void)state;
	fx_init(&f, 3, false, false);
	fx_flush_all(&f);
	assert_int_equal(raft_step(f.nodes[1].r, &m), MOOR_EINVAL); /* not for us */
	m.to = 1;
	m.type = (enum raft_msg_type)77;
	assert_int_equal(raft_step(f.nodes[1].r, &m), MOOR_EINVAL);
	m.type = RAFT_MSG_APP;
	m.term = 0;
	assert_int_equal(raft_step(f.nodes[1].r, &m), MOOR_EINVAL);
	/* entries that do not continue at index + 1, or from a later term */
	struct raft_entry gap[2] = {{.term = 1, .index = 2}, {.term = 1, .index = 4}};
	m.term = 1;
	m.index = 1;
	m.log_term = 1;
	m.entries = gap;
	m.n_entries = 2;
	assert_int_equal(raft_step(f.nodes[1].r, &m), MOOR_EINVAL);
	gap[1].index = 3;
	gap[1].term = 2;
	assert_int_equal(raft_step(f.nodes[1].r, &m), MOOR_EINVAL);
	gap[1].term = 1;
	m.from = 1; /* from itself */
	assert_int_equal(raft_step(f.nodes[1].r, &m), MOOR_EINVAL);
	m.from = 2;
	assert_int_equal(raft_step(f.nodes[1].r, &m), 0); /* now well formed */
	assert_int_equal(fx_status(&f, 1).last_index, 3);
	assert_int_equal(raft_create(&c, &r), MOOR_EINVAL);
	c.id = 1;
	c.storage = raft_memstorage_storage(f.nodes[1].ms);
	c.election_ticks = 2;
	c.heartbeat_ticks = 2;
	assert_int_equal(raft_create(&c, &r), MOOR_EINVAL);
	unsigned char enc[RAFT_CONF_CHANGE_BYTES];
	struct raft_conf_change cc = {RAFT_CONF_PROMOTE, 7}, back;
	raft_conf_change_encode(&cc, enc);
	assert_int_equal(raft_conf_change_decode(enc, sizeof enc, &back), 0);
	assert_int_equal(back.node_id, 7);
	assert_int_equal(raft_conf_change_decode(enc, 3, &back), MOOR_EINVAL);
	fx_free(&f);
}

/* A storage that fails with -EIO once `budget` calls are spent. */
struct failing_storage {
	struct raft_storage inner;
	long budget;
};

static int fs_spend(struct failing_storage *fs)
{
	return fs->budget-- > 0 ? 0 : -5; /* -EIO */
}

static int fs_first(void *ctx, uint64_t *i)
{
	struct failing_storage *fs = ctx;
	return fs_spend(fs) ? -5 : fs->inner.first_index(fs->inner.ctx, i);
}

static int fs_last(void *ctx, uint64_t *i)
{
	struct failing_storage *fs = ctx;
	return fs_spend(fs) ? -5 : fs->inner.last_index(fs->inner.ctx, i);
}

static int fs_term(void *ctx, uint64_t i, uint64_t *t)
{
	struct failing_storage *fs = ctx;
	return fs_spend(fs) ? -5 : fs->inner.term(fs->inner.ctx, i, t);
}

static int fs_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max, struct raft_entry *out,
                      size_t *n)
{
	struct failing_storage *fs = ctx;
	return fs_spend(fs) ? -5 : fs->inner.entries(fs->inner.ctx, lo, hi, max, out, n);
}

static int fs_snapshot(void *ctx, struct raft_snapshot *snap)
{
	struct failing_storage *fs = ctx;
	return fs_spend(fs) ? -5 : fs->inner.snapshot(fs->inner.ctx, snap);
}

static int fs_hard_state(void *ctx, struct raft_hard_state *hs)
{
	struct failing_storage *fs = ctx;
	return fs_spend(fs) ? -5 : fs->inner.hard_state(fs->inner.ctx, hs);
}

static void a_storage_error_stops_the_member_with_the_error_then_estopped(void **state)
{
	const uint64_t voters[] = {1};
	bool stopped_once = false;

	(void)state;
	/* fail the storage at every possible point of a short life */
	for (long budget = 0; budget < 200; budget++) {
		struct raft_memstorage *ms;
		struct failing_storage fs;
		struct raft_config c = {0};
		struct raft *r = NULL;
		struct raft_ready rd;
		int rc;

		raft_memstorage_create(NULL, &ms);
		raft_memstorage_bootstrap(ms, voters, 1);
		fs.inner = raft_memstorage_storage(ms);
		fs.budget = budget;
		c.id = 1;
		c.storage = (struct raft_storage){fs_first,    fs_last,       fs_term, fs_entries,
		                                  fs_snapshot, fs_hard_state, &fs};
		rc = raft_create(&c, &r);
		if (rc) {
			assert_int_equal(rc, -5);
			assert_null(r);
			raft_memstorage_destroy(ms);
			continue;
		}
		rc = raft_campaign(r);
		for (int i = 0; rc == 0 && i < 5; i++) {
			rc = raft_propose(r, "p", 1);
			while (rc == 0 && raft_has_ready(r)) {
				if ((rc = raft_ready(r, &rd)))
					break;
				raft_memstorage_append(ms, rd.entries, rd.n_entries);
				rc = raft_advance(r, &rd);
			}
		}
		if (rc) {
			assert_true(rc == -5 || rc == MOOR_ESTOPPED);
			assert_int_equal(raft_tick(r), MOOR_ESTOPPED);
			assert_int_equal(raft_propose(r, "p", 1), MOOR_ESTOPPED);
			assert_false(raft_has_ready(r));
			stopped_once = true;
		}
		raft_destroy(r);
		raft_memstorage_destroy(ms);
	}
	assert_true(stopped_once);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void a_member_survives_arbitrary_messages_from_peers(void **state)
{
	/* Random messages, well formed or not, from a seeded generator: each is
	 * accepted or refused with MOOR_EINVAL, and nothing aborts. */
	struct fx f;
	uint64_t x = 88172645463325252ull;
	struct raft_entry ents[4];
	struct raft_snapshot snap;
	unsigned char data[4] = "abc";
	unsigned char cc[RAFT_CONF_CHANGE_BYTES];
	struct raft_conf_change c = {RAFT_CONF_ADD_LEARNER, 5};

	(void)state;
	raft_conf_change_encode(&c, cc);
	fx_init(&f, 3, true, true);
	elect(&f, 1);
	for (int i = 0; i < 20000; i++) {
		struct raft_message m = {0};
		uint64_t to = 1 + rnd(&x) % 3;
		int rc;

		m.type = (enum raft_msg_type)(1 + rnd(&x) % 16);
		m.to = to;
		m.from = 1 + rnd(&x) % 4;
		m.term = rnd(&x) % 8;
		m.index = rnd(&x) % 12;
		m.log_term = rnd(&x) % 8;
		m.commit = rnd(&x) % 14;
		m.reject = rnd(&x) % 2;
		m.reject_hint = rnd(&x) % 12;
		m.context = rnd(&x) % 3;
		m.n_entries = rnd(&x) % 5;
		for (size_t k = 0; k < m.n_entries; k++) {
			ents[k].index = rnd(&x) % 4 ? m.index + 1 + k : rnd(&x) % 12;
			ents[k].term = m.log_term + rnd(&x) % 2;
			ents[k].type = rnd(&x) % 5 ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_CONF_CHANGE;
			ents[k].data = ents[k].type == RAFT_ENTRY_CONF_CHANGE ? cc : data;
			ents[k].len = ents[k].type == RAFT_ENTRY_CONF_CHANGE ? sizeof cc : 3;
		}
		m.entries = ents;
		memset(&snap, 0, sizeof snap);
		snap.meta.index = rnd(&x) % 14;
		snap.meta.term = rnd(&x) % 8;
		snap.meta.conf.n_voters = 1 + rnd(&x) % 3;
		for (uint32_t k = 0; k < snap.meta.conf.n_voters; k++)
			snap.meta.conf.voters[k] = k + 1;
		m.snapshot = rnd(&x) % 8 ? NULL : &snap;
		rc = raft_step(f.nodes[to].r, &m);
		assert_true(rc == 0 || rc == MOOR_EINVAL);
		if (i % 7 == 0)
			raft_tick(f.nodes[to].r);
		fx_flush_all(&f);
		if (i % 50 == 0)
			fx_drop_queue(&f);
		else
			fx_deliver_queued(&f);
	}
	fx_flush_all(&f);
	fx_drop_queue(&f);
	fx_free(&f);
}

static void every_allocation_failure_is_a_clean_enomem_without_leaks(void **state)
{
	struct raft_memstorage *ms;
	const uint64_t voters[] = {1};
	int done = 0;

	(void)state;
	for (long n = 0; !done && n < 1000; n++) {
		struct moor_alloc_failing fa;
		struct raft_config c = {0};
		struct raft *r = NULL;
		struct raft_ready rd;
		int rc;

		moor_alloc_failing_init(&fa, n);
		assert_int_equal(raft_memstorage_create(NULL, &ms), 0);
		assert_int_equal(raft_memstorage_bootstrap(ms, voters, 1), 0);
		c.id = 1;
		c.storage = raft_memstorage_storage(ms);
		c.alloc = &fa.alloc;
		rc = raft_create(&c, &r);
		if (rc == 0) {
			rc = raft_campaign(r);
			for (int i = 0; rc == 0 && i < 3; i++)
				rc = raft_propose(r, "payload", 7);
			while (rc == 0 && raft_has_ready(r)) {
				rc = raft_ready(r, &rd);
				if (rc)
					break;
				raft_memstorage_append(ms, rd.entries, rd.n_entries);
				rc = raft_advance(r, &rd);
			}
			if (rc == 0 && fa.failures == 0)
				done = 1;
			raft_destroy(r);
		}
		if (rc)
			assert_true(rc == MOOR_ENOMEM || rc == MOOR_EDROPPED);
		assert_int_equal(fa.live, 0);
		raft_memstorage_destroy(ms);
	}
	assert_true(done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_member_that_campaigns_wins_with_a_majority_of_votes),
	    cmocka_unit_test(
	        a_follower_that_hears_no_leader_campaigns_after_its_randomized_timeout),
	    cmocka_unit_test(a_candidate_with_a_less_up_to_date_log_is_refused_votes),
	    cmocka_unit_test(a_member_grants_one_vote_per_term),
	    cmocka_unit_test(the_vote_is_persisted_before_the_answer_is_sent),
	    cmocka_unit_test(a_leader_that_sees_a_higher_term_becomes_a_follower),
	    cmocka_unit_test(
	        an_append_from_a_stale_term_is_answered_with_the_current_term_and_ignored),
	    cmocka_unit_test(every_message_type_obeys_the_term_rules),
	    cmocka_unit_test(a_stale_vote_answer_does_not_count),
	    cmocka_unit_test(a_leader_never_commits_an_earlier_terms_entry_by_counting_replicas),
	    cmocka_unit_test(a_rejected_append_backs_up_a_whole_term_in_one_round_trip),
	    cmocka_unit_test(a_follower_rejects_an_append_whose_previous_entry_does_not_match),
	    cmocka_unit_test(
	        the_leader_sends_appends_before_persisting_but_counts_itself_only_after),
	    cmocka_unit_test(committed_entries_are_applied_once_each_in_order_on_every_member),
	    cmocka_unit_test(a_follower_in_replicate_state_gets_at_most_the_in_flight_window),
	    cmocka_unit_test(entries_are_batched_into_messages_under_the_byte_limit),
	    cmocka_unit_test(a_proposal_on_a_follower_is_forwarded_to_the_leader),
	    cmocka_unit_test(a_batch_of_proposals_travels_as_one_message_and_applies_in_order),
	    cmocka_unit_test(a_leader_refuses_proposals_beyond_its_uncommitted_limit),
	    cmocka_unit_test(committed_entries_come_in_batches_under_the_byte_limit),
	    cmocka_unit_test(a_proposal_without_a_leader_is_refused_with_no_leader),
	    cmocka_unit_test(pre_vote_keeps_a_returning_partitioned_member_from_raising_the_term),
	    cmocka_unit_test(a_leader_that_cannot_hear_a_majority_steps_down),
	    cmocka_unit_test(a_follower_that_hears_a_live_leader_ignores_vote_requests),
	    cmocka_unit_test(leadership_transfer_catches_the_target_up_then_hands_over),
	    cmocka_unit_test(
	        a_transfer_to_an_unreachable_target_is_abandoned_after_an_election_timeout),
	    cmocka_unit_test(a_read_is_released_only_after_a_majority_confirms_the_leader),
	    cmocka_unit_test(a_new_leader_serves_no_read_before_it_commits_an_entry_of_its_term),
	    cmocka_unit_test(a_read_on_a_follower_is_answered_by_the_leader),
	    cmocka_unit_test(
	        a_follower_behind_the_compacted_log_gets_a_snapshot_and_no_appends_meanwhile),
	    cmocka_unit_test(a_learner_receives_the_log_but_never_counts_towards_a_quorum),
	    cmocka_unit_test(
	        a_configuration_takes_effect_when_appended_and_is_undone_when_truncated),
	    cmocka_unit_test(a_second_configuration_change_waits_until_the_first_is_applied),
	    cmocka_unit_test(promoting_a_learner_that_lags_is_refused),
	    cmocka_unit_test(promoting_a_learner_within_ten_percent_of_the_commit_index_is_allowed),
	    cmocka_unit_test(
	        a_leader_that_removes_itself_hands_over_and_steps_down_once_the_change_is_applied),
	    cmocka_unit_test(a_leader_removing_itself_no_longer_counts_itself_or_takes_proposals),
	    cmocka_unit_test(a_restarted_member_keeps_its_term_vote_and_log),
	    cmocka_unit_test(memstorage_truncates_conflicts_compacts_and_refuses_older_snapshots),
	    cmocka_unit_test(invalid_input_is_refused_with_einval),
	    cmocka_unit_test(a_member_survives_arbitrary_messages_from_peers),
	    cmocka_unit_test(a_storage_error_stops_the_member_with_the_error_then_estopped),
	    cmocka_unit_test(every_allocation_failure_is_a_clean_enomem_without_leaks),
	};

	return cmocka_run_group_tests_name("raft", tests, NULL, NULL);
}

/*
 * Roles and elections: follower, pre-candidate, candidate, leader; the
 * election and heartbeat clocks; pre-vote (a member asks whether it could win
 * before it raises its term, so a member that was cut off cannot disrupt a
 * healthy leader when it returns); vote granting under the election
 * restriction (§5.4.1); check-quorum (a leader that has not heard from a
 * majority within an election timeout steps down, and a follower that heard
 * from a live leader within one ignores vote requests: the "lease").
 */
#include "raft/raft_int.h"

#include "common/assert.h"

#include <string.h>

bool raft_promotable(const struct raft *r)
{
	return raft_is_voter(r, r->id);
}

bool raft_in_lease(const struct raft *r)
{
	return r->cfg.check_quorum && r->lead != 0 && r->election_elapsed < r->cfg.election_ticks;
}

void raft_reset_randomized_timeout(struct raft *r)
{
	r->randomized_timeout =
	    r->cfg.election_ticks + (unsigned)(raft_prng_next(r) % r->cfg.election_ticks);
}

static void raft_reset(struct raft *r, uint64_t term)
{
	if (r->term != term) {
		r->term = term;
		r->vote = 0;
	}
	r->lead = 0;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	raft_reset_randomized_timeout(r);
	r->lead_transferee = 0;
	r->pending_conf_index = 0;
	r->uncommitted_bytes = 0;
	raft_pr_reset_all(r);
	raft_readindex_reset(r);
}

void raft_become_follower(struct raft *r, uint64_t term, uint64_t lead)
{
	raft_reset(r, term);
	r->lead = lead;
	if (r->role != RAFT_FOLLOWER)
		raft_logf(r, MOOR_LOG_INFO, "became follower term=%llu lead=%llu",
		          (unsigned long long)term, (unsigned long long)lead);
	r->role = RAFT_FOLLOWER;
}

static void become_pre_candidate(struct raft *r)
{
	MOOR_ASSERT(r->role != RAFT_LEADER);
	for (unsigned i = 0; i < r->n_prs; i++)
		r->prs[i].vote = 0;
	r->lead = 0;
	r->role = RAFT_PRE_CANDIDATE;
}

static void become_candidate(struct raft *r)
{
	MOOR_ASSERT(r->role != RAFT_LEADER);
	raft_reset(r, r->term + 1);
	r->vote = r->id;
	r->role = RAFT_CANDIDATE;
	raft_logf(r, MOOR_LOG_INFO, "became candidate term=%llu", (unsigned long long)r->term);
}

void raft_become_leader(struct raft *r)
{
	struct raft_entry noop = {0};
	struct raft_progress *self;

	MOOR_ASSERT(r->role != RAFT_FOLLOWER);
	raft_reset(r, r->term);
	r->lead = r->id;
	r->role = RAFT_LEADER;
	self = raft_pr_get(r, r->id);
	if (self)
		raft_pr_become_replicate(self);
	/* An empty entry of the new term: committing it commits everything
	 * before it (§5.4.2) and unlocks reads and configuration changes. */
	r->pending_conf_index = raft_log_last(r) + 1;
	if (raft_append_entries(r, &noop, 1))
		raft_logf(r, MOOR_LOG_ERROR, "cannot append the empty entry of a new term");
	r->uncommitted_bytes = 0;
	raft_logf(r, MOOR_LOG_INFO, "became leader term=%llu index=%llu",
	          (unsigned long long)r->term, (unsigned long long)raft_log_last(r));
}

static void campaign(struct raft *r, bool pre, bool transfer)
{
	uint64_t vote_term;
	int res;

	if (pre) {
		become_pre_candidate(r);
		vote_term = r->term + 1;
	} else {
		become_candidate(r);
		vote_term = r->term;
	}
	raft_pr_get(r, r->id)->vote = 1;
	res = raft_tally_votes(r);
	if (res > 0) {
		/* a single voter wins at once */
		if (pre)
			campaign(r, false, transfer);
		else {
			raft_become_leader(r);
			raft_bcast_append(r);
		}
		return;
	}
	for (unsigned i = 0; i < r->n_prs; i++) {
		struct raft_progress *p = &r->prs[i];
		struct raft_message m = {0};

		if (p->id == r->id || p->learner)
			continue;
		m.type = pre ? RAFT_MSG_PRE_VOTE : RAFT_MSG_VOTE;
		m.to = p->id;
		m.term = vote_term;
		m.index = raft_log_last(r);
		m.log_term = raft_log_last_term(r);
		m.context = transfer ? RAFT_CAMPAIGN_TRANSFER : 0;
		raft_send(r, &m);
	}
}

void raft_hup(struct raft *r, bool transfer)
{
	if (r->role == RAFT_LEADER || !raft_promotable(r))
		return;
	campaign(r, r->cfg.pre_vote && !transfer, transfer);
}

void raft_tick_election(struct raft *r)
{
	/* A learner or a removed member keeps the clock (its lease expires as
	 * anyone's does) but never campaigns. */
	r->election_elapsed++;
	if (!raft_promotable(r))
		return;
	if (r->election_elapsed >= r->randomized_timeout) {
		r->election_elapsed = 0;
		raft_hup(r, false);
	}
}

void raft_tick_heartbeat(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		if (r->cfg.check_quorum && !raft_quorum_active(r)) {
			raft_logf(r, MOOR_LOG_WARN, "stepping down: no quorum active term=%llu",
			          (unsigned long long)r->term);
			raft_become_follower(r, r->term, 0);
			return;
		}
		if (r->lead_transferee)
			raft_transfer_abort(r);
		if (!raft_promotable(r) && r->pending_conf_index <= r->log.committed) {
			/* removed, the removal committed, and the hand-over did
			 * not happen in time */
			raft_become_follower(r, r->term, 0);
			return;
		}
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		raft_bcast_heartbeat(r, r->n_reads ? r->read_round : 0);
	}
}

void raft_handle_vote(struct raft *r, const struct raft_message *m)
{
	bool pre = m->type == RAFT_MSG_PRE_VOTE;
	bool can =
	    r->vote == m->from || (r->vote == 0 && r->lead == 0) || (pre && m->term > r->term);
	struct raft_message resp = {0};

	resp.type = pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP;
	resp.to = m->from;
	if (can && raft_log_up_to_date(r, m->index, m->log_term)) {
		/* A pre-vote answer carries the term it was asked for, so the
		 * pre-candidate counts it; our own term does not change. */
		resp.term = m->term;
		if (!pre) {
			r->election_elapsed = 0;
			r->vote = m->from;
		}
	} else {
		resp.term = r->term;
		resp.reject = true;
	}
	raft_send(r, &resp);
}

void raft_handle_vote_resp(struct raft *r, const struct raft_message *m)
{
	struct raft_progress *p;
	int res;

	if ((r->role == RAFT_PRE_CANDIDATE) != (m->type == RAFT_MSG_PRE_VOTE_RESP))
		return;
	p = raft_pr_get(r, m->from);
	if (!p)
		return;
	if (p->vote == 0)
		p->vote = m->reject ? -1 : 1;
	res = raft_tally_votes(r);
	if (res > 0) {
		if (r->role == RAFT_PRE_CANDIDATE) {
			campaign(r, false, false);
		} else {
			raft_become_leader(r);
			raft_bcast_append(r);
		}
	} else if (res < 0) {
		raft_become_follower(r, r->term, 0);
	}
}

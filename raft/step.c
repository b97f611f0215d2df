/*
 * raft_step: the checks every message from a peer goes through before it is
 * trusted (msg_well_formed), the term rules of §5.1 (a message from a higher
 * term makes us a follower of that term, unless it is a vote request we
 * ignore under a live leader's lease or a pre-vote, which never changes
 * terms; one from a lower term is dropped, or answered so that a stale
 * leader learns it is stale), then the role-specific dispatch to the
 * handlers in election.c, replication.c, membership.c and readindex.c.
 */
#include "raft/raft_int.h"

#include "common/error.h"

static void step_leader(struct raft *r, const struct raft_message *m)
{
	switch (m->type) {
	case RAFT_MSG_PROP:
		if (m->n_entries && raft_leader_append(r, m->entries, m->n_entries))
			raft_logf(r, MOOR_LOG_DEBUG, "forwarded proposal dropped");
		break;
	case RAFT_MSG_APP_RESP:
		raft_handle_append_resp(r, m);
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
		raft_handle_heartbeat_resp(r, m);
		break;
	case RAFT_MSG_READ_INDEX:
		if (raft_pr_get(r, m->from))
			raft_readindex_request(r, m->from, m->context);
		break;
	case RAFT_MSG_TRANSFER_LEADER:
		if (raft_is_voter(r, m->context) && m->context != r->id)
			raft_transfer_start(r, m->context);
		break;
	default:
		break;
	}
}

static void step_candidate(struct raft *r, const struct raft_message *m)
{
	switch (m->type) {
	case RAFT_MSG_APP:
		raft_become_follower(r, m->term, m->from);
		raft_handle_append(r, m);
		break;
	case RAFT_MSG_HEARTBEAT:
		raft_become_follower(r, m->term, m->from);
		raft_handle_heartbeat(r, m);
		break;
	case RAFT_MSG_SNAP:
		raft_become_follower(r, m->term, m->from);
		raft_handle_snapshot(r, m);
		break;
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE_RESP:
		raft_handle_vote_resp(r, m);
		break;
	default:
		break;
	}
}

static void step_follower(struct raft *r, const struct raft_message *m)
{
	switch (m->type) {
	case RAFT_MSG_PROP:
		if (r->lead && m->n_entries)
			raft_forward(r, RAFT_MSG_PROP, m->entries, m->n_entries, 0);
		break;
	case RAFT_MSG_APP:
		r->election_elapsed = 0;
		r->lead = m->from;
		raft_handle_append(r, m);
		break;
	case RAFT_MSG_HEARTBEAT:
		r->election_elapsed = 0;
		r->lead = m->from;
		raft_handle_heartbeat(r, m);
		break;
	case RAFT_MSG_SNAP:
		r->election_elapsed = 0;
		r->lead = m->from;
		raft_handle_snapshot(r, m);
		break;
	case RAFT_MSG_TRANSFER_LEADER:
		if (r->lead)
			raft_forward(r, RAFT_MSG_TRANSFER_LEADER, NULL, 0, m->context);
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		raft_logf(r, MOOR_LOG_INFO, "timeout-now from=%llu: campaigning",
		          (unsigned long long)m->from);
		raft_hup(r, true);
		break;
	case RAFT_MSG_READ_INDEX_RESP:
		if (raft_read_state_push(r, m->index, m->context))
			raft_logf(r, MOOR_LOG_WARN, "read state dropped: out of memory");
		break;
	default:
		break;
	}
}

static bool msg_type_valid(enum raft_msg_type t)
{
	return t >= RAFT_MSG_PROP && t <= RAFT_MSG_TRANSFER_LEADER && t != 11;
}

/* What the core relies on in a message from outside, checked before use so
 * that a corrupt or hostile message is refused rather than trusted. */
static bool msg_well_formed(const struct raft *r, const struct raft_message *m)
{
	if (m->to != r->id || !m->from || m->from == r->id || !msg_type_valid(m->type) ||
	    (m->n_entries && !m->entries))
		return false;
	if (m->type == RAFT_MSG_APP) {
		uint64_t prev = m->log_term;

		for (size_t i = 0; i < m->n_entries; i++) {
			const struct raft_entry *e = &m->entries[i];

			if (e->index != m->index + 1 + i || e->term < prev || e->term > m->term ||
			    (e->len && !e->data) || e->type > RAFT_ENTRY_CONF_CHANGE)
				return false;
			prev = e->term;
		}
		if (m->log_term > m->term)
			return false;
	}
	if (m->type == RAFT_MSG_PROP && m->n_entries > RAFT_MAX_PROPOSE_BATCH)
		return false;
	if (m->type == RAFT_MSG_SNAP) {
		const struct raft_snapshot *s = m->snapshot;

		if (!s || !s->meta.index || s->meta.term > m->term || (s->len && !s->data) ||
		    s->meta.conf.n_voters + (uint64_t)s->meta.conf.n_learners > RAFT_MAX_MEMBERS)
			return false;
	}
	return true;
}

int raft_step(struct raft *r, const struct raft_message *m)
{
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	if (!msg_well_formed(r, m))
		return MOOR_EINVAL;
	if (m->term == 0) {
		if (m->type != RAFT_MSG_PROP && m->type != RAFT_MSG_READ_INDEX &&
		    m->type != RAFT_MSG_TRANSFER_LEADER)
			return MOOR_EINVAL;
	} else if (m->term > r->term) {
		bool vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE;

		if (vote && m->context != RAFT_CAMPAIGN_TRANSFER && raft_in_lease(r))
			return 0; /* a live leader exists: ignore the disruptive vote */
		if (m->type == RAFT_MSG_PRE_VOTE) {
			/* a pre-vote never changes our term */
		} else if (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject) {
			/* granted pre-votes carry the future term; counted below */
		} else if (m->type == RAFT_MSG_APP || m->type == RAFT_MSG_HEARTBEAT ||
		           m->type == RAFT_MSG_SNAP) {
			raft_become_follower(r, m->term, m->from);
		} else {
			raft_become_follower(r, m->term, 0);
		}
	} else if (m->term < r->term) {
		if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
		    (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APP)) {
			/* tell the stale leader about our term */
			struct raft_message resp = {0};

			resp.type = RAFT_MSG_APP_RESP;
			resp.to = m->from;
			raft_send(r, &resp);
		} else if (m->type == RAFT_MSG_PRE_VOTE) {
			struct raft_message resp = {0};

			resp.type = RAFT_MSG_PRE_VOTE_RESP;
			resp.to = m->from;
			resp.term = r->term;
			resp.reject = true;
			raft_send(r, &resp);
		}
		return raft_input_end(r, 0);
	}
	if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE)
		raft_handle_vote(r, m);
	else if (r->role == RAFT_LEADER)
		step_leader(r, m);
	else if (r->role == RAFT_FOLLOWER)
		step_follower(r, m);
	else
		step_candidate(r, m);
	return raft_input_end(r, 0);
}

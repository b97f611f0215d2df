/*
 * Membership: one change at a time (see "MEMBERSHIP" in raft.h for why),
 * learners and their promotion, and leadership transfer, which is a change of
 * who leads rather than of who votes but shares the same care: the leader
 * refuses proposals while it hands over, and gives up after one election
 * timeout.
 *
 * A change is proposed as an entry and takes effect on each member when that
 * member has applied it (raft_advance), or at once when a snapshot carrying a
 * configuration is restored.
 */
#include "raft/raft_int.h"

#include "common/assert.h"
#include "common/buf.h"
#include "common/error.h"

#include <string.h>

void raft_conf_change_encode(const struct raft_conf_change *cc,
			     unsigned char out[RAFT_CONF_CHANGE_BYTES])
{
	out[0] = (unsigned char)cc->type;
	moor_put_be64(out + 1, cc->node_id);
}

int raft_conf_change_decode(const void *data, size_t len, struct raft_conf_change *cc)
{
	const unsigned char *p = data;

	if (len != RAFT_CONF_CHANGE_BYTES || p[0] > RAFT_CONF_PROMOTE)
		return MOOR_EINVAL;
	cc->type = (enum raft_conf_change_type)p[0];
	cc->node_id = moor_get_be64(p + 1);
	return cc->node_id ? 0 : MOOR_EINVAL;
}

static bool conf_has(const uint64_t *ids, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

int raft_conf_set(struct raft *r, const struct raft_conf_state *cs)
{
	int rc;

	if (cs->n_voters + cs->n_learners > RAFT_MAX_MEMBERS)
		return MOOR_ETOOLARGE;
	for (unsigned i = 0; i < r->n_prs;) {
		uint64_t id = r->prs[i].id;

		if (!conf_has(cs->voters, cs->n_voters, id) &&
		    !conf_has(cs->learners, cs->n_learners, id))
			raft_pr_remove(r, id);
		else
			i++;
	}
	for (uint32_t i = 0; i < cs->n_voters; i++)
		if ((rc = raft_pr_add(r, cs->voters[i], false)))
			return rc;
	for (uint32_t i = 0; i < cs->n_learners; i++)
		if ((rc = raft_pr_add(r, cs->learners[i], true)))
			return rc;
	return 0;
}

void raft_conf_state(const struct raft *r, struct raft_conf_state *cs)
{
	memset(cs, 0, sizeof *cs);
	for (unsigned i = 0; i < r->n_prs; i++) {
		if (r->prs[i].learner)
			cs->learners[cs->n_learners++] = r->prs[i].id;
		else
			cs->voters[cs->n_voters++] = r->prs[i].id;
	}
}

/* Whether `cc` makes sense against the configuration in force. */
static int conf_check(struct raft *r, const struct raft_conf_change *cc)
{
	struct raft_progress *p = raft_pr_get(r, cc->node_id);

	if (!cc->node_id)
		return MOOR_EINVAL;
	switch (cc->type) {
	case RAFT_CONF_ADD_VOTER:
	case RAFT_CONF_ADD_LEARNER:
		if (p)
			return MOOR_EMEMBEREXISTS;
		return r->n_prs < RAFT_MAX_MEMBERS ? 0 : MOOR_ETOOLARGE;
	case RAFT_CONF_REMOVE:
		if (!p)
			return MOOR_EMEMBERNOTFOUND;
		if (!p->learner && raft_voters(r) == 1)
			return MOOR_EINVAL;
		return 0;
	case RAFT_CONF_PROMOTE:
		if (!p)
			return MOOR_EMEMBERNOTFOUND;
		return p->learner ? 0 : MOOR_EINVAL;
	}
	return MOOR_EINVAL;
}

int raft_propose_conf_change(struct raft *r, const struct raft_conf_change *cc)
{
	unsigned char buf[RAFT_CONF_CHANGE_BYTES];
	struct raft_entry e = { 0 };
	int rc;

	if (r->err)
		return MOOR_ESTOPPED;
	MOOR_ASSERT(!r->in_ready);
	if (r->role != RAFT_LEADER)
		return MOOR_ENOTLEADER;
	if (r->lead_transferee)
		return MOOR_ETRANSFERRING;
	if (r->pending_conf_index > r->log.applied)
		return MOOR_EPENDINGCONF;
	if ((rc = conf_check(r, cc)))
		return rc;
	if (cc->type == RAFT_CONF_PROMOTE &&
	    raft_pr_get(r, cc->node_id)->match < r->log.committed)
		return MOOR_ELEARNERNOTREADY;
	raft_conf_change_encode(cc, buf);
	e.type = RAFT_ENTRY_CONF_CHANGE;
	e.data = buf;
	e.len = sizeof buf;
	if ((rc = raft_append_entries(r, &e, 1)))
		return rc;
	r->pending_conf_index = raft_log_last(r);
	raft_logf(r, MOOR_LOG_INFO, "proposed conf change type=%d node=%llu index=%llu",
		  (int)cc->type, (unsigned long long)cc->node_id,
		  (unsigned long long)r->pending_conf_index);
	raft_bcast_append(r);
	return r->err ? r->err : 0;
}

void raft_apply_conf_change(struct raft *r, const struct raft_entry *e)
{
	struct raft_conf_change cc;
	int rc = 0;

	if (raft_conf_change_decode(e->data, e->len, &cc)) {
		raft_logf(r, MOOR_LOG_ERROR, "undecodable conf change index=%llu",
			  (unsigned long long)e->index);
		return;
	}
	/* Re-checked here: the same entry is applied the same way everywhere,
	 * because every member applies the same sequence of changes. */
	if (conf_check(r, &cc)) {
		raft_logf(r, MOOR_LOG_WARN, "ignored conf change type=%d node=%llu index=%llu",
			  (int)cc.type, (unsigned long long)cc.node_id,
			  (unsigned long long)e->index);
		return;
	}
	switch (cc.type) {
	case RAFT_CONF_ADD_VOTER:
		rc = raft_pr_add(r, cc.node_id, false);
		break;
	case RAFT_CONF_ADD_LEARNER:
		rc = raft_pr_add(r, cc.node_id, true);
		break;
	case RAFT_CONF_PROMOTE:
		raft_pr_get(r, cc.node_id)->learner = false;
		break;
	case RAFT_CONF_REMOVE:
		raft_pr_remove(r, cc.node_id);
		break;
	}
	if (rc) {
		raft_fail(r, rc);
		return;
	}
	raft_logf(r, MOOR_LOG_INFO, "applied conf change type=%d node=%llu index=%llu voters=%u",
		  (int)cc.type, (unsigned long long)cc.node_id, (unsigned long long)e->index,
		  raft_voters(r));
	if (r->role != RAFT_LEADER)
		return;
	if (!raft_promotable(r)) {
		raft_logf(r, MOOR_LOG_INFO, "leader removed, stepping down term=%llu",
			  (unsigned long long)r->term);
		raft_become_follower(r, r->term, 0);
		return;
	}
	if (r->lead_transferee && !raft_is_voter(r, r->lead_transferee))
		raft_transfer_abort(r);
	if (raft_maybe_commit(r))
		raft_bcast_append(r);
}

void raft_transfer_start(struct raft *r, uint64_t target)
{
	struct raft_progress *p = raft_pr_get(r, target);

	if (r->lead_transferee == target)
		return;
	r->lead_transferee = target;
	r->election_elapsed = 0; /* the transfer times out with the election clock */
	raft_logf(r, MOOR_LOG_INFO, "transferring leadership to=%llu", (unsigned long long)target);
	if (p->match == raft_log_last(r)) {
		struct raft_message m = { 0 };

		m.type = RAFT_MSG_TIMEOUT_NOW;
		m.to = target;
		raft_send(r, &m);
	} else {
		raft_maybe_send_append(r, target, true);
	}
}

void raft_transfer_abort(struct raft *r)
{
	raft_logf(r, MOOR_LOG_INFO, "leadership transfer to=%llu abandoned",
		  (unsigned long long)r->lead_transferee);
	r->lead_transferee = 0;
}

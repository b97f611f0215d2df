/*
 * Membership: one change at a time (see "MEMBERSHIP" in raft.h for why),
 * learners and their promotion, and leadership transfer, which is a change of
 * who leads rather than of who votes but shares the same care: the leader
 * refuses proposals while it hands over, and gives up after one election
 * timeout.
 *
 * As in the Raft dissertation (§4.1), a member uses the latest configuration
 * in its log, committed or not: a change takes effect where it is appended
 * and is undone if that entry is truncated. The history of changes above the
 * snapshot is kept (conf_hist) so that a truncation can fall back to the
 * previous configuration and so that the configuration as of the applied
 * index (what a snapshot must record) is known; entries at or below the
 * applied index fold into conf_base.
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
	*cs = r->n_hist ? r->hist[r->n_hist - 1].cs : r->conf_base;
}

void raft_conf_state_applied(const struct raft *r, struct raft_conf_state *cs)
{
	*cs = r->conf_base;
	for (size_t i = 0; i < r->n_hist && r->hist[i].index <= r->log.applied; i++)
		*cs = r->hist[i].cs;
}

/* `cc` applied to `cs`; false when it changes nothing (invalid there). */
static bool conf_apply(struct raft_conf_state *cs, const struct raft_conf_change *cc)
{
	bool voter = conf_has(cs->voters, cs->n_voters, cc->node_id);
	bool learner = conf_has(cs->learners, cs->n_learners, cc->node_id);
	uint64_t *v = cs->voters, *l = cs->learners;

	switch (cc->type) {
	case RAFT_CONF_ADD_VOTER:
	case RAFT_CONF_ADD_LEARNER:
		if (voter || learner || cs->n_voters + cs->n_learners >= RAFT_MAX_MEMBERS)
			return false;
		if (cc->type == RAFT_CONF_ADD_VOTER)
			v[cs->n_voters++] = cc->node_id;
		else
			l[cs->n_learners++] = cc->node_id;
		return true;
	case RAFT_CONF_REMOVE:
		if (voter && cs->n_voters > 1) {
			for (uint32_t i = 0; i < cs->n_voters; i++)
				if (v[i] == cc->node_id)
					v[i] = v[--cs->n_voters];
			return true;
		}
		if (learner) {
			for (uint32_t i = 0; i < cs->n_learners; i++)
				if (l[i] == cc->node_id)
					l[i] = l[--cs->n_learners];
			return true;
		}
		return false;
	case RAFT_CONF_PROMOTE:
		if (!learner)
			return false;
		for (uint32_t i = 0; i < cs->n_learners; i++)
			if (l[i] == cc->node_id)
				l[i] = l[--cs->n_learners];
		v[cs->n_voters++] = cc->node_id;
		return true;
	}
	return false;
}

/* Room for `n` more changes, so that an append cannot fail half-way. */
int raft_conf_reserve(struct raft *r, size_t n)
{
	if (r->n_hist + n <= r->cap_hist)
		return 0;
	size_t cap = r->cap_hist ? r->cap_hist : 4;
	while (cap < r->n_hist + n)
		cap *= 2;
	struct raft_conf_hist *h = moor_realloc(r->alloc, r->hist, cap * sizeof *h);

	if (!h)
		return MOOR_ENOMEM;
	r->hist = h;
	r->cap_hist = cap;
	return 0;
}

/* Entries just appended: each configuration change in them takes effect. */
int raft_conf_on_append(struct raft *r, const struct raft_entry *ents, size_t n)
{
	bool changed = false;

	for (size_t i = 0; i < n; i++) {
		struct raft_conf_change cc;
		struct raft_conf_state cs;

		if (ents[i].type != RAFT_ENTRY_CONF_CHANGE ||
		    raft_conf_change_decode(ents[i].data, ents[i].len, &cc))
			continue;
		raft_conf_state(r, &cs);
		if (!conf_apply(&cs, &cc))
			continue; /* the same no-op on every member */
		if (raft_conf_reserve(r, 1))
			return MOOR_ENOMEM;
		r->hist[r->n_hist].index = ents[i].index;
		r->hist[r->n_hist].cs = cs;
		r->n_hist++;
		changed = true;
		raft_logf(r, MOOR_LOG_INFO,
		          "configuration change type=%d node=%llu index=%llu voters=%u",
		          (int)cc.type, (unsigned long long)cc.node_id,
		          (unsigned long long)ents[i].index, cs.n_voters);
	}
	if (!changed)
		return 0;
	raft_conf_state(r, &r->conf_scratch);
	return raft_conf_set(r, &r->conf_scratch);
}

/* Entries from `from` on were truncated: their changes are undone. */
int raft_conf_on_truncate(struct raft *r, uint64_t from)
{
	size_t n = r->n_hist;

	while (r->n_hist && r->hist[r->n_hist - 1].index >= from)
		r->n_hist--;
	if (n == r->n_hist)
		return 0;
	raft_conf_state(r, &r->conf_scratch);
	return raft_conf_set(r, &r->conf_scratch);
}

/* A snapshot replaces the log: its configuration is the base. */
int raft_conf_reset(struct raft *r, const struct raft_conf_state *cs)
{
	r->conf_base = *cs;
	r->n_hist = 0;
	return raft_conf_set(r, cs);
}

/* Changes at or below the applied index can no longer be undone. */
void raft_conf_fold_applied(struct raft *r)
{
	size_t k = 0;

	while (k < r->n_hist && r->hist[k].index <= r->log.applied)
		r->conf_base = r->hist[k++].cs;
	if (k) {
		memmove(r->hist, r->hist + k, (r->n_hist - k) * sizeof *r->hist);
		r->n_hist -= k;
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
	struct raft_entry e = {0};
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
	/* As etcd: a learner is ready once it holds 90% of the committed log;
	 * asking for all of it refuses whenever appends to it are in flight. */
	if (cc->type == RAFT_CONF_PROMOTE &&
	    raft_pr_get(r, cc->node_id)->match * 10 < r->log.committed * 9)
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

/*
 * A configuration change was applied (so it is committed). It took effect
 * when appended; what is left is the leader's own removal.
 */
void raft_conf_applied(struct raft *r, const struct raft_entry *e)
{
	(void)e;
	if (r->role != RAFT_LEADER || raft_promotable(r) || r->lead_transferee)
		return;
	/* Removed, and the removal committed. The rest may not know it yet and
	 * may need our vote, which our longer log would refuse them: hand over
	 * to the most up-to-date remaining voter first (it gets our whole log,
	 * then campaigns); meanwhile lead without counting ourselves and take
	 * no proposals; step down at the latest one election timeout later
	 * (raft_tick_heartbeat). */
	uint64_t best = 0, match = 0;

	for (unsigned i = 0; i < r->n_prs; i++)
		if (!r->prs[i].learner && (!best || r->prs[i].match > match)) {
			best = r->prs[i].id;
			match = r->prs[i].match;
		}
	raft_logf(r, MOOR_LOG_INFO, "leader removed term=%llu: handing over to=%llu",
	          (unsigned long long)r->term, (unsigned long long)best);
	if (best)
		raft_transfer_start(r, best);
	else
		raft_become_follower(r, r->term, 0);
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
		raft_send_timeout_now(r, target);
	} else {
		raft_maybe_send_append(r, target, true);
	}
}

/* Tells the caught-up transferee to campaign now. A removed leader's work is
 * then done: the transferee holds its whole log and would win even if this
 * message were lost, so it steps down at once. */
void raft_send_timeout_now(struct raft *r, uint64_t to)
{
	struct raft_message m = {0};

	m.type = RAFT_MSG_TIMEOUT_NOW;
	m.to = to;
	raft_send(r, &m);
	raft_logf(r, MOOR_LOG_INFO, "sent timeout-now to=%llu", (unsigned long long)to);
	if (!raft_promotable(r) && r->pending_conf_index <= r->log.committed)
		raft_become_follower(r, r->term, 0);
}

void raft_transfer_abort(struct raft *r)
{
	raft_logf(r, MOOR_LOG_INFO, "leadership transfer to=%llu abandoned",
	          (unsigned long long)r->lead_transferee);
	r->lead_transferee = 0;
}

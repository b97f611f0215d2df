/*
 * Log replication (§5.3): the leader's appends, heartbeats and snapshots,
 * the follower's answers, the fast backtracking on rejection (the follower
 * hints at the last index whose term is <= the leader's term at the probe,
 * so one round trip skips a whole term of divergent entries), and the commit
 * rule of Figure 8: the leader commits by counting replicas only entries of
 * its own term (§5.4.2); earlier ones commit with them.
 */
#include "raft/raft_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <string.h>

int raft_append_entries(struct raft *r, struct raft_entry *ents, size_t n)
{
	uint64_t li = raft_log_last(r);
	size_t bytes = 0;
	int rc;

	if (r->err)
		return r->err;
	for (size_t i = 0; i < n; i++) {
		ents[i].term = r->term;
		ents[i].index = li + 1 + i;
		bytes += ents[i].len;
	}
	if (r->uncommitted_bytes && bytes &&
	    r->uncommitted_bytes + bytes > r->cfg.max_uncommitted_bytes)
		return MOOR_EDROPPED;
	if ((rc = raft_log_append(r, ents, n)))
		return rc;
	r->uncommitted_bytes += bytes;
	return 0;
}

static int send_snapshot(struct raft *r, struct raft_progress *p, struct raft_message *m)
{
	struct raft_snapshot snap, *c;
	int rc = r->log.st.snapshot(r->log.st.ctx, &snap);

	if (rc) {
		if (rc != MOOR_EUNAVAILABLE)
			raft_fail(r, rc);
		return rc;
	}
	MOOR_ASSERT(snap.meta.index > 0);
	c = raft_arena_alloc(&r->arena[r->arena_cur], sizeof *c);
	if (!c)
		return MOOR_ENOMEM;
	*c = snap;
	if (snap.len) {
		c->data = raft_arena_alloc(&r->arena[r->arena_cur], snap.len);
		if (!c->data)
			return MOOR_ENOMEM;
		memcpy(c->data, snap.data, snap.len);
	}
	m->type = RAFT_MSG_SNAP;
	m->snapshot = c;
	raft_logf(r, MOOR_LOG_INFO, "sending snapshot to=%llu index=%llu",
	          (unsigned long long)p->id, (unsigned long long)snap.meta.index);
	raft_pr_become_snapshot(p, snap.meta.index);
	return 0;
}

bool raft_maybe_send_append(struct raft *r, uint64_t to, bool send_if_empty)
{
	struct raft_progress *p = raft_pr_get(r, to);
	struct raft_message m = {0};
	struct raft_entry *ents = NULL;
	size_t n = 0;
	uint64_t t = 0, last = raft_log_last(r);
	int rt, re = 0;

	if (!p || p->id == r->id || raft_pr_paused(p))
		return false;
	if (p->next > last + 1)
		p->next = last + 1;
	m.to = to;
	rt = raft_log_term(r, p->next - 1, &t);
	if (!rt && p->next <= last)
		re = raft_log_slice(r, p->next, last + 1, r->cfg.max_msg_bytes, &ents, &n);
	if (rt == MOOR_ECOMPACTEDLOG || re == MOOR_ECOMPACTEDLOG) {
		if (send_snapshot(r, p, &m))
			return false;
	} else if (rt || re) {
		return false;
	} else {
		if (!n && !send_if_empty)
			return false;
		m.type = RAFT_MSG_APP;
		m.index = p->next - 1;
		m.log_term = t;
		m.entries = ents;
		m.n_entries = n;
		m.commit = r->log.committed;
		if (n) {
			uint64_t li = ents[n - 1].index;

			if (p->state == RAFT_PR_REPLICATE) {
				p->next = li + 1;
				raft_inflights_add(&p->inf, li);
			} else {
				p->probe_sent = true;
			}
		} else if (p->state == RAFT_PR_PROBE) {
			p->probe_sent = true;
		}
	}
	raft_send(r, &m);
	return true;
}

void raft_bcast_append(struct raft *r)
{
	for (unsigned i = 0; i < r->n_prs; i++)
		if (r->prs[i].id != r->id)
			raft_maybe_send_append(r, r->prs[i].id, true);
}

void raft_bcast_heartbeat(struct raft *r, uint64_t ctx)
{
	for (unsigned i = 0; i < r->n_prs; i++) {
		struct raft_progress *p = &r->prs[i];
		struct raft_message m = {0};

		if (p->id == r->id)
			continue;
		m.type = RAFT_MSG_HEARTBEAT;
		m.to = p->id;
		m.commit = p->match < r->log.committed ? p->match : r->log.committed;
		m.context = ctx;
		raft_send(r, &m);
	}
	if (ctx)
		r->read_round_sent = ctx;
}

bool raft_maybe_commit(struct raft *r)
{
	if (!raft_log_maybe_commit(r, raft_quorum_match(r), r->term))
		return false;
	raft_readindex_on_commit_in_term(r);
	return true;
}

static void send_app_resp(struct raft *r, uint64_t to, uint64_t index)
{
	struct raft_message m = {0};

	m.type = RAFT_MSG_APP_RESP;
	m.to = to;
	m.index = index;
	raft_send(r, &m);
}

void raft_handle_append(struct raft *r, const struct raft_message *m)
{
	uint64_t last_new = 0;
	int rc;

	if (m->index < r->log.committed) {
		send_app_resp(r, m->from, r->log.committed);
		return;
	}
	rc = raft_log_maybe_append(r, m->index, m->log_term, m->commit, m->entries, m->n_entries,
	                           &last_new);
	if (rc == 0) {
		send_app_resp(r, m->from, last_new);
	} else if (rc == 1) {
		struct raft_message resp = {0};
		uint64_t last = raft_log_last(r);
		uint64_t hint = m->index < last ? m->index : last;

		hint = raft_log_find_conflict_by_term(r, hint, m->log_term);
		resp.type = RAFT_MSG_APP_RESP;
		resp.to = m->from;
		resp.index = m->index;
		resp.reject = true;
		resp.reject_hint = hint;
		resp.log_term = raft_log_term0(r, hint);
		raft_send(r, &resp);
	}
	/* else out of memory: drop it, the leader will retry */
}

void raft_handle_heartbeat(struct raft *r, const struct raft_message *m)
{
	struct raft_message resp = {0};
	uint64_t last = raft_log_last(r);

	raft_log_commit_to(r, m->commit < last ? m->commit : last);
	resp.type = RAFT_MSG_HEARTBEAT_RESP;
	resp.to = m->from;
	resp.context = m->context;
	raft_send(r, &resp);
}

void raft_handle_snapshot(struct raft *r, const struct raft_message *m)
{
	const struct raft_snapshot *s = m->snapshot;
	int rc;

	if (!s || s->meta.index <= r->log.committed) {
		send_app_resp(r, m->from, r->log.committed);
		return;
	}
	if (raft_log_match_term(r, s->meta.index, s->meta.term)) {
		/* We hold the snapshot's last entry: just commit up to it. */
		raft_log_commit_to(r, s->meta.index);
		send_app_resp(r, m->from, r->log.committed);
		return;
	}
	raft_log_restore(r, s, &rc);
	if (rc)
		return;
	if ((rc = raft_conf_reset(r, &s->meta.conf))) {
		raft_fail(r, rc);
		return;
	}
	raft_logf(r, MOOR_LOG_INFO, "restored snapshot index=%llu term=%llu",
	          (unsigned long long)s->meta.index, (unsigned long long)s->meta.term);
	send_app_resp(r, m->from, raft_log_last(r));
}

void raft_handle_append_resp(struct raft *r, const struct raft_message *m)
{
	struct raft_progress *p = raft_pr_get(r, m->from);
	bool old_paused;

	if (!p)
		return;
	p->recent_active = true;
	if (m->reject) {
		uint64_t next_probe = m->reject_hint;

		if (m->log_term > 0)
			next_probe = raft_log_find_conflict_by_term(r, m->reject_hint, m->log_term);
		if (raft_pr_maybe_decr_to(p, m->index, next_probe)) {
			if (p->state == RAFT_PR_REPLICATE)
				raft_pr_become_probe(p);
			raft_maybe_send_append(r, m->from, true);
		}
		return;
	}
	if (m->index > raft_log_last(r)) {
		raft_logf(r, MOOR_LOG_WARN, "ignored ack beyond our log from=%llu index=%llu",
		          (unsigned long long)m->from, (unsigned long long)m->index);
		return;
	}
	old_paused = raft_pr_paused(p);
	if (!raft_pr_maybe_update(p, m->index))
		return;
	switch (p->state) {
	case RAFT_PR_PROBE:
		raft_pr_become_replicate(p);
		break;
	case RAFT_PR_SNAPSHOT:
		if (p->match + 1 >= raft_log_first(r)) {
			raft_pr_become_probe(p);
			raft_pr_become_replicate(p);
		}
		break;
	case RAFT_PR_REPLICATE:
		raft_inflights_free_le(&p->inf, m->index);
		break;
	}
	if (raft_maybe_commit(r))
		raft_bcast_append(r);
	else if (old_paused)
		raft_maybe_send_append(r, m->from, true);
	while (r->role == RAFT_LEADER && raft_maybe_send_append(r, m->from, false))
		;
	if (r->role == RAFT_LEADER && m->from == r->lead_transferee && p->match == raft_log_last(r))
		raft_send_timeout_now(r, m->from);
}

void raft_handle_heartbeat_resp(struct raft *r, const struct raft_message *m)
{
	struct raft_progress *p = raft_pr_get(r, m->from);

	if (!p)
		return;
	p->recent_active = true;
	p->probe_sent = false;
	if (p->state == RAFT_PR_REPLICATE && raft_inflights_full(&p->inf))
		raft_inflights_free_le(&p->inf, p->inf.buf[p->inf.start]);
	if (p->match < raft_log_last(r))
		raft_maybe_send_append(r, m->from, true);
	if (m->context)
		raft_readindex_ack(r, m->from, m->context);
}

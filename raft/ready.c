/*
 * The ready batch and its acknowledgement. raft_ready() points the caller at
 * the core's own memory (the unstable tail, the outboxes, the arena) instead
 * of copying, which is sound because no input may reach the core until
 * raft_advance(). The arena is double-buffered: raft_advance() switches new
 * allocations to the other arena before it acknowledges configuration
 * changes (a removed leader's hand-over queues messages), and only then
 * frees the arena that the batch being acknowledged pointed into.
 */
#include "raft/raft_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <string.h>

static bool hs_equal(const struct raft_hard_state *a, const struct raft_hard_state *b)
{
	return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

static void hard_state(const struct raft *r, struct raft_hard_state *hs)
{
	hs->term = r->term;
	hs->vote = r->vote;
	hs->commit = r->log.committed;
}

static uint64_t apply_from(struct raft *r)
{
	uint64_t lo = r->log.applied + 1;
	uint64_t first = raft_log_first(r);

	return lo > first ? lo : first;
}

bool raft_has_ready(const struct raft *r)
{
	struct raft_hard_state hs;
	struct raft *m = (struct raft *)r; /* log reads may touch the storage */

	if (r->err)
		return false;
	hard_state(r, &hs);
	return !hs_equal(&hs, &r->prev_hs) || r->log.n_ents || r->log.has_snap || r->n_msgs[0] ||
	       r->n_msgs[1] || r->n_read_states || apply_from(m) <= r->log.committed;
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
	uint64_t lo;
	int rc;

	MOOR_ASSERT(!r->in_ready);
	memset(rd, 0, sizeof *rd);
	if (r->err)
		return MOOR_ESTOPPED;
	rd->role = r->role;
	rd->lead = r->lead;
	hard_state(r, &rd->hard_state);
	rd->hard_state_changed = !hs_equal(&rd->hard_state, &r->prev_hs);
	if (r->log.has_snap)
		rd->snapshot = &r->log.snap;
	rd->entries = r->log.ents;
	rd->n_entries = r->log.n_ents;
	lo = apply_from(r);
	if (lo <= r->log.committed) {
		struct raft_entry *ce;

		rc = raft_log_slice(r, lo, r->log.committed + 1, r->cfg.max_committed_bytes, &ce,
		                    &rd->n_committed);
		if (rc) {
			memset(rd, 0, sizeof *rd);
			return r->err ? r->err : rc;
		}
		rd->committed = ce;
	}
	rd->msgs_now = r->msgs[0];
	rd->n_msgs_now = r->n_msgs[0];
	rd->msgs_after_persist = r->msgs[1];
	rd->n_msgs_after_persist = r->n_msgs[1];
	rd->read_states = r->read_states;
	rd->n_read_states = r->n_read_states;
	rd->must_sync = rd->n_entries || rd->snapshot || rd->hard_state.term != r->prev_hs.term ||
	                rd->hard_state.vote != r->prev_hs.vote;
	r->in_ready = true;
	return 0;
}

int raft_advance(struct raft *r, const struct raft_ready *rd)
{
	int old = r->arena_cur;
	struct raft_progress *self;

	MOOR_ASSERT(r->in_ready);
	r->in_ready = false;
	r->arena_cur = !old;
	r->n_msgs[0] = r->n_msgs[1] = 0;
	r->n_read_states = 0;
	if (rd->hard_state_changed)
		r->prev_hs = rd->hard_state;
	if (rd->snapshot) {
		uint64_t si = rd->snapshot->meta.index;

		raft_log_stable_snap(r);
		if (r->log.applied < si)
			r->log.applied = si;
	}
	if (rd->n_entries)
		raft_log_stable_to(r, rd->entries[rd->n_entries - 1].index);
	for (size_t i = 0; i < rd->n_committed; i++) {
		const struct raft_entry *e = &rd->committed[i];

		MOOR_ASSERT(e->index == r->log.applied + 1);
		r->log.applied = e->index;
		if (r->role == RAFT_LEADER && e->term == r->term) {
			r->uncommitted_bytes =
			    r->uncommitted_bytes > e->len ? r->uncommitted_bytes - e->len : 0;
		}
		if (e->type == RAFT_ENTRY_CONF_CHANGE)
			raft_conf_applied(r, e);
	}
	raft_conf_fold_applied(r);
	/* The leader's own copy counts towards a quorum only now that it is
	 * persisted: this is what makes sending before persisting safe. */
	self = raft_pr_get(r, r->id);
	if (r->role == RAFT_LEADER && self && !r->log.has_snap) {
		uint64_t stable = r->log.offset - 1;

		if (raft_pr_maybe_update(self, stable) && raft_maybe_commit(r))
			raft_bcast_append(r);
	}
	raft_arena_reset(&r->arena[old]);
	return r->err ? r->err : 0;
}

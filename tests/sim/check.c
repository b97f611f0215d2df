/*
 * The safety checks of the simulator (the list is in sim.c's opening
 * comment) and the history tables they read: the leader of each term, the
 * (index, term) table for log matching, and what was applied at each index.
 */
#include "tests/sim/sim_int.h"

#include <stdlib.h>
#include <string.h>

static void grow_u64(uint64_t **a, size_t *cap, size_t need)
{
	if (need < *cap)
		return;
	size_t ncap = *cap ? *cap : 1024;
	while (ncap <= need)
		ncap *= 2;
	*a = sim_xrealloc(*a, ncap * sizeof **a);
	memset(*a + *cap, 0, (ncap - *cap) * sizeof **a);
	*cap = ncap;
}

static void check_completeness(struct sim *s, struct sim_node *n, uint64_t term);
static void check_all(struct sim *s);
static void check_leader(struct sim *s, uint64_t term, uint64_t id);

/* Election safety; and leader completeness at the moment a leader is first
 * seen: every entry applied anywhere before then was committed in a term
 * below this one (a quorum that knew a higher term could not have elected
 * it), so its log must hold them all. Checking later would be wrong: a
 * stale leader of an older term legitimately lacks what newer ones commit. */
void sim_check_leader(struct sim *s, uint64_t term, uint64_t id)
{
	sim_disk_pause(s, true);
	check_leader(s, term, id);
	sim_disk_pause(s, false);
}

static void check_leader(struct sim *s, uint64_t term, uint64_t id)
{
	size_t old = s->cap_terms;

	if (term >= s->cap_terms) {
		grow_u64(&s->term_leader, &old, term);
		s->cap_terms = old;
	}
	if (!s->term_leader[term]) {
		s->term_leader[term] = id;
		sim_tracef(s, "n%llu leader term=%llu", (unsigned long long)id,
		           (unsigned long long)term);
		check_completeness(s, &s->nodes[id], term);
	} else if (s->term_leader[term] != id) {
		sim_fail(s, "two leaders in term %llu: n%llu and n%llu", (unsigned long long)term,
		         (unsigned long long)s->term_leader[term], (unsigned long long)id);
	}
}

static uint64_t entry_hash(const struct raft_entry *e)
{
	return sim_hash_bytes(e->data, e->len, (uint64_t)e->type * 31 + 7);
}

static void lm_insert(struct sim *s, struct sim_lm v);

static void lm_grow(struct sim *s)
{
	struct sim_lm *old = s->lm;
	size_t oldcap = s->cap_lm;

	s->cap_lm = oldcap ? oldcap * 2 : 4096;
	s->lm = calloc(s->cap_lm, sizeof *s->lm);
	if (!s->lm)
		abort();
	s->n_lm = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].index)
			lm_insert(s, old[i]);
	free(old);
}

static struct sim_lm *lm_find(struct sim *s, uint64_t index, uint64_t term)
{
	size_t m = s->cap_lm - 1, i = (size_t)sim_mix(index, term) & m;

	while (s->lm[i].index && !(s->lm[i].index == index && s->lm[i].term == term))
		i = (i + 1) & m;
	return &s->lm[i];
}

static void lm_insert(struct sim *s, struct sim_lm v)
{
	struct sim_lm *slot;

	if (2 * (s->n_lm + 1) > s->cap_lm)
		lm_grow(s);
	slot = lm_find(s, v.index, v.term);
	if (!slot->index)
		s->n_lm++;
	*slot = v;
}

/* Log matching, fed with every entry a member persists. */
void sim_check_persisted(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	struct raft_storage st = raft_memstorage_storage(n->ms);
	struct sim_lm v = {e->index, e->term, entry_hash(e), 0};
	struct sim_lm *have;

	if (st.term(st.ctx, e->index - 1, &v.prev))
		v.prev = UINT64_MAX;
	if (!s->cap_lm)
		lm_grow(s);
	have = lm_find(s, e->index, e->term);
	if (!have->index) {
		lm_insert(s, v);
		return;
	}
	if (have->hash != v.hash ||
	    (v.prev != UINT64_MAX && have->prev != UINT64_MAX && have->prev != v.prev))
		sim_fail(s,
		         "log matching: n%llu persisted index=%llu term=%llu that differs from "
		         "another copy (data or previous term %llu vs %llu)",
		         (unsigned long long)n->id, (unsigned long long)e->index,
		         (unsigned long long)e->term, (unsigned long long)v.prev,
		         (unsigned long long)have->prev);
	else if (have->prev == UINT64_MAX)
		have->prev = v.prev;
}

void sim_check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	size_t cap = s->cap_applied;
	uint64_t h = entry_hash(e);

	if (e->index != n->applied + 1) {
		sim_fail(s, "n%llu applied index %llu after %llu", (unsigned long long)n->id,
		         (unsigned long long)e->index, (unsigned long long)n->applied);
		return;
	}
	n->applied = e->index;
	n->sm_hash = sim_mix(n->sm_hash, h);
	if (e->index >= cap) {
		size_t c2 = cap;

		grow_u64(&s->applied_term, &cap, e->index);
		grow_u64(&s->applied_hash, &c2, e->index);
		s->cap_applied = cap;
	}
	if (!s->applied_term[e->index]) {
		s->applied_term[e->index] = e->term;
		s->applied_hash[e->index] = n->sm_hash;
		if (e->index > s->max_applied)
			s->max_applied = e->index;
	} else if (s->applied_term[e->index] != e->term ||
	           s->applied_hash[e->index] != n->sm_hash) {
		sim_fail(s,
		         "n%llu applied a different entry or state at index %llu (term %llu, "
		         "first applied with term %llu)",
		         (unsigned long long)n->id, (unsigned long long)e->index,
		         (unsigned long long)e->term,
		         (unsigned long long)s->applied_term[e->index]);
	}
}

void sim_ack_entry(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	uint64_t id = 0;

	if (e->type != RAFT_ENTRY_NORMAL || e->len != SIM_DATA_BYTES)
		return;
	for (int i = 0; i < 8; i++)
		id = id << 8 | e->data[i];
	if (!id || id > s->n_props)
		return;
	struct sim_prop *p = &s->props[id - 1];
	if (p->acked)
		return;
	p->acked = true;
	s->acked++;
	if (e->index > s->max_acked_index)
		s->max_acked_index = e->index;
	sim_tracef(s, "n%llu ack p%llu index=%llu", (unsigned long long)n->id,
	           (unsigned long long)id, (unsigned long long)e->index);
}

void sim_serve_reads(struct sim *s, struct sim_node *n)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n->n_waiting; i++) {
		struct raft_read_state *rs = &n->waiting[i];
		struct sim_read *rd;

		if (rs->index > n->applied) {
			n->waiting[k++] = *rs;
			continue;
		}
		if (!rs->context || rs->context > s->n_reads)
			continue;
		rd = &s->reads[rs->context - 1];
		if (rd->done || rd->node != n->id)
			continue;
		rd->done = true;
		rd->index = rs->index;
		s->reads_ok++;
		sim_tracef(s, "n%llu read r%llu served at applied=%llu (index %llu, needs >= %llu)",
		           (unsigned long long)n->id, (unsigned long long)rd->id,
		           (unsigned long long)n->applied, (unsigned long long)rs->index,
		           (unsigned long long)rd->min_index);
		if (n->applied < rd->min_index)
			sim_fail(s,
			         "stale read r%llu at n%llu: state at %llu, but write at %llu was "
			         "acknowledged before the read began",
			         (unsigned long long)rd->id, (unsigned long long)n->id,
			         (unsigned long long)n->applied, (unsigned long long)rd->min_index);
	}
	n->n_waiting = k;
}

/* ---- members ---- */

static void check_completeness(struct sim *s, struct sim_node *n, uint64_t term)
{
	struct raft_status st;

	raft_status(n->r, &st);
	for (uint64_t i = st.first_index; i <= s->max_applied && !s->failed; i++) {
		uint64_t t;

		if (!s->applied_term[i])
			continue;
		if (raft_term_at(n->r, i, &t) || t != s->applied_term[i])
			sim_fail(s,
			         "leader completeness: n%llu leads term %llu without the entry "
			         "applied at index %llu (term %llu)",
			         (unsigned long long)n->id, (unsigned long long)term,
			         (unsigned long long)i, (unsigned long long)s->applied_term[i]);
	}
}

void sim_check_all(struct sim *s)
{
	sim_disk_pause(s, true);
	check_all(s);
	sim_disk_pause(s, false);
}

static void check_all(struct sim *s)
{
	for (unsigned i = 1; i <= SIM_MAX_NODES && !s->failed; i++) {
		struct sim_node *n = &s->nodes[i];
		struct raft_status st;

		if (!n->up)
			continue;
		raft_status(n->r, &st);
		if (st.applied != n->applied)
			sim_fail(s, "n%u: core applied %llu, state machine %llu", i,
			         (unsigned long long)st.applied, (unsigned long long)n->applied);
		if (st.role != RAFT_LEADER)
			continue;
		check_leader(s, st.term, i);
	}
}

/*
 * What the leader knows about each member's log (match, next), the state of
 * replication to it (probe: one append at a time until we know where its log
 * ends; replicate: pipelined appends within an in-flight window; snapshot:
 * nothing until the snapshot is reported), and the quorum arithmetic over
 * voters: the matched index of a majority, vote tallies, liveness.
 *
 * Members live in a fixed array of RAFT_MAX_MEMBERS slots, kept sorted by id
 * so that every iteration order is deterministic.
 */
#include "raft/raft_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <string.h>

struct raft_progress *raft_pr_get(struct raft *r, uint64_t id)
{
	for (unsigned i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return &r->prs[i];
	return NULL;
}

bool raft_is_voter(const struct raft *r, uint64_t id)
{
	for (unsigned i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return !r->prs[i].learner;
	return false;
}

static void pr_init(struct raft *r, struct raft_progress *p)
{
	p->state = RAFT_PR_PROBE;
	p->match = 0;
	p->next = raft_log_last(r) + 1;
	p->pending_snapshot = 0;
	p->probe_sent = false;
	p->recent_active = true;
	p->vote = 0;
	p->read_ack = 0;
	p->inf.start = p->inf.count = 0;
	if (p->id == r->id)
		p->match = p->next - 1 >= r->log.offset ? r->log.offset - 1 : p->next - 1;
}

int raft_pr_add(struct raft *r, uint64_t id, bool learner)
{
	struct raft_progress *p = raft_pr_get(r, id);
	unsigned i;

	if (p) {
		p->learner = learner;
		return 0;
	}
	if (r->n_prs == RAFT_MAX_MEMBERS)
		return MOOR_ETOOLARGE;
	uint64_t *buf = moor_malloc(r->alloc, r->cfg.max_inflight_msgs * sizeof *buf);
	if (!buf)
		return MOOR_ENOMEM;
	for (i = r->n_prs; i > 0 && r->prs[i - 1].id > id; i--)
		r->prs[i] = r->prs[i - 1];
	p = &r->prs[i];
	memset(p, 0, sizeof *p);
	p->id = id;
	p->learner = learner;
	p->inf.buf = buf;
	p->inf.cap = r->cfg.max_inflight_msgs;
	r->n_prs++;
	pr_init(r, p);
	return 0;
}

void raft_pr_remove(struct raft *r, uint64_t id)
{
	for (unsigned i = 0; i < r->n_prs; i++) {
		if (r->prs[i].id != id)
			continue;
		moor_free(r->alloc, r->prs[i].inf.buf);
		for (; i + 1 < r->n_prs; i++)
			r->prs[i] = r->prs[i + 1];
		r->n_prs--;
		return;
	}
}

void raft_pr_reset_all(struct raft *r)
{
	for (unsigned i = 0; i < r->n_prs; i++)
		pr_init(r, &r->prs[i]);
}

bool raft_pr_paused(const struct raft_progress *p)
{
	switch (p->state) {
	case RAFT_PR_PROBE:
		return p->probe_sent;
	case RAFT_PR_REPLICATE:
		return raft_inflights_full(&p->inf);
	case RAFT_PR_SNAPSHOT:
		return true;
	}
	return true;
}

static void pr_reset_state(struct raft_progress *p, enum raft_pr_state s)
{
	p->probe_sent = false;
	p->pending_snapshot = 0;
	p->state = s;
	p->inf.start = p->inf.count = 0;
}

void raft_pr_become_probe(struct raft_progress *p)
{
	if (p->state == RAFT_PR_SNAPSHOT) {
		uint64_t ps = p->pending_snapshot;

		pr_reset_state(p, RAFT_PR_PROBE);
		p->next = (p->match + 1 > ps + 1) ? p->match + 1 : ps + 1;
	} else {
		pr_reset_state(p, RAFT_PR_PROBE);
		p->next = p->match + 1;
	}
}

void raft_pr_become_replicate(struct raft_progress *p)
{
	pr_reset_state(p, RAFT_PR_REPLICATE);
	p->next = p->match + 1;
}

void raft_pr_become_snapshot(struct raft_progress *p, uint64_t index)
{
	pr_reset_state(p, RAFT_PR_SNAPSHOT);
	p->pending_snapshot = index;
}

bool raft_pr_maybe_update(struct raft_progress *p, uint64_t n)
{
	bool updated = false;

	if (p->match < n) {
		p->match = n;
		updated = true;
		p->probe_sent = false;
	}
	if (p->next < n + 1)
		p->next = n + 1;
	return updated;
}

/* A rejection of the append at `rejected`; `hint` is where the follower's
 * log may match. False when the rejection is stale. */
bool raft_pr_maybe_decr_to(struct raft_progress *p, uint64_t rejected, uint64_t hint)
{
	if (p->state == RAFT_PR_REPLICATE) {
		if (rejected <= p->match)
			return false;
		p->next = p->match + 1;
		return true;
	}
	if (p->next - 1 != rejected)
		return false;
	uint64_t n = rejected < hint + 1 ? rejected : hint + 1;
	p->next = n > p->match + 1 ? n : p->match + 1;
	if (p->next < 1)
		p->next = 1;
	p->probe_sent = false;
	return true;
}

void raft_inflights_add(struct raft_inflights *f, uint64_t index)
{
	MOOR_ASSERT(f->count < f->cap);
	f->buf[(f->start + f->count) % f->cap] = index;
	f->count++;
}

void raft_inflights_free_le(struct raft_inflights *f, uint64_t index)
{
	while (f->count && f->buf[f->start] <= index) {
		f->start = (f->start + 1) % f->cap;
		f->count--;
	}
}

bool raft_inflights_full(const struct raft_inflights *f)
{
	return f->count == f->cap;
}

unsigned raft_voters(const struct raft *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->n_prs; i++)
		n += !r->prs[i].learner;
	return n;
}

unsigned raft_quorum(const struct raft *r)
{
	return raft_voters(r) / 2 + 1;
}

uint64_t raft_quorum_match(const struct raft *r)
{
	uint64_t m[RAFT_MAX_MEMBERS];
	unsigned n = 0;

	for (unsigned i = 0; i < r->n_prs; i++)
		if (!r->prs[i].learner)
			m[n++] = r->prs[i].match;
	if (!n)
		return 0;
	/* insertion sort, descending; n <= RAFT_MAX_MEMBERS */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && m[j - 1] < m[j]; j--) {
			uint64_t t = m[j];
			m[j] = m[j - 1];
			m[j - 1] = t;
		}
	return m[n / 2 + 1 - 1];
}

int raft_tally_votes(struct raft *r)
{
	unsigned yes = 0, no = 0, q = raft_quorum(r);

	for (unsigned i = 0; i < r->n_prs; i++) {
		if (r->prs[i].learner)
			continue;
		yes += r->prs[i].vote > 0;
		no += r->prs[i].vote < 0;
	}
	if (yes >= q)
		return 1;
	if (no >= q)
		return -1;
	return 0;
}

/* Check-quorum: did a majority of voters talk to us since the last check?
 * Resets the marks for the next period. */
bool raft_quorum_active(struct raft *r)
{
	unsigned act = 0;

	for (unsigned i = 0; i < r->n_prs; i++) {
		struct raft_progress *p = &r->prs[i];

		if (p->id == r->id) {
			act += !p->learner;
			continue;
		}
		if (!p->learner && p->recent_active)
			act++;
		p->recent_active = false;
	}
	return act >= raft_quorum(r);
}

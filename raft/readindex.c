/*
 * ReadIndex (§6.4): a linearizable read without a log entry. The leader
 * notes its commit index when the read arrives, then proves it is still the
 * leader by hearing from a majority in a heartbeat round that started after
 * the read arrived; then the read may be served at that index. Rounds are
 * numbered; a heartbeat carries the newest round number, and an answer to
 * round k acknowledges every read queued up to k, so any number of
 * concurrent reads share one round trip. A new leader does not know the
 * commit index of its term until it commits an entry of its own: reads
 * queue until then (index 0).
 */
#include "raft/raft_int.h"

#include "common/error.h"

#include <string.h>

int raft_read_state_push(struct raft *r, uint64_t index, uint64_t context)
{
	if (r->n_read_states == r->cap_read_states) {
		size_t cap = r->cap_read_states ? r->cap_read_states * 2 : 16;
		struct raft_read_state *rs =
		    moor_realloc(r->alloc, r->read_states, cap * sizeof *rs);
		if (!rs)
			return MOOR_ENOMEM;
		r->read_states = rs;
		r->cap_read_states = cap;
	}
	r->read_states[r->n_read_states].index = index;
	r->read_states[r->n_read_states].context = context;
	r->n_read_states++;
	return 0;
}

static void read_answer(struct raft *r, const struct raft_read_req *q)
{
	if (q->from == r->id) {
		if (raft_read_state_push(r, q->index, q->context))
			raft_logf(r, MOOR_LOG_WARN, "read state dropped: out of memory");
		return;
	}
	struct raft_message m = {0};

	m.type = RAFT_MSG_READ_INDEX_RESP;
	m.to = q->from;
	m.index = q->index;
	m.context = q->context;
	raft_send(r, &m);
}

static bool round_acked(struct raft *r, uint64_t round)
{
	unsigned acks = 0;

	for (unsigned i = 0; i < r->n_prs; i++) {
		const struct raft_progress *p = &r->prs[i];

		if (!p->learner && (p->id == r->id || p->read_ack >= round))
			acks++;
	}
	return acks >= raft_quorum(r);
}

/* Answers every read whose round a majority acknowledged; starts the next
 * round when reads wait and no round is out. */
static void read_release(struct raft *r)
{
	size_t k = 0;

	while (k < r->n_reads && r->reads[k].index && round_acked(r, r->reads[k].round))
		read_answer(r, &r->reads[k++]);
	if (k) {
		memmove(r->reads, r->reads + k, (r->n_reads - k) * sizeof *r->reads);
		r->n_reads -= k;
	}
	if (r->n_reads && r->reads[0].index && r->reads[0].round > r->read_round_sent)
		raft_bcast_heartbeat(r, r->read_round);
}

static bool committed_in_term(struct raft *r)
{
	return raft_log_term0(r, r->log.committed) == r->term;
}

int raft_readindex_request(struct raft *r, uint64_t from, uint64_t context)
{
	struct raft_read_req *q;

	if (r->n_reads >= r->cfg.max_pending_reads)
		return MOOR_EBUSY;
	if (r->n_reads == r->cap_reads) {
		size_t cap = r->cap_reads ? r->cap_reads * 2 : 16;
		struct raft_read_req *n = moor_realloc(r->alloc, r->reads, cap * sizeof *n);
		if (!n)
			return MOOR_ENOMEM;
		r->reads = n;
		r->cap_reads = cap;
	}
	q = &r->reads[r->n_reads++];
	q->context = context;
	q->from = from;
	q->index = committed_in_term(r) ? r->log.committed : 0;
	q->round = ++r->read_round;
	read_release(r);
	return 0;
}

void raft_readindex_on_commit_in_term(struct raft *r)
{
	if (!r->n_reads || r->reads[r->n_reads - 1].index || !committed_in_term(r))
		return;
	for (size_t i = 0; i < r->n_reads; i++)
		if (!r->reads[i].index)
			r->reads[i].index = r->log.committed;
	read_release(r);
}

void raft_readindex_ack(struct raft *r, uint64_t from, uint64_t round)
{
	struct raft_progress *p = raft_pr_get(r, from);

	if (!p || round > r->read_round)
		return;
	if (p->read_ack < round)
		p->read_ack = round;
	read_release(r);
}

void raft_readindex_reset(struct raft *r)
{
	/* Pending reads die with the leadership; their clients retry. */
	r->n_reads = 0;
	r->read_round_sent = r->read_round;
}

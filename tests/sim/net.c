/*
 * The simulated network: deep copies of messages in a binary heap ordered by
 * (delivery tick, sequence number), so that equal ticks break ties the same
 * way every run; drops, duplicates and delays (which reorder) drawn from the
 * seed at send time; cut links checked at send and at delivery; and the
 * transport's report to a leader of how a snapshot went.
 */
#include "tests/sim/sim_int.h"

#include <stdlib.h>
#include <string.h>

void sim_msg_free(struct raft_message *m)
{
	for (size_t i = 0; i < m->n_entries; i++)
		free(m->entries[i].data);
	free(m->entries);
	if (m->snapshot) {
		free(m->snapshot->data);
		free(m->snapshot);
	}
	memset(m, 0, sizeof *m);
}

void sim_msg_copy(struct raft_message *d, const struct raft_message *m)
{
	*d = *m;
	d->entries = NULL;
	d->snapshot = NULL;
	if (m->n_entries) {
		d->entries = sim_xrealloc(NULL, m->n_entries * sizeof *d->entries);
		for (size_t i = 0; i < m->n_entries; i++) {
			d->entries[i] = m->entries[i];
			d->entries[i].data = NULL;
			if (m->entries[i].len) {
				d->entries[i].data = sim_xrealloc(NULL, m->entries[i].len);
				memcpy(d->entries[i].data, m->entries[i].data, m->entries[i].len);
			}
		}
	}
	if (m->snapshot) {
		d->snapshot = sim_xrealloc(NULL, sizeof *d->snapshot);
		*d->snapshot = *m->snapshot;
		d->snapshot->data = NULL;
		if (m->snapshot->len) {
			d->snapshot->data = sim_xrealloc(NULL, m->snapshot->len);
			memcpy(d->snapshot->data, m->snapshot->data, m->snapshot->len);
		}
	}
}

static bool q_less(const struct sim_msg *a, const struct sim_msg *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void sim_q_push(struct sim *s, uint64_t at, const struct raft_message *m)
{
	size_t i;

	if (s->nq == s->capq) {
		s->capq = s->capq ? s->capq * 2 : 256;
		s->q = sim_xrealloc(s->q, s->capq * sizeof *s->q);
	}
	i = s->nq++;
	s->q[i].at = at;
	s->q[i].seq = s->seq++;
	sim_msg_copy(&s->q[i].m, m);
	while (i > 0) {
		size_t p = (i - 1) / 2;
		struct sim_msg t;

		if (!q_less(&s->q[i], &s->q[p]))
			break;
		t = s->q[i];
		s->q[i] = s->q[p];
		s->q[p] = t;
		i = p;
	}
}

struct sim_msg sim_q_pop(struct sim *s)
{
	struct sim_msg top = s->q[0];
	size_t i = 0;

	s->q[0] = s->q[--s->nq];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct sim_msg t;

		if (l < s->nq && q_less(&s->q[l], &s->q[m]))
			m = l;
		if (r < s->nq && q_less(&s->q[r], &s->q[m]))
			m = r;
		if (m == i)
			break;
		t = s->q[i];
		s->q[i] = s->q[m];
		s->q[m] = t;
		i = m;
	}
	return top;
}

void sim_snap_status(struct sim *s, uint64_t leader, uint64_t to, bool ok)
{
	struct raft_message st = {0};

	st.type = SIM_SNAP_STATUS;
	st.from = to;
	st.to = leader;
	st.reject = !ok;
	sim_q_push(s, s->now + 1, &st);
}

bool sim_link_ok(struct sim *s, uint64_t from, uint64_t to)
{
	return from <= SIM_MAX_NODES && to <= SIM_MAX_NODES && to > 0 && !s->cut[from][to] &&
	       s->nodes[to].exists;
}

void sim_net_send(struct sim *s, const struct raft_message *m)
{
	unsigned copies = 1;

	if (!sim_link_ok(s, m->from, m->to) || sim_below(s, 100) < s->o.drop_pct) {
		if (m->type == RAFT_MSG_SNAP)
			sim_snap_status(s, m->from, m->to, false);
		return;
	}
	if (sim_below(s, 100) < s->o.dup_pct)
		copies = 2;
	for (unsigned i = 0; i < copies; i++)
		sim_q_push(s, s->now + 1 + sim_below(s, s->o.max_delay + 1), m);
}

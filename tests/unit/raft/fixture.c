/* The hand-driven cluster of fixture.h. */
#include "tests/unit/raft/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fx_msg_free(struct raft_message *m)
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

void fx_msg_copy(struct raft_message *d, const struct raft_message *m)
{
	*d = *m;
	d->entries = NULL;
	d->snapshot = NULL;
	if (m->n_entries) {
		d->entries = calloc(m->n_entries, sizeof *d->entries);
		for (size_t i = 0; i < m->n_entries; i++) {
			d->entries[i] = m->entries[i];
			d->entries[i].data = NULL;
			if (m->entries[i].len) {
				d->entries[i].data = malloc(m->entries[i].len);
				memcpy(d->entries[i].data, m->entries[i].data, m->entries[i].len);
			}
		}
	}
	if (m->snapshot) {
		d->snapshot = malloc(sizeof *d->snapshot);
		*d->snapshot = *m->snapshot;
		d->snapshot->data = NULL;
		if (m->snapshot->len) {
			d->snapshot->data = malloc(m->snapshot->len);
			memcpy(d->snapshot->data, m->snapshot->data, m->snapshot->len);
		}
	}
}

void fx_start(struct fx *f, uint64_t id)
{
	struct fx_node *n = &f->nodes[id];
	struct raft_config c = f->tmpl;

	c.id = id;
	c.alloc = f->alloc;
	c.storage = raft_memstorage_storage(n->ms);
	if (raft_create(&c, &n->r)) {
		fprintf(stderr, "fixture: raft_create failed\n");
		abort();
	}
}

void fx_init(struct fx *f, unsigned n, bool pre_vote, bool check_quorum)
{
	uint64_t voters[FX_MAX];

	memset(f, 0, sizeof *f);
	f->tmpl.election_ticks = 10;
	f->tmpl.heartbeat_ticks = 1;
	f->tmpl.pre_vote = pre_vote;
	f->tmpl.check_quorum = check_quorum;
	f->tmpl.seed = 1;
	for (unsigned i = 0; i < n; i++)
		voters[i] = i + 1;
	for (unsigned i = 1; i <= n; i++) {
		f->nodes[i].id = i;
		raft_memstorage_create(NULL, &f->nodes[i].ms);
		raft_memstorage_bootstrap(f->nodes[i].ms, voters, n);
	}
}

/* Starts every created member not yet running (after tests tweak tmpl). */
static void fx_start_all(struct fx *f)
{
	for (unsigned i = 1; i <= FX_MAX; i++)
		if (f->nodes[i].ms && !f->nodes[i].r)
			fx_start(f, i);
}

void fx_add_empty(struct fx *f, uint64_t id)
{
	f->nodes[id].id = id;
	raft_memstorage_create(NULL, &f->nodes[id].ms);
	fx_start(f, id);
}

void fx_free(struct fx *f)
{
	for (unsigned i = 1; i <= FX_MAX; i++) {
		raft_destroy(f->nodes[i].r);
		raft_memstorage_destroy(f->nodes[i].ms);
	}
	fx_drop_queue(f);
}

void fx_crash(struct fx *f, uint64_t id)
{
	raft_destroy(f->nodes[id].r);
	f->nodes[id].r = NULL;
}

static void enqueue(struct fx *f, const struct raft_message *m)
{
	if (f->nq == FX_QMAX)
		abort();
	if ((unsigned)m->type < 16 && m->to <= FX_MAX)
		f->sent[m->to][m->type]++;
	if (m->type == RAFT_MSG_APP && m->n_entries && m->to <= FX_MAX)
		f->sent_entries[m->to]++;
	if (m->type == RAFT_MSG_APP_RESP && m->reject && m->from <= FX_MAX)
		f->rejects[m->from]++;
	fx_msg_copy(&f->q[f->nq++], m);
}

void fx_flush(struct fx *f, uint64_t id)
{
	struct fx_node *n = &f->nodes[id];
	struct raft_ready rd;

	fx_start_all(f);
	while (n->r && raft_has_ready(n->r)) {
		if (raft_ready(n->r, &rd))
			abort();
		for (size_t i = 0; i < rd.n_msgs_now; i++)
			enqueue(f, &rd.msgs_now[i]);
		if (rd.snapshot)
			raft_memstorage_apply_snapshot(n->ms, rd.snapshot);
		if (rd.n_entries)
			raft_memstorage_append(n->ms, rd.entries, rd.n_entries);
		if (rd.hard_state_changed)
			raft_memstorage_set_hard_state(n->ms, &rd.hard_state);
		for (size_t i = 0; i < rd.n_msgs_after_persist; i++)
			enqueue(f, &rd.msgs_after_persist[i]);
		for (size_t i = 0; i < rd.n_committed; i++)
			if (rd.committed[i].len && rd.committed[i].type == RAFT_ENTRY_NORMAL &&
			    n->n_applied < 512)
				n->applied[n->n_applied++] = rd.committed[i].index;
		for (size_t i = 0; i < rd.n_read_states && n->n_reads < 64; i++)
			n->reads[n->n_reads++] = rd.read_states[i];
		if (raft_advance(n->r, &rd))
			abort();
	}
}

void fx_flush_all(struct fx *f)
{
	fx_start_all(f);
	for (unsigned i = 1; i <= FX_MAX; i++)
		if (f->nodes[i].r)
			fx_flush(f, i);
}

void fx_deliver_queued(struct fx *f)
{
	unsigned n = f->nq;
	struct raft_message *batch = malloc((n ? n : 1) * sizeof *batch);

	memcpy(batch, f->q, n * sizeof *batch);
	f->nq = 0;
	for (unsigned i = 0; i < n; i++) {
		struct raft_message *m = &batch[i];

		if (m->to <= FX_MAX && m->from <= FX_MAX && !f->cut[m->from][m->to] &&
		    f->nodes[m->to].r)
			raft_step(f->nodes[m->to].r, m);
		fx_msg_free(m);
	}
	free(batch);
}

void fx_settle(struct fx *f)
{
	for (int round = 0; round < 1000; round++) {
		fx_flush_all(f);
		if (!f->nq)
			return;
		fx_deliver_queued(f);
	}
	abort();
}

void fx_tick(struct fx *f, uint64_t id, unsigned n)
{
	fx_start_all(f);
	for (unsigned i = 0; i < n; i++) {
		raft_tick(f->nodes[id].r);
		fx_flush(f, id);
	}
}

void fx_isolate(struct fx *f, uint64_t id, bool cut)
{
	for (unsigned i = 1; i <= FX_MAX; i++)
		if (i != id)
			f->cut[id][i] = f->cut[i][id] = cut;
}

void fx_drop_queue(struct fx *f)
{
	for (unsigned i = 0; i < f->nq; i++)
		fx_msg_free(&f->q[i]);
	f->nq = 0;
}

struct raft_status fx_status(struct fx *f, uint64_t id)
{
	struct raft_status st;

	raft_status(f->nodes[id].r, &st);
	return st;
}

uint64_t fx_leader(struct fx *f)
{
	uint64_t l = 0, term = 0;

	for (unsigned i = 1; i <= FX_MAX; i++) {
		if (!f->nodes[i].r)
			continue;
		struct raft_status st = fx_status(f, i);
		if (st.role == RAFT_LEADER && st.term >= term) {
			l = i;
			term = st.term;
		}
	}
	return l;
}

int fx_propose_str(struct fx *f, uint64_t id, const char *s)
{
	return raft_propose(f->nodes[id].r, s, strlen(s));
}

void fx_preload(struct fx *f, uint64_t id, const uint64_t *terms, unsigned n, uint64_t hs_term)
{
	struct raft_entry e[64];
	struct raft_hard_state hs = {hs_term, 0, 1};

	for (unsigned i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof e[i]);
		e[i].index = 2 + i;
		e[i].term = terms[i];
	}
	raft_memstorage_append(f->nodes[id].ms, e, n);
	raft_memstorage_set_hard_state(f->nodes[id].ms, &hs);
}

/*
 * The simulator's engine: members, the network, the ready loop of each
 * member exactly as raft.h prescribes it (send msgs_now, persist, send
 * msgs_after_persist, apply, advance), and the safety checks.
 *
 * The checks, all from the Raft paper (Figure 3) plus the client's view:
 *  - election safety: at most one leader per term (term_leader[]);
 *  - log matching: an (index, term) pair names one entry with one
 *    predecessor term everywhere, ever (the lm table, fed on every persist);
 *    by induction equal (index, term) means equal prefixes;
 *  - leader completeness: a leader's log holds every entry any member had
 *    applied when it became leader (see sim_check_leader());
 *  - state machine safety: no two members apply different entries, or reach
 *    different states, at the same index (applied_term/hash, state_at);
 *  - commit and applied never go back (per life; the persisted commit across
 *    lives);
 *  - every acknowledged write is applied, hence in every later leader's log;
 *  - a linearizable read returns a state at least as new as every write
 *    acknowledged before the read started.
 */
#include "tests/sim/sim_int.h"

#include "common/error.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void *sim_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return q;
}

uint64_t sim_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
	h *= 0xBF58476D1CE4E5B9ull;
	return h ^ (h >> 31);
}

uint64_t sim_hash_bytes(const unsigned char *p, size_t n, uint64_t h)
{
	h ^= 0xCBF29CE484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001B3ull;
	return h;
}

uint64_t sim_rand(struct sim *s)
{
	uint64_t z = (s->prng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

unsigned sim_below(struct sim *s, unsigned n)
{
	return n ? (unsigned)(sim_rand(s) % n) : 0;
}

/* ---- trace ---- */

void sim_tracef(struct sim *s, const char *fmt, ...)
{
	char *line = s->trace[(s->trace_head + s->trace_n) % SIM_TRACE_LINES];
	va_list ap;
	int k;

	k = snprintf(line, sizeof s->trace[0], "t=%llu ", (unsigned long long)s->now);
	va_start(ap, fmt);
	vsnprintf(line + k, sizeof s->trace[0] - (size_t)k, fmt, ap);
	va_end(ap);
	s->trace_hash = sim_hash_bytes((const unsigned char *)line, strlen(line), s->trace_hash);
	if (s->trace_n < SIM_TRACE_LINES)
		s->trace_n++;
	else
		s->trace_head = (s->trace_head + 1) % SIM_TRACE_LINES;
	if (s->trace_out)
		fprintf(s->trace_out, "%s\n", line);
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;
	s->failed = true;
	va_start(ap, fmt);
	vsnprintf(s->failure, sizeof s->failure, fmt, ap);
	va_end(ap);
	sim_tracef(s, "FAILURE %s", s->failure);
}

void sim_report(struct sim *s, FILE *out, const char *replay_cmd)
{
	fprintf(out, "SIM FAILURE seed=%llu step=%llu: %s\n", (unsigned long long)s->seed,
	        (unsigned long long)s->steps, s->failure);
	fprintf(out, "last %u trace lines:\n", s->trace_n);
	for (unsigned i = 0; i < s->trace_n; i++)
		fprintf(out, "  %s\n", s->trace[(s->trace_head + i) % SIM_TRACE_LINES]);
	fprintf(out, "SIM FAILURE seed=%llu: %s\nreplay: %s --seed %llu --verbose\n",
	        (unsigned long long)s->seed, s->failure, replay_cmd, (unsigned long long)s->seed);
}

static void snap_decode(const struct raft_snapshot *sn, uint64_t *hash)
{
	*hash = 0;
	if (sn->len == 8)
		for (int i = 0; i < 8; i++)
			*hash = *hash << 8 | sn->data[i];
}

/* ---- the disk as the core sees it ---- */

#define SIM_EIO (-5)

void sim_disk_pause(struct sim *s, bool paused)
{
	for (unsigned i = 1; i <= SIM_MAX_NODES; i++)
		s->nodes[i].disk_paused = paused;
}

static int disk_check(struct sim_node *n)
{
	if (n->disk_paused)
		return 0;
	if (n->disk_fail_in > 0 && --n->disk_fail_in == 0)
		n->disk_failed = true;
	return n->disk_failed ? SIM_EIO : 0;
}

static int disk_first(void *ctx, uint64_t *i)
{
	struct sim_node *n = ctx;
	return disk_check(n) ? SIM_EIO : n->disk_inner.first_index(n->disk_inner.ctx, i);
}

static int disk_last(void *ctx, uint64_t *i)
{
	struct sim_node *n = ctx;
	return disk_check(n) ? SIM_EIO : n->disk_inner.last_index(n->disk_inner.ctx, i);
}

static int disk_term(void *ctx, uint64_t i, uint64_t *t)
{
	struct sim_node *n = ctx;
	return disk_check(n) ? SIM_EIO : n->disk_inner.term(n->disk_inner.ctx, i, t);
}

static int disk_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max, struct raft_entry *out,
                        size_t *cnt)
{
	struct sim_node *n = ctx;
	return disk_check(n) ? SIM_EIO
	                     : n->disk_inner.entries(n->disk_inner.ctx, lo, hi, max, out, cnt);
}

static int disk_snapshot(void *ctx, struct raft_snapshot *snap)
{
	struct sim_node *n = ctx;
	return disk_check(n) ? SIM_EIO : n->disk_inner.snapshot(n->disk_inner.ctx, snap);
}

static int disk_hard_state(void *ctx, struct raft_hard_state *hs)
{
	struct sim_node *n = ctx;
	return disk_check(n) ? SIM_EIO : n->disk_inner.hard_state(n->disk_inner.ctx, hs);
}

void sim_disk_fail(struct sim *s, uint64_t node, int after_calls)
{
	struct sim_node *n = &s->nodes[node];

	if (!n->up || after_calls < 1)
		return;
	n->disk_fail_in = after_calls;
	sim_tracef(s, "n%llu disk fails in %d reads", (unsigned long long)node, after_calls);
}

static void node_stop(struct sim_node *n);

bool sim_input_failed(struct sim *s, struct sim_node *n, int rc, const char *what)
{
	if (!rc)
		return false;
	if (n->disk_failed && (rc == SIM_EIO || rc == MOOR_ESTOPPED)) {
		sim_tracef(s, "n%llu stopped by its disk in %s (%s)", (unsigned long long)n->id,
		           what, rc == SIM_EIO ? "EIO" : "MOOR_ESTOPPED");
		node_stop(n);
		return true;
	}
	sim_fail(s, "n%llu %s: %d", (unsigned long long)n->id, what, rc);
	return true;
}

static int node_start(struct sim *s, struct sim_node *n)
{
	struct raft_config c = {0};
	struct raft_storage st = raft_memstorage_storage(n->ms);
	struct raft_snapshot sn;
	int rc;

	st.snapshot(st.ctx, &sn);
	c.id = n->id;
	c.election_ticks = s->o.election_ticks ? s->o.election_ticks : 10;
	c.heartbeat_ticks = 1;
	c.pre_vote = !s->o.no_pre_vote;
	c.check_quorum = !s->o.no_check_quorum;
	c.max_msg_bytes = s->o.max_msg_bytes ? s->o.max_msg_bytes : 4096;
	c.max_inflight_msgs = s->o.max_inflight ? s->o.max_inflight : 16;
	c.seed = s->seed;
	n->disk_inner = st;
	n->disk_fail_in = 0;
	n->disk_failed = false;
	c.storage = (struct raft_storage){disk_first,    disk_last,       disk_term, disk_entries,
	                                  disk_snapshot, disk_hard_state, n};
	rc = raft_create(&c, &n->r);
	if (rc) {
		sim_fail(s, "n%llu cannot start: %d", (unsigned long long)n->id, rc);
		return rc;
	}
	n->up = true;
	n->applied = sn.meta.index;
	snap_decode(&sn, &n->sm_hash);
	n->seen_commit = 0;
	n->n_waiting = 0;
	n->crash_mid_ready = 0;
	return 0;
}

static void node_stop(struct sim_node *n)
{
	raft_destroy(n->r);
	n->r = NULL;
	n->up = false;
	n->n_waiting = 0;
}

static void maybe_compact(struct sim *s, struct sim_node *n)
{
	struct raft_storage st = raft_memstorage_storage(n->ms);
	struct raft_conf_state cs;
	struct raft_snapshot sn;
	unsigned char data[8];

	if (!s->o.compact_every)
		return;
	st.snapshot(st.ctx, &sn);
	if (n->applied < sn.meta.index + s->o.compact_every)
		return;
	raft_conf_state_applied(n->r, &cs);
	for (int i = 0; i < 8; i++)
		data[i] = (unsigned char)(n->sm_hash >> (56 - 8 * i));
	/* keep a few entries so a slightly lagging follower still gets appends */
	if (raft_memstorage_compact(n->ms, n->applied, &cs, data, sizeof data) == 0)
		sim_tracef(s, "n%llu compact index=%llu", (unsigned long long)n->id,
		           (unsigned long long)n->applied);
}

static void process_ready(struct sim *s, struct sim_node *n);

void sim_crash(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];

	if (!n->up)
		return;
	sim_tracef(s, "n%llu crash", (unsigned long long)id);
	node_stop(n);
}

void sim_restart(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];

	if (!n->exists || n->up)
		return;
	sim_tracef(s, "n%llu restart", (unsigned long long)id);
	if (node_start(s, n) == 0)
		process_ready(s, n);
}

static void process_ready(struct sim *s, struct sim_node *n)
{
	struct raft_ready rd;
	int rc;

	while (n->up && !s->failed && raft_has_ready(n->r)) {
		if ((rc = raft_ready(n->r, &rd))) {
			sim_input_failed(s, n, rc, "ready");
			return;
		}
		if (rd.role == RAFT_LEADER)
			sim_check_leader(s, rd.hard_state.term, n->id);
		if (rd.hard_state.commit < n->seen_commit)
			sim_fail(s, "n%llu commit went back from %llu to %llu",
			         (unsigned long long)n->id, (unsigned long long)n->seen_commit,
			         (unsigned long long)rd.hard_state.commit);
		n->seen_commit = rd.hard_state.commit;
		for (size_t i = 0; i < rd.n_msgs_now; i++)
			sim_net_send(s, &rd.msgs_now[i]);
		if (n->crash_mid_ready == 1 && (rd.n_entries || rd.hard_state_changed)) {
			sim_tracef(s, "n%llu crash before persisting %zu entries",
			           (unsigned long long)n->id, rd.n_entries);
			node_stop(n);
			return;
		}
		if (rd.snapshot) {
			rc = raft_memstorage_apply_snapshot(n->ms, rd.snapshot);
			if (rc)
				sim_fail(s, "n%llu persist snapshot: %d", (unsigned long long)n->id,
				         rc);
		}
		if (rd.n_entries) {
			rc = raft_memstorage_append(n->ms, rd.entries, rd.n_entries);
			if (rc)
				sim_fail(s, "n%llu persist entries: %d", (unsigned long long)n->id,
				         rc);
			for (size_t i = 0; i < rd.n_entries; i++)
				sim_check_persisted(s, n, &rd.entries[i]);
			if (n->crash_mid_ready == 2 && rd.hard_state_changed) {
				sim_tracef(s,
				           "n%llu crash after persisting %zu entries, before the "
				           "hard state",
				           (unsigned long long)n->id, rd.n_entries);
				node_stop(n);
				return;
			}
		}
		if (rd.hard_state_changed) {
			if (rd.hard_state.commit < n->disk_commit)
				sim_fail(s, "n%llu persisted commit went back from %llu to %llu",
				         (unsigned long long)n->id,
				         (unsigned long long)n->disk_commit,
				         (unsigned long long)rd.hard_state.commit);
			n->disk_commit = rd.hard_state.commit;
			raft_memstorage_set_hard_state(n->ms, &rd.hard_state);
		}
		for (size_t i = 0; i < rd.n_msgs_after_persist; i++)
			sim_net_send(s, &rd.msgs_after_persist[i]);
		if (rd.snapshot) {
			uint64_t si = rd.snapshot->meta.index;

			if (si < n->applied)
				sim_fail(s, "n%llu snapshot %llu behind applied %llu",
				         (unsigned long long)n->id, (unsigned long long)si,
				         (unsigned long long)n->applied);
			n->applied = si;
			snap_decode(rd.snapshot, &n->sm_hash);
			if (si < s->cap_applied && s->applied_term[si] &&
			    (s->applied_hash[si] != n->sm_hash ||
			     s->applied_term[si] != rd.snapshot->meta.term))
				sim_fail(s,
				         "n%llu restored a snapshot at %llu with a different state",
				         (unsigned long long)n->id, (unsigned long long)si);
			sim_tracef(s, "n%llu restored snapshot index=%llu",
			           (unsigned long long)n->id, (unsigned long long)si);
		}
		for (size_t i = 0; i < rd.n_committed; i++) {
			const struct raft_entry *e = &rd.committed[i];

			sim_check_apply(s, n, e);
			sim_ack_entry(s, n, e);
			if (e->type == RAFT_ENTRY_CONF_CHANGE) {
				struct raft_conf_change cc;

				if (!raft_conf_change_decode(e->data, e->len, &cc)) {
					sim_tracef(s,
					           "n%llu applied conf change %d n%llu index=%llu",
					           (unsigned long long)n->id, (int)cc.type,
					           (unsigned long long)cc.node_id,
					           (unsigned long long)e->index);
					if (cc.type == RAFT_CONF_REMOVE &&
					    cc.node_id <= SIM_MAX_NODES)
						s->nodes[cc.node_id].removed = true;
				}
			}
		}
		for (size_t i = 0; i < rd.n_read_states; i++)
			if (n->n_waiting < sizeof n->waiting / sizeof n->waiting[0])
				n->waiting[n->n_waiting++] = rd.read_states[i];
		if ((rc = raft_advance(n->r, &rd)) && sim_input_failed(s, n, rc, "advance"))
			return;
		sim_serve_reads(s, n);
		maybe_compact(s, n);
	}
}

/* ---- the cluster ---- */

static void node_create(struct sim *s, uint64_t id, const uint64_t *voters, size_t nv)
{
	struct sim_node *n = &s->nodes[id];

	memset(n, 0, sizeof *n);
	n->id = id;
	if (raft_memstorage_create(NULL, &n->ms))
		abort();
	if (nv && raft_memstorage_bootstrap(n->ms, voters, nv))
		abort();
	n->exists = true;
	node_start(s, n);
}

void sim_init(struct sim *s, uint64_t seed, const struct sim_opts *o)
{
	uint64_t voters[SIM_MAX_NODES];

	memset(s, 0, sizeof *s);
	s->seed = seed;
	s->prng = seed * 0x2545F4914F6CDD1Dull + 1;
	s->o = *o;
	for (unsigned i = 0; i < o->n_voters; i++)
		voters[i] = i + 1;
	for (unsigned i = 0; i < o->n_voters; i++)
		node_create(s, i + 1, voters, o->n_voters);
	s->next_new_id = o->n_voters + 1;
	sim_tracef(s,
	           "start seed=%llu voters=%u drop=%u%% dup=%u%% delay<=%u skew=%u%% compact=%u "
	           "membership=%d faults=x%u pre-vote=%d check-quorum=%d election=%u "
	           "inflight=%u msg-bytes=%u",
	           (unsigned long long)seed, o->n_voters, o->drop_pct, o->dup_pct, o->max_delay,
	           o->skew_pct, o->compact_every, (int)o->membership, o->fault_level,
	           !o->no_pre_vote, !o->no_check_quorum, o->election_ticks, o->max_inflight,
	           o->max_msg_bytes);
}

void sim_free(struct sim *s)
{
	for (unsigned i = 1; i <= SIM_MAX_NODES; i++) {
		if (s->nodes[i].r)
			raft_destroy(s->nodes[i].r);
		raft_memstorage_destroy(s->nodes[i].ms);
	}
	for (size_t i = 0; i < s->nq; i++)
		sim_msg_free(&s->q[i].m);
	free(s->q);
	free(s->term_leader);
	free(s->applied_term);
	free(s->applied_hash);
	free(s->lm);
	free(s->props);
	free(s->reads);
	memset(s, 0, sizeof *s);
}

uint64_t sim_leader(struct sim *s)
{
	uint64_t best = 0, term = 0;

	for (unsigned i = 1; i <= SIM_MAX_NODES; i++) {
		struct raft_status st;

		if (!s->nodes[i].up)
			continue;
		raft_status(s->nodes[i].r, &st);
		if (st.role == RAFT_LEADER && st.term >= term) {
			best = i;
			term = st.term;
		}
	}
	return best;
}

static void deliver(struct sim *s, struct sim_msg *sm)
{
	struct raft_message *m = &sm->m;
	struct sim_node *n = m->to <= SIM_MAX_NODES ? &s->nodes[m->to] : NULL;
	int rc;

	if (m->type == SIM_SNAP_STATUS) {
		if (n && n->up) {
			rc = raft_report_snapshot(n->r, m->from, !m->reject);
			if (!sim_input_failed(s, n, rc, "report snapshot"))
				process_ready(s, n);
		}
		return;
	}
	if (!n || !n->up || !sim_link_ok(s, m->from, m->to)) {
		if (m->type == RAFT_MSG_SNAP)
			sim_snap_status(s, m->from, m->to, false);
		return;
	}
	if (s->o.verbose || s->trace_out)
		sim_tracef(s, "%llu->%llu %s term=%llu idx=%llu lt=%llu n=%zu commit=%llu%s%s",
		           (unsigned long long)m->from, (unsigned long long)m->to,
		           raft_msg_type_name(m->type), (unsigned long long)m->term,
		           (unsigned long long)m->index, (unsigned long long)m->log_term,
		           m->n_entries, (unsigned long long)m->commit, m->reject ? " reject" : "",
		           m->snapshot ? " +snap" : "");
	rc = raft_step(n->r, m);
	/* the transport reports every snapshot's fate, failed ones included */
	if (m->type == RAFT_MSG_SNAP)
		sim_snap_status(s, m->from, m->to, rc == 0);
	if (rc && sim_input_failed(s, n, rc, raft_msg_type_name(m->type)))
		return;
	process_ready(s, n);
}

void sim_step(struct sim *s)
{
	if (s->failed)
		return;
	s->now++;
	s->steps++;
	for (unsigned i = 1; i <= SIM_MAX_NODES && !s->failed; i++) {
		struct sim_node *n = &s->nodes[i];

		if (!n->up)
			continue;
		/* clock skew: a slow member misses some ticks */
		if (s->o.skew_pct && sim_below(s, 100) < s->o.skew_pct && (i & 1))
			continue;
		if (sim_input_failed(s, n, raft_tick(n->r), "tick"))
			continue;
		process_ready(s, n);
	}
	while (s->nq && s->q[0].at <= s->now && !s->failed) {
		struct sim_msg sm = sim_q_pop(s);

		deliver(s, &sm);
		sim_msg_free(&sm.m);
	}
	sim_check_all(s);
}

/* ---- client requests and scripted faults ---- */

/* A client's call failed because the member's disk did: the member stops. */
static bool stopped(struct sim *s, uint64_t node, int rc)
{
	struct sim_node *n = &s->nodes[node];

	if (!n->disk_failed || (rc != SIM_EIO && rc != MOOR_ESTOPPED))
		return false;
	return sim_input_failed(s, n, rc, "a client request");
}

void sim_propose(struct sim *s, uint64_t node)
{
	unsigned char data[SIM_DATA_BYTES] = {0};
	struct sim_prop *p;
	int rc;

	if (!s->nodes[node].up)
		return;
	if (s->n_props == s->cap_props) {
		s->cap_props = s->cap_props ? s->cap_props * 2 : 64;
		s->props = sim_xrealloc(s->props, s->cap_props * sizeof *s->props);
	}
	p = &s->props[s->n_props++];
	memset(p, 0, sizeof *p);
	p->id = s->n_props;
	p->proposed_at = p->first_at = s->now;
	for (int i = 0; i < 8; i++)
		data[i] = (unsigned char)(p->id >> (56 - 8 * i));
	for (int i = 8; i < SIM_DATA_BYTES; i++)
		data[i] = (unsigned char)sim_rand(s);
	rc = raft_propose(s->nodes[node].r, data, sizeof data);
	sim_tracef(s, "n%llu propose p%llu -> %s", (unsigned long long)node,
	           (unsigned long long)p->id, rc ? moor_errname(rc) : "ok");
	if (!stopped(s, node, rc))
		if (!stopped(s, node, rc))
			process_ready(s, &s->nodes[node]);
}

/* Several new proposals in one raft_propose_batch call. */
void sim_propose_batch(struct sim *s, uint64_t node, unsigned n)
{
	unsigned char data[8][SIM_DATA_BYTES];
	struct raft_buf b[8];
	uint64_t first;
	int rc;

	if (!s->nodes[node].up || n == 0 || n > 8)
		return;
	if (s->n_props + n > s->cap_props) {
		s->cap_props = (s->cap_props ? s->cap_props * 2 : 64) + n;
		s->props = sim_xrealloc(s->props, s->cap_props * sizeof *s->props);
	}
	first = s->n_props + 1;
	for (unsigned k = 0; k < n; k++) {
		struct sim_prop *p = &s->props[s->n_props++];

		memset(p, 0, sizeof *p);
		p->id = s->n_props;
		p->proposed_at = p->first_at = s->now;
		for (int i = 0; i < 8; i++)
			data[k][i] = (unsigned char)(p->id >> (56 - 8 * i));
		for (int i = 8; i < SIM_DATA_BYTES; i++)
			data[k][i] = (unsigned char)sim_rand(s);
		b[k].data = data[k];
		b[k].len = SIM_DATA_BYTES;
	}
	rc = raft_propose_batch(s->nodes[node].r, b, n);
	sim_tracef(s, "n%llu propose p%llu..p%llu -> %s", (unsigned long long)node,
	           (unsigned long long)first, (unsigned long long)(first + n - 1),
	           rc ? moor_errname(rc) : "ok");
	if (!stopped(s, node, rc))
		process_ready(s, &s->nodes[node]);
}

/* Proposes an existing proposal again, as a client does after a timeout. */
int sim_repropose(struct sim *s, uint64_t node, struct sim_prop *p);
int sim_repropose(struct sim *s, uint64_t node, struct sim_prop *p)
{
	unsigned char data[SIM_DATA_BYTES] = {0};
	int rc;

	if (!s->nodes[node].up)
		return MOOR_EUNAVAILABLE;
	for (int i = 0; i < 8; i++)
		data[i] = (unsigned char)(p->id >> (56 - 8 * i));
	p->proposed_at = s->now;
	rc = raft_propose(s->nodes[node].r, data, sizeof data);
	sim_tracef(s, "n%llu repropose p%llu -> %s", (unsigned long long)node,
	           (unsigned long long)p->id, rc ? moor_errname(rc) : "ok");
	if (!stopped(s, node, rc))
		process_ready(s, &s->nodes[node]);
	return rc;
}

void sim_read(struct sim *s, uint64_t node)
{
	struct sim_read *r;
	int rc;

	if (!s->nodes[node].up)
		return;
	if (s->n_reads == s->cap_reads) {
		s->cap_reads = s->cap_reads ? s->cap_reads * 2 : 64;
		s->reads = sim_xrealloc(s->reads, s->cap_reads * sizeof *s->reads);
	}
	r = &s->reads[s->n_reads++];
	memset(r, 0, sizeof *r);
	r->id = s->n_reads;
	r->node = node;
	r->min_index = s->max_acked_index;
	r->started = s->now;
	rc = raft_read_index(s->nodes[node].r, r->id);
	sim_tracef(s, "n%llu read r%llu (needs >= %llu) -> %s", (unsigned long long)node,
	           (unsigned long long)r->id, (unsigned long long)r->min_index,
	           rc ? moor_errname(rc) : "ok");
	if (rc)
		r->done = true;
	if (!stopped(s, node, rc))
		process_ready(s, &s->nodes[node]);
}

void sim_isolate(struct sim *s, uint64_t node)
{
	for (unsigned i = 1; i <= SIM_MAX_NODES; i++)
		if (i != node)
			s->cut[node][i] = s->cut[i][node] = true;
	sim_tracef(s, "isolate n%llu", (unsigned long long)node);
}

void sim_cut(struct sim *s, uint64_t from, uint64_t to)
{
	s->cut[from][to] = true;
	sim_tracef(s, "cut n%llu->n%llu", (unsigned long long)from, (unsigned long long)to);
}

void sim_heal_net(struct sim *s)
{
	memset(s->cut, 0, sizeof s->cut);
	sim_tracef(s, "heal network");
}

void sim_transfer(struct sim *s, uint64_t target)
{
	uint64_t l = sim_leader(s);
	int rc;

	if (!l)
		return;
	rc = raft_transfer_leadership(s->nodes[l].r, target);
	sim_tracef(s, "n%llu transfer to n%llu -> %s", (unsigned long long)l,
	           (unsigned long long)target, rc ? moor_errname(rc) : "ok");
	if (!stopped(s, l, rc))
		process_ready(s, &s->nodes[l]);
}

int sim_conf_change(struct sim *s, enum raft_conf_change_type t, uint64_t node)
{
	struct raft_conf_change cc = {t, node};
	uint64_t l = sim_leader(s);
	int rc;

	if (!l)
		return MOOR_ENOLEADER;
	if ((t == RAFT_CONF_ADD_VOTER || t == RAFT_CONF_ADD_LEARNER) && !s->nodes[node].exists &&
	    node <= SIM_MAX_NODES && !s->nodes[node].ms)
		node_create(s, node, NULL, 0);
	rc = raft_propose_conf_change(s->nodes[l].r, &cc);
	sim_tracef(s, "n%llu conf change %d n%llu -> %s", (unsigned long long)l, (int)t,
	           (unsigned long long)node, rc ? moor_errname(rc) : "ok");
	if (!stopped(s, l, rc))
		process_ready(s, &s->nodes[l]);
	return rc;
}

/*
 * The handle: creation from what storage holds, the outbox, the PRNG, and
 * the public inputs other than raft_step (step.c): proposals (appended on
 * the leader, forwarded by a follower), reads, transfers, reports.
 */
#include "raft/raft_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

void raft_logf(struct raft *r, enum moor_log_level lvl, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!r->logger.fn || lvl < r->logger.min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	moor_log(&r->logger, lvl, RAFT_MOD, "member=%llu %s", (unsigned long long)r->id, buf);
}

int raft_fail(struct raft *r, int err)
{
	if (!r->err) {
		r->err = err;
		raft_logf(r, MOOR_LOG_ERROR, "stopped by storage error %d", err);
	}
	return err;
}

/* splitmix64: small, fast, and the whole state is one word. */
uint64_t raft_prng_next(struct raft *r)
{
	uint64_t z = (r->prng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static bool sent_before_persist(const struct raft *r, enum raft_msg_type t)
{
	return r->role == RAFT_LEADER && (t == RAFT_MSG_APP || t == RAFT_MSG_HEARTBEAT ||
	                                  t == RAFT_MSG_SNAP || t == RAFT_MSG_READ_INDEX_RESP);
}

void raft_send(struct raft *r, struct raft_message *m)
{
	int box = sent_before_persist(r, m->type) ? 0 : 1;

	m->from = r->id;
	if (m->type == RAFT_MSG_PROP || m->type == RAFT_MSG_READ_INDEX ||
	    m->type == RAFT_MSG_TRANSFER_LEADER)
		m->term = 0; /* forwarded requests carry no term */
	else if (m->type != RAFT_MSG_VOTE && m->type != RAFT_MSG_PRE_VOTE &&
	         m->type != RAFT_MSG_VOTE_RESP && m->type != RAFT_MSG_PRE_VOTE_RESP)
		m->term = r->term;
	if (r->n_msgs[box] == r->cap_msgs[box]) {
		size_t cap = r->cap_msgs[box] ? r->cap_msgs[box] * 2 : 16;
		struct raft_message *n = moor_realloc(r->alloc, r->msgs[box], cap * sizeof *n);

		if (!n) {
			raft_logf(r, MOOR_LOG_WARN, "message dropped: out of memory");
			return; /* as if the network lost it */
		}
		r->msgs[box] = n;
		r->cap_msgs[box] = cap;
	}
	r->msgs[box][r->n_msgs[box]++] = *m;
}

static int config_check(struct raft_config *c)
{
	if (!c->id || !c->storage.first_index || !c->storage.last_index || !c->storage.term ||
	    !c->storage.entries || !c->storage.snapshot || !c->storage.hard_state)
		return MOOR_EINVAL;
	if (!c->election_ticks)
		c->election_ticks = 10;
	if (!c->heartbeat_ticks)
		c->heartbeat_ticks = 1;
	if (c->heartbeat_ticks >= c->election_ticks)
		return MOOR_EINVAL;
	if (!c->max_msg_bytes)
		c->max_msg_bytes = 1u << 20;
	if (!c->max_inflight_msgs)
		c->max_inflight_msgs = 256;
	if (!c->max_uncommitted_bytes)
		c->max_uncommitted_bytes = 64u << 20;
	if (!c->max_committed_bytes)
		c->max_committed_bytes = 4u << 20;
	if (!c->max_pending_reads)
		c->max_pending_reads = 4096;
	return 0;
}

/* The configuration in force is the latest in the log: read every
 * configuration change above the snapshot. */
static int load_conf(struct raft *r, uint64_t from, uint64_t last)
{
	while (from <= last) {
		struct raft_entry *e;
		size_t n;
		int rc = raft_log_slice(r, from, last + 1, SIZE_MAX, &e, &n);

		if (rc)
			return rc;
		if ((rc = raft_conf_on_append(r, e, n)))
			return rc;
		from += n;
		raft_arena_reset(&r->arena[r->arena_cur]);
	}
	return r->err;
}

int raft_create(const struct raft_config *cfg, struct raft **out)
{
	struct raft_snapshot snap;
	struct raft_hard_state hs;
	struct raft *r;
	uint64_t last;
	int rc;

	*out = NULL;
	r = moor_calloc(cfg->alloc, 1, sizeof *r);
	if (!r)
		return MOOR_ENOMEM;
	r->cfg = *cfg;
	if ((rc = config_check(&r->cfg)))
		goto err_after_alloc;
	r->id = cfg->id;
	r->alloc = cfg->alloc;
	r->logger = cfg->logger;
	r->prng = cfg->seed ^ (cfg->id * 0xD1B54A32D192ED03ull);
	raft_arena_init(&r->arena[0], r->alloc);
	raft_arena_init(&r->arena[1], r->alloc);
	if ((rc = raft_log_init(&r->log, &cfg->storage, r->alloc)))
		goto err_after_alloc;
	if ((rc = cfg->storage.hard_state(cfg->storage.ctx, &hs)) ||
	    (rc = cfg->storage.snapshot(cfg->storage.ctx, &snap)))
		goto err_after_log;
	if ((rc = raft_conf_reset(r, &snap.meta.conf)))
		goto err_after_prs;
	last = raft_log_last(r);
	if ((rc = load_conf(r, snap.meta.index + 1, last)))
		goto err_after_prs;
	if (hs.commit > last ||
	    (cfg->applied && (cfg->applied > hs.commit || cfg->applied < snap.meta.index))) {
		rc = MOOR_ECORRUPT;
		goto err_after_prs;
	}
	if (hs.commit > r->log.committed)
		r->log.committed = hs.commit;
	if (cfg->applied > snap.meta.index)
		r->log.applied = cfg->applied;
	raft_conf_fold_applied(r);
	r->role = RAFT_FOLLOWER;
	raft_become_follower(r, hs.term, 0);
	r->vote = hs.vote;
	r->prev_hs = hs;
	raft_logf(r, MOOR_LOG_INFO,
	          "started term=%llu commit=%llu applied=%llu last=%llu voters=%u",
	          (unsigned long long)hs.term, (unsigned long long)r->log.committed,
	          (unsigned long long)r->log.applied, (unsigned long long)last, raft_voters(r));
	*out = r;
	return 0;

err_after_prs:
	while (r->n_prs)
		raft_pr_remove(r, r->prs[0].id);
	moor_free(r->alloc, r->hist);
err_after_log:
	raft_log_free(&r->log);
	raft_arena_free(&r->arena[0]);
	raft_arena_free(&r->arena[1]);
err_after_alloc:
	moor_free(cfg->alloc, r);
	return rc;
}

void raft_destroy(struct raft *r)
{
	if (!r)
		return;
	while (r->n_prs)
		raft_pr_remove(r, r->prs[0].id);
	raft_log_free(&r->log);
	raft_arena_free(&r->arena[0]);
	raft_arena_free(&r->arena[1]);
	moor_free(r->alloc, r->msgs[0]);
	moor_free(r->alloc, r->msgs[1]);
	moor_free(r->alloc, r->reads);
	moor_free(r->alloc, r->read_states);
	moor_free(r->alloc, r->hist);
	moor_free(r->alloc, r);
}

int raft_input_begin(struct raft *r)
{
	MOOR_ASSERT(!r->in_ready);
	return r->err ? MOOR_ESTOPPED : 0;
}

int raft_input_end(struct raft *r, int rc)
{
	return r->err ? r->err : rc;
}

int raft_tick(struct raft *r)
{
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	if (r->role == RAFT_LEADER)
		raft_tick_heartbeat(r);
	else
		raft_tick_election(r);
	return raft_input_end(r, 0);
}

/* The entries of a proposal, appended by the leader. */
int raft_leader_append(struct raft *r, const struct raft_entry *src, size_t n)
{
	struct raft_entry one, *ents = &one;
	int rc;

	if (!raft_promotable(r))
		return MOOR_EDROPPED;
	if (r->lead_transferee)
		return MOOR_ETRANSFERRING;
	if (n > 1) {
		ents = raft_arena_alloc(&r->arena[r->arena_cur], n * sizeof *ents);
		if (!ents)
			return MOOR_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		ents[i] = src[i];
		/* only the leader itself proposes configuration changes */
		ents[i].type = RAFT_ENTRY_NORMAL;
	}
	if ((rc = raft_append_entries(r, ents, n)))
		return rc;
	raft_bcast_append(r);
	return 0;
}

int raft_forward(struct raft *r, enum raft_msg_type type, const struct raft_entry *e, size_t n,
                 uint64_t context)
{
	struct raft_message m = {0};
	struct raft_arena *a = &r->arena[r->arena_cur];

	m.type = type;
	m.to = r->lead;
	m.context = context;
	if (n) {
		struct raft_entry *c = raft_arena_alloc(a, n * sizeof *c);

		if (!c)
			return MOOR_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			c[i] = e[i];
			if (e[i].len) {
				c[i].data = raft_arena_alloc(a, e[i].len);
				if (!c[i].data)
					return MOOR_ENOMEM;
				memcpy(c[i].data, e[i].data, e[i].len);
			}
		}
		m.entries = c;
		m.n_entries = n;
	}
	raft_send(r, &m);
	return 0;
}

static int propose(struct raft *r, const struct raft_entry *e, size_t n)
{
	if (r->role == RAFT_LEADER)
		return raft_leader_append(r, e, n);
	if (r->role == RAFT_FOLLOWER && r->lead)
		return raft_forward(r, RAFT_MSG_PROP, e, n, 0);
	return MOOR_ENOLEADER;
}

int raft_propose_batch(struct raft *r, const struct raft_buf *bufs, size_t n)
{
	struct raft_entry *e;
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	if (!n)
		return 0;
	if (n > RAFT_MAX_PROPOSE_BATCH)
		return MOOR_EINVAL;
	e = raft_arena_alloc(&r->arena[r->arena_cur], n * sizeof *e);
	if (!e)
		return MOOR_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof e[i]);
		e[i].type = RAFT_ENTRY_NORMAL;
		e[i].data = (unsigned char *)bufs[i].data;
		e[i].len = bufs[i].len;
	}
	return raft_input_end(r, propose(r, e, n));
}

int raft_propose(struct raft *r, const void *data, size_t len)
{
	struct raft_entry e = {0};
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	e.type = RAFT_ENTRY_NORMAL;
	e.data = (unsigned char *)data;
	e.len = len;
	return raft_input_end(r, propose(r, &e, 1));
}

int raft_read_index(struct raft *r, uint64_t context)
{
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	if (r->role == RAFT_LEADER)
		rc = raft_readindex_request(r, r->id, context);
	else if (r->role == RAFT_FOLLOWER && r->lead)
		rc = raft_forward(r, RAFT_MSG_READ_INDEX, NULL, 0, context);
	else
		rc = MOOR_ENOLEADER;
	return raft_input_end(r, rc);
}

int raft_transfer_leadership(struct raft *r, uint64_t target)
{
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	if (r->role == RAFT_LEADER) {
		if (!raft_is_voter(r, target))
			rc = MOOR_EINVAL;
		else if (target != r->id)
			raft_transfer_start(r, target);
	} else if (r->role == RAFT_FOLLOWER && r->lead) {
		rc = raft_forward(r, RAFT_MSG_TRANSFER_LEADER, NULL, 0, target);
	} else {
		rc = MOOR_ENOLEADER;
	}
	return raft_input_end(r, rc);
}

int raft_campaign(struct raft *r)
{
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	raft_hup(r, false);
	return raft_input_end(r, 0);
}

int raft_report_snapshot(struct raft *r, uint64_t id, bool ok)
{
	struct raft_progress *p;
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	p = raft_pr_get(r, id);
	if (r->role != RAFT_LEADER || !p || p->state != RAFT_PR_SNAPSHOT)
		return 0;
	if (!ok)
		p->pending_snapshot = 0;
	/* Wait for the next heartbeat answer before probing again. */
	raft_pr_become_probe(p);
	p->probe_sent = true;
	return raft_input_end(r, 0);
}

int raft_report_unreachable(struct raft *r, uint64_t id)
{
	struct raft_progress *p;
	int rc = raft_input_begin(r);

	if (rc)
		return rc;
	p = raft_pr_get(r, id);
	if (r->role == RAFT_LEADER && p && p->state == RAFT_PR_REPLICATE)
		raft_pr_become_probe(p);
	return 0;
}

void raft_status(const struct raft *r, struct raft_status *st)
{
	struct raft *m = (struct raft *)r;

	memset(st, 0, sizeof *st);
	st->id = r->id;
	st->role = r->role;
	st->lead = r->lead;
	st->term = r->term;
	st->vote = r->vote;
	st->commit = r->log.committed;
	st->applied = r->log.applied;
	st->last_index = raft_log_last(m);
	st->first_index = raft_log_first(m);
	st->transferee = r->lead_transferee;
}

int raft_term_at(struct raft *r, uint64_t index, uint64_t *term)
{
	return raft_log_term(r, index, term);
}

const char *raft_role_name(enum raft_role role)
{
	switch (role) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_PRE_CANDIDATE:
		return "pre-candidate";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	}
	return "?";
}

const char *raft_msg_type_name(enum raft_msg_type type)
{
	static const char *const names[] = {
	    [RAFT_MSG_PROP] = "prop",
	    [RAFT_MSG_APP] = "app",
	    [RAFT_MSG_APP_RESP] = "app-resp",
	    [RAFT_MSG_VOTE] = "vote",
	    [RAFT_MSG_VOTE_RESP] = "vote-resp",
	    [RAFT_MSG_PRE_VOTE] = "pre-vote",
	    [RAFT_MSG_PRE_VOTE_RESP] = "pre-vote-resp",
	    [RAFT_MSG_HEARTBEAT] = "heartbeat",
	    [RAFT_MSG_HEARTBEAT_RESP] = "heartbeat-resp",
	    [RAFT_MSG_SNAP] = "snap",
	    [RAFT_MSG_READ_INDEX] = "read-index",
	    [RAFT_MSG_READ_INDEX_RESP] = "read-index-resp",
	    [RAFT_MSG_TIMEOUT_NOW] = "timeout-now",
	    [RAFT_MSG_TRANSFER_LEADER] = "transfer-leader",
	};

	if ((unsigned)type < sizeof names / sizeof names[0] && names[type])
		return names[type];
	return "?";
}

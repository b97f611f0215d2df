/*
 * The node's loop side (see node.h): start-up and recovery, the raft core's
 * inputs, the ready batch and its hand-off to the WAL thread, proposals and
 * linearizable reads.
 */
#include "server/node_int.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "server/ids.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG(n, lvl, ...) moor_log((n)->log, lvl, "node", __VA_ARGS__)

uint64_t node_now_ms(void)
{
	return moor_clock_mono_ms();
}

static void node_pump(struct srv_node *n);

/* ---- pending client requests ---- */

static struct pending **pend_slot(struct srv_node *n, uint64_t id)
{
	uint64_t h = id * 0x9E3779B97F4A7C15ull;
	return &n->pend_hash[(h >> 32) & (n->pend_buckets - 1)];
}

static void pend_unlink(struct srv_node *n, struct pending *p)
{
	struct pending **pp = pend_slot(n, p->id);

	while (*pp != p)
		pp = &(*pp)->hnext;
	*pp = p->hnext;
	if (p->tprev)
		p->tprev->tnext = p->tnext;
	else
		n->pend_head = p->tnext;
	if (p->tnext)
		p->tnext->tprev = p->tprev;
	else
		n->pend_tail = p->tprev;
	n->n_pending--;
}

void node_apply_complete_pending(struct srv_node *n, uint64_t id, int rc, void *resp, int64_t aux)
{
	struct pending *p;

	for (p = *pend_slot(n, id); p; p = p->hnext)
		if (p->id == id)
			break;
	if (!p) {
		kv_response_free(resp); /* not ours, or its client gave up */
		return;
	}
	pend_unlink(n, p);
	p->cb(p->ctx, rc, resp, aux);
	free(p);
}

static void pend_fail(struct srv_node *n, struct pending *p, int rc)
{
	srv_counter_add(&n->m.proposals_failed, 1);
	pend_unlink(n, p);
	p->cb(p->ctx, rc, NULL, 0);
	free(p);
}

/* ---- sending ---- */

/* The id of the InternalRequest packed in `e`: its field 1 comes first
 * (protobuf-c packs fields in number order); 0 when it does not. */
static uint64_t entry_request_id(const struct raft_entry *e)
{
	uint64_t v = 0;

	if (e->type != RAFT_ENTRY_NORMAL || e->len < 2 || e->data[0] != 0x08)
		return 0;
	for (size_t i = 1, shift = 0; i < e->len && shift < 64; i++, shift += 7) {
		v |= (uint64_t)(e->data[i] & 0x7f) << shift;
		if (!(e->data[i] & 0x80))
			return v;
	}
	return 0;
}

/* A follower's forward of proposals to the leader that the transport
 * refused (no connection, queue full) never left this member: their
 * clients learn at once that they were not applied (and may retry),
 * instead of "leader changed" or a timeout that leaves them unsure. */
static void props_not_sent(struct srv_node *n, const struct raft_message *m)
{
	for (size_t i = 0; i < m->n_entries; i++) {
		uint64_t id = entry_request_id(&m->entries[i]);
		struct pending *p;

		if (!id)
			continue;
		for (p = *pend_slot(n, id); p; p = p->hnext)
			if (p->id == id)
				break;
		if (p)
			pend_fail(n, p, MOOR_EDROPPED);
	}
}

static void send_msgs(struct srv_node *n, const struct raft_message *msgs, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct raft_message *m = &msgs[i];
		int rc;

		if (m->type == RAFT_MSG_SNAP) {
			node_snap_send(n, m); /* streamed, with the store's checkpoint */
			continue;
		}
		moor_buf_reset(&n->enc);
		rc = moor_buf_append_u8(&n->enc, NODE_FRAME_RAFT);
		if (rc == 0)
			rc = srv_raftmsg_encode(m, &n->enc);
		if (rc == 0)
			rc = srv_peer_send(n->peers, m->to, n->enc.data, n->enc.len);
		if (rc == 0)
			continue;
		if (m->type == RAFT_MSG_PROP)
			props_not_sent(n, m);
		/* The leader learns the peer is unreachable after advance. */
		if (n->n_unreachable < NODE_MAX_MEMBERS) {
			int seen = 0;
			for (int k = 0; k < n->n_unreachable; k++)
				seen |= n->unreachable[k] == m->to;
			if (!seen)
				n->unreachable[n->n_unreachable++] = m->to;
		}
	}
}

/* ---- the ready batch ---- */

struct wal_job {
	struct srv_job job;
	struct srv_node *n;
	struct wal_batch b;
	struct wal_entry *ents;
	struct wal_hard_state hs;
	struct wal_snapshot snap;
	bool sync;
	int rc;
	char err[256];
};

static void wal_job_run(struct srv_job *j)
{
	struct wal_job *w = (struct wal_job *)j;
	struct srv_node *n = w->n;

	w->rc = wal_append(n->wal, &w->b);
	if (w->rc == 0 && w->sync) {
		uint64_t t0 = moor_clock_mono_ns();
		w->rc = wal_sync(n->wal, NULL);
		srv_hist_observe(&n->m.wal_fsync, moor_clock_mono_ns() - t0);
	}
	if (w->rc)
		snprintf(w->err, sizeof w->err, "%s", wal_errmsg(n->wal));
}

static void ready_finish(struct srv_node *n);

/* A proposal waiting when the leader changes may have died with the old
 * leader's log, or may still commit: its client is told at once that the
 * outcome is unknown (etcd's "leader changed"), instead of waiting for the
 * timeout, and retries on the new leader. */
static void leader_changed(struct srv_node *n, uint64_t lead)
{
	if (lead)
		srv_counter_add(&n->m.leader_changes, 1);
	LOG(n, MOOR_LOG_INFO, "leader is now %016llx (was %016llx) term=%llu",
	    (unsigned long long)lead, (unsigned long long)n->lead, (unsigned long long)n->term);
	if (n->lead)
		while (n->pend_head)
			pend_fail(n, n->pend_head, MOOR_ELEADERCHANGED);
}

static void wal_job_done(struct srv_job *j)
{
	struct wal_job *w = (struct wal_job *)j;
	struct srv_node *n = w->n;

	if (w->rc) {
		/* The log can no longer promise durability: a member that goes on
		 * would acknowledge writes it may lose. Stop hard. */
		LOG(n, MOOR_LOG_ERROR, "WAL write failed, stopping: %s (%s)", moor_strerror(w->rc),
		    w->err);
		abort();
	}
	free(w->ents);
	free(w);
	ready_finish(n);
}

static void ready_start(struct srv_node *n)
{
	struct raft_ready *rd = &n->rd;
	struct wal_job *w;
	int rc;

	rc = raft_ready(n->raft, rd);
	if (rc) {
		LOG(n, MOOR_LOG_ERROR, "raft_ready failed: %s", moor_strerror(rc));
		abort();
	}
	n->in_ready = true;
	n->n_unreachable = 0;
	if (rd->lead != n->lead)
		leader_changed(n, rd->lead);
	n->lead = rd->lead;
	n->role = rd->role;
	srv_lessor_set_leader(&n->lessor, n->role == RAFT_LEADER, node_now_ms(),
	                      n->election_timeout_ms);
	if (rd->hard_state_changed) {
		n->term = rd->hard_state.term;
		n->commit = rd->hard_state.commit;
	}
	/* Read states: the round learns its index; released once applied. */
	for (size_t i = 0; i < rd->n_read_states; i++)
		for (struct read_round *r = n->rounds; r; r = r->next)
			if (r->ctx == rd->read_states[i].context && !r->has_index) {
				r->index = rd->read_states[i].index;
				r->has_index = true;
			}
	/* 1. the leader's messages go out while its WAL writes */
	send_msgs(n, rd->msgs_now, rd->n_msgs_now);

	n->snap_installed = false;
	if (!rd->snapshot && !rd->n_entries && !rd->hard_state_changed) {
		ready_finish(n);
		return;
	}
	w = calloc(1, sizeof *w);
	MOOR_ASSERT(w);
	w->n = n;
	w->job.run = wal_job_run;
	w->job.done = wal_job_done;
	if (rd->n_entries) {
		w->ents = calloc(rd->n_entries, sizeof *w->ents);
		MOOR_ASSERT(w->ents);
		for (size_t i = 0; i < rd->n_entries; i++) {
			w->ents[i].index = rd->entries[i].index;
			w->ents[i].term = rd->entries[i].term;
			w->ents[i].type = rd->entries[i].type;
			w->ents[i].data = rd->entries[i].data; /* valid until advance */
			w->ents[i].len = rd->entries[i].len;
		}
		w->b.entries = w->ents;
		w->b.n_entries = rd->n_entries;
	}
	if (rd->hard_state_changed) {
		w->hs.term = rd->hard_state.term;
		w->hs.vote = rd->hard_state.vote;
		w->hs.commit = rd->hard_state.commit;
		w->b.hard_state = &w->hs;
	}
	if (rd->snapshot) {
		w->snap.index = rd->snapshot->meta.index;
		w->snap.term = rd->snapshot->meta.term;
		w->b.snapshot = &w->snap;
	}
	w->sync = rd->must_sync || rd->snapshot;
	srv_worker_submit(&n->wal_worker, &w->job);
}

static void ready_finish(struct srv_node *n)
{
	struct raft_ready *rd = &n->rd;
	int rc;

	/* 2. persisted; a snapshot replaces the store first (the apply thread
	 * must have finished what it was given before) */
	if (rd->snapshot && !n->snap_installed) {
		if (!node_store_idle(n)) {
			/* resumed by the last worker's done (node_install_resume) */
			n->install_waiting = true;
			return;
		}
		rc = node_snap_install(n, rd->snapshot);
		if (rc) {
			LOG(n, MOOR_LOG_ERROR, "cannot install the snapshot: %s",
			    moor_strerror(rc));
			abort();
		}
		n->snap_installed = true;
	}
	/* the in-memory log the core reads catches up */
	if (rd->n_entries) {
		rc = raft_memstorage_append(n->ms, rd->entries, rd->n_entries);
		MOOR_ASSERT(rc == 0);
	}
	if (rd->hard_state_changed)
		raft_memstorage_set_hard_state(n->ms, &rd->hard_state);
	send_msgs(n, rd->msgs_after_persist, rd->n_msgs_after_persist);
	if (rd->n_committed) {
		node_apply_handoff(n, rd->committed, rd->n_committed);
		n->handed_index = rd->committed[rd->n_committed - 1].index;
	}
	rc = raft_advance(n->raft, rd);
	MOOR_ASSERT(rc == 0);
	n->in_ready = false;
	for (int i = 0; i < n->n_unreachable; i++)
		raft_report_unreachable(n->raft, n->unreachable[i]);
	n->n_unreachable = 0;
	node_reads_release(n);
	node_pump(n);
}

void node_ready_resume(struct srv_node *n)
{
	ready_finish(n);
}

/* Replacing the store needs every other user of it stopped: the apply
 * thread, the compaction thread (compact steps, defragment) and the
 * snapshot thread (checkpoints for other members, backups). */
bool node_store_idle(const struct srv_node *n)
{
	return n->apply_worker.queued == 0 && n->compact_worker.queued == 0 &&
	       n->snap_worker.queued == 0;
}

/* Called from each worker's done: the install waiting for them goes on. */
void node_install_resume(struct srv_node *n)
{
	if (n->install_waiting && node_store_idle(n)) {
		n->install_waiting = false;
		ready_finish(n);
	}
}

/* ---- reads ---- */

static void read_round_start(struct srv_node *n)
{
	struct read_round *r;
	uint64_t ctx;
	int rc;

	if (!n->read_next_head)
		return;
	ctx = ++n->next_read_ctx;
	rc = raft_read_index(n->raft, ctx);
	if (rc) /* no leader yet, or too many: the sweep retries until the deadline */
		return;
	r = calloc(1, sizeof *r);
	MOOR_ASSERT(r);
	r->ctx = ctx;
	r->started_ms = node_now_ms();
	r->head = n->read_next_head;
	r->tail = n->read_next_tail;
	n->read_next_head = n->read_next_tail = NULL;
	r->next = n->rounds;
	n->rounds = r;
}

static void waiters_fail(struct read_waiter *w, int rc)
{
	while (w) {
		struct read_waiter *next = w->next;
		w->cb(w->ctx, rc);
		free(w);
		w = next;
	}
}

void node_reads_release(struct srv_node *n)
{
	struct read_round **rp = &n->rounds;

	while (*rp) {
		struct read_round *r = *rp;
		if (r->has_index && r->index <= n->applied_index) {
			*rp = r->next;
			waiters_fail(r->head, 0);
			free(r);
		} else {
			rp = &r->next;
		}
	}
}

int srv_node_read_barrier(struct srv_node *n, srv_read_cb cb, void *ctx)
{
	struct read_waiter *w;

	if (n->stopping)
		return MOOR_ECLOSED;
	w = calloc(1, sizeof *w);
	if (!w)
		return MOOR_ENOMEM;
	w->cb = cb;
	w->ctx = ctx;
	w->deadline_ms = node_now_ms() + SRV_REQUEST_TIMEOUT_MS;
	if (n->read_next_tail)
		n->read_next_tail->next = w;
	else
		n->read_next_head = w;
	n->read_next_tail = w;
	node_pump(n);
	return 0;
}

/* Timeouts: reads whose round got no answer are moved to a new round;
 * requests past their deadline fail. Runs on every tick. */
static void sweep(struct srv_node *n)
{
	uint64_t now = node_now_ms();
	struct read_round **rp = &n->rounds;

	while (*rp) {
		struct read_round *r = *rp;
		if (!r->has_index && now - r->started_ms >= SRV_READ_RETRY_MS) {
			*rp = r->next;
			/* back to the queue, ahead of newer readers */
			if (r->head) {
				r->tail->next = n->read_next_head;
				n->read_next_head = r->head;
				if (!n->read_next_tail)
					n->read_next_tail = r->tail;
			}
			free(r);
		} else {
			rp = &r->next;
		}
	}
	/* expire the oldest readers in the queue */
	while (n->read_next_head && n->read_next_head->deadline_ms <= now) {
		struct read_waiter *w = n->read_next_head;
		n->read_next_head = w->next;
		if (!n->read_next_head)
			n->read_next_tail = NULL;
		w->cb(w->ctx, n->lead ? MOOR_ETIMEOUT : MOOR_ENOLEADER);
		free(w);
	}
	while (n->pend_head && n->pend_head->deadline_ms <= now)
		pend_fail(n, n->pend_head, MOOR_ETIMEOUT);
	node_member_waiters_check(n, now);
}

/* ---- proposals ---- */

int srv_node_propose(struct srv_node *n, Moorpb__InternalRequest *req, srv_apply_cb cb, void *ctx)
{
	struct input_prop *ip;
	struct pending *p;
	size_t len;

	if (n->stopping)
		return MOOR_ECLOSED;
	if (!n->lead)
		return MOOR_ENOLEADER;
	if (n->handed_index - n->applied_index > SRV_MAX_APPLY_LAG ||
	    n->n_pending >= SRV_MAX_PENDING)
		return MOOR_ETOOMANYREQUESTS;
	req->id = n->next_req_id++;
	len = moorpb__internal_request__get_packed_size(req);
	if (len > n->cfg->max_request_bytes + 4096)
		return MOOR_ETOOLARGE;
	p = calloc(1, sizeof *p);
	ip = malloc(sizeof *ip + len);
	if (!p || !ip) {
		free(p);
		free(ip);
		return MOOR_ENOMEM;
	}
	moorpb__internal_request__pack(req, ip->data);
	ip->len = len;
	ip->next = NULL;
	ip->p = p;
	p->id = req->id;
	p->cb = cb;
	p->ctx = ctx;
	p->deadline_ms = node_now_ms() + SRV_REQUEST_TIMEOUT_MS;
	struct pending **slot = pend_slot(n, p->id);
	p->hnext = *slot;
	*slot = p;
	p->tprev = n->pend_tail;
	if (n->pend_tail)
		n->pend_tail->tnext = p;
	else
		n->pend_head = p;
	n->pend_tail = p;
	n->n_pending++;
	if (n->props_tail)
		n->props_tail->next = ip;
	else
		n->props_head = ip;
	n->props_tail = ip;
	node_pump(n);
	return 0;
}

/* ---- inputs ---- */

static uint64_t seed_from_urandom(uint64_t id);
static int identity_write(const char *dir, uint64_t cluster, uint64_t member, bool joined);

/* The raft core for this member, from the recovered storage. A joining
 * member that does not know its id yet gets a core under a stand-in id
 * (it has no log and no configuration, so it never speaks); the core is
 * made again once the id is known. */
static int node_raft_create(struct srv_node *n)
{
	struct raft_config rcfg = {0};

	rcfg.id = n->id ? n->id
	                : srv_member_id(&n->cfg->initial_advertise_peer_urls,
	                                n->cfg->initial_cluster_token);
	rcfg.election_ticks = n->election_ticks;
	rcfg.heartbeat_ticks = 1;
	rcfg.pre_vote = true;
	rcfg.check_quorum = true;
	rcfg.applied = n->applied_index;
	rcfg.seed = seed_from_urandom(rcfg.id);
	rcfg.storage = raft_memstorage_storage(n->ms);
	rcfg.logger = n->log ? *n->log : (struct moor_logger){0};
	return raft_create(&rcfg, &n->raft);
}

/* A joining member knows no member list until its snapshot: it answers
 * whoever called it (the leader) at the URL that caller gave. */
static void dial_callers(struct srv_node *n)
{
	for (int i = 0; i < n->n_callers; i++) {
		bool known = false;
		for (int k = 0; k < n->members.n; k++)
			known |= n->members.m[k].id == n->callers[i].id;
		if (!known)
			srv_peer_add(n->peers, n->callers[i].id, &n->callers[i].url);
	}
}

static void on_peer_hello(void *ctx, uint64_t from, const char *url)
{
	struct srv_node *n = ctx;
	struct srv_url u;
	int i;

	if (!n->joining || !*url || srv_url_parse(url, &u) != 0)
		return;
	for (i = 0; i < n->n_callers && n->callers[i].id != from; i++)
		;
	if (i == n->n_callers) {
		if (i == NODE_MAX_MEMBERS)
			return;
		n->n_callers++;
	}
	n->callers[i].id = from;
	n->callers[i].url = u;
	if (n->id)
		dial_callers(n);
}

/* A joining member takes the id the leader's first append, heartbeat or
 * snapshot is addressed to: the id the cluster gave it when it was added.
 * Only a leader sends those, so a member that lags behind (and may still
 * know an earlier member at this URL) cannot name it. The id is written to
 * the identity file before anything is stepped. False: not adopted now
 * (the message is dropped; the leader sends again). */
static bool adopt_id(struct srv_node *n, const struct raft_message *m)
{
	struct raft *old = n->raft;
	int rc;

	if (m->type != RAFT_MSG_APP && m->type != RAFT_MSG_HEARTBEAT && m->type != RAFT_MSG_SNAP)
		return false;
	if (!m->to || !n->cluster_id || n->in_ready || n->stopping)
		return false;
	rc = identity_write(n->cfg->data_dir, n->cluster_id, m->to, true);
	if (rc) {
		LOG(n, MOOR_LOG_ERROR, "cannot write %s/identity: %s", n->cfg->data_dir,
		    moor_strerror(rc));
		return false;
	}
	n->id = m->to;
	n->raft = NULL;
	rc = node_raft_create(n);
	if (rc) {
		LOG(n, MOOR_LOG_ERROR, "cannot start raft as %016llx: %s",
		    (unsigned long long)m->to, moor_strerror(rc));
		abort(); /* the identity is written: the next start uses it */
	}
	raft_destroy(old);
	n->next_req_id = ((n->id & 0xffff) << 48) | ((uint64_t)time(NULL) & 0xffffff) << 24;
	srv_peer_set_self(n->peers, n->id);
	dial_callers(n);
	LOG(n, MOOR_LOG_INFO, "joined cluster %016llx as member %016llx (leader %016llx)",
	    (unsigned long long)n->cluster_id, (unsigned long long)n->id,
	    (unsigned long long)m->from);
	return true;
}

static int input_raft(struct srv_node *n, uint64_t from, const uint8_t *data, size_t len)
{
	struct input_msg *im;
	int rc;

	im = calloc(1, sizeof *im);
	if (!im)
		return 0; /* dropped: raft retransmits */
	rc = srv_raftmsg_decode(data, len, 1u << 20, &im->m, &im->h);
	if (rc) {
		free(im);
		LOG(n, MOOR_LOG_WARN, "undecodable raft message from %016llx (%zu bytes)",
		    (unsigned long long)from, len);
		return rc;
	}
	if (!n->id && im->m.from == from && !adopt_id(n, &im->m)) {
		srv_raftmsg_free(im->h);
		free(im);
		return 0; /* not yet ours to answer */
	}
	if (im->m.from != from || im->m.to != n->id) {
		LOG(n, MOOR_LOG_WARN,
		    "raft message from %016llx claims to be from %016llx to %016llx; dropped",
		    (unsigned long long)from, (unsigned long long)im->m.from,
		    (unsigned long long)im->m.to);
		srv_raftmsg_free(im->h);
		free(im);
		return MOOR_EPROTO;
	}
	if (n->msgs_tail)
		n->msgs_tail->next = im;
	else
		n->msgs_head = im;
	n->msgs_tail = im;
	node_pump(n);
	return 0;
}

int node_input_frame(struct srv_node *n, const uint8_t *data, size_t len)
{
	struct srv_raftmsg_holder *h;
	struct raft_message m;

	/* the sender is the message's own from: it came inside a checked chunk */
	if (srv_raftmsg_decode(data, len, 1u << 20, &m, &h) != 0)
		return MOOR_EPROTO;
	uint64_t from = m.from;
	srv_raftmsg_free(h);
	return input_raft(n, from, data, len);
}

static int on_peer_frame(void *ctx, uint64_t from, const uint8_t *data, size_t len)
{
	struct srv_node *n = ctx;

	if (len < 1)
		return MOOR_EPROTO;
	switch (data[0]) {
	case NODE_FRAME_RAFT:
		return input_raft(n, from, data + 1, len - 1);
	case NODE_FRAME_SNAPSHOT:
		return node_snap_chunk(n, from, data + 1, len - 1);
	default:
		LOG(n, MOOR_LOG_WARN, "unknown frame kind %u from %016llx", data[0],
		    (unsigned long long)from);
		return MOOR_EPROTO;
	}
}

/* etcd's "publish": once there is a leader, a member proposes its own
 * attributes (name, client URLs) so every member can list them. */
static void on_published(void *ctx, int rc, void *resp, int64_t aux)
{
	struct srv_node *n = ctx;

	(void)aux;
	kv_response_free(resp);
	n->publishing = false;
	if (rc == 0)
		n->published = true;
}

static void publish_self(struct srv_node *n)
{
	Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
	Moorpb__MemberAttr a = MOORPB__MEMBER_ATTR__INIT;
	char *purls[SRV_MAX_URLS], *curls[SRV_MAX_URLS];
	const struct srv_config *cfg = n->cfg;

	if (n->published || n->publishing || !n->lead)
		return;
	a.id = n->id;
	a.name = (char *)cfg->name;
	for (int i = 0; i < cfg->initial_advertise_peer_urls.n; i++)
		purls[i] = (char *)cfg->initial_advertise_peer_urls.url[i].text;
	for (int i = 0; i < cfg->advertise_client_urls.n; i++)
		curls[i] = (char *)cfg->advertise_client_urls.url[i].text;
	a.n_peer_urls = (size_t)cfg->initial_advertise_peer_urls.n;
	a.peer_urls = purls;
	a.n_client_urls = (size_t)cfg->advertise_client_urls.n;
	a.client_urls = curls;
	ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_ATTR;
	ir.member_attr = &a;
	if (srv_node_propose(n, &ir, on_published, n) == 0)
		n->publishing = true;
}

static void on_tick(uv_timer_t *t)
{
	struct srv_node *n = t->data;

	n->ticks_due++;
	sweep(n);
	node_pump(n);
	publish_self(n);
	node_promote_refusals_propose(n);
	node_leases_tick(n);
	node_snap_pump(n);
	node_snap_maybe_compact(n);
	node_quota_tick(n);
}

/* Feeds every queued input to the core, then starts the next ready batch. */
static void node_pump(struct srv_node *n)
{
	struct raft_status st;

	if (n->in_ready || n->stopping)
		return;
	while (n->ticks_due) {
		n->ticks_due--;
		raft_tick(n->raft);
	}
	while (n->msgs_head) {
		struct input_msg *im = n->msgs_head;
		n->msgs_head = im->next;
		int rc = raft_step(n->raft, &im->m);
		if (rc && rc != MOOR_EINVAL)
			LOG(n, MOOR_LOG_DEBUG, "raft_step: %s", moor_strerror(rc));
		srv_raftmsg_free(im->h);
		free(im);
	}
	n->msgs_tail = NULL;
	/* every proposal queued since the last batch goes in as one append:
	 * one message per follower, one allocation for the entries' data */
	while (n->props_head) {
		struct input_prop *batch[RAFT_MAX_PROPOSE_BATCH];
		size_t k = 0;
		int rc;

		while (n->props_head && k < RAFT_MAX_PROPOSE_BATCH) {
			batch[k] = n->props_head;
			n->prop_bufs[k].data = batch[k]->data;
			n->prop_bufs[k].len = batch[k]->len;
			n->props_head = batch[k]->next;
			k++;
		}
		rc = raft_propose_batch(n->raft, n->prop_bufs, k);
		for (size_t i = 0; i < k; i++) {
			if (rc)
				pend_fail(n, batch[i]->p, rc);
			free(batch[i]);
		}
	}
	n->props_tail = NULL;
	read_round_start(n);
	node_snap_reports(n);
	node_conf_changes_propose(n);
	if (n->transfer_to) {
		raft_transfer_leadership(n->raft, n->transfer_to);
		n->transfer_to = 0;
	}
	raft_status(n->raft, &st);
	if (st.lead != n->lead)
		leader_changed(n, st.lead);
	n->lead = st.lead;
	n->term = st.term;
	n->role = st.role;
	srv_lessor_set_leader(&n->lessor, n->role == RAFT_LEADER, node_now_ms(),
	                      n->election_timeout_ms);
	if (raft_has_ready(n->raft))
		ready_start(n);
}

/* ---- start-up ---- */

static int peer_is_removed(void *ctx, uint64_t from)
{
	struct srv_node *n = ctx;

	/* Only a member that has applied all it knows is committed may say so:
	 * one still replaying its log may have applied a removal but not the
	 * re-adding of the same member that followed it. */
	if (!n->lead || n->applied_index < n->commit)
		return 0;
	for (int i = 0; i < n->members.n_removed; i++)
		if (n->members.removed[i] == from)
			return 1;
	return 0;
}

/* A peer says we were removed (we may never apply our own removal: the
 * leader stops replicating to a member once it is out). */
static void peer_says_gone(void *ctx, uint64_t by)
{
	struct srv_node *n = ctx;

	if (n->removed)
		return;
	n->removed = true;
	LOG(n, MOOR_LOG_WARN,
	    "member %016llx says this member was removed from the cluster: "
	    "stopping",
	    (unsigned long long)by);
	if (n->on_removed)
		n->on_removed(n->on_removed_ctx);
}

/* A joining member learns its cluster's id from the first peer that
 * addresses it, and its own id from the leader's first message
 * (input_raft); both are kept in the identity file from then on. */
static void on_cluster_id(void *ctx, uint64_t cluster_id)
{
	struct srv_node *n = ctx;

	n->cluster_id = cluster_id;
	n->members.cluster_id = cluster_id;
	n->apply_members.cluster_id = cluster_id;
}

static int mkdir_in(const char *dir, const char *sub, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", dir, sub);
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* <data-dir>/identity names the cluster and member the directory belongs
 * to; written once, atomically, when the member is bootstrapped or learns
 * its id on joining ("joined": the id came from the cluster, not from
 * this member's URLs). */
static int identity_write(const char *dir, uint64_t cluster, uint64_t member, bool joined)
{
	char tmp[1100], path[1100], text[64];
	int fd, rc = 0, len;

	snprintf(tmp, sizeof tmp, "%s/identity.tmp", dir);
	snprintf(path, sizeof path, "%s/identity", dir);
	len = snprintf(text, sizeof text, "%016llx %016llx%s\n", (unsigned long long)cluster,
	               (unsigned long long)member, joined ? " joined" : "");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)len) != len || fsync(fd) != 0)
		rc = -errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0) {
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return rc;
}

/* 1 and the ids when the file is there, 0 when it is not, <0 when unreadable. */
static int identity_read(const char *dir, uint64_t *cluster, uint64_t *member, bool *joined)
{
	char path[1100], word[16] = "";
	unsigned long long c, m;
	FILE *f;
	int ok;

	snprintf(path, sizeof path, "%s/identity", dir);
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	ok = fscanf(f, "%llx %llx", &c, &m) == 2 && m != 0;
	if (ok && fscanf(f, "%15s", word) == 1 && strcmp(word, "joined") != 0)
		ok = 0;
	fclose(f);
	if (!ok)
		return MOOR_ECORRUPT;
	*cluster = c;
	*member = m;
	*joined = strcmp(word, "joined") == 0;
	return 1;
}

static void membership_from_config(struct srv_node *n, const struct srv_config *cfg)
{
	struct node_membership *ms = &n->members;

	memset(ms, 0, sizeof *ms);
	ms->cluster_id = n->cluster_id;
	for (int i = 0; i < cfg->initial_cluster_n; i++) {
		struct srv_node_member *m = &ms->m[ms->n++];
		m->id =
		    srv_member_id(&cfg->initial_cluster[i].peer_urls, cfg->initial_cluster_token);
		snprintf(m->name, sizeof m->name, "%s", cfg->initial_cluster[i].name);
		m->peer_urls = cfg->initial_cluster[i].peer_urls;
		m->in_conf = 1;
		if (strcmp(m->name, cfg->name) == 0)
			m->client_urls = cfg->advertise_client_urls;
	}
}

/* A brand-new member of a new cluster: the initial configuration becomes a
 * snapshot at index 1, written to the WAL and to the store. */
static int bootstrap(struct srv_node *n, char *err, size_t errlen)
{
	uint64_t voters[NODE_MAX_MEMBERS];
	struct raft_hard_state hs = {0};
	struct wal_snapshot ws = {1, 1};
	struct wal_hard_state whs;
	struct wal_batch b = {0};
	void *blob;
	size_t blen;
	uint64_t durable;
	int rc;

	for (int i = 0; i < n->members.n; i++)
		voters[i] = n->members.m[i].id;
	rc = raft_memstorage_bootstrap(n->ms, voters, (size_t)n->members.n);
	if (rc)
		goto fail;
	raft_memstorage_storage(n->ms).hard_state(raft_memstorage_storage(n->ms).ctx, &hs);
	whs.term = hs.term;
	whs.vote = hs.vote;
	whs.commit = hs.commit;
	b.snapshot = &ws;
	b.hard_state = &whs;
	rc = wal_append(n->wal, &b);
	if (rc == 0)
		rc = wal_sync(n->wal, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot write the WAL: %s (%s)", moor_strerror(rc),
		         wal_errmsg(n->wal));
		return rc;
	}
	rc = node_membership_encode(&n->members, &blob, &blen);
	if (rc)
		goto fail;
	rc = kv_batch_begin(n->kv);
	if (rc == 0)
		rc = kv_batch_meta_put(n->kv, 1, "membership", blob, blen);
	free(blob);
	if (rc == 0)
		rc = kv_batch_commit(n->kv, 1, 1);
	else
		kv_batch_abort(n->kv);
	if (rc == 0)
		rc = kv_flush(n->kv, &durable);
	if (rc)
		goto fail;
	rc = identity_write(n->cfg->data_dir, n->cluster_id, n->id, false);
	if (rc) {
		snprintf(err, errlen, "cannot write %s/identity: %s", n->cfg->data_dir,
		         strerror(-rc));
		return rc;
	}
	LOG(n, MOOR_LOG_INFO, "bootstrapped a new cluster %016llx with %d members",
	    (unsigned long long)n->cluster_id, n->members.n);
	return 0;
fail:
	snprintf(err, errlen, "cannot bootstrap the cluster: %s", moor_strerror(rc));
	return rc;
}

/* An existing member: the store's applied state is the snapshot the core
 * starts from, and every WAL entry after it is replayed. */
static int recover(struct srv_node *n, const struct wal_recovered *rec, char *err, size_t errlen)
{
	struct kv_status st;
	struct raft_snapshot snap = {0};
	struct raft_hard_state hs = {0};
	void *blob = NULL;
	size_t blen = 0;
	uint64_t icluster = 0, imember = 0;
	bool joined = false;
	int rc;

	kv_status(n->kv, &st);
	if (rec->has_snapshot && rec->snapshot.index > st.applied_index) {
		rc = node_snap_recover(n, rec->snapshot.index, err, errlen);
		if (rc)
			return rc;
		kv_status(n->kv, &st);
	}
	rc = identity_read(n->cfg->data_dir, &icluster, &imember, &joined);
	if (rc == 0 && st.applied_index == 0 &&
	    n->cfg->initial_cluster_state == SRV_CLUSTER_EXISTING) {
		/* a joining member that stopped before it learned its id */
		n->id = 0;
		n->cluster_id = 0;
		memset(&n->members, 0, sizeof n->members);
		n->joining = true;
		goto load_log;
	}
	if (rc <= 0) {
		snprintf(err, errlen,
		         "data directory %s has a WAL but no readable identity file (%s): it was "
		         "never completely bootstrapped, or belongs to something else",
		         n->cfg->data_dir, rc == 0 ? "missing" : moor_strerror(rc));
		return MOOR_ECORRUPT;
	}
	/* With data, the cluster is the data's: --initial-cluster only served
	 * to bootstrap (etcd ignores it too), and may have grown since. The
	 * member must be the data's: its id came from the cluster when it
	 * joined, or else from its peer URLs and the token, as now. */
	n->cluster_id = icluster;
	if (joined)
		n->id = imember;
	if (imember != n->id) {
		snprintf(err, errlen,
		         "data directory %s belongs to member %016llx of cluster %016llx, but this "
		         "member is %016llx (check --name, --initial-advertise-peer-urls, "
		         "--initial-cluster-token)",
		         n->cfg->data_dir, (unsigned long long)imember,
		         (unsigned long long)icluster, (unsigned long long)n->id);
		return MOOR_ECLUSTERMISMATCH;
	}
	rc = kv_meta_get(n->kv, "membership", &blob, &blen);
	if (rc == MOOR_ENOTFOUND && st.applied_index == 0) {
		n->joining = true; /* joined, but no snapshot applied yet */
		memset(&n->members, 0, sizeof n->members);
		n->members.cluster_id = n->cluster_id;
		goto load_log;
	}
	if (rc == 0)
		rc = node_membership_decode(blob, blen, &n->members);
	free(blob);
	if (rc) {
		snprintf(err, errlen, "cannot read the membership from the store: %s",
		         moor_strerror(rc));
		return rc;
	}
	snap.meta.index = st.applied_index;
	snap.meta.term = st.applied_term;
	for (int i = 0; i < n->members.n; i++) {
		if (n->members.m[i].learner)
			snap.meta.conf.learners[snap.meta.conf.n_learners++] = n->members.m[i].id;
		else
			snap.meta.conf.voters[snap.meta.conf.n_voters++] = n->members.m[i].id;
	}
	rc = raft_memstorage_apply_snapshot(n->ms, &snap);
	if (rc)
		goto fail;
load_log:
	if (rec->last_index > st.applied_index) {
		uint64_t lo = st.applied_index + 1;
		if (rec->first_index > lo) {
			snprintf(
			    err, errlen,
			    "the WAL starts at index %llu but the store needs entries from %llu",
			    (unsigned long long)rec->first_index, (unsigned long long)lo);
			return MOOR_ECORRUPT;
		}
		while (lo <= rec->last_index) {
			struct wal_entries es;
			struct raft_entry re[256];
			rc = wal_read(n->wal, lo,
			              rec->last_index + 1 < lo + 256 ? rec->last_index + 1
			                                             : lo + 256,
			              0, &es);
			if (rc) {
				snprintf(err, errlen, "cannot read the WAL: %s (%s)",
				         moor_strerror(rc), wal_errmsg(n->wal));
				return rc;
			}
			for (size_t i = 0; i < es.n; i++) {
				re[i].index = es.v[i].index;
				re[i].term = es.v[i].term;
				re[i].type = (enum raft_entry_type)es.v[i].type;
				re[i].len = es.v[i].len;
				re[i].data = (unsigned char *)es.v[i].data;
			}
			rc = raft_memstorage_append(n->ms, re, es.n);
			lo += es.n;
			wal_entries_free(&es);
			if (rc)
				goto fail;
		}
	}
	if (rec->has_hard_state) {
		hs.term = rec->hard_state.term;
		hs.vote = rec->hard_state.vote;
		hs.commit = rec->hard_state.commit;
	}
	if (hs.commit < st.applied_index)
		hs.commit = st.applied_index; /* applied implies committed */
	if (hs.commit > rec->last_index && rec->last_index >= st.applied_index)
		hs.commit = rec->last_index > st.applied_index ? rec->last_index : st.applied_index;
	raft_memstorage_set_hard_state(n->ms, &hs);
	n->applied_index = n->handed_index = st.applied_index;
	n->revision = st.revision;
	LOG(n, MOOR_LOG_INFO,
	    "recovered: applied index %llu revision %lld, WAL entries %llu..%llu, term %llu",
	    (unsigned long long)st.applied_index, (long long)st.revision,
	    (unsigned long long)rec->first_index, (unsigned long long)rec->last_index,
	    (unsigned long long)hs.term);
	return 0;
fail:
	snprintf(err, errlen, "cannot rebuild the raft log: %s", moor_strerror(rc));
	return rc;
}

static uint64_t seed_from_urandom(uint64_t id)
{
	uint64_t s = id ^ moor_clock_mono_ns();
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		uint64_t r;
		if (read(fd, &r, sizeof r) == (ssize_t)sizeof r)
			s ^= r;
		close(fd);
	}
	return s;
}

static void node_free(struct srv_node *n)
{
	srv_lessor_free(&n->lessor);
	watch_hub_free(n->hub);
	raft_destroy(n->raft);
	raft_memstorage_destroy(n->ms);
	wal_close(n->wal);
	kv_close(n->kv);
	free(n->pend_hash);
	moor_buf_free(&n->enc);
	free(n);
}

static void on_idle_closed(uv_handle_t *h)
{
	node_free(h->data);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct srv_node *n = h->data;
	if (n->hub)
		uv_close((uv_handle_t *)&n->sync_idle, on_idle_closed);
	else
		node_free(n);
}

int srv_node_start(const struct srv_node_options *opts, struct srv_node **out, char *err,
                   size_t errlen)
{
	const struct srv_config *cfg = opts->cfg;
	struct srv_node *n = calloc(1, sizeof *n);
	struct wal_config wc = {0};
	struct kv_config kc = {0};
	struct wal_recovered rec;
	struct srv_peer_config pc = {0};
	char wal_dir[1100], kv_dir[1100], snap_dir[1100];
	uint64_t ids[SRV_MAX_MEMBERS];
	int rc;

	if (!n)
		return MOOR_ENOMEM;
	n->loop = opts->loop;
	n->on_removed = opts->on_removed;
	n->on_removed_ctx = opts->on_removed_ctx;
	n->cfg = cfg;
	n->log = opts->logger;
	n->tick_ms = opts->tick_ms ? opts->tick_ms : 100;
	moor_buf_init(&n->enc, NULL);
	n->pend_buckets = 1u << 14;
	n->pend_hash = calloc(n->pend_buckets, sizeof *n->pend_hash);
	if (!n->pend_hash) {
		free(n);
		return MOOR_ENOMEM;
	}

	n->id = srv_member_id(&cfg->initial_advertise_peer_urls, cfg->initial_cluster_token);
	for (int i = 0; i < cfg->initial_cluster_n; i++)
		ids[i] =
		    srv_member_id(&cfg->initial_cluster[i].peer_urls, cfg->initial_cluster_token);
	n->cluster_id = srv_cluster_id(ids, cfg->initial_cluster_n, cfg->initial_cluster_token);
	membership_from_config(n, cfg);
	{
		int self = 0;
		for (int i = 0; i < n->members.n; i++)
			self |= n->members.m[i].id == n->id;
		if (!self) {
			snprintf(err, errlen,
			         "--initial-advertise-peer-urls of %s do not match its entry in "
			         "--initial-cluster",
			         cfg->name);
			rc = MOOR_EINVAL;
			goto fail;
		}
	}

	n->snap_in_fd = -1;
	n->snapshot_count = opts->snapshot_count ? opts->snapshot_count : 10000;
	if ((rc = mkdir_in(cfg->data_dir, "wal", wal_dir, sizeof wal_dir)) != 0 ||
	    (rc = mkdir_in(cfg->data_dir, "snap", snap_dir, sizeof snap_dir)) != 0 ||
	    (rc = mkdir_in(cfg->data_dir, "kv", kv_dir, sizeof kv_dir)) != 0) {
		snprintf(err, errlen, "cannot create %s/wal or %s/kv: %s", cfg->data_dir,
		         cfg->data_dir, strerror(-rc));
		goto fail;
	}
	kc.path = kv_dir;
	kc.logger = n->log;
	kc.max_key_bytes = cfg->max_request_bytes;
	kc.max_value_bytes = cfg->max_request_bytes;
	kc.max_txn_ops = cfg->max_txn_ops;
	node_apply_config(n, &kc);
	rc = kv_open(&kc, &n->kv);
	if (rc) {
		snprintf(err, errlen, "cannot open the store in %s: %s", kv_dir, moor_strerror(rc));
		goto fail;
	}
	wc.dir = wal_dir;
	wc.logger = n->log;
	rc = wal_open(&wc, &n->wal, &rec, err, errlen);
	if (rc)
		goto fail;
	rc = raft_memstorage_create(NULL, &n->ms);
	if (rc)
		goto fail;

	if (rec.last_index == 0 && !rec.has_snapshot && !rec.has_hard_state) {
		struct kv_status st;
		kv_status(n->kv, &st);
		if (st.applied_index != 0) {
			snprintf(
			    err, errlen,
			    "the store in %s has applied index %llu but the WAL in %s is empty",
			    kv_dir, (unsigned long long)st.applied_index, wal_dir);
			rc = MOOR_ECORRUPT;
			goto fail;
		}
		if (cfg->initial_cluster_state == SRV_CLUSTER_EXISTING) {
			/* Joining: no log, no configuration, no id; the cluster
			 * id comes with the first hello, the member id with the
			 * leader's first message, the rest with its snapshot. */
			n->id = 0;
			n->cluster_id = 0;
			memset(&n->members, 0, sizeof n->members);
			n->joining = true;
			LOG(n, MOOR_LOG_INFO,
			    "joining an existing cluster: waiting for the leader to contact %s",
			    cfg->initial_advertise_peer_urls.url[0].text);
		} else {
			rc = bootstrap(n, err, errlen);
			if (rc)
				goto fail;
			n->applied_index = n->handed_index = 1;
			n->revision = 1;
		}
	} else {
		rc = recover(n, &rec, err, errlen);
		if (rc)
			goto fail;
	}
	n->apply_members = n->members;
	node_snap_clean(n); /* what a stopped transfer or backup left behind */
	n->election_timeout_ms =
	    (uint64_t)n->tick_ms * (opts->election_ticks ? opts->election_ticks : 10);
	srv_lessor_init(&n->lessor);
	node_alarms_load(n);
	n->quota_bytes = opts->quota_bytes;
	rc = node_leases_load(n);
	if (rc) {
		snprintf(err, errlen, "cannot load the leases: %s", moor_strerror(rc));
		goto fail;
	}
	rc = node_watch_start(n);
	if (rc) {
		snprintf(err, errlen, "cannot start the watch hub: %s", moor_strerror(rc));
		goto fail;
	}

	n->election_ticks = opts->election_ticks ? opts->election_ticks : 10;
	n->next_req_id = ((n->id & 0xffff) << 48) | ((uint64_t)time(NULL) & 0xffffff) << 24;
	rc = node_raft_create(n);
	if (rc) {
		snprintf(err, errlen, "cannot start raft: %s", moor_strerror(rc));
		goto fail;
	}

	pc.cluster_id = n->cluster_id;
	pc.on_cluster_id = on_cluster_id;
	pc.is_removed = peer_is_removed;
	pc.on_gone = peer_says_gone;
	pc.self_id = n->id;
	pc.bind_host = cfg->initial_advertise_peer_urls.url[0].host;
	pc.on_frame = on_peer_frame;
	pc.self_url = cfg->initial_advertise_peer_urls.url[0].text;
	pc.on_hello = on_peer_hello;
	pc.tls = opts->peer_tls;
	pc.ctx = n;
	pc.logger = n->log;
	rc = srv_peer_transport_start(n->loop, &pc, &cfg->listen_peer_urls, &n->peers, err, errlen);
	if (rc)
		goto fail;
	node_membership_changed(n);

	if ((rc = srv_worker_start(&n->wal_worker, n->loop, "moor-wal")) != 0 ||
	    (rc = srv_worker_start(&n->apply_worker, n->loop, "moor-apply")) != 0 ||
	    (rc = srv_worker_start(&n->snap_worker, n->loop, "moor-snap")) != 0 ||
	    (rc = srv_worker_start(&n->compact_worker, n->loop, "moor-compact")) != 0) {
		snprintf(err, errlen, "cannot start worker threads: %s", strerror(-rc));
		goto fail;
	}
	uv_timer_init(n->loop, &n->tick_timer);
	n->tick_timer.data = n;
	uv_timer_start(&n->tick_timer, on_tick, n->tick_ms, n->tick_ms);
	LOG(n, MOOR_LOG_INFO, "member %016llx of cluster %016llx started (%d members)",
	    (unsigned long long)n->id, (unsigned long long)n->cluster_id, n->members.n);
	*out = n;
	{
		/* a cluster of one need not wait an election timeout */
		struct raft_conf_state cs;
		raft_conf_state(n->raft, &cs);
		if (cs.n_voters == 1 && cs.voters[0] == n->id)
			raft_campaign(n->raft);
	}
	node_pump(n);
	return 0;
fail:
	if (n->peers)
		srv_peer_transport_stop(n->peers);
	srv_worker_stop(&n->compact_worker);
	srv_worker_stop(&n->snap_worker);
	srv_worker_stop(&n->wal_worker);
	srv_worker_stop(&n->apply_worker);
	node_free(n);
	return rc;
}

void srv_node_stop(struct srv_node *n)
{
	__atomic_store_n(&n->stopping, true, __ATOMIC_RELAXED);
	uv_timer_stop(&n->tick_timer);
	/* Finish the write and the applies in flight: their done() run here. */
	srv_worker_stop(&n->compact_worker);
	srv_worker_stop(&n->snap_worker);
	srv_worker_stop(&n->wal_worker);
	srv_worker_stop(&n->apply_worker);
	node_snap_stop(n);
	srv_node_fail_waiting(n);
	while (n->msgs_head) {
		struct input_msg *im = n->msgs_head;
		n->msgs_head = im->next;
		srv_raftmsg_free(im->h);
		free(im);
	}
	while (n->props_head) {
		struct input_prop *ip = n->props_head;
		n->props_head = ip->next;
		free(ip);
	}
	srv_peer_transport_stop(n->peers);
	if (n->kv) {
		uint64_t durable;
		kv_flush(n->kv, &durable);
	}
	/* freed once the timer handle has closed */
	uv_close((uv_handle_t *)&n->tick_timer, on_timer_closed);
}

void srv_node_info(const struct srv_node *n, struct srv_node_info *out)
{
	memset(out, 0, sizeof *out);
	out->id = n->id;
	out->cluster_id = n->cluster_id;
	out->leader = n->lead;
	out->term = n->term;
	out->commit = n->commit;
	out->applied = n->applied_index;
	out->revision = n->revision;
	out->role = n->role;
	for (int i = 0; i < n->members.n; i++)
		if (n->members.m[i].id == n->id)
			out->is_learner = n->members.m[i].learner;
}

int srv_node_transfer_leadership(struct srv_node *n, uint64_t target)
{
	if (!n->lead)
		return MOOR_ENOLEADER;
	if (target == 0) {
		for (int i = 0; i < n->members.n; i++)
			if (n->members.m[i].id != n->id && n->members.m[i].in_conf &&
			    !n->members.m[i].learner &&
			    srv_peer_connected(n->peers, n->members.m[i].id)) {
				target = n->members.m[i].id;
				break;
			}
		if (!target)
			return MOOR_EUNAVAILABLE;
	}
	if (n->in_ready) {
		n->transfer_to = target; /* after the batch in flight */
		return 0;
	}
	return raft_transfer_leadership(n->raft, target);
}

int64_t srv_node_lease_remaining(const struct srv_node *n, int64_t id)
{
	return srv_lessor_remaining(&n->lessor, id, node_now_ms());
}

const struct srv_node_metrics *srv_node_metrics(const struct srv_node *n)
{
	return &n->m;
}

static uint64_t dir_bytes(const char *path, int depth)
{
	DIR *d = opendir(path);
	struct dirent *e;
	uint64_t total = 0;
	char p[1400];

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", path, e->d_name);
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 4)
			total += dir_bytes(p, depth + 1);
		else if (S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

uint64_t srv_node_db_size(const struct srv_node *n)
{
	char p[1100];
	snprintf(p, sizeof p, "%s/kv", n->cfg->data_dir);
	return dir_bytes(p, 0);
}

void srv_node_submit_snapshot_job(struct srv_node *n, struct srv_job *job)
{
	srv_worker_submit(&n->snap_worker, job);
}

void srv_node_submit_compact_job(struct srv_node *n, struct srv_job *job)
{
	srv_worker_submit(&n->compact_worker, job);
}

void srv_node_fail_waiting(struct srv_node *n)
{
	bool was = __atomic_load_n(&n->stopping, __ATOMIC_RELAXED);

	/* waiters checked now fail with MOOR_ECLOSED */
	__atomic_store_n(&n->stopping, true, __ATOMIC_RELAXED);
	while (n->pend_head)
		pend_fail(n, n->pend_head, MOOR_ECLOSED);
	node_member_waiters_check(n, 0);
	while (n->conf_q) {
		struct conf_wait *w = n->conf_q;
		n->conf_q = w->next;
		free(w);
	}
	waiters_fail(n->read_next_head, MOOR_ECLOSED);
	n->read_next_head = n->read_next_tail = NULL;
	while (n->rounds) {
		struct read_round *r = n->rounds;
		n->rounds = r->next;
		waiters_fail(r->head, MOOR_ECLOSED);
		free(r);
	}
	__atomic_store_n(&n->stopping, was, __ATOMIC_RELAXED);
}

size_t srv_node_pending(const struct srv_node *n)
{
	return n->n_pending;
}

struct kv *srv_node_kv(const struct srv_node *n)
{
	return n->kv;
}

int srv_node_members(const struct srv_node *n, struct srv_node_member *out, int max)
{
	int k = n->members.n < max ? n->members.n : max;
	memcpy(out, n->members.m, sizeof *out * (size_t)k);
	return k;
}

/*
 * The node's apply side: committed entries are copied off the raft core's
 * memory, applied on the apply thread to the store in one batch per
 * hand-off, and their results brought back to the loop, which answers the
 * waiting clients, advances the applied index and releases reads.
 *
 * The membership (names, URLs, voters and learners) is kept by the apply
 * thread too, changed by member-attribute requests and configuration-change
 * entries, and stored in the store's meta with the applied index, so that a
 * restart finds the membership of exactly the state it reopens.
 */
#include "server/node_int.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "proto/pbcheck.h"

#include <stdlib.h>
#include <string.h>

#define LOG(n, lvl, ...) moor_log((n)->log, lvl, "apply", __VA_ARGS__)

struct apply_result {
	uint64_t id;
	int rc;
	void *resp;
	Moorpb__InternalRequest *lease_req; /* kept for the loop's lessor */
};

struct apply_job {
	struct srv_job job;
	struct srv_node *n;
	struct raft_entry *ents;
	size_t n_ents;
	struct apply_result *res;
	size_t n_res;
	int64_t revision;
	struct node_membership *members; /* set when the membership changed */
	struct watch_batch *events;      /* the batch's events, for the hub */
	struct node_alarms *alarms;      /* set when the alarms changed */
};

void node_apply_config(struct srv_node *n, struct kv_config *kc)
{
	node_watch_config(n, kc);
}

/* ---- membership ---- */

static struct srv_node_member *member_find(struct node_membership *ms, uint64_t id)
{
	for (int i = 0; i < ms->n; i++)
		if (ms->m[i].id == id)
			return &ms->m[i];
	return NULL;
}

static void urls_from_strings(struct srv_url_list *l, char **s, size_t n)
{
	memset(l, 0, sizeof *l);
	for (size_t i = 0; i < n && l->n < SRV_MAX_URLS; i++)
		if (srv_url_parse(s[i], &l->url[l->n]) == 0)
			l->n++;
}

int node_membership_encode(const struct node_membership *ms, void **out, size_t *len)
{
	Moorpb__Membership pb = MOORPB__MEMBERSHIP__INIT;
	Moorpb__MemberAttr attrs[NODE_MAX_MEMBERS], *aptr[NODE_MAX_MEMBERS];
	uint64_t voters[NODE_MAX_MEMBERS], learners[NODE_MAX_MEMBERS];
	char *purls[NODE_MAX_MEMBERS][SRV_MAX_URLS], *curls[NODE_MAX_MEMBERS][SRV_MAX_URLS];

	pb.cluster_id = ms->cluster_id;
	pb.n_removed = (size_t)ms->n_removed;
	pb.removed = (uint64_t *)ms->removed;
	pb.voters = voters;
	pb.learners = learners;
	pb.attrs = aptr;
	for (int i = 0; i < ms->n; i++) {
		const struct srv_node_member *m = &ms->m[i];
		Moorpb__MemberAttr *a = &attrs[i];
		moorpb__member_attr__init(a);
		a->id = m->id;
		a->name = (char *)m->name;
		for (int k = 0; k < m->peer_urls.n; k++)
			purls[i][k] = (char *)m->peer_urls.url[k].text;
		for (int k = 0; k < m->client_urls.n; k++)
			curls[i][k] = (char *)m->client_urls.url[k].text;
		a->n_peer_urls = (size_t)m->peer_urls.n;
		a->peer_urls = purls[i];
		a->n_client_urls = (size_t)m->client_urls.n;
		a->client_urls = curls[i];
		aptr[pb.n_attrs++] = a;
		if (!m->in_conf)
			continue;
		if (m->learner)
			learners[pb.n_learners++] = m->id;
		else
			voters[pb.n_voters++] = m->id;
	}
	*len = moorpb__membership__get_packed_size(&pb);
	*out = malloc(*len ? *len : 1);
	if (!*out)
		return MOOR_ENOMEM;
	moorpb__membership__pack(&pb, *out);
	return 0;
}

int node_membership_decode(const void *data, size_t len, struct node_membership *ms)
{
	Moorpb__Membership *pb = moorpb__membership__unpack(NULL, len, data);

	if (!pb)
		return MOOR_ECORRUPT;
	memset(ms, 0, sizeof *ms);
	ms->cluster_id = pb->cluster_id;
	for (size_t i = 0; i < pb->n_attrs && ms->n < NODE_MAX_MEMBERS; i++) {
		const Moorpb__MemberAttr *a = pb->attrs[i];
		struct srv_node_member *m = &ms->m[ms->n++];
		m->id = a->id;
		snprintf(m->name, sizeof m->name, "%s", a->name ? a->name : "");
		urls_from_strings(&m->peer_urls, a->peer_urls, a->n_peer_urls);
		urls_from_strings(&m->client_urls, a->client_urls, a->n_client_urls);
	}
	for (size_t i = 0; i < pb->n_voters; i++) {
		struct srv_node_member *m = member_find(ms, pb->voters[i]);
		if (m)
			m->in_conf = 1;
	}
	for (size_t i = 0; i < pb->n_learners; i++) {
		struct srv_node_member *m = member_find(ms, pb->learners[i]);
		if (m) {
			m->in_conf = 1;
			m->learner = 1;
		}
	}
	for (size_t i = 0; i < pb->n_removed && ms->n_removed < 64; i++)
		ms->removed[ms->n_removed++] = pb->removed[i];
	moorpb__membership__free_unpacked(pb, NULL);
	return 0;
}

/* The loop learns a new membership: dial the members it did not know,
 * stop dialling removed ones, wake the clients waiting for a change, and
 * stop this member if it was removed. */
void node_membership_changed(struct srv_node *n)
{
	int self_in = 0;

	for (int i = 0; i < n->members.n; i++)
		if (n->members.m[i].id == n->id && n->members.m[i].in_conf)
			self_in = 1;
	if (n->was_member && !self_in && !n->removed) {
		n->removed = true;
		LOG(n, MOOR_LOG_WARN, "this member was removed from the cluster: stopping");
		if (n->on_removed)
			n->on_removed(n->on_removed_ctx);
	}
	n->was_member = self_in;
	/* only when caught up: a member replaying its log may not have applied
	 * the re-adding of a member it saw removed */
	if (n->lead && n->applied_index >= n->commit)
		for (int i = 0; i < n->members.n_removed; i++)
			srv_peer_evict(n->peers, n->members.removed[i]);
	node_member_waiters_check(n, 0);
	for (int i = 0; i < n->members.n; i++) {
		const struct srv_node_member *m = &n->members.m[i];
		if (m->id == n->id || !m->peer_urls.n)
			continue;
		if (m->in_conf)
			srv_peer_add(n->peers, m->id, &m->peer_urls.url[0]);
		else
			srv_peer_remove(n->peers, m->id);
	}
}

/* ---- physical compaction, on its own thread ---- */

struct compact_job {
	struct srv_job job;
	struct srv_node *n;
	int rc;
	uint64_t steps;
};

static void compact_run(struct srv_job *j)
{
	struct compact_job *c = (struct compact_job *)j;
	bool done = false;

	/* small batches: the writer is never held up for long */
	while (!done && c->rc == 0 && !__atomic_load_n(&c->n->stopping, __ATOMIC_RELAXED)) {
		c->rc = kv_compact_step(c->n->kv, 1000, &done);
		c->steps++;
	}
}

static void compact_done(struct srv_job *j)
{
	struct compact_job *c = (struct compact_job *)j;
	struct srv_node *n = c->n;

	n->compact_running = false;
	if (c->rc)
		LOG(n, MOOR_LOG_WARN, "physical compaction stopped: %s", moor_strerror(c->rc));
	else
		LOG(n, MOOR_LOG_INFO, "physical compaction done in %llu steps",
		    (unsigned long long)c->steps);
	free(c);
	node_compact_kick(n);
	node_install_resume(n);
}

/* Starts removing compacted history in the background when there is some. */
void node_compact_kick(struct srv_node *n)
{
	struct kv_status st;
	struct compact_job *c;

	if (n->compact_running || n->stopping || n->install_waiting)
		return;
	kv_status(n->kv, &st);
	if (!st.compact_pending)
		return;
	c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->n = n;
	c->job.run = compact_run;
	c->job.done = compact_done;
	n->compact_running = true;
	srv_worker_submit(&n->compact_worker, &c->job);
}

/* ---- the apply thread ---- */

static int apply_request(struct srv_node *n, uint64_t index, const Moorpb__InternalRequest *r,
                         void **resp, bool *members_changed, bool *alarms_changed)
{
	struct kv *kv = n->kv;

	switch (r->request_case) {
	case MOORPB__INTERNAL_REQUEST__REQUEST_PUT:
		return kv_batch_put(kv, index, r->put, (Etcdserverpb__PutResponse **)resp);
	case MOORPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE:
		return kv_batch_delete_range(kv, index, r->delete_range,
		                             (Etcdserverpb__DeleteRangeResponse **)resp);
	case MOORPB__INTERNAL_REQUEST__REQUEST_TXN:
		return kv_batch_txn(kv, index, r->txn, (Etcdserverpb__TxnResponse **)resp);
	case MOORPB__INTERNAL_REQUEST__REQUEST_COMPACTION:
		return kv_batch_compact(kv, index, r->compaction,
		                        (Etcdserverpb__CompactionResponse **)resp);
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
		return kv_batch_lease_grant(kv, index, r->lease_grant,
		                            (Etcdserverpb__LeaseGrantResponse **)resp);
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE:
		return kv_batch_lease_revoke(kv, index, r->lease_revoke,
		                             (Etcdserverpb__LeaseRevokeResponse **)resp);
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_KEEPALIVE:
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT:
		return 0; /* time is the lessor's, on the loop */
	case MOORPB__INTERNAL_REQUEST__REQUEST_ALARM:
		*alarms_changed = true;
		return node_alarm_apply(n, index, r->alarm);
	case MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE: {
		const Moorpb__MemberChange *c = r->member_change;
		struct node_membership *ms = &n->apply_members;
		struct srv_node_member *m = member_find(ms, c->id);
		switch (c->kind) {
		case MOORPB__MEMBER_CHANGE__KIND__ADD:
			for (int i = 0; i < ms->n; i++)
				for (int k = 0; k < ms->m[i].peer_urls.n && ms->m[i].in_conf; k++)
					for (size_t u = 0; u < c->n_peer_urls; u++)
						if (strcmp(ms->m[i].peer_urls.url[k].text,
						           c->peer_urls[u]) == 0)
							return MOOR_EPEERURLEXISTS;
			/* a peer URL in use is named first, as etcd does */
			if (m && m->in_conf)
				return MOOR_EMEMBEREXISTS;
			for (int i = 0; i < ms->n_removed; i++)
				if (ms->removed[i] == c->id) /* a removed id stays removed */
					return MOOR_EMEMBEREXISTS;
			if (!m) {
				if (ms->n == NODE_MAX_MEMBERS)
					return MOOR_ETOOLARGE;
				m = &ms->m[ms->n++];
				memset(m, 0, sizeof *m);
				m->id = c->id;
			}
			urls_from_strings(&m->peer_urls, c->peer_urls, c->n_peer_urls);
			m->learner = c->learner;
			*members_changed = true;
			return 0;
		case MOORPB__MEMBER_CHANGE__KIND__REMOVE:
			return m && m->in_conf ? 0 : MOOR_EMEMBERNOTFOUND;
		case MOORPB__MEMBER_CHANGE__KIND__PROMOTE:
			if (!m || !m->in_conf)
				return MOOR_EMEMBERNOTFOUND;
			return m->learner ? 0 : MOOR_EINVAL;
		case MOORPB__MEMBER_CHANGE__KIND__PROMOTE_REFUSED:
			return 0; /* no change: node_member_change_effect answers */
		case MOORPB__MEMBER_CHANGE__KIND__UPDATE:
			if (!m || !m->in_conf)
				return MOOR_EMEMBERNOTFOUND;
			urls_from_strings(&m->peer_urls, c->peer_urls, c->n_peer_urls);
			*members_changed = true;
			return 0;
		default:
			return MOOR_EINVAL;
		}
	}
	case MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_ATTR: {
		const Moorpb__MemberAttr *a = r->member_attr;
		struct node_membership *ms = &n->apply_members;
		struct srv_node_member *m = member_find(ms, a->id);
		if (!m) {
			if (ms->n == NODE_MAX_MEMBERS)
				return MOOR_ETOOLARGE;
			m = &ms->m[ms->n++];
			memset(m, 0, sizeof *m);
			m->id = a->id;
		}
		if (a->name && *a->name)
			snprintf(m->name, sizeof m->name, "%s", a->name);
		if (a->n_peer_urls)
			urls_from_strings(&m->peer_urls, a->peer_urls, a->n_peer_urls);
		if (a->n_client_urls)
			urls_from_strings(&m->client_urls, a->client_urls, a->n_client_urls);
		*members_changed = true;
		return 0;
	}
	default:
		return MOOR_EUNSUPPORTED;
	}
}

static void apply_conf_change(struct srv_node *n, const struct raft_entry *e, bool *members_changed)
{
	struct node_membership *ms = &n->apply_members;
	struct raft_conf_change cc;
	struct srv_node_member *m;

	if (raft_conf_change_decode(e->data, e->len, &cc) != 0) {
		LOG(n, MOOR_LOG_ERROR, "undecodable configuration change at index %llu",
		    (unsigned long long)e->index);
		return;
	}
	m = member_find(ms, cc.node_id);
	switch (cc.type) {
	case RAFT_CONF_ADD_VOTER:
	case RAFT_CONF_ADD_LEARNER:
		/* Logs written before ids were salted may re-add a removed id;
		 * a member change can no longer ask for that (see ADD above). */
		for (int i = 0; i < ms->n_removed; i++)
			if (ms->removed[i] == cc.node_id)
				ms->removed[i] = ms->removed[--ms->n_removed];
		if (!m) {
			if (ms->n == NODE_MAX_MEMBERS)
				return;
			m = &ms->m[ms->n++];
			memset(m, 0, sizeof *m);
			m->id = cc.node_id;
		}
		m->in_conf = 1;
		m->learner = cc.type == RAFT_CONF_ADD_LEARNER;
		break;
	case RAFT_CONF_PROMOTE:
		if (m)
			m->learner = 0;
		break;
	case RAFT_CONF_REMOVE:
		if (m) {
			*m = ms->m[ms->n - 1];
			ms->n--;
		}
		if (ms->n_removed == (int)(sizeof ms->removed / sizeof ms->removed[0])) {
			memmove(ms->removed, ms->removed + 1,
			        sizeof ms->removed - sizeof ms->removed[0]);
			ms->n_removed--;
		}
		ms->removed[ms->n_removed++] = cc.node_id;
		break;
	}
	*members_changed = true;
	LOG(n, MOOR_LOG_INFO, "configuration change at index %llu: type %d member %016llx",
	    (unsigned long long)e->index, (int)cc.type, (unsigned long long)cc.node_id);
}

static void apply_job_run(struct srv_job *j)
{
	struct apply_job *a = (struct apply_job *)j;
	struct srv_node *n = a->n;
	const struct raft_entry *last = &a->ents[a->n_ents - 1];
	bool members_changed = false, alarms_changed = false;
	struct kv_status st;
	int rc;

	rc = kv_batch_begin(n->kv);
	MOOR_ASSERT(rc == 0);
	a->res = calloc(a->n_ents, sizeof *a->res);
	MOOR_ASSERT(a->res);
	for (size_t i = 0; i < a->n_ents; i++) {
		const struct raft_entry *e = &a->ents[i];
		bool changed = false;

		if (e->type == RAFT_ENTRY_CONF_CHANGE) {
			apply_conf_change(n, e, &changed);
		} else if (e->len) {
			/* every member skips the same entries: the check is
			 * deterministic (a peer could have sent anything) */
			Moorpb__InternalRequest *r =
			    moor_pb_check(&moorpb__internal_request__descriptor, e->data, e->len,
			                  MOOR_PB_MAX_DEPTH) == MOOR_PB_OK
			        ? moorpb__internal_request__unpack(NULL, e->len, e->data)
			        : NULL;
			struct apply_result *res = &a->res[a->n_res];
			if (!r) {
				LOG(n, MOOR_LOG_ERROR,
				    "undecodable entry at index %llu (or nested over %d deep, or "
				    "with a field numbered 0)",
				    (unsigned long long)e->index, MOOR_PB_MAX_DEPTH);
				continue;
			}
			res->id = r->id;
			res->rc =
			    apply_request(n, e->index, r, &res->resp, &changed, &alarms_changed);
			a->n_res++;
			switch (r->request_case) {
			case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
			case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE:
			case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_KEEPALIVE:
			case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT:
			case MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE:
				res->lease_req = r;
				break;
			default:
				moorpb__internal_request__free_unpacked(r, NULL);
			}
		}
		if (changed) {
			void *blob;
			size_t blen;
			members_changed = true;
			rc = node_membership_encode(&n->apply_members, &blob, &blen);
			MOOR_ASSERT(rc == 0);
			rc = kv_batch_meta_put(n->kv, e->index, "membership", blob, blen);
			MOOR_ASSERT(rc == 0);
			free(blob);
		}
	}
	n->apply_events = NULL;
	uint64_t t0 = moor_clock_mono_ns();
	rc = kv_batch_commit(n->kv, last->index, last->term);
	uint64_t took = moor_clock_mono_ns() - t0;
	srv_hist_observe(&n->m.backend_commit, took);
	if (took > 100000000u) /* etcd warns when an apply takes over 100 ms */
		srv_counter_add(&n->m.slow_applies, 1);
	a->events = n->apply_events;
	n->apply_events = NULL;
	if (rc) {
		/* The store no longer follows the log: going on would serve a
		 * state no other member has. */
		LOG(n, MOOR_LOG_ERROR, "store commit failed at index %llu: %s (%s)",
		    (unsigned long long)last->index, moor_strerror(rc), kv_errmsg(n->kv));
		abort();
	}
	kv_status(n->kv, &st);
	a->revision = st.revision;
	if (members_changed) {
		a->members = malloc(sizeof *a->members);
		MOOR_ASSERT(a->members);
		*a->members = n->apply_members;
	}
	if (alarms_changed) {
		a->alarms = malloc(sizeof *a->alarms);
		MOOR_ASSERT(a->alarms);
		*a->alarms = n->apply_alarms;
	}
}

static void apply_job_done(struct srv_job *j)
{
	struct apply_job *a = (struct apply_job *)j;
	struct srv_node *n = a->n;

	n->applied_index = a->ents[a->n_ents - 1].index;
	n->revision = a->revision;
	if (n->hub)
		node_watch_apply(n, a->events, a->revision);
	else if (a->events)
		a->events->destroy(a->events);
	if (a->alarms) {
		n->alarms = *a->alarms;
		free(a->alarms);
	}
	if (a->members) {
		n->members = *a->members;
		free(a->members);
		if (!n->stopping)
			node_membership_changed(n);
	}
	for (size_t i = 0; i < a->n_res; i++) {
		struct apply_result *res = &a->res[i];
		int64_t aux = 0;
		if (res->lease_req) {
			if (res->lease_req->request_case ==
			    MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE)
				node_member_change_effect(n, res->lease_req->member_change,
				                          res->rc);
			else
				aux = node_lease_effect(n, res->lease_req, res->rc);
			moorpb__internal_request__free_unpacked(res->lease_req, NULL);
		}
		node_apply_complete_pending(n, res->id, res->rc, res->resp, aux);
	}
	free(a->res);
	free(a->ents);
	free(a);
	node_reads_release(n);
	node_compact_kick(n);
	node_install_resume(n);
}

void node_apply_handoff(struct srv_node *n, const struct raft_entry *ents, size_t n_ents)
{
	struct apply_job *a;
	size_t bytes = 0;
	unsigned char *p;

	for (size_t i = 0; i < n_ents; i++)
		bytes += ents[i].len;
	a = calloc(1, sizeof *a);
	MOOR_ASSERT(a);
	/* one block: the entries, then their data */
	a->ents = malloc(sizeof *a->ents * n_ents + bytes);
	MOOR_ASSERT(a->ents);
	p = (unsigned char *)(a->ents + n_ents);
	for (size_t i = 0; i < n_ents; i++) {
		a->ents[i] = ents[i];
		if (ents[i].len) {
			memcpy(p, ents[i].data, ents[i].len);
			a->ents[i].data = p;
			p += ents[i].len;
		}
	}
	a->n_ents = n_ents;
	a->n = n;
	a->job.run = apply_job_run;
	a->job.done = apply_job_done;
	srv_worker_submit(&n->apply_worker, &a->job);
}

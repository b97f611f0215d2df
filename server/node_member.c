/*
 * Membership changes. A client's add, remove or promote is proposed as a
 * normal entry from whichever member took the request (raft forwards it to
 * the leader like any write); when the leader applies it, it proposes the
 * matching raft configuration change, one at a time (raft/raft.h). The
 * member that took the request answers once it has applied the
 * configuration change itself.
 */
#include "server/node_int.h"

#include "common/error.h"
#include "server/ids.h"

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#define LOG(n, lvl, ...) moor_log((n)->log, lvl, "member", __VA_ARGS__)

static void node_member_waiters_refuse(struct srv_node *n, uint64_t id, int want, int rc);

void node_member_change_effect(struct srv_node *n, const Moorpb__MemberChange *c, int rc)
{
	struct conf_wait *w;

	if (rc == 0 && c->kind == MOORPB__MEMBER_CHANGE__KIND__PROMOTE_REFUSED) {
		node_member_waiters_refuse(n, c->id, SRV_MEMBER_VOTER, MOOR_ELEARNERNOTREADY);
		return;
	}
	if (rc || n->role != RAFT_LEADER || c->kind == MOORPB__MEMBER_CHANGE__KIND__UPDATE)
		return;
	w = calloc(1, sizeof *w);
	if (!w)
		return;
	w->cc.node_id = c->id;
	switch (c->kind) {
	case MOORPB__MEMBER_CHANGE__KIND__ADD:
		w->cc.type = c->learner ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER;
		break;
	case MOORPB__MEMBER_CHANGE__KIND__REMOVE:
		w->cc.type = RAFT_CONF_REMOVE;
		break;
	default:
		w->cc.type = RAFT_CONF_PROMOTE;
		break;
	}
	w->deadline_ms = node_now_ms() + SRV_REQUEST_TIMEOUT_MS;
	/* keep the order in which they were applied */
	struct conf_wait **tail = &n->conf_q;
	while (*tail)
		tail = &(*tail)->next;
	*tail = w;
}

static void on_refusal_applied(void *ctx, int rc, void *resp, int64_t aux)
{
	(void)ctx;
	(void)rc;
	(void)aux;
	kv_response_free(resp);
}

/* Raft would not promote a learner that has not caught up: say so through
 * the log, so that whichever member took the promote answers at once
 * (etcd's "can only promote a learner member which is in sync with
 * leader") instead of waiting for a change that will not come. From the
 * tick, outside node_pump (srv_node_propose pumps). */
void node_promote_refusals_propose(struct srv_node *n)
{
	for (int i = 0; i < n->n_refused_promotes; i++) {
		Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
		Moorpb__MemberChange mc = MOORPB__MEMBER_CHANGE__INIT;
		uint64_t id = n->refused_promotes[i];
		int rc;

		mc.kind = MOORPB__MEMBER_CHANGE__KIND__PROMOTE_REFUSED;
		mc.id = id;
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE;
		ir.member_change = &mc;
		rc = srv_node_propose(n, &ir, on_refusal_applied, NULL);
		if (rc) /* the client's wait times out instead */
			LOG(n, MOOR_LOG_WARN, "cannot tell that promoting %016llx was refused: %s",
			    (unsigned long long)id, moor_strerror(rc));
	}
	n->n_refused_promotes = 0;
}

/* From node_pump, outside a ready batch: one change at a time; a change
 * that must wait for the previous one stays queued until its deadline. */
void node_conf_changes_propose(struct srv_node *n)
{
	uint64_t now = node_now_ms();

	while (n->conf_q) {
		struct conf_wait *w = n->conf_q;
		int rc = n->role == RAFT_LEADER ? raft_propose_conf_change(n->raft, &w->cc)
		                                : MOOR_ENOTLEADER;
		if (rc == MOOR_EPENDINGCONF && now < w->deadline_ms)
			return;
		if (rc)
			LOG(n, MOOR_LOG_WARN, "configuration change for %016llx not proposed: %s",
			    (unsigned long long)w->cc.node_id, moor_strerror(rc));
		if (rc == MOOR_ELEARNERNOTREADY &&
		    n->n_refused_promotes <
		        (int)(sizeof n->refused_promotes / sizeof n->refused_promotes[0]))
			n->refused_promotes[n->n_refused_promotes++] = w->cc.node_id;
		n->conf_q = w->next;
		free(w);
	}
}

static int member_state(const struct srv_node *n, uint64_t id)
{
	for (int i = 0; i < n->members.n; i++) {
		const struct srv_node_member *m = &n->members.m[i];
		if (m->id == id && m->in_conf)
			return m->learner ? SRV_MEMBER_LEARNER : SRV_MEMBER_VOTER;
	}
	return SRV_MEMBER_GONE;
}

void node_member_waiters_check(struct srv_node *n, uint64_t now_ms)
{
	struct member_waiter **pp = &n->mwait;

	while (*pp) {
		struct member_waiter *w = *pp;
		int rc = 1;
		if (member_state(n, w->id) == w->want)
			rc = 0;
		else if (n->stopping)
			rc = MOOR_ECLOSED;
		else if (now_ms && now_ms >= w->deadline_ms)
			rc = MOOR_ETIMEOUT;
		if (rc == 1) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->cb(w->ctx, rc);
		free(w);
	}
}

/* Completes with rc every waiter for member id reaching state want. */
static void node_member_waiters_refuse(struct srv_node *n, uint64_t id, int want, int rc)
{
	struct member_waiter **pp = &n->mwait;

	while (*pp) {
		struct member_waiter *w = *pp;
		if (w->id != id || w->want != want) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->cb(w->ctx, rc);
		free(w);
	}
}

int srv_node_wait_member(struct srv_node *n, uint64_t id, int want, srv_read_cb cb, void *ctx)
{
	struct member_waiter *w;

	if (member_state(n, id) == want) {
		cb(ctx, 0);
		return 0;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		return MOOR_ENOMEM;
	w->id = id;
	w->want = want;
	w->cb = cb;
	w->ctx = ctx;
	w->deadline_ms = node_now_ms() + SRV_REQUEST_TIMEOUT_MS;
	w->next = n->mwait;
	n->mwait = w;
	return 0;
}

static bool id_taken(const struct node_membership *ms, uint64_t id)
{
	for (int i = 0; i < ms->n; i++)
		if (ms->m[i].id == id)
			return true;
	for (int i = 0; i < ms->n_removed; i++)
		if (ms->removed[i] == id)
			return true;
	return false;
}

uint64_t srv_node_member_id_for(const struct srv_node *n, const struct srv_url_list *peer_urls)
{
	uint64_t id;

	do {
		uint64_t salt = 0;
		struct timespec ts;
		if (getrandom(&salt, sizeof salt, 0) != (ssize_t)sizeof salt) {
			clock_gettime(CLOCK_REALTIME, &ts);
			salt = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		}
		id = srv_member_id_salted(peer_urls, n->cfg->initial_cluster_token, salt);
	} while (id_taken(&n->members, id));
	return id;
}

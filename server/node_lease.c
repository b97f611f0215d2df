/*
 * Leases in the node: the lessor follows what is applied, and the leader
 * proposes the revoke of each lease whose time is up and, now and then, a
 * checkpoint of every lease's remaining TTL. Keep-alives are proposed
 * through raft like writes: a renewal is then ordered with the revoke it
 * races against, and every member learns it (a keep-alive answered after its
 * lease was revoked says TTL 0, never a TTL the lease no longer has).
 */
#include "server/node_int.h"

#include "common/error.h"

#include <stdlib.h>

#define LOG(n, lvl, ...) moor_log((n)->log, lvl, "lease", __VA_ARGS__)
#define EXPIRY_SCAN_MS 250
#define MAX_REVOKES_PER_SCAN 256
#define MAX_CHECKPOINT 1000

/* The lessor learns an applied lease request; returns a keep-alive's TTL. */
int64_t node_lease_effect(struct srv_node *n, const Moorpb__InternalRequest *r, int rc)
{
	uint64_t now = node_now_ms();

	switch (r->request_case) {
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
		if (rc == 0 &&
		    srv_lessor_grant(&n->lessor, r->lease_grant->id, r->lease_grant->ttl, now) != 0)
			LOG(n, MOOR_LOG_ERROR, "out of memory tracking lease %lld",
			    (long long)r->lease_grant->id);
		return 0;
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE:
		srv_lessor_revoke(&n->lessor, r->lease_revoke->id);
		return 0;
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_KEEPALIVE:
		return srv_lessor_renew(&n->lessor, r->lease_keepalive->id, now);
	case MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT:
		for (size_t i = 0; i < r->lease_checkpoint->n_checkpoints; i++) {
			const Etcdserverpb__LeaseCheckpoint *c =
			    r->lease_checkpoint->checkpoints[i];
			srv_lessor_checkpoint(&n->lessor, c->id, c->remaining_ttl);
		}
		return 0;
	default:
		return 0;
	}
}

static void on_lease_proposal(void *ctx, int rc, void *resp, int64_t aux)
{
	struct srv_node *n = ctx;

	(void)aux;
	if (rc && rc != MOOR_ELEASENOTFOUND)
		LOG(n, MOOR_LOG_DEBUG, "lease proposal: %s", moor_strerror(rc));
	kv_response_free(resp);
}

static void revoke_expired(struct srv_node *n, uint64_t now)
{
	int64_t ids[MAX_REVOKES_PER_SCAN];
	size_t k = srv_lessor_expired(&n->lessor, now, ids, MAX_REVOKES_PER_SCAN);

	for (size_t i = 0; i < k; i++) {
		Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
		Etcdserverpb__LeaseRevokeRequest rv = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
		rv.id = ids[i];
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
		ir.lease_revoke = &rv;
		LOG(n, MOOR_LOG_INFO, "lease %lld expired: revoking", (long long)ids[i]);
		srv_node_propose(n, &ir, on_lease_proposal, n);
	}
}

static void checkpoint(struct srv_node *n, uint64_t now)
{
	int64_t *ids, *rem;
	size_t k;
	Etcdserverpb__LeaseCheckpoint *cps, **cpp;

	if (!n->lessor.n)
		return;
	ids = malloc(sizeof *ids * MAX_CHECKPOINT);
	rem = malloc(sizeof *rem * MAX_CHECKPOINT);
	cps = malloc(sizeof *cps * MAX_CHECKPOINT);
	cpp = malloc(sizeof *cpp * MAX_CHECKPOINT);
	if (ids && rem && cps && cpp) {
		Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
		Etcdserverpb__LeaseCheckpointRequest req =
		    ETCDSERVERPB__LEASE_CHECKPOINT_REQUEST__INIT;
		k = srv_lessor_snapshot(&n->lessor, now, ids, rem, MAX_CHECKPOINT);
		for (size_t i = 0; i < k; i++) {
			etcdserverpb__lease_checkpoint__init(&cps[i]);
			cps[i].id = ids[i];
			cps[i].remaining_ttl = rem[i];
			cpp[i] = &cps[i];
		}
		req.n_checkpoints = k;
		req.checkpoints = cpp;
		ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT;
		ir.lease_checkpoint = &req;
		srv_node_propose(n, &ir, on_lease_proposal, n);
	}
	free(ids);
	free(rem);
	free(cps);
	free(cpp);
}

void node_leases_tick(struct srv_node *n)
{
	uint64_t now = node_now_ms();

	if (n->stopping || n->role != RAFT_LEADER)
		return;
	if (now - n->last_expiry_scan_ms >= EXPIRY_SCAN_MS) {
		n->last_expiry_scan_ms = now;
		revoke_expired(n, now);
	}
	if (!n->last_checkpoint_ms)
		n->last_checkpoint_ms = now;
	if (now - n->last_checkpoint_ms >= SRV_LEASE_CHECKPOINT_MS) {
		n->last_checkpoint_ms = now;
		checkpoint(n, now);
	}
}

/* At start: every lease the store holds, with its granted TTL. */
int node_leases_load(struct srv_node *n)
{
	Etcdserverpb__LeaseLeasesResponse *all = NULL;
	uint64_t now = node_now_ms();
	int rc = kv_lease_leases(n->kv, &all);

	if (rc)
		return rc;
	for (size_t i = 0; i < all->n_leases && rc == 0; i++) {
		Etcdserverpb__LeaseTimeToLiveRequest q =
		    ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
		Etcdserverpb__LeaseTimeToLiveResponse *t = NULL;
		q.id = all->leases[i]->id;
		if (kv_lease_timetolive(n->kv, &q, &t) == 0)
			rc = srv_lessor_grant(&n->lessor, q.id, t->grantedttl, now);
		kv_response_free(t);
	}
	kv_response_free(all);
	return rc;
}

/*
 * The lessor: when each lease expires. The store keeps the lease table (id,
 * granted TTL, attached keys) as replicated state; expiry is a matter of
 * time, which only the server knows, and only the leader acts on it: it
 * proposes the revoke of a lease whose time is up, and the revoke is applied
 * everywhere like any write.
 *
 * Every member keeps this table in step with what it applies (grants,
 * revokes, keep-alives, checkpoints), so that a member that becomes leader
 * already knows every lease. A new leader gives every lease its last
 * checkpointed remaining TTL (or its full TTL when it has none) plus one
 * election timeout, so no lease expires early because of a failover and a
 * long TTL is not reset to full (the leader checkpoints remaining TTLs
 * through raft every SRV_LEASE_CHECKPOINT_MS).
 *
 * Time is the caller's monotonic milliseconds. Loop thread only.
 */
#ifndef MOOR_SERVER_LESSOR_H
#define MOOR_SERVER_LESSOR_H

#include <stddef.h>
#include <stdint.h>

#define SRV_LEASE_CHECKPOINT_MS 30000
#define SRV_LEASE_REVOKE_RETRY_MS 3000
#define SRV_LEASE_MIN_TTL_S 2 /* etcd: 1.5 election timeouts at defaults */

struct srv_lease {
	int64_t id;
	int64_t ttl_s;
	uint64_t expiry_ms;    /* meaningful on the leader */
	int64_t remaining_ms;  /* last checkpoint, -1: none */
	uint64_t revoke_at_ms; /* a revoke was proposed; retried after this */
};

struct srv_lessor {
	struct srv_lease *v;
	size_t n, cap;
	int leader;
};

void srv_lessor_init(struct srv_lessor *l);
void srv_lessor_free(struct srv_lessor *l);
/* A lease granted (applied); 0 or MOOR_ENOMEM. */
int srv_lessor_grant(struct srv_lessor *l, int64_t id, int64_t ttl_s, uint64_t now_ms);
void srv_lessor_revoke(struct srv_lessor *l, int64_t id);
/* A keep-alive applied: the TTL the lease has again, 0 when unknown. */
int64_t srv_lessor_renew(struct srv_lessor *l, int64_t id, uint64_t now_ms);
void srv_lessor_checkpoint(struct srv_lessor *l, int64_t id, int64_t remaining_ms);
/* This member became leader (1) or stopped being one (0). */
void srv_lessor_set_leader(struct srv_lessor *l, int leader, uint64_t now_ms, uint64_t extend_ms);
/* Leader: up to max leases whose time is up and whose revoke is due. */
size_t srv_lessor_expired(struct srv_lessor *l, uint64_t now_ms, int64_t *ids, size_t max);
/* Remaining seconds (leader: by its clock; else the last checkpoint or the
 * TTL), -1 when unknown. */
int64_t srv_lessor_remaining(const struct srv_lessor *l, int64_t id, uint64_t now_ms);
/* Leader: fills ids/remaining for up to max leases, for a checkpoint. */
size_t srv_lessor_snapshot(const struct srv_lessor *l, uint64_t now_ms, int64_t *ids,
                           int64_t *remaining_ms, size_t max);

#endif

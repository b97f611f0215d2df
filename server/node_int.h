/*
 * The node's private state, shared by node.c (the loop side: raft, WAL
 * hand-off, proposals, reads) and node_apply.c (the apply thread's jobs).
 */
#ifndef MOOR_SERVER_NODE_INT_H
#define MOOR_SERVER_NODE_INT_H

#include "server/node.h"
#include "server/lessor.h"
#include "server/raftmsg.h"
#include "watch/watch.h"

#include <stdbool.h>

#define NODE_MAX_MEMBERS SRV_MAX_MEMBERS

struct pending {
	uint64_t id;
	srv_apply_cb cb;
	void *ctx;
	uint64_t deadline_ms;
	struct pending *hnext;         /* hash chain */
	struct pending *tprev, *tnext; /* by deadline (= by arrival) */
};

struct input_msg {
	struct input_msg *next;
	struct raft_message m;
	struct srv_raftmsg_holder *h;
};

struct input_prop {
	struct input_prop *next;
	struct pending *p;
	size_t len;
	uint8_t data[];
};

struct read_waiter {
	struct read_waiter *next;
	srv_read_cb cb;
	void *ctx;
	uint64_t deadline_ms;
};

struct read_round {
	struct read_round *next;
	uint64_t ctx;
	uint64_t index;
	bool has_index;
	uint64_t started_ms;
	struct read_waiter *head, *tail;
};

/* The membership as the apply thread maintains it. */
struct node_membership {
	uint64_t cluster_id;
	int n;
	struct srv_node_member m[NODE_MAX_MEMBERS];
};

struct srv_node {
	uv_loop_t *loop;
	const struct srv_config *cfg;
	const struct moor_logger *log;
	uint64_t id, cluster_id;
	unsigned tick_ms;

	struct raft *raft;
	struct raft_memstorage *ms;
	struct wal *wal;
	struct kv *kv;
	struct srv_worker wal_worker, apply_worker;
	struct srv_peer_transport *peers;
	uv_timer_t tick_timer;
	struct moor_buf enc; /* message encoding scratch */

	/* the ready batch in flight */
	bool in_ready;
	struct raft_ready rd;
	uint64_t unreachable[NODE_MAX_MEMBERS];
	int n_unreachable;

	/* inputs queued while a batch is in flight */
	unsigned ticks_due;
	struct input_msg *msgs_head, *msgs_tail;
	struct input_prop *props_head, *props_tail;

	/* what raft says */
	uint64_t term, lead, commit;
	enum raft_role role;

	/* apply */
	uint64_t handed_index; /* last index handed to the apply thread */
	uint64_t applied_index;
	int64_t revision;
	struct node_membership members;       /* the loop's copy */
	struct node_membership apply_members; /* the apply thread's */

	/* client requests waiting for their entry */
	struct pending **pend_hash;
	size_t pend_buckets, n_pending;
	struct pending *pend_head, *pend_tail;
	uint64_t next_req_id;

	/* linearizable reads */
	struct read_waiter *read_next_head, *read_next_tail;
	struct read_round *rounds;
	uint64_t next_read_ctx;

	/* leases */
	struct srv_lessor lessor;
	uint64_t last_checkpoint_ms, last_expiry_scan_ms;
	uint64_t election_timeout_ms;

	/* watches */
	struct watch_hub *hub;
	uv_idle_t sync_idle;
	struct watch_batch *apply_events; /* set by the apply thread during a commit */

	bool published, publishing; /* our attributes, proposed once */
	bool stopping;
	int handles;
};

uint64_t node_now_ms(void);

/* node_apply.c */
void node_apply_config(struct srv_node *n, struct kv_config *kc);

/* node_watch.c */
void node_watch_config(struct srv_node *n, struct kv_config *kc);
int node_watch_start(struct srv_node *n);
void node_watch_apply(struct srv_node *n, struct watch_batch *b, int64_t revision);
void node_apply_handoff(struct srv_node *n, const struct raft_entry *ents, size_t n_ents);
void node_apply_complete_pending(struct srv_node *n, uint64_t id, int rc, void *resp, int64_t aux);
void node_leases_tick(struct srv_node *n);
int64_t node_lease_effect(struct srv_node *n, const Moorpb__InternalRequest *r, int rc);
int node_leases_load(struct srv_node *n);
void node_reads_release(struct srv_node *n);
int node_membership_encode(const struct node_membership *ms, void **out, size_t *len);
int node_membership_decode(const void *data, size_t len, struct node_membership *ms);
void node_membership_changed(struct srv_node *n);

#endif

/*
 * The node's private state, shared by node.c (the loop side: raft, WAL
 * hand-off, proposals, reads) and node_apply.c (the apply thread's jobs).
 */
#ifndef MOOR_SERVER_NODE_INT_H
#define MOOR_SERVER_NODE_INT_H

#include "server/node.h"
#include "server/lessor.h"
#include "server/metrics.h"
#include "server/raftmsg.h"
#include "watch/watch.h"

#include <stdbool.h>

#define NODE_MAX_MEMBERS SRV_MAX_MEMBERS

/* The first byte of every peer frame says what follows. */
#define NODE_FRAME_RAFT 0     /* a moorraftpb.Message */
#define NODE_FRAME_SNAPSHOT 1 /* a moorraftpb.SnapshotChunk */

struct snap_out;

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

/* Raised alarms, replicated (etcd's alarm store). */
#define NODE_MAX_ALARMS 16
struct node_alarms {
	int n;
	struct {
		uint64_t member;
		int type; /* ETCDSERVERPB__ALARM_TYPE__NOSPACE, __CORRUPT */
	} a[NODE_MAX_ALARMS];
};

struct conf_wait {
	struct conf_wait *next;
	struct raft_conf_change cc;
	uint64_t deadline_ms;
};

struct member_waiter {
	struct member_waiter *next;
	uint64_t id;
	int want; /* SRV_MEMBER_* */
	srv_read_cb cb;
	void *ctx;
	uint64_t deadline_ms;
};

/* The membership as the apply thread maintains it. */
struct node_membership {
	uint64_t cluster_id;
	int n;
	struct srv_node_member m[NODE_MAX_MEMBERS];
	int n_removed;
	uint64_t removed[64]; /* ids removed for good, newest kept */
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
	struct raft_buf prop_bufs[RAFT_MAX_PROPOSE_BATCH];

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
	int election_ticks;

	/* watches */
	struct watch_hub *hub;
	uv_idle_t sync_idle;
	struct watch_batch *apply_events; /* set by the apply thread during a commit */

	/* physical compaction of the store's history */
	struct srv_worker compact_worker;
	bool compact_running;

	/* snapshots */
	struct srv_worker snap_worker;
	uint64_t snapshot_count;
	bool compacting, snap_installed, install_waiting;
	uint64_t last_compact_trigger, prev_flush_index, mem_compact_index;
	struct node_membership prev_flush_members;
	struct snap_out *snap_out[NODE_MAX_MEMBERS];
	struct {
		uint64_t id;
		bool ok;
	} snap_reports[NODE_MAX_MEMBERS];
	int n_snap_reports;
	int snap_in_fd;
	uint64_t snap_in_off, snap_in_from, snap_in_index, snap_in_seq;
	char snap_in_arc[1100];
	uint32_t snap_in_crc;
	char snap_in_dir[1100];
	void (*on_watch_reset)(void *ctx);
	void *on_watch_reset_ctx;

	/* membership changes */
	struct conf_wait *conf_q; /* raft conf changes to propose (leader) */
	/* learners raft would not promote, to say so through the log */
	uint64_t refused_promotes[8];
	int n_refused_promotes;
	struct member_waiter *mwait;
	bool was_member, removed;
	bool joining; /* started empty with --initial-cluster-state existing */
	/* joining: who said hello, and where it listens (it may be the leader,
	 * to be dialled back once this member knows its own id) */
	struct {
		uint64_t id;
		struct srv_url url;
	} callers[NODE_MAX_MEMBERS];
	int n_callers;
	uint64_t transfer_to; /* a leadership transfer asked during a batch */
	void (*on_removed)(void *ctx);
	void *on_removed_ctx;

	struct srv_node_metrics m;

	/* alarms and the backend quota */
	struct node_alarms alarms;       /* the loop's copy */
	struct node_alarms apply_alarms; /* the apply thread's */
	uint64_t quota_bytes;
	uint64_t last_quota_check_ms;
	bool alarm_proposing;

	bool published, publishing; /* our attributes, proposed once */
	bool stopping;
	int handles;
};

uint64_t node_now_ms(void);

/* node_apply.c */
void node_apply_config(struct srv_node *n, struct kv_config *kc);

/* node_alarm.c */
int node_alarm_apply(struct srv_node *n, uint64_t index, const Etcdserverpb__AlarmRequest *r);
void node_alarms_load(struct srv_node *n);
void node_quota_tick(struct srv_node *n);

/* node_snap.c */
void node_snap_maybe_compact(struct srv_node *n);
void node_snap_send(struct srv_node *n, const struct raft_message *m);
void node_snap_pump(struct srv_node *n);
void node_snap_reports(struct srv_node *n);
int node_snap_chunk(struct srv_node *n, uint64_t from, const uint8_t *data, size_t len);
int node_snap_install(struct srv_node *n, const struct raft_snapshot *snap);
void node_snap_stop(struct srv_node *n);
void node_snap_clean(struct srv_node *n);
int node_snap_recover(struct srv_node *n, uint64_t index, char *err, size_t errlen);
/* node.c: a raft message (without the frame kind) for the core's input */
int node_input_frame(struct srv_node *n, const uint8_t *data, size_t len);
/* node.c: finish the ready batch that waited for the apply thread */
void node_ready_resume(struct srv_node *n);
bool node_store_idle(const struct srv_node *n);
void node_install_resume(struct srv_node *n);

/* node_watch.c */
void node_watch_reset(struct srv_node *n);
void node_watch_config(struct srv_node *n, struct kv_config *kc);
int node_watch_start(struct srv_node *n);
void node_watch_apply(struct srv_node *n, struct watch_batch *b, int64_t revision);
void node_apply_handoff(struct srv_node *n, const struct raft_entry *ents, size_t n_ents);
void node_apply_complete_pending(struct srv_node *n, uint64_t id, int rc, void *resp, int64_t aux);
void node_leases_tick(struct srv_node *n);
void node_member_change_effect(struct srv_node *n, const Moorpb__MemberChange *c, int rc);
void node_member_waiters_check(struct srv_node *n, uint64_t now_ms);
void node_conf_changes_propose(struct srv_node *n);
void node_promote_refusals_propose(struct srv_node *n);
int64_t node_lease_effect(struct srv_node *n, const Moorpb__InternalRequest *r, int rc);
int node_leases_load(struct srv_node *n);
void node_reads_release(struct srv_node *n);
void node_compact_kick(struct srv_node *n);
int node_membership_encode(const struct node_membership *ms, void **out, size_t *len);
int node_membership_decode(const void *data, size_t len, struct node_membership *ms);
void node_membership_changed(struct srv_node *n);

#endif

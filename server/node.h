/*
 * The replicated node: the raft core, the WAL, the MVCC store and the peer
 * transport, wired into moord's libuv loop (DESIGN.md, "The write path").
 *
 * The loop owns the raft core. A ready batch is handled in three steps:
 *   1. the leader's messages go out at once (msgs_now) while the WAL thread
 *      writes and fdatasyncs the entries and hard state;
 *   2. when the WAL is done: the entries join the in-memory log the core
 *      reads (raft_memstorage), the rest of the messages go out, the
 *      committed entries are handed to the apply thread, and the core is
 *      advanced;
 *   3. the apply thread applies each handed-over run of entries to the store
 *      in one RocksDB batch and reports back; the loop then answers the
 *      clients whose requests those entries carried and releases the
 *      linearizable reads waiting for that index.
 * Between raft_ready and raft_advance the core takes no input: messages,
 * proposals, ticks and read requests that arrive meanwhile are queued and fed
 * in together afterwards, so one WAL write and one fsync carry all of them.
 *
 * Threading: every srv_node_* call on the loop thread.
 */
#ifndef MOOR_SERVER_NODE_H
#define MOOR_SERVER_NODE_H

#include "common/log.h"
#include "kv/kv.h"
#include "proto/internal.pb-c.h"
#include "raft/raft.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/peer.h"
#include "server/worker.h"
#include "wal/wal.h"
#include "watch/watch.h"

#include <stdint.h>
#include <uv.h>

/* Limits. */
#define SRV_MAX_APPLY_LAG 5000      /* committed - applied before "too many requests" */
#define SRV_MAX_PENDING 100000      /* client requests waiting to apply */
#define SRV_REQUEST_TIMEOUT_MS 7000 /* etcd: 5 s + 2 election timeouts */
#define SRV_READ_RETRY_MS 500       /* a read-index round unanswered this long is redone */

/* A write's outcome: rc 0 with the store's response (a kv response: the
 * callback frees it with kv_response_free; NULL for requests the store does
 * not answer), or a negative code and NULL. `aux` carries a number for
 * requests answered by the server itself (a keep-alive: the lease's TTL,
 * 0 when the lease is gone). */
typedef void (*srv_apply_cb)(void *ctx, int rc, void *resp, int64_t aux);
/* A linearizable read may now be served from the local store (rc 0), or
 * cannot be (MOOR_ENOLEADER, MOOR_ETIMEOUT, MOOR_ECLOSED at shutdown). */
typedef void (*srv_read_cb)(void *ctx, int rc);

struct srv_node_member {
	uint64_t id;
	char name[64];
	struct srv_url_list peer_urls;
	struct srv_url_list client_urls;
	int learner;
	int in_conf; /* 0: known by its attributes only, not (yet) a member */
};

struct srv_node;

/* What the node counts, for /metrics. */
struct srv_node_metrics {
	struct srv_hist wal_fsync;      /* etcd_disk_wal_fsync_duration_seconds */
	struct srv_hist backend_commit; /* etcd_disk_backend_commit_duration_seconds */
	struct srv_hist snapshot_save;  /* etcd_debugging_snap_save_total_duration_seconds */
	uint64_t leader_changes;        /* etcd_server_leader_changes_seen_total */
	uint64_t proposals_failed;      /* etcd_server_proposals_failed_total */
	uint64_t slow_applies;          /* etcd_server_slow_apply_total */
	uint64_t snapshots_sent, snapshots_received;
};
const struct srv_node_metrics *srv_node_metrics(const struct srv_node *n);

struct srv_node_options {
	/* Called once when this member applies its own removal. */
	void (*on_removed)(void *ctx);
	void *on_removed_ctx;
	uv_loop_t *loop;
	const struct srv_config *cfg;
	const struct moor_logger *logger;
	unsigned tick_ms;        /* heartbeat interval, default 100 */
	uint64_t snapshot_count; /* applied entries between compactions, default 10000 */
	uint64_t quota_bytes;    /* backend quota; 0: 2 GiB */
	unsigned election_ticks; /* default 10 */
	/* Peer TLS material (borrowed; outlives the node), or NULL. */
	struct srv_peer_tls_ctx *peer_tls;
};

/*
 * Opens the WAL and the store under cfg->data_dir, recovers (replaying the
 * log after the store's applied index), bootstraps a new cluster when the
 * data directory is empty and --initial-cluster-state is new, and starts the
 * peer transport, the ticks and the worker threads. Refuses a data directory
 * of another cluster or member. Errors: a negative code with a message in err.
 */
int srv_node_start(const struct srv_node_options *opts, struct srv_node **out, char *err,
                   size_t errlen);

/* Stops taking requests, fails what is pending with MOOR_ECLOSED, stops the
 * threads (finishing the write and apply in flight), closes everything. The
 * node is freed once its handles close (keep running the loop). */
void srv_node_stop(struct srv_node *n);

/* Proposes `req` (req->id is set here). Errors, with cb not called:
 * MOOR_ENOLEADER, MOOR_ETOOMANYREQUESTS, MOOR_ETOOLARGE, MOOR_ECLOSED. */
int srv_node_propose(struct srv_node *n, Moorpb__InternalRequest *req, srv_apply_cb cb, void *ctx);

/* Waits for a linearizable read point; many reads share one round. */
int srv_node_read_barrier(struct srv_node *n, srv_read_cb cb, void *ctx);

struct srv_node_info {
	uint64_t id, cluster_id, leader, term, commit, applied;
	int64_t revision;
	int is_learner;
	enum raft_role role;
};
void srv_node_info(const struct srv_node *n, struct srv_node_info *out);

/* Bytes the store occupies on disk (the files under <data-dir>/kv; a walk
 * of a few directories, not of the data). */
uint64_t srv_node_db_size(const struct srv_node *n);

/* Raised alarms (type ETCDSERVERPB__ALARM_TYPE__*), as applied; returns
 * the count, at most max. */
int srv_node_alarms(const struct srv_node *n, uint64_t *members, int *types, int max);
/* 1 while a NOSPACE alarm is raised: writes that add data are refused. */
int srv_node_nospace(const struct srv_node *n);

/* Runs a job on the node's snapshot thread (checkpoints are made there). */
void srv_node_submit_snapshot_job(struct srv_node *n, struct srv_job *job);
/* Runs a job on the node's compaction thread (defragment runs there). */
void srv_node_submit_compact_job(struct srv_node *n, struct srv_job *job);

/* Answers every client still waiting (writes, reads, membership calls)
 * with MOOR_ECLOSED, as the HTTP server is about to stop. */
void srv_node_fail_waiting(struct srv_node *n);

/* Client writes proposed here and not yet answered. */
size_t srv_node_pending(const struct srv_node *n);

/* The store, for reads on the loop thread (kv_range, kv_hash_kv...). */
struct kv *srv_node_kv(const struct srv_node *n);

/* The watch hub (single-threaded: loop thread only). */
struct watch_hub *srv_node_hub(const struct srv_node *n);

/* The remaining TTL of a lease in seconds as this member knows it (the
 * leader exactly; a follower from the last checkpoint), -1 if unknown. */
int64_t srv_node_lease_remaining(const struct srv_node *n, int64_t id);

/* Waits until member `id` is what `want` says (applied here), then
 * cb(ctx, 0); cb(ctx, MOOR_ETIMEOUT) after the request timeout. */
#define SRV_MEMBER_VOTER 1
#define SRV_MEMBER_LEARNER 2
#define SRV_MEMBER_GONE 3
int srv_node_wait_member(struct srv_node *n, uint64_t id, int want, srv_read_cb cb, void *ctx);

/* A fresh id for a member added with these peer URLs: never one a member
 * has or had (see server/ids.h). */
uint64_t srv_node_member_id_for(const struct srv_node *n, const struct srv_url_list *peer_urls);

/* Asks the leader to hand leadership to `target` (0: the most up-to-date
 * other voter). MOOR_ENOLEADER, MOOR_EINVAL. */
int srv_node_transfer_leadership(struct srv_node *n, uint64_t target);

/* Called when the store was replaced by a snapshot: every watch must be
 * ended (clients resume from their last revision). */
void srv_node_set_watch_reset(struct srv_node *n, void (*fn)(void *ctx), void *ctx);

/* The members as applied; returns the count (at most `max`). */
int srv_node_members(const struct srv_node *n, struct srv_node_member *out, int max);

#endif

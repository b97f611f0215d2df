/*
 * raft — the consensus core of moor.
 *
 * A deterministic state machine in the manner of etcd's raft library. It does
 * no I/O, reads no clock, starts no thread and keeps no global state: every
 * byte lives in a `struct raft` handle the caller owns, time is the number of
 * raft_tick() calls, randomness (the election-timeout jitter) comes from a
 * PRNG seeded by the caller, and the log is read through `struct
 * raft_storage`, which the caller implements (raft_memstorage_* is an
 * in-memory one for tests and the simulator).
 *
 * Inputs:  raft_tick, raft_step (a message from a peer), raft_propose[_batch],
 *          raft_propose_conf_change, raft_read_index, raft_transfer_leadership,
 *          raft_campaign, raft_report_snapshot, raft_report_unreachable.
 * Output:  a ready batch (raft_ready), acknowledged with raft_advance.
 *
 * THE READY/ADVANCE CONTRACT
 *
 *   while (raft_has_ready(r)) {
 *           struct raft_ready rd;
 *           raft_ready(r, &rd);
 *           1. send rd.msgs_now          (may go out before anything is persisted)
 *           2. persist rd.snapshot (if any), rd.entries, then rd.hard_state
 *              (if rd.hard_state_changed); with rd.must_sync, fsync before step 3
 *           3. send rd.msgs_after_persist
 *           4. apply rd.snapshot (if any) to the state machine, then
 *              rd.committed[0..n) in order, then serve rd.read_states once the
 *              state machine has applied up to each one's index
 *           5. raft_advance(r, &rd)
 *   }
 *
 * - Between raft_ready() and raft_advance() the caller calls no other raft_*
 *   function on the handle except the read-only ones (raft_status,
 *   raft_term_at, raft_conf_state, raft_conf_state_applied). This is what
 *   lets the batch point into the core's own memory without copies.
 * - What to persist, and how: rd.entries are consecutive and replace
 *   whatever the storage holds from rd.entries[0].index on (a follower's
 *   log may be truncated); rd.snapshot replaces the storage's log and
 *   snapshot entirely; rd.hard_state goes last. Once raft_advance() returns,
 *   the core reads those entries back only through struct raft_storage, so
 *   the storage must serve them by then.
 * - Memory: every pointer in a ready batch (entries and their data, the
 *   snapshot and its data, committed entries, messages, their entries and
 *   their snapshot, read states) is owned by the core and valid until
 *   raft_advance() returns. The caller copies what it keeps longer (a
 *   transport encodes messages before advancing; storage copies entries).
 * - What is safe to send before persisting: rd.msgs_now holds only what a
 *   leader says to its followers (appends, heartbeats, snapshots, read-index
 *   answers). Sending them in parallel with the local write is safe because the
 *   leader counts its own copy of an entry towards a quorum only after
 *   raft_advance() tells it the entry is persisted. Everything else (vote
 *   answers, append acknowledgements, a follower's forwarded proposals) is in
 *   rd.msgs_after_persist: those promise state that must already be durable.
 * - Applying: committed entries are handed out once each, in index order, with
 *   no gap (a snapshot in the batch covers what comes before them). A
 *   committed entry may still be in rd.entries of the same batch; it is
 *   applied only after step 2. An entry of type RAFT_ENTRY_CONF_CHANGE took
 *   effect in the core when it was appended (see MEMBERSHIP); the caller
 *   decodes it with raft_conf_change_decode() when applying it, for its own
 *   member table, and records raft_conf_state_applied() in its snapshots.
 * - A read state {index, context} means: a linearizable read tagged `context`
 *   may be served once the local state machine has applied `index`.
 * - After a crash, the caller restarts with raft_create() on the storage
 *   holding exactly what was persisted: every unpersisted entry, hard state,
 *   and message not yet sent is lost, and that is safe.
 *
 * MEMBERSHIP: ONE CHANGE AT A TIME
 *
 * A configuration change (add voter, remove voter, add learner, promote
 * learner) is an entry of type RAFT_ENTRY_CONF_CHANGE. As in the Raft
 * dissertation (§4.1), it takes effect on each member as soon as that member
 * appends it, committed or not, and is undone if the entry is truncated: a
 * member always uses the latest configuration in its log. (Waiting until it
 * is applied would let a member that lags in applying use a configuration
 * two changes old, whose majorities need not intersect the newest one's.)
 * The leader accepts a new change only when the previous one has been
 * applied on the leader (else MOOR_EPENDINGCONF), and a new leader accepts
 * none until it has applied the empty entry it appends at the start of its
 * term. Any two configurations in force at the same time then differ by at
 * most one voter, so every majority of one intersects every majority of the
 * other; requiring the new leader to commit an entry of its own term first
 * closes the known hole in single-server changes (Ongaro, raft-dev 2015). We
 * chose this over joint consensus because every change moor needs (grow
 * 3->5, replace a member, add and promote a learner) is a sequence of single
 * changes, and the one-change rule has far fewer states to get wrong and to
 * test. A leader that removes itself keeps leading without counting itself
 * until the removal commits; when it applies it, it hands leadership to the
 * most up-to-date remaining voter (as raft_transfer_leadership does) and
 * steps down when that voter takes over, or one election timeout later:
 * stepping down at once could leave the rest unaware that the removal
 * committed and needing the vote of a member whose longer log refuses them.
 * A removed member never campaigns.
 *
 * BOOTSTRAP
 *
 * A new cluster starts with every initial member's storage holding a snapshot
 * at index 1, term 1, whose conf state lists the initial voters, and a hard
 * state of term 1 (raft_memstorage_bootstrap does this), so the first
 * leader's term is 2. A member added later starts with
 * empty storage and receives the leader's snapshot.
 *
 * ERRORS
 *
 * Every function returns 0 or a negative MOOR_E* code (common/error.h). An
 * unexpected error from the storage interface (anything but
 * MOOR_ECOMPACTEDLOG / MOOR_EUNAVAILLOG where documented) is returned by the
 * input that met it and stops the handle: later inputs return MOOR_ESTOPPED.
 * A handle is single-threaded; distinct handles share nothing.
 */
#ifndef MOOR_RAFT_RAFT_H
#define MOOR_RAFT_RAFT_H

#include "common/alloc.h"
#include "common/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits with their names. */
#define RAFT_MAX_MEMBERS 16      /* voters + learners in one configuration */
#define RAFT_CAMPAIGN_TRANSFER 1 /* vote message context: transfer campaign */

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 0,
	RAFT_ENTRY_CONF_CHANGE = 1,
};

struct raft_entry {
	uint64_t term;
	uint64_t index;
	enum raft_entry_type type;
	size_t len;
	unsigned char *data; /* len bytes; NULL when len == 0 */
};

struct raft_hard_state {
	uint64_t term;
	uint64_t vote; /* 0: none */
	uint64_t commit;
};

struct raft_conf_state {
	uint32_t n_voters;
	uint32_t n_learners;
	uint64_t voters[RAFT_MAX_MEMBERS];
	uint64_t learners[RAFT_MAX_MEMBERS];
};

struct raft_snapshot_meta {
	uint64_t index; /* last index the snapshot covers */
	uint64_t term;  /* its term */
	struct raft_conf_state conf;
};

struct raft_snapshot {
	struct raft_snapshot_meta meta;
	size_t len;
	unsigned char *data;
};

/* Numbers match proto/raft.proto's MessageType. */
enum raft_msg_type {
	RAFT_MSG_PROP = 1,
	RAFT_MSG_APP = 2,
	RAFT_MSG_APP_RESP = 3,
	RAFT_MSG_VOTE = 4,
	RAFT_MSG_VOTE_RESP = 5,
	RAFT_MSG_PRE_VOTE = 6,
	RAFT_MSG_PRE_VOTE_RESP = 7,
	RAFT_MSG_HEARTBEAT = 8,
	RAFT_MSG_HEARTBEAT_RESP = 9,
	RAFT_MSG_SNAP = 10,
	RAFT_MSG_READ_INDEX = 12,
	RAFT_MSG_READ_INDEX_RESP = 13,
	RAFT_MSG_TIMEOUT_NOW = 14,
	RAFT_MSG_TRANSFER_LEADER = 15,
};

/*
 * A message between members. Maps field for field onto
 * moorraftpb.Message; `context` travels as 8 big-endian bytes in its
 * `context` field (a read request's tag, a heartbeat's read round, a vote's
 * RAFT_CAMPAIGN_TRANSFER, a forwarded transfer's target).
 */
struct raft_message {
	enum raft_msg_type type;
	uint64_t to;
	uint64_t from;
	uint64_t term; /* 0 only for a forwarded proposal */
	uint64_t log_term;
	uint64_t index;
	uint64_t commit;
	bool reject;
	uint64_t reject_hint;
	uint64_t context;
	size_t n_entries;
	struct raft_entry *entries;
	struct raft_snapshot *snapshot; /* RAFT_MSG_SNAP only */
};

struct raft_read_state {
	uint64_t index;
	uint64_t context;
};

enum raft_role {
	RAFT_FOLLOWER = 0,
	RAFT_PRE_CANDIDATE = 1,
	RAFT_CANDIDATE = 2,
	RAFT_LEADER = 3,
};

/* See the contract at the top of this file. */
struct raft_ready {
	enum raft_role role; /* at the time of the batch */
	uint64_t lead;       /* leader known at the time of the batch, 0: none */
	bool hard_state_changed;
	bool must_sync; /* entries, vote or term changed: fsync before step 3 */
	struct raft_hard_state hard_state;
	const struct raft_snapshot *snapshot; /* NULL or: persist, then apply */
	const struct raft_entry *entries;     /* to persist, consecutive */
	size_t n_entries;
	const struct raft_entry *committed; /* to apply, in order */
	size_t n_committed;
	const struct raft_message *msgs_now; /* may be sent at once */
	size_t n_msgs_now;
	const struct raft_message *msgs_after_persist; /* send after step 2 */
	size_t n_msgs_after_persist;
	const struct raft_read_state *read_states;
	size_t n_read_states;
};

/*
 * The log as the caller has persisted it. Each function returns 0 or an
 * error. ctx is passed back unchanged.
 *
 * - first_index: the first index still held as an entry (snapshot index + 1).
 * - last_index: the last index held (the snapshot index when no entry).
 * - term: the term of `index` for snapshot index <= index <= last;
 *   MOOR_ECOMPACTEDLOG below, MOOR_EUNAVAILLOG above.
 * - entries: entries [lo, hi) into out[0..*n) (the array has room for hi-lo),
 *   stopping early once their data exceeds max_bytes (at least one entry).
 *   Data pointers must stay valid until the storage is next modified; the
 *   core copies what it keeps. MOOR_ECOMPACTEDLOG when lo <= snapshot index.
 * - snapshot: the latest snapshot (index 0 when none); data valid until the
 *   storage is next modified. MOOR_EUNAVAILABLE when it is being made: the
 *   core retries later.
 * - hard_state: the last persisted hard state (all zero when none).
 */
struct raft_storage {
	int (*first_index)(void *ctx, uint64_t *index);
	int (*last_index)(void *ctx, uint64_t *index);
	int (*term)(void *ctx, uint64_t index, uint64_t *term);
	int (*entries)(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes,
	               struct raft_entry *out, size_t *n);
	int (*snapshot)(void *ctx, struct raft_snapshot *snap);
	int (*hard_state)(void *ctx, struct raft_hard_state *hs);
	void *ctx;
};

struct raft_config {
	uint64_t id;              /* this member, != 0 */
	unsigned election_ticks;  /* default 10; the timeout is drawn in [e, 2e) */
	unsigned heartbeat_ticks; /* default 1; must be < election_ticks */
	/* Turn on at least one of these two when membership can change: a
	 * member that appended its own addition, which the cluster then
	 * discarded, believes it is a voter and, with neither, disrupts every
	 * leader with its campaigns (dissertation §4.2.3). */
	bool pre_vote;                /* ask before raising the term */
	bool check_quorum;            /* leader steps down without a live majority */
	size_t max_msg_bytes;         /* entry data per append message, default 1 MiB */
	unsigned max_inflight_msgs;   /* appends in flight per follower, default 256 */
	size_t max_uncommitted_bytes; /* leader refuses more (MOOR_EDROPPED), 0: 64 MiB */
	size_t max_committed_bytes;   /* committed data per ready, default 4 MiB */
	size_t max_pending_reads;     /* read-index requests queued, default 4096 */
	uint64_t applied;             /* index the state machine has applied, 0: the snapshot's */
	uint64_t seed;                /* PRNG seed for election jitter */
	struct raft_storage storage;
	const struct moor_alloc *alloc; /* NULL: libc */
	struct moor_logger logger;      /* zero: silent */
};

struct raft;

/*
 * Creates a member, as a follower, from what `cfg->storage` holds (hard
 * state, snapshot and its configuration, entries; configuration changes in
 * the entries take effect). `cfg` is copied; the storage, the allocator and
 * the logger's context must outlive the handle. On success *out is the
 * handle, to be freed with raft_destroy(). Errors: MOOR_EINVAL (id 0, a
 * missing storage function, heartbeat_ticks >= election_ticks),
 * MOOR_ECORRUPT (the hard state commits beyond the log, or cfg->applied is
 * outside [snapshot index, commit]), MOOR_ENOMEM, a storage error; *out is
 * then NULL and nothing is leaked.
 */
int raft_create(const struct raft_config *cfg, struct raft **out);
/* Frees the handle and everything it owns, including any ready batch not
 * yet advanced. NULL is a no-op. */
void raft_destroy(struct raft *r);

/* One unit of logical time: followers count towards an election, leaders
 * towards a heartbeat and the check-quorum and transfer timeouts. Errors:
 * MOOR_ESTOPPED, a storage error (which stops the handle). */
int raft_tick(struct raft *r);

/*
 * Feeds a message from a peer. The core copies what it keeps. Messages with
 * a stale term are answered or dropped as the protocol says; so is an append
 * that would overwrite a committed entry (logged). MOOR_ESTOPPED; MOOR_EINVAL,
 * with nothing changed, for a malformed message: addressed to another
 * member or from 0 or from itself, an unknown type, term 0 on anything but
 * a forwarded proposal, read or transfer, append entries that do not
 * continue at index+1 with non-decreasing terms up to the message's term, a
 * snapshot without index or with more than RAFT_MAX_MEMBERS members.
 */
int raft_step(struct raft *r, const struct raft_message *m);

/*
 * Proposes `len` bytes (copied). On the leader the entry is appended; on a
 * follower it is forwarded to the leader (and may be lost: the caller learns
 * the outcome only by seeing it applied). Errors: MOOR_ENOLEADER (no leader
 * known, or a candidate), MOOR_ETRANSFERRING (leadership transfer under way),
 * MOOR_EDROPPED (this member was removed, or too much is uncommitted),
 * MOOR_ENOMEM.
 */
int raft_propose(struct raft *r, const void *data, size_t len);

/*
 * Proposes n entries at once (each buffer copied): one append and one
 * message per follower instead of n, and one allocation for their data.
 * All are accepted or none. The same errors as raft_propose, and
 * MOOR_EINVAL when n > RAFT_MAX_PROPOSE_BATCH.
 */
#define RAFT_MAX_PROPOSE_BATCH 4096
struct raft_buf {
	const void *data;
	size_t len;
};
int raft_propose_batch(struct raft *r, const struct raft_buf *bufs, size_t n);

enum raft_conf_change_type {
	RAFT_CONF_ADD_VOTER = 0,
	RAFT_CONF_REMOVE = 1,
	RAFT_CONF_ADD_LEARNER = 2,
	RAFT_CONF_PROMOTE = 3,
};

struct raft_conf_change {
	enum raft_conf_change_type type;
	uint64_t node_id;
};

#define RAFT_CONF_CHANGE_BYTES 9 /* encoded size: type (1) + node id (8, BE) */
void raft_conf_change_encode(const struct raft_conf_change *cc,
                             unsigned char out[RAFT_CONF_CHANGE_BYTES]);
/* MOOR_EINVAL unless exactly an encoded change. */
int raft_conf_change_decode(const void *data, size_t len, struct raft_conf_change *cc);

/*
 * Proposes one configuration change; leader only. Errors: MOOR_ENOTLEADER,
 * MOOR_ETRANSFERRING, MOOR_EPENDINGCONF (the previous change, or this
 * leader's first entry, is not applied yet), MOOR_EMEMBEREXISTS (adding a
 * member), MOOR_EMEMBERNOTFOUND (removing or promoting a non-member),
 * MOOR_EINVAL (promoting a voter, removing the last voter, id 0),
 * MOOR_ELEARNERNOTREADY (promoting a learner whose log holds less than 90%
 * of the commit index, etcd's rule), MOOR_ETOOLARGE (RAFT_MAX_MEMBERS
 * reached), MOOR_ENOMEM.
 */
int raft_propose_conf_change(struct raft *r, const struct raft_conf_change *cc);

/*
 * Asks for a linearizable read tagged `context`. The answer arrives as a read
 * state in a later ready batch, on this member, or never (leader lost: retry
 * after a timeout). Errors: MOOR_ENOLEADER, MOOR_EBUSY (max_pending_reads
 * queued), MOOR_ENOMEM.
 */
int raft_read_index(struct raft *r, uint64_t context);

/*
 * Asks the leader to hand leadership to `target` (forwarded when called on a
 * follower). The leader brings the target up to date, then tells it to
 * campaign at once; proposals are refused meanwhile; the transfer is
 * abandoned after one election timeout. Errors: MOOR_ENOLEADER, MOOR_EINVAL
 * (target is not a voter).
 */
int raft_transfer_leadership(struct raft *r, uint64_t target);

/* Starts an election now (pre-vote first when configured). No-op for a
 * leader or a non-voter. Errors: MOOR_ESTOPPED. */
int raft_campaign(struct raft *r);

/* The leader learns whether the snapshot it sent to `id` arrived: appends to
 * `id` resume (from the snapshot, or probing again after a failure) once it
 * next answers a heartbeat. The transport must report the fate of every
 * snapshot message it was given, a dropped one included: until it does,
 * replication to `id` stays paused (a snapshot may take minutes to stream,
 * so the core sets no timeout of its own). No-op unless this member leads
 * and `id` waits for a snapshot. Errors: MOOR_ESTOPPED. */
int raft_report_snapshot(struct raft *r, uint64_t id, bool ok);
/* The leader learns that a message to `id` could not be sent: pipelining to
 * it stops until it answers again. Errors: MOOR_ESTOPPED. */
int raft_report_unreachable(struct raft *r, uint64_t id);

bool raft_has_ready(const struct raft *r);
/* Fills `rd` (see the contract above). Errors: MOOR_ESTOPPED, MOOR_ENOMEM,
 * a storage error. */
int raft_ready(struct raft *r, struct raft_ready *rd);
/* Acknowledges the batch from the last raft_ready(); `rd` must be it, with
 * steps 1-4 of the contract done. Every pointer in it dies here. Errors: a
 * storage error met while acknowledging (which stops the handle). */
int raft_advance(struct raft *r, const struct raft_ready *rd);

struct raft_status {
	uint64_t id;
	enum raft_role role;
	uint64_t lead;
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
	uint64_t applied;
	uint64_t last_index;
	uint64_t first_index;
	uint64_t transferee; /* leader: transfer target, 0: none */
};
void raft_status(const struct raft *r, struct raft_status *st);
/* The configuration in force: the latest in the log. */
void raft_conf_state(const struct raft *r, struct raft_conf_state *cs);
/* The configuration as of the applied index: what a snapshot taken at the
 * applied index must record (raft_memstorage_compact's `conf`). */
void raft_conf_state_applied(const struct raft *r, struct raft_conf_state *cs);
/* The term of `index` in this member's log (unstable part included).
 * MOOR_ECOMPACTEDLOG / MOOR_EUNAVAILLOG outside it. */
int raft_term_at(struct raft *r, uint64_t index, uint64_t *term);
/* "follower", "pre-candidate", "candidate", "leader". */
const char *raft_role_name(enum raft_role role);
const char *raft_msg_type_name(enum raft_msg_type type);

/*
 * The in-memory storage: a copy of every entry, the hard state and one
 * snapshot. Used by tests and the simulator (which treats it as the disk).
 */
struct raft_memstorage;
int raft_memstorage_create(const struct moor_alloc *alloc, struct raft_memstorage **out);
void raft_memstorage_destroy(struct raft_memstorage *ms);
/* The raft_storage view of it. */
struct raft_storage raft_memstorage_storage(struct raft_memstorage *ms);
/* A snapshot at index 1, term 1, listing `voters`, and hard state term 1,
 * on empty storage. MOOR_EINVAL if not empty or n not in 1..RAFT_MAX_MEMBERS. */
int raft_memstorage_bootstrap(struct raft_memstorage *ms, const uint64_t *voters, size_t n);
/* Appends copies of ents, which must be consecutive: everything held from
 * ents[0].index on is replaced, entries already compacted are skipped.
 * MOOR_EINVAL on a gap after the last entry, MOOR_ENOMEM (nothing changed). */
int raft_memstorage_append(struct raft_memstorage *ms, const struct raft_entry *ents, size_t n);
void raft_memstorage_set_hard_state(struct raft_memstorage *ms, const struct raft_hard_state *hs);
/* Replaces log and snapshot with `snap` (copied). MOOR_ESNAPOUTOFDATE if older. */
int raft_memstorage_apply_snapshot(struct raft_memstorage *ms, const struct raft_snapshot *snap);
/* Records a snapshot of the state machine at `index` (<= last) and drops
 * entries up to it. MOOR_ESNAPOUTOFDATE if not newer. */
int raft_memstorage_compact(struct raft_memstorage *ms, uint64_t index,
                            const struct raft_conf_state *conf, const void *data, size_t len);

#endif

/*
 * The private side of the raft core: the handle's layout and the functions
 * the files of raft/ call in each other. Nothing outside raft/ includes it.
 *
 * Files by concern:
 *   raft.c        create/destroy, the outbox, the public inputs but step
 *   step.c        raft_step: message checks, term rules, dispatch by role
 *   log.c         the log: unstable tail + the caller's storage, commit, terms
 *   arena.c       the per-ready arena that messages and committed entries live in
 *   progress.c    per-member replication progress, in-flight windows, quorums
 *   election.c    roles, ticks, pre-vote, votes, check-quorum
 *   replication.c appends, heartbeats, snapshots, the commit rule
 *   membership.c  configuration changes, learners, leadership transfer
 *   readindex.c   ReadIndex: rounds of heartbeats shared by pending reads
 *   ready.c       the ready batch and advance
 *   memstorage.c  the in-memory storage
 */
#ifndef MOOR_RAFT_RAFT_INT_H
#define MOOR_RAFT_RAFT_INT_H

#include "raft/raft.h"

#include <stdarg.h>

#define RAFT_MOD "raft"

/* ---- arena ---- */
struct raft_arena_chunk {
	struct raft_arena_chunk *next;
	size_t cap;
	size_t used;
	unsigned char mem[];
};

struct raft_arena {
	const struct moor_alloc *alloc;
	struct raft_arena_chunk *head; /* current chunk first */
	struct raft_arena_chunk *spare;
};

void raft_arena_init(struct raft_arena *a, const struct moor_alloc *alloc);
void *raft_arena_alloc(struct raft_arena *a, size_t n);
void raft_arena_reset(struct raft_arena *a);
void raft_arena_free(struct raft_arena *a);

/* ---- log ---- */
struct raft_log {
	struct raft_storage st;
	const struct moor_alloc *alloc;
	/* unstable: a snapshot not yet persisted and entries from `offset` on */
	bool has_snap;
	struct raft_snapshot snap; /* owned copy when has_snap */
	struct raft_entry *ents;   /* ents[0] has index `offset`; data in blks */
	struct raft_block **blks;  /* the data block of each entry (log.c) */
	size_t n_ents;
	size_t cap_ents;
	uint64_t offset;
	uint64_t committed;
	uint64_t applied;
	/* scratch for reading the storage */
	struct raft_entry *scratch;
	size_t cap_scratch;
};

int raft_log_init(struct raft_log *l, const struct raft_storage *st, const struct moor_alloc *a);
void raft_log_free(struct raft_log *l);
uint64_t raft_log_first(struct raft *r);
uint64_t raft_log_last(struct raft *r);
/* 0 with *t set; MOOR_ECOMPACTEDLOG / MOOR_EUNAVAILLOG; else a storage error
 * (also recorded in r->err). */
int raft_log_term(struct raft *r, uint64_t i, uint64_t *t);
/* Term of i, 0 when unknown. */
uint64_t raft_log_term0(struct raft *r, uint64_t i);
uint64_t raft_log_last_term(struct raft *r);
bool raft_log_match_term(struct raft *r, uint64_t i, uint64_t t);
bool raft_log_up_to_date(struct raft *r, uint64_t index, uint64_t term);
/* Appends owned copies after truncating from ents[0].index. */
int raft_log_append(struct raft *r, const struct raft_entry *ents, size_t n);
/* The follower's append: returns 0 and *last_new when it matched; 1 when it
 * did not; MOOR_EPROTO when it would overwrite a committed entry. */
int raft_log_maybe_append(struct raft *r, uint64_t index, uint64_t log_term, uint64_t commit,
                          const struct raft_entry *ents, size_t n, uint64_t *last_new);
void raft_log_commit_to(struct raft *r, uint64_t c);
bool raft_log_maybe_commit(struct raft *r, uint64_t index, uint64_t term);
/* Copies entries [lo, hi) (at most max_bytes of data, at least one) into the
 * arena: *out, *n. */
int raft_log_slice(struct raft *r, uint64_t lo, uint64_t hi, size_t max_bytes,
                   struct raft_entry **out, size_t *n);
/* The largest index <= index whose term is <= term (fast backtracking). */
uint64_t raft_log_find_conflict_by_term(struct raft *r, uint64_t index, uint64_t term);
void raft_log_restore(struct raft *r, const struct raft_snapshot *s, int *err);
void raft_log_stable_to(struct raft *r, uint64_t index);
void raft_log_stable_snap(struct raft *r);

/* ---- progress ---- */
enum raft_pr_state { RAFT_PR_PROBE = 0, RAFT_PR_REPLICATE = 1, RAFT_PR_SNAPSHOT = 2 };

struct raft_inflights {
	uint64_t *buf; /* last index of each append in flight, ring */
	unsigned start;
	unsigned count;
	unsigned cap;
};

struct raft_progress {
	uint64_t id;
	bool learner;
	enum raft_pr_state state;
	uint64_t match;
	uint64_t next;
	uint64_t pending_snapshot;
	bool probe_sent;
	bool recent_active;
	int vote;          /* 0 none, 1 granted, -1 rejected */
	uint64_t read_ack; /* highest read round acknowledged */
	struct raft_inflights inf;
};

struct raft_progress *raft_pr_get(struct raft *r, uint64_t id);
int raft_pr_add(struct raft *r, uint64_t id, bool learner);
void raft_pr_remove(struct raft *r, uint64_t id);
void raft_pr_reset_all(struct raft *r);
bool raft_pr_paused(const struct raft_progress *p);
void raft_pr_become_probe(struct raft_progress *p);
void raft_pr_become_replicate(struct raft_progress *p);
void raft_pr_become_snapshot(struct raft_progress *p, uint64_t index);
bool raft_pr_maybe_update(struct raft_progress *p, uint64_t n);
bool raft_pr_maybe_decr_to(struct raft_progress *p, uint64_t rejected, uint64_t hint);
void raft_inflights_add(struct raft_inflights *f, uint64_t index);
void raft_inflights_free_le(struct raft_inflights *f, uint64_t index);
bool raft_inflights_full(const struct raft_inflights *f);
unsigned raft_voters(const struct raft *r);
unsigned raft_quorum(const struct raft *r);
/* The index a quorum of voters has matched. */
uint64_t raft_quorum_match(const struct raft *r);
/* 1 won, -1 lost, 0 pending. */
int raft_tally_votes(struct raft *r);
bool raft_quorum_active(struct raft *r);
bool raft_is_voter(const struct raft *r, uint64_t id);

/* ---- read index ---- */
struct raft_read_req {
	uint64_t context;
	uint64_t from;  /* who asked; this member for a local read */
	uint64_t index; /* commit index at the time, 0 until the term commits */
	uint64_t round;
};

/* ---- membership ---- */
struct raft_conf_hist {
	uint64_t index; /* of the entry that made this configuration */
	struct raft_conf_state cs;
};

/* ---- the handle ---- */
struct raft {
	uint64_t id;
	const struct moor_alloc *alloc;
	struct moor_logger logger;
	struct raft_config cfg;
	int err; /* sticky: a storage error stopped the handle */

	enum raft_role role;
	uint64_t term;
	uint64_t vote;
	uint64_t lead;
	uint64_t lead_transferee;
	uint64_t pending_conf_index;
	size_t uncommitted_bytes;

	unsigned election_elapsed;
	unsigned heartbeat_elapsed;
	unsigned randomized_timeout;
	uint64_t prng;

	struct raft_log log;

	struct raft_progress prs[RAFT_MAX_MEMBERS]; /* the configuration in force */
	unsigned n_prs;
	struct raft_conf_state conf_base; /* as of the applied index (or snapshot) */
	struct raft_conf_hist *hist;      /* changes above it, in log order */
	size_t n_hist, cap_hist;
	struct raft_conf_state conf_scratch;

	/* read index */
	struct raft_read_req *reads;
	size_t n_reads;
	size_t cap_reads;
	uint64_t read_round;      /* last round number used */
	uint64_t read_round_sent; /* last round whose heartbeat went out */
	struct raft_read_state *read_states;
	size_t n_read_states;
	size_t cap_read_states;

	/* outboxes; their entries live in `arena` */
	struct raft_message *msgs[2];
	size_t n_msgs[2];
	size_t cap_msgs[2];
	struct raft_arena arena[2]; /* double-buffered: see ready.c */
	int arena_cur;

	/* what the last ready showed */
	struct raft_hard_state prev_hs;
	bool in_ready;
};

/* raft.c */
void raft_logf(struct raft *r, enum moor_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Queues m (copied; entries/snapshot must already be in the arena). */
void raft_send(struct raft *r, struct raft_message *m);
int raft_fail(struct raft *r, int err);
/* Every input starts and ends with these: refuse after a storage failure,
 * and report one that happened during the input. */
int raft_input_begin(struct raft *r);
int raft_input_end(struct raft *r, int rc);
/* The leader appends entries proposed here or forwarded to it. */
int raft_leader_append(struct raft *r, const struct raft_entry *src, size_t n);
/* A follower passes a request to its leader (entries copied). */
int raft_forward(struct raft *r, enum raft_msg_type type, const struct raft_entry *e, size_t n,
                 uint64_t context);
uint64_t raft_prng_next(struct raft *r);

/* election.c */
void raft_become_follower(struct raft *r, uint64_t term, uint64_t lead);
void raft_become_leader(struct raft *r);
void raft_hup(struct raft *r, bool transfer);
void raft_tick_election(struct raft *r);
void raft_tick_heartbeat(struct raft *r);
void raft_handle_vote(struct raft *r, const struct raft_message *m);
void raft_handle_vote_resp(struct raft *r, const struct raft_message *m);
bool raft_in_lease(const struct raft *r);
bool raft_promotable(const struct raft *r);
void raft_reset_randomized_timeout(struct raft *r);

/* replication.c */
bool raft_maybe_send_append(struct raft *r, uint64_t to, bool send_if_empty);
void raft_bcast_append(struct raft *r);
void raft_bcast_heartbeat(struct raft *r, uint64_t ctx);
bool raft_maybe_commit(struct raft *r);
int raft_append_entries(struct raft *r, struct raft_entry *ents, size_t n);
void raft_handle_append(struct raft *r, const struct raft_message *m);
void raft_handle_heartbeat(struct raft *r, const struct raft_message *m);
void raft_handle_snapshot(struct raft *r, const struct raft_message *m);
void raft_handle_append_resp(struct raft *r, const struct raft_message *m);
void raft_handle_heartbeat_resp(struct raft *r, const struct raft_message *m);

/* membership.c */
void raft_conf_applied(struct raft *r, const struct raft_entry *e);
int raft_conf_set(struct raft *r, const struct raft_conf_state *cs);
int raft_conf_reserve(struct raft *r, size_t n);
int raft_conf_on_append(struct raft *r, const struct raft_entry *ents, size_t n);
int raft_conf_on_truncate(struct raft *r, uint64_t from);
int raft_conf_reset(struct raft *r, const struct raft_conf_state *cs);
void raft_conf_fold_applied(struct raft *r);
void raft_transfer_start(struct raft *r, uint64_t target);
void raft_transfer_abort(struct raft *r);
void raft_send_timeout_now(struct raft *r, uint64_t to);

/* readindex.c */
int raft_readindex_request(struct raft *r, uint64_t from, uint64_t context);
void raft_readindex_on_commit_in_term(struct raft *r);
void raft_readindex_ack(struct raft *r, uint64_t from, uint64_t round);
void raft_readindex_reset(struct raft *r);
int raft_read_state_push(struct raft *r, uint64_t index, uint64_t context);

#endif

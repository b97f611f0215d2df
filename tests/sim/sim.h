/*
 * The raft simulator: a whole cluster of raft cores in one process, driven by
 * one seed. Time is a tick counter; the network is a priority queue of
 * message copies keyed by (delivery tick, sequence number), so ties break the
 * same way every run. Faults: drops, delays (which reorder), duplicates,
 * partitions given as a matrix of cut directed links (asymmetric cuts
 * included), crashes that keep only what the member wrote to its
 * raft_memstorage (its "disk") and may strike between sending a leader's
 * appends and persisting them, restarts, membership changes, leadership
 * transfers, log compaction. Every event goes into a trace whose hash must be
 * the same for the same seed; the last lines are printed with the seed and a
 * replay command on any failure.
 *
 * After every step the invariants of Raft are checked (see sim_check()).
 */
#ifndef MOOR_TESTS_SIM_SIM_H
#define MOOR_TESTS_SIM_SIM_H

#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_MAX_NODES 9 /* ids 1..SIM_MAX_NODES */
#define SIM_TRACE_LINES 400

struct sim_msg {
	uint64_t at;
	uint64_t seq;
	struct raft_message m; /* deep copy, owned */
};

struct sim_read {
	uint64_t id;
	uint64_t node;
	uint64_t min_index; /* highest acknowledged write when it started */
	uint64_t started;
	uint64_t index; /* read state index, 0 until it arrives */
	bool done;
};

struct sim_prop {
	uint64_t id;
	uint64_t proposed_at; /* last attempt */
	uint64_t first_at;
	unsigned attempts; /* retries so far: the client backs off exponentially */
	bool acked;
};

struct sim_node {
	uint64_t id;
	bool exists; /* created (bootstrap or added) and not retired */
	bool up;     /* running */
	/* 1: crash after sending msgs_now, before persisting; 2: after the
	 * entries, before the hard state (the order raft.h prescribes) */
	int crash_mid_ready;
	bool removed; /* its removal was applied somewhere, so it committed */
	/* its "disk" as the core sees it: fails every read once disk_fail_in
	 * reaches 0 after counting down (0: healthy; a restart repairs it) */
	struct raft_storage disk_inner;
	int disk_fail_in;
	bool disk_failed;
	bool disk_paused; /* the simulator's own checks read through the core */
	struct raft_memstorage *ms;
	struct raft *r;
	/* the state machine: applied index and a hash of what was applied */
	uint64_t applied;
	uint64_t sm_hash;
	uint64_t seen_commit; /* this life */
	uint64_t disk_commit; /* all lives */
	/* read states waiting for the state machine to catch up */
	struct raft_read_state waiting[256];
	unsigned n_waiting;
};

struct sim_opts {
	unsigned n_voters; /* 3 or 5 */
	unsigned drop_pct; /* per message */
	unsigned dup_pct;
	unsigned max_delay;     /* ticks */
	bool faults;            /* random crashes, partitions, etc. */
	bool membership;        /* random membership changes */
	bool verbose;           /* print the trace as it goes */
	unsigned compact_every; /* entries between snapshots, 0: never */
	unsigned skew_pct;      /* odd members miss this share of ticks */
	unsigned fault_level;   /* 1..4: how often crashes, cuts, transfers strike */
	/* raft settings, varied per seed (0: the simulator's default) */
	bool no_pre_vote;
	bool no_check_quorum;
	unsigned election_ticks;
	unsigned max_inflight;
	unsigned max_msg_bytes;
};

struct sim {
	uint64_t seed;
	uint64_t prng;
	uint64_t now;
	struct sim_opts o;
	struct sim_node nodes[SIM_MAX_NODES + 1];
	uint64_t next_new_id;
	bool cut[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];

	struct sim_msg *q; /* binary heap */
	size_t nq, capq;
	uint64_t seq;

	/* history for the checks */
	uint64_t *term_leader; /* term -> leader id */
	size_t cap_terms;
	uint64_t *applied_term; /* index -> term of the entry applied there */
	uint64_t *applied_hash; /* index -> hash of its data */
	size_t cap_applied;
	uint64_t max_applied;
	struct sim_lm *lm; /* (index, term) -> (data hash, previous term) */
	size_t cap_lm, n_lm;
	uint64_t max_acked_index;

	struct sim_prop *props;
	size_t n_props, cap_props;
	uint64_t next_prop;
	struct sim_read *reads;
	size_t n_reads, cap_reads;
	uint64_t acked, reads_ok;

	/* trace */
	char trace[SIM_TRACE_LINES][256];
	unsigned trace_head, trace_n;
	uint64_t trace_hash;
	FILE *trace_out; /* every line also goes here when set */
	uint64_t steps;

	bool failed;
	char failure[512];
};

void sim_init(struct sim *s, uint64_t seed, const struct sim_opts *o);
void sim_free(struct sim *s);
uint64_t sim_rand(struct sim *s);
unsigned sim_below(struct sim *s, unsigned n);

/* One tick: tick every live member, deliver what is due, check. */
void sim_step(struct sim *s);
/* Random faults, client requests and changes for this step (swarm mode). */
void sim_chaos(struct sim *s);
/* Removes every fault and restarts every member. */
void sim_heal(struct sim *s);
/* Runs until a leader is known and every proposal is acknowledged, at most
 * max_ticks; false (and a failure) if not. */
bool sim_settle(struct sim *s, unsigned max_ticks);

/* One swarm run of `seed`: draws the cluster and the fault mix, runs the
 * faults, heals, demands liveness. Prints the report (naming `replay` as the
 * command) on failure; returns the trace hash. */
uint64_t sim_swarm_run(uint64_t seed, bool verbose, const char *replay, bool *ok);

/* Scripted actions. */
void sim_propose(struct sim *s, uint64_t node);
void sim_propose_batch(struct sim *s, uint64_t node, unsigned n);
void sim_read(struct sim *s, uint64_t node);
void sim_crash(struct sim *s, uint64_t node);
void sim_restart(struct sim *s, uint64_t node);
void sim_isolate(struct sim *s, uint64_t node);
void sim_cut(struct sim *s, uint64_t from, uint64_t to);
void sim_heal_net(struct sim *s);
void sim_transfer(struct sim *s, uint64_t target);
int sim_conf_change(struct sim *s, enum raft_conf_change_type t, uint64_t node);
uint64_t sim_leader(struct sim *s); /* the live leader with the highest term, 0 */

/* A core input returned rc: a disk error (the core stopped) takes the member
 * down as a crash does; true then. Any other error is a failure. */
bool sim_input_failed(struct sim *s, struct sim_node *n, int rc, const char *what);
void sim_disk_fail(struct sim *s, uint64_t node, int after_calls);
/* While the simulator checks, disks neither fail nor count down. */
void sim_disk_pause(struct sim *s, bool paused);

void sim_tracef(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints seed, reason, the last trace lines and the replay command. */
void sim_report(struct sim *s, FILE *out, const char *replay_cmd);

#endif

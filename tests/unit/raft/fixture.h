/*
 * A small hand-driven cluster for the unit tests: members on
 * raft_memstorage, a FIFO of deep-copied messages, links that can be cut,
 * and helpers to run each member's ready loop exactly as raft.h prescribes.
 * Nothing happens unless a test asks for it, so each test reads as a
 * scenario: who campaigns, which messages flow, what each member then holds.
 */
#ifndef MOOR_TESTS_UNIT_RAFT_FIXTURE_H
#define MOOR_TESTS_UNIT_RAFT_FIXTURE_H

#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>

#define FX_MAX 6
#define FX_QMAX 4096

struct fx_node {
	uint64_t id;
	struct raft_memstorage *ms;
	struct raft *r;
	uint64_t applied[512]; /* index of each applied normal entry with data */
	unsigned n_applied;
	struct raft_read_state reads[64];
	unsigned n_reads;
};

struct fx {
	struct fx_node nodes[FX_MAX + 1];
	struct raft_message q[FX_QMAX];
	unsigned nq;
	bool cut[FX_MAX + 1][FX_MAX + 1];
	struct raft_config tmpl; /* applied to every member at start */
	const struct moor_alloc *alloc;
	unsigned sent[FX_MAX + 1][16];     /* messages sent to a member, by type */
	unsigned sent_entries[FX_MAX + 1]; /* appends carrying entries, by target */
	unsigned rejects[FX_MAX + 1];      /* rejected appends, by the rejecting member */
};

/* Voters 1..n bootstrapped; pre-vote and check-quorum as given. */
void fx_init(struct fx *f, unsigned n, bool pre_vote, bool check_quorum);
void fx_free(struct fx *f);
/* Adds member `id` with empty storage (to be added by a conf change). */
void fx_add_empty(struct fx *f, uint64_t id);
void fx_start(struct fx *f, uint64_t id);
void fx_crash(struct fx *f, uint64_t id);
/* Runs member id's ready loop (persist, queue messages, apply, advance). */
void fx_flush(struct fx *f, uint64_t id);
void fx_flush_all(struct fx *f);
/* Delivers queued messages (cut links drop them) until none is left. */
void fx_settle(struct fx *f);
/* Delivers the queue once, without flushing what that produces. */
void fx_deliver_queued(struct fx *f);
void fx_tick(struct fx *f, uint64_t id, unsigned n);
void fx_isolate(struct fx *f, uint64_t id, bool cut);
void fx_drop_queue(struct fx *f);
uint64_t fx_leader(struct fx *f);
struct raft_status fx_status(struct fx *f, uint64_t id);
/* Copies of queued messages are owned by the fixture. */
void fx_msg_free(struct raft_message *m);
void fx_msg_copy(struct raft_message *d, const struct raft_message *m);
int fx_propose_str(struct fx *f, uint64_t id, const char *s);
/* Appends entries with these terms at indexes 2.. to member id's storage. */
void fx_preload(struct fx *f, uint64_t id, const uint64_t *terms, unsigned n, uint64_t hs_term);

#endif

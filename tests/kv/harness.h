/*
 * A store and the reference model side by side: apply the same generated
 * requests to both, compare every response, every event and the whole state.
 * Shared by the randomized model test and the crash test.
 */
#ifndef MOOR_TESTS_KV_HARNESS_H
#define MOOR_TESTS_KV_HARNESS_H

#include "kv/kv.h"
#include "tests/kv/gen.h"
#include "tests/kv/model.h"

#include <stdbool.h>

struct packed {
	uint8_t *p;
	size_t n;
};

struct harness {
	struct kv *kv;
	struct model m;
	struct rng rng;
	char dir[64];
	char store[128];
	uint64_t index; /* last raft index handed to the store */
	size_t write_buffer_bytes;
	/* events captured from the callback, packed */
	struct packed *ev;
	size_t nev, capev;
	const char *where; /* context for messages */
	/* Entries at or below this index are replays: the store must ignore
	 * them (rc 0, no response, no event); the model applies them. */
	uint64_t replay_upto;
};

/* mkdtemp + open; seed for the generator. */
int harness_open(struct harness *h, uint64_t seed, size_t write_buffer_bytes);
int harness_reopen(struct harness *h);
void harness_close(struct harness *h, bool remove_dir);

/* Apply one generated op inside the open batch at index ++h->index, to the
 * store and (when `model` is set) the model; compare. false on mismatch. */
bool harness_apply(struct harness *h, const struct gen_op *op, bool model);
/* Commit the store's batch; compare the events with the model's. */
bool harness_commit(struct harness *h, uint64_t last_index, bool model);
/* Compare the whole current state, status and the leases. */
bool harness_check_state(struct harness *h);
/* One random read (range or history) on both. */
bool harness_random_read(struct harness *h);

void rm_rf(const char *path);
/* Print a txn request to stderr (failure diagnostics). */
void harness_print_txn(const Etcdserverpb__TxnRequest *t, int depth);

#endif

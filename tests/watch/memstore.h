/*
 * An in-memory model of the MVCC store's history, for the watch hub's tests
 * and benchmark: writes (one revision each, any number of puts and
 * deletes), compaction, and the watch_store history reader. It also makes
 * the batches the apply path would hand the hub (memstore_batch), so a test
 * can let the store run ahead of the hub and apply later.
 *
 * Records are kept compactly (about 48 bytes each plus the value bytes) and
 * events are built when a batch is made, as a real store decodes them.
 * Nothing is freed by compaction (it only moves the compact revision).
 * Not thread-safe.
 */
#ifndef MOOR_TESTS_WATCH_MEMSTORE_H
#define MOOR_TESTS_WATCH_MEMSTORE_H

#include "watch/watch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct memstore_rec {
	int64_t rev;
	int64_t create_rev;
	int64_t version;
	int64_t prev; /* index of the key's previous record, -1 */
	uint64_t val_off;
	uint32_t val_len;
	uint32_t key_id;
	uint8_t type; /* MVCCPB__EVENT__EVENT_TYPE__PUT or __DELETE */
};

struct memstore {
	struct memstore_rec *recs;
	size_t n, cap;
	/* interned keys */
	uint8_t **keys;
	uint32_t *key_lens;
	int64_t *key_last; /* last record of each key, -1 */
	size_t nkeys, keys_cap;
	uint32_t *khash; /* open addressing: key id + 1, 0 empty */
	size_t khash_cap;
	/* values */
	uint8_t *vals;
	uint64_t vals_len, vals_cap;

	int64_t rev;
	int64_t compact_rev; /* lowest readable revision; 0: none compacted */
	bool filter_keys;    /* honour the reader's key-range hint */
	int fail_next_reads; /* > 0: the next reads fail with MOOR_EUNAVAILABLE */
	/* When set, a read past *applied_rev (what the hub has been given)
	 * aborts: the hub must never read history it has not fanned out. */
	const int64_t *applied_rev;
	long live_batches;
	uint64_t reads;
};

struct memstore_op {
	bool del;
	const void *key;
	size_t key_len;
	const void *val;
	size_t val_len;
};

void memstore_init(struct memstore *ms);
void memstore_free(struct memstore *ms);

/* One revision of the given ops (a delete of an absent key does nothing).
 * Returns the new revision, or 0 when no op changed anything. Aborts on
 * out of memory (test code). */
int64_t memstore_txn(struct memstore *ms, const struct memstore_op *ops, size_t n);
int64_t memstore_put(struct memstore *ms, const char *key, const char *val);
int64_t memstore_del(struct memstore *ms, const char *key);

/* Makes history below rev unreadable. */
void memstore_compact(struct memstore *ms, int64_t rev);

/*
 * A batch of the events with revision in [from, to], as the apply path
 * makes it: every event carries its prev_kv when the key had a value.
 * NULL when there are none. Its destroy frees it (live_batches counts them).
 */
struct watch_batch *memstore_batch(struct memstore *ms, int64_t from, int64_t to);

/* The watch_store interface over ms. */
struct watch_store memstore_reader(struct memstore *ms);

#endif

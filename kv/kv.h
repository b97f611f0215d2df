/*
 * kv: moor's MVCC store on RocksDB — the state machine every member applies.
 *
 * Semantics are etcd v3's: one main revision per applied write request,
 * sub-revisions for the changes inside it; every key-value carries
 * create_revision, mod_revision, version and lease; deletes leave tombstones in
 * history; reads at any revision not yet compacted. Requests and responses are
 * etcd's protobuf-c messages (proto/rpc.pb-c.h, proto/kv.pb-c.h) so the server
 * needs no translation layer. The on-disk layout is docs/kv-layout.md.
 *
 * Writes come in apply batches, one per raft ready batch:
 *
 *   kv_batch_begin(kv);
 *   kv_batch_put(kv, index, req, &resp);      // etc., entries in raft order
 *   kv_batch_commit(kv, last_index, term);     // ONE RocksDB write batch
 *
 * Later requests in a batch see the writes of earlier ones. The commit writes
 * every change together with the applied raft index and term, atomically;
 * RocksDB's own WAL is off (the raft WAL is the log): after a crash the store
 * reopens at the last flushed batch, and the server replays raft entries from
 * kv_status().applied_index + 1. Any kv_batch_* call whose index is <= the
 * applied index does nothing and returns 0 with *out = NULL (idempotent
 * replay). A request that fails validation returns a negative MOOR_E* code and
 * leaves the store exactly as it was; its entry still counts as applied.
 *
 * Events: every change of a committed batch is handed to the on_events
 * callback given at open, in (revision, sub) order, after the batch is
 * written, as mvccpb Events (kv = the new KeyValue, or for a delete the key
 * with mod_revision set; prev_kv = the previous KeyValue, or NULL).
 *
 * Threading: one writer thread (batch calls, kv_batch_commit, kv_flush), any
 * number of reader threads (kv_range, kv_history_read, kv_lease_*, kv_meta_get,
 * kv_hash_kv, kv_status), and one compactor thread (kv_compact_step) may call
 * concurrently. kv_open, kv_close and kv_snapshot_restore need all others
 * stopped. Every read sees one committed batch, never part of one.
 *
 * The library never reads a clock nor draws random numbers; leases' expiry is
 * the server's decision (it proposes a revoke).
 */
#ifndef MOOR_KV_KV_H
#define MOOR_KV_KV_H

#include "common/alloc.h"
#include "common/log.h"
#include "proto/kv.pb-c.h"
#include "proto/rpc.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits; each a default that kv_config may lower or raise. */
#define KV_MAX_KEY_BYTES_DEFAULT (1536u * 1024u) /* etcd's 1.5 MiB request */
#define KV_MAX_VALUE_BYTES_DEFAULT (1536u * 1024u)
#define KV_MAX_TXN_OPS_DEFAULT 128 /* etcd's --max-txn-ops */
#define KV_MAX_META_NAME_BYTES 64
#define KV_LAYOUT_VERSION 1 /* docs/kv-layout.md */

struct kv;

/*
 * Called after a batch commits with every event of the batch, in order.
 * `events` and everything they point to live only during the call (encode
 * them, or copy what must be kept). Called on the writer thread.
 */
typedef void (*kv_events_fn)(void *ctx, Mvccpb__Event *const *events, size_t n_events);

struct kv_config {
	const char *path;                 /* data directory, created if missing */
	const struct moor_logger *logger; /* may be NULL */
	const struct moor_alloc *alloc;   /* responses, events; NULL: libc */
	kv_events_fn on_events;           /* may be NULL */
	void *events_ctx;
	size_t write_buffer_bytes; /* memtable size; 0: 64 MiB */
	size_t block_cache_bytes;  /* 0: 128 MiB */
	size_t max_key_bytes;      /* 0: KV_MAX_KEY_BYTES_DEFAULT */
	size_t max_value_bytes;    /* 0: KV_MAX_VALUE_BYTES_DEFAULT */
	int max_txn_ops;           /* 0: KV_MAX_TXN_OPS_DEFAULT */
};

/*
 * Open (or create) the store at cfg->path. Reopening reads a handful of meta
 * records only: no index is rebuilt. Errors: MOOR_ECORRUPT (unknown layout
 * version, bad meta record), MOOR_ENOMEM, -errno, MOOR_EUNAVAILABLE (RocksDB
 * refused; the message is logged).
 */
int kv_open(const struct kv_config *cfg, struct kv **out);

/* Close; unflushed batches are lost (the raft log replays them). NULL ok. */
void kv_close(struct kv *kv);

/* The message, with context, of the last error on the thread that opened
 * the store or runs the batch (reader threads' errors leave it alone: their
 * codes say it all); valid until that thread's next kv call. */
const char *kv_errmsg(const struct kv *kv);

struct kv_status {
	uint64_t applied_index; /* last raft index committed into the store */
	uint64_t applied_term;
	int64_t revision;         /* current main revision (1 in a new store) */
	int64_t compact_revision; /* reads below it fail with MOOR_ECOMPACTED */
	int64_t compact_pending;  /* 1 while kv_compact_step has work, else 0 */
};
void kv_status(struct kv *kv, struct kv_status *out);

/*
 * Make every committed batch durable (RocksDB flush, waiting). Afterwards a
 * crash reopens at least at the applied index returned in *durable_index, so
 * the server may drop raft log entries up to it. Writer thread.
 */
int kv_flush(struct kv *kv, uint64_t *durable_index);

/* ---- responses ---------------------------------------------------------- */

/*
 * Every response and every history read kv hands out is one allocation
 * arena: free it with kv_response_free (NULL ok), never with protobuf-c's
 * free_unpacked. The server may set fields (header cluster_id, member_id,
 * raft_term) but must not replace pointers it did not allocate itself.
 */
void kv_response_free(void *response);

/* ---- reads -------------------------------------------------------------- */

/*
 * Range at req->revision (<= 0: current). header->revision is the current
 * revision. Errors (store unchanged): MOOR_EEMPTYKEY, MOOR_ERANGEEND
 * (range_end non-empty, not "\0", and < key), MOOR_ESORT, MOOR_ELIMIT,
 * MOOR_ECOMPACTED, MOOR_EFUTUREREV. Sort ties are broken by ascending key.
 */
int kv_range(struct kv *kv, const Etcdserverpb__RangeRequest *req,
             Etcdserverpb__RangeResponse **out);

/*
 * History for watch catch-up: the events with revision >= from_rev, in order,
 * at least one whole revision and then whole revisions until max_events is
 * reached (a revision is never split: the last one may overshoot max_events;
 * 0: no limit).
 * next_rev is the revision to ask for next (current revision + 1 when caught
 * up). Errors: MOOR_ECOMPACTED when from_rev < compact revision (then
 * out->compact_revision says which). With prev_kv, prev_kv is filled for
 * events above the compact revision. Free with kv_history_free.
 */
struct kv_history {
	Mvccpb__Event **events;
	size_t n_events;
	int64_t next_rev;
	int64_t compact_revision;
	int64_t revision; /* current revision when read */
	void *arena_;     /* private */
};
int kv_history_read(struct kv *kv, int64_t from_rev, size_t max_events, bool prev_kv,
                    struct kv_history *out);
void kv_history_free(struct kv_history *h);

/* A lease's granted TTL and, with req->keys, its attached keys. The remaining
 * TTL is the server's: kv sets TTL = grantedTTL. MOOR_ELEASENOTFOUND. */
int kv_lease_timetolive(struct kv *kv, const Etcdserverpb__LeaseTimeToLiveRequest *req,
                        Etcdserverpb__LeaseTimeToLiveResponse **out);
/* Every lease, ascending id. */
int kv_lease_leases(struct kv *kv, Etcdserverpb__LeaseLeasesResponse **out);

/* Read an opaque meta record (e.g. the membership blob). *val is allocated
 * with the kv allocator (free with moor_free); MOOR_ENOTFOUND if absent. */
int kv_meta_get(struct kv *kv, const char *name, void **val, size_t *len);

/*
 * etcd's HashKV: CRC32C over the logical key space at revision `rev` (<= 0:
 * current): every history record with revision <= rev that compaction keeps,
 * independent of how far physical compaction has gone, so members compare
 * equal iff their MVCC states are equal. MOOR_ECOMPACTED, MOOR_EFUTUREREV.
 */
int kv_hash_kv(struct kv *kv, int64_t rev, uint32_t *hash, int64_t *compact_rev, int64_t *hash_rev);

/* ---- the apply batch (writer thread) ------------------------------------ */

/* Start a batch. MOOR_EBUSY if one is open. The kv_batch_* calls below
 * must come between kv_batch_begin and kv_batch_commit/abort, with strictly
 * increasing raft indexes (both are invariants of the apply loop: breaking
 * them aborts the process through MOOR_ASSERT). */
int kv_batch_begin(struct kv *kv);

/* Each: the raft entry's index; the etcd request; *out gets the response
 * (free with kv_response_free), or NULL when the entry was already applied. */
int kv_batch_put(struct kv *kv, uint64_t index, const Etcdserverpb__PutRequest *req,
                 Etcdserverpb__PutResponse **out);
int kv_batch_delete_range(struct kv *kv, uint64_t index,
                          const Etcdserverpb__DeleteRangeRequest *req,
                          Etcdserverpb__DeleteRangeResponse **out);
/* MOOR_EDUPKEY, MOOR_ETOOMANYOPS, and the errors of the ops inside. */
int kv_batch_txn(struct kv *kv, uint64_t index, const Etcdserverpb__TxnRequest *req,
                 Etcdserverpb__TxnResponse **out);
/* Logical compaction, effective at commit; physical removal by kv_compact_step.
 * MOOR_ECOMPACTED (at or below the compact revision), MOOR_EFUTUREREV. */
int kv_batch_compact(struct kv *kv, uint64_t index, const Etcdserverpb__CompactionRequest *req,
                     Etcdserverpb__CompactionResponse **out);
/* req->id must be > 0 (the server picks ids); MOOR_ELEASEEXISTS; TTL <= 0:
 * MOOR_EINVAL. */
int kv_batch_lease_grant(struct kv *kv, uint64_t index, const Etcdserverpb__LeaseGrantRequest *req,
                         Etcdserverpb__LeaseGrantResponse **out);
/* Deletes every attached key in one revision. MOOR_ELEASENOTFOUND. */
int kv_batch_lease_revoke(struct kv *kv, uint64_t index,
                          const Etcdserverpb__LeaseRevokeRequest *req,
                          Etcdserverpb__LeaseRevokeResponse **out);
/* Store an opaque meta record (name up to KV_MAX_META_NAME_BYTES) in this
 * batch; len 0 deletes it. Returns 0 and does nothing when already applied. */
int kv_batch_meta_put(struct kv *kv, uint64_t index, const char *name, const void *val, size_t len);

/*
 * Write the batch as one RocksDB write batch with applied index/term =
 * last_index/term (which may be above the last request's index: empty and
 * configuration entries count), then publish it to readers and call on_events.
 * last_index at or below the applied index is ignored (0 returned, nothing
 * written; every entry was a replay); below the batch's last entry it is
 * MOOR_EINVAL and the batch is dropped.
 * On a RocksDB failure the batch is dropped and the store is as before it;
 * the server must treat that as fatal (state machine diverged from the log).
 */
int kv_batch_commit(struct kv *kv, uint64_t last_index, uint64_t term);

/* Drop an open batch (nothing written). */
void kv_batch_abort(struct kv *kv);

/* ---- background compaction (compactor thread) --------------------------- */

/*
 * Physically remove up to max_records superseded history records below the
 * committed compact revision, in one small RocksDB batch that does not block
 * the writer. *done = true when no work is left. Call repeatedly from a
 * worker. Removal is not logged in the applied index: after a crash the
 * remaining work is found again (garbage records are kept by revision).
 */
int kv_compact_step(struct kv *kv, size_t max_records, bool *done);

/*
 * etcd's Defragment: rewrite the whole RocksDB database so that space freed
 * by compaction (deleted history, tombstones) goes back to the filesystem.
 * Runs in the calling thread for as long as it takes (seconds per GiB) but
 * does not block writes or reads; call it from a worker, after
 * kv_compact_step reports done. Compactor thread.
 */
int kv_defragment(struct kv *kv);

/*
 * Sets the applied raft index and term to (index, term), whatever they were:
 * for a store restored from a backup into a new cluster, whose log starts
 * again at 1 (index 0 makes the store take every entry of the new log).
 * Writer thread, no batch open; durable after kv_flush. MOOR_EBUSY when a
 * batch is open.
 */
int kv_rebase(struct kv *kv, uint64_t index, uint64_t term);

/* ---- snapshots ---------------------------------------------------------- */

/*
 * A consistent point-in-time copy (RocksDB checkpoint) of the committed state
 * into `dir` (must not exist), for a follower; *applied_index tells which
 * raft index it contains. Any thread; concurrent writes are not blocked.
 */
int kv_snapshot_create(struct kv *kv, const char *dir, uint64_t *applied_index);

/*
 * Replace the whole state by the checkpoint in `dir` (moved in; `dir` must be
 * on the same filesystem as the store). Atomic: after a crash at any point
 * the store reopens with either the old or the new state. All other calls
 * must be stopped. MOOR_ECORRUPT if `dir` is not a kv checkpoint.
 */
int kv_snapshot_restore(struct kv *kv, const char *dir);

/* ---- introspection (tests, tools) --------------------------------------- */

struct kv_stats {
	uint64_t history_records; /* physical history records, incl. garbage */
	uint64_t index_records;   /* physical key-index records */
	uint64_t live_keys;       /* keys at the current revision */
	uint64_t garbage_records; /* records awaiting physical compaction */
	uint64_t approx_bytes;    /* RocksDB's estimate of live SST + memtable data */
};
/* Counts by iteration: O(store size). */
int kv_stats(struct kv *kv, struct kv_stats *out);

#endif

/*
 * kv's private declarations: the handle, the record codec (codec.c), the
 * response arena (arena.c) and the read view shared by reads and the apply
 * batch (view.c). Nothing here is part of the public API.
 */
#ifndef MOOR_KV_KV_INT_H
#define MOOR_KV_KV_INT_H

#include "kv/kv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <rocksdb/c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- keys (docs/kv-layout.md) ------------------------------------------- */

#define KV_P_META 'm'    /* m<name>                      -> bytes */
#define KV_P_LATEST 'l'  /* l<key>                       -> record */
#define KV_P_HIST 'h'    /* h<main:8><sub:8>             -> record */
#define KV_P_INDEX 'k'   /* k<esc(key)>00 01<main><sub>  -> flags:1 */
#define KV_P_GARBAGE 'g' /* g<at main><at sub><main><sub> -> key */
#define KV_P_LEASE 'L'   /* L<id:8>                      -> ttl:8 */
#define KV_P_ATTACH 'a'  /* a<id:8><key>                 -> "" */

enum { KV_PB_HIST, KV_PB_INDEX, KV_PB_GARBAGE };

#define KV_REC_VERSION 1
#define KV_REC_TOMB 0x01u
#define KV_REC_HDR 46u /* version:1 flags:1 create:8 mod:8 sub:8 ver:8 lease:8 keylen:4 */

struct kv_rev {
	int64_t main;
	int64_t sub;
};

/* A decoded record; key/value point into the encoded bytes. */
struct kv_rec {
	unsigned flags;
	int64_t create_rev;
	struct kv_rev mod;
	int64_t version;
	int64_t lease;
	const unsigned char *key;
	size_t key_len;
	const unsigned char *value;
	size_t value_len;
};

/* A small growable key/record builder on the kv allocator. */
struct kv_kbuf {
	unsigned char *p;
	size_t len, cap;
	unsigned char inl[96];
};
void kv_kbuf_init(struct kv_kbuf *b);
void kv_kbuf_free(const struct moor_alloc *a, struct kv_kbuf *b);
int kv_kbuf_add(const struct moor_alloc *a, struct kv_kbuf *b, const void *p, size_t n);
int kv_kbuf_add_be64(const struct moor_alloc *a, struct kv_kbuf *b, uint64_t v);

int kv_key_latest(const struct moor_alloc *a, struct kv_kbuf *b, const void *key, size_t len);
int kv_key_hist(const struct moor_alloc *a, struct kv_kbuf *b, struct kv_rev r);
/* The escaped key prefix k<esc(key)>00 01, without the revision. */
int kv_key_index_prefix(const struct moor_alloc *a, struct kv_kbuf *b, const void *key, size_t len);
int kv_key_index(const struct moor_alloc *a, struct kv_kbuf *b, const void *key, size_t len,
                 struct kv_rev r);
/* Split an index key into the unescaped user key (appended to `key`) and rev. */
int kv_key_index_parse(const struct moor_alloc *a, const unsigned char *k, size_t len,
                       struct kv_kbuf *key, struct kv_rev *r);
int kv_key_garbage(const struct moor_alloc *a, struct kv_kbuf *b, struct kv_rev at,
                   struct kv_rev victim);
int kv_key_lease(const struct moor_alloc *a, struct kv_kbuf *b, int64_t id);
int kv_key_attach(const struct moor_alloc *a, struct kv_kbuf *b, int64_t id, const void *key,
                  size_t len);
int kv_key_meta(const struct moor_alloc *a, struct kv_kbuf *b, const char *name);
/* Lease ids sort as signed numbers: the sign bit is flipped. */
uint64_t kv_lease_enc(int64_t id);
int64_t kv_lease_dec(uint64_t v);

int kv_rec_encode(const struct moor_alloc *a, struct kv_kbuf *b, const struct kv_rec *r);
/* MOOR_ECORRUPT on anything malformed. */
int kv_rec_decode(const void *p, size_t len, struct kv_rec *out);

/* ---- arena -------------------------------------------------------------- */

struct kv_arena_chunk;
struct kv_arena {
	const struct moor_alloc *alloc;
	struct kv_arena_chunk *head;
	size_t chunk_bytes;
};
/* A response root: arena + the message right after it. */
void *kv_arena_new_root(const struct moor_alloc *a, size_t msg_size, struct kv_arena **arena);
void *kv_arena_alloc(struct kv_arena *ar, size_t n);
void *kv_arena_dup(struct kv_arena *ar, const void *p, size_t n);
void kv_arena_destroy(struct kv_arena *ar);
Mvccpb__KeyValue *kv_arena_kv(struct kv_arena *ar, const struct kv_rec *r, bool keys_only);
Etcdserverpb__ResponseHeader *kv_arena_header(struct kv_arena *ar, int64_t rev);

/* ---- the handle --------------------------------------------------------- */

/* Event accumulated in a batch (payload in the batch arena). */
struct kv_evlist {
	Mvccpb__Event **v;
	size_t n, cap;
};

struct kv {
	const struct moor_alloc *alloc;
	const struct moor_logger *log;
	kv_events_fn on_events;
	void *events_ctx;
	char *path;
	char *db_path;
	unsigned db_gen;
	size_t max_key, max_value;
	int max_txn_ops;
	size_t write_buffer_bytes, block_cache_bytes;

	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *topts;
	rocksdb_readoptions_t *ro;
	rocksdb_writeoptions_t *wo;
	rocksdb_flushoptions_t *fo;

	/* Committed state, changed by the writer under mu. rev and compact_rev
	 * are also read without mu by single-key reads, which validate against
	 * seq: odd while a commit is being written (a seqlock). */
	pthread_mutex_t mu;
	uint64_t applied_index, applied_term;
	_Atomic int64_t rev, compact_rev;
	_Atomic uint64_t seq;

	/* The open batch (writer thread only). */
	bool in_batch;
	/* What the batch reads back (l, L, a, m) goes to the indexed batch;
	 * history, index and garbage entries to one plain batch per table, so
	 * that at commit each table's entries reach the memtable in a run
	 * (h and g in ascending order: the skiplist's sequential fast path). */
	rocksdb_writebatch_wi_t *wb;
	rocksdb_writebatch_t *pb[3]; /* KV_PB_HIST, KV_PB_INDEX, KV_PB_GARBAGE */
	bool pb_dirty;
	struct kv_arena *ev_arena;
	struct kv_evlist ev;
	int64_t b_rev, b_compact;
	uint64_t b_index;
	bool b_dirty; /* anything written into wb */

	/* Compactor (its thread only). */
	struct kv_kbuf gc_cursor;
	int64_t gc_done_rev;

	/* kv_errmsg's buffer: written only by the thread that opened the store
	 * or runs the batch, so reader threads never race on it. */
	char errmsg[256];
	pthread_t owner;
};

/* Format the writer-side error message; returns code. */
int kv_fail(struct kv *kv, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- views: reads through either a DB snapshot or the open batch ---------- */

struct kv_view {
	struct kv *kv;
	rocksdb_readoptions_t *ro; /* with snapshot, or kv->ro */
	const rocksdb_snapshot_t *snap;
	rocksdb_writebatch_wi_t *wb; /* non-NULL: read through the batch */
	int64_t rev, compact_rev;
	bool pending; /* in a txn that has written: revision rev + 1 is readable */
};
/* A view of committed state: snapshot + revisions, consistent. */
int kv_view_open_committed(struct kv *kv, struct kv_view *v);
/* A view of the open batch (writer thread). */
void kv_view_open_batch(struct kv *kv, struct kv_view *v);
void kv_view_close(struct kv_view *v);
/* Get: 0 and *val (free with rocksdb_free) or MOOR_ENOTFOUND, or error. */
int kv_view_get(struct kv_view *v, const void *key, size_t klen, char **val, size_t *vlen);
/* An iterator (through the batch if any); bounds are the caller's to check. */
rocksdb_iterator_t *kv_view_iter(struct kv_view *v);

/* Latest record of a key at the view's current revision. *raw (rocksdb_free) */
int kv_view_latest(struct kv_view *v, const void *key, size_t klen, char **raw, struct kv_rec *rec);
/* The record of `key` visible at revision `rev` (a tombstone gives NOTFOUND). */
int kv_view_at(struct kv_view *v, const void *key, size_t klen, int64_t rev, char **raw,
               struct kv_rec *rec);

/* Range work shared by kv_range and txn range ops; resp in arena. */
int kv_do_range(struct kv_view *v, const Etcdserverpb__RangeRequest *req, struct kv_arena *ar,
                Etcdserverpb__RangeResponse *resp);
int kv_check_range_req(struct kv *kv, const Etcdserverpb__RangeRequest *req);
int kv_check_key_range(struct kv *kv, const ProtobufCBinaryData *key,
                       const ProtobufCBinaryData *end);
/* Calls fn for every live record in [key,end) at the view's current revision. */
typedef int (*kv_visit_fn)(void *ctx, const struct kv_rec *rec);
int kv_visit_latest(struct kv_view *v, const ProtobufCBinaryData *key,
                    const ProtobufCBinaryData *end, kv_visit_fn fn, void *ctx);

int kv_rocks_err(struct kv *kv, char *err, const char *what);
/* store.c helpers shared with snapshot.c */
char *kv_path_join(const struct moor_alloc *a, const char *dir, const char *name);
int kv_rm_tree(const char *p);
int kv_write_current(struct kv *kv, unsigned gen);
int kv_db_open(struct kv *kv, bool fresh);

/* Make the batch's history and index entries visible to batch reads. */
void kv_batch_expose(struct kv *kv);

/* ---- one write request (write.c, txn.c) ------------------------------------ */

/* The state of one request inside the batch, and what a failure rolls back. */
struct req_ctx {
	struct kv *kv;
	struct kv_view view;
	int64_t main; /* the revision this request writes at */
	int64_t sub;  /* changes so far */
	size_t ev_n;
	struct kv_arena *ar; /* the response's */
};
/* batch.c: start a request (1: already applied, skip), finish it (rolling
 * back on error), and record an event of the batch. */
int kv_req_start(struct kv *kv, uint64_t index, struct req_ctx *q);
int kv_req_end(struct req_ctx *q, int rc);
int kv_add_event(struct kv *kv, const struct kv_rec *rec, const struct kv_rec *prev);
int kv_txn_put(struct req_ctx *q, const Etcdserverpb__PutRequest *r,
               Etcdserverpb__PutResponse *resp);
int kv_txn_delete(struct req_ctx *q, const Etcdserverpb__DeleteRangeRequest *r,
                  Etcdserverpb__DeleteRangeResponse *resp);
int kv_txn_check_put(struct kv *kv, const Etcdserverpb__PutRequest *r);
int kv_txn_check_delete(struct kv *kv, const Etcdserverpb__DeleteRangeRequest *r);
/* Validation of the whole request tree: limits, every op, duplicate keys. */
int kv_txn_check(struct kv *kv, const Etcdserverpb__TxnRequest *r);
int kv_txn_exec(struct req_ctx *q, const Etcdserverpb__TxnRequest *r,
                Etcdserverpb__TxnResponse *resp);
/* Set every (nested) response header's revision. */
int kv_txn_headers(struct kv_arena *ar, Etcdserverpb__TxnResponse *resp, int64_t rev);

#endif

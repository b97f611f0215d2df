/*
 * A plain in-memory reference model of etcd's MVCC semantics, written
 * independently of kv/ (no RocksDB, no shared code): every version of every
 * key in arrays, answers computed by brute force. Its responses are built as
 * the same protobuf-c messages the store returns, so a test compares the two
 * by their packed bytes.
 *
 * The key space is a fixed universe (model_keys) so that undoing a failed
 * request is truncating version lists.
 */
#ifndef MOOR_TESTS_KV_MODEL_H
#define MOOR_TESTS_KV_MODEL_H

#include "proto/kv.pb-c.h"
#include "proto/rpc.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_NKEYS 24

struct mver {
	int64_t main, sub;
	bool tomb;
	int64_t create, version, lease;
	uint8_t *val;
	size_t vlen;
};

struct mkey {
	const uint8_t *key;
	size_t klen;
	struct mver *v;
	size_t n, cap;
};

struct mlease {
	int64_t id, ttl;
};

struct model {
	struct mkey keys[MODEL_NKEYS]; /* sorted */
	int64_t rev, compact;
	struct mlease *leases;
	size_t nleases;
	int max_txn_ops;
	/* events of the current batch (malloc'd, free with model_events_clear) */
	Mvccpb__Event **ev;
	size_t nev, capev;
};

/* The universe, sorted; index i is model.keys[i]. */
extern const char *const model_key_str[MODEL_NKEYS];
extern const size_t model_key_len[MODEL_NKEYS];

void model_init(struct model *m);
void model_free(struct model *m);
void model_events_clear(struct model *m);

/* Each returns 0 or a MOOR_E* code; *out malloc'd (free_unpacked with NULL). */
int model_range(struct model *m, const Etcdserverpb__RangeRequest *r,
                Etcdserverpb__RangeResponse **out);
int model_put(struct model *m, const Etcdserverpb__PutRequest *r, Etcdserverpb__PutResponse **out);
int model_delete(struct model *m, const Etcdserverpb__DeleteRangeRequest *r,
                 Etcdserverpb__DeleteRangeResponse **out);
int model_txn(struct model *m, const Etcdserverpb__TxnRequest *r, Etcdserverpb__TxnResponse **out);
int model_compact(struct model *m, int64_t rev);
int model_lease_grant(struct model *m, int64_t id, int64_t ttl);
int model_lease_revoke(struct model *m, int64_t id, Etcdserverpb__LeaseRevokeResponse **out);
bool model_lease_exists(const struct model *m, int64_t id);

/* Events with revision >= from, whole revisions, up to max (see kv.h). */
int model_history(struct model *m, int64_t from, size_t max, bool prev_kv, Mvccpb__Event ***ev,
                  size_t *n, int64_t *next_rev);

/* History records a finished physical compaction leaves. */
size_t model_kept_records(const struct model *m);

/* Pack both and compare; on mismatch print both (as text) and return false. */
bool msg_equal(const char *what, const ProtobufCMessage *a, const ProtobufCMessage *b);

#endif

/*
 * Seeded random request generator for kv tests: requests over the model's
 * key universe with every option, some deliberately invalid. Everything is
 * malloc'd; free a request with protobuf_c_message_free_unpacked(.., NULL).
 */
#ifndef MOOR_TESTS_KV_GEN_H
#define MOOR_TESTS_KV_GEN_H

#include "tests/kv/model.h"

#include <stdint.h>

struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline unsigned rng_below(struct rng *r, unsigned n)
{
	return (unsigned)(rng_next(r) % n);
}

/* One write op of a batch. */
enum gen_kind { GEN_PUT, GEN_DELETE, GEN_TXN, GEN_COMPACT, GEN_GRANT, GEN_REVOKE };

struct gen_op {
	enum gen_kind kind;
	Etcdserverpb__PutRequest *put;
	Etcdserverpb__DeleteRangeRequest *del;
	Etcdserverpb__TxnRequest *txn;
	int64_t compact_rev;
	int64_t lease_id, lease_ttl;
};

void gen_write(struct rng *r, const struct model *m, struct gen_op *op);
void gen_op_free(struct gen_op *op);
Etcdserverpb__RangeRequest *gen_range(struct rng *r, const struct model *m);

#endif

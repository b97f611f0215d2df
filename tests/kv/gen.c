/*
 * The request generator (gen.h). Probabilities favour valid requests that
 * touch a small key space, so versions, overwrites, deletes and re-creates
 * happen often; each kind of invalid input shows up every few hundred ops.
 */
#include "tests/kv/gen.h"

#include <stdlib.h>
#include <string.h>

static void *zalloc(size_t n)
{
	void *p = calloc(1, n);

	if (!p)
		abort();
	return p;
}

static ProtobufCBinaryData bytes(const void *p, size_t n)
{
	ProtobufCBinaryData b = {n, NULL};

	if (n) {
		b.data = malloc(n);
		if (!b.data)
			abort();
		memcpy(b.data, p, n);
	}
	return b;
}

static ProtobufCBinaryData gen_key(struct rng *r)
{
	unsigned i;

	if (rng_below(r, 500) == 0)
		return bytes(NULL, 0); /* empty key: MOOR_EEMPTYKEY */
	i = rng_below(r, MODEL_NKEYS);
	return bytes(model_key_str[i], model_key_len[i]);
}

/* A key the request names must be in the universe; empty only on purpose. */
static ProtobufCBinaryData gen_end(struct rng *r, const ProtobufCBinaryData *key)
{
	unsigned c = rng_below(r, 100);

	if (c < 40 || key->len == 0)
		return bytes(NULL, 0);
	if (c < 50)
		return bytes("", 1); /* "\0": everything from key */
	if (c < 75) {
		/* prefix end: key with the last non-0xff byte incremented */
		uint8_t buf[16];
		size_t n = key->len;

		memcpy(buf, key->data, n);
		while (n > 0 && buf[n - 1] == 0xff)
			n--;
		if (n == 0)
			return bytes("", 1);
		buf[n - 1]++;
		return bytes(buf, n);
	}
	unsigned i = rng_below(r, MODEL_NKEYS); /* may be below key: an empty range */

	return bytes(model_key_str[i], model_key_len[i]);
}

static ProtobufCBinaryData gen_value(struct rng *r)
{
	uint8_t v[24];
	size_t n = rng_below(r, 10) == 0 ? 0 : 1 + rng_below(r, sizeof v);

	for (size_t i = 0; i < n; i++)
		v[i] = (uint8_t)('a' + rng_below(r, 4)); /* few distinct: value compares hit */
	return bytes(v, n);
}

static int64_t gen_lease_ref(struct rng *r, const struct model *m)
{
	unsigned c = rng_below(r, 100);

	if (c < 75)
		return 0;
	if (c < 95 && m->nleases)
		return m->leases[rng_below(r, (unsigned)m->nleases)].id;
	return 1 + rng_below(r, 8); /* maybe not granted: MOOR_ELEASENOTFOUND */
}

static Etcdserverpb__PutRequest *gen_put(struct rng *r, const struct model *m)
{
	Etcdserverpb__PutRequest *p = zalloc(sizeof *p);

	etcdserverpb__put_request__init(p);
	p->key = gen_key(r);
	p->value = gen_value(r);
	p->lease = gen_lease_ref(r, m);
	p->prev_kv = rng_below(r, 2);
	if (rng_below(r, 25) == 0) {
		p->ignore_value = 1;
		if (rng_below(r, 4)) {
			free(p->value.data);
			p->value = bytes(NULL, 0);
		}
	}
	if (rng_below(r, 25) == 0) {
		p->ignore_lease = 1;
		if (rng_below(r, 4))
			p->lease = 0;
	}
	return p;
}

static Etcdserverpb__DeleteRangeRequest *gen_delete(struct rng *r)
{
	Etcdserverpb__DeleteRangeRequest *d = zalloc(sizeof *d);

	etcdserverpb__delete_range_request__init(d);
	d->key = gen_key(r);
	d->range_end = gen_end(r, &d->key);
	d->prev_kv = rng_below(r, 2);
	return d;
}

static int64_t gen_rev(struct rng *r, const struct model *m)
{
	if (rng_below(r, 2))
		return 0;
	int64_t lo = m->compact > 2 ? m->compact - 2 : 1, hi = m->rev + 2;

	return lo + (int64_t)rng_below(r, (unsigned)(hi - lo + 1));
}

Etcdserverpb__RangeRequest *gen_range(struct rng *r, const struct model *m)
{
	Etcdserverpb__RangeRequest *q = zalloc(sizeof *q);

	etcdserverpb__range_request__init(q);
	q->key = gen_key(r);
	q->range_end = gen_end(r, &q->key);
	q->limit = rng_below(r, 3) == 0 ? 1 + rng_below(r, 5) : 0;
	if (rng_below(r, 400) == 0)
		q->limit = -1;
	q->revision = gen_rev(r, m);
	if (rng_below(r, 3) == 0) {
		q->sort_order = rng_below(r, 3);
		q->sort_target = rng_below(r, 5);
		if (rng_below(r, 100) == 0)
			q->sort_target = 7; /* MOOR_ESORT */
	}
	q->keys_only = rng_below(r, 6) == 0;
	q->count_only = rng_below(r, 8) == 0;
	if (rng_below(r, 5) == 0) {
		q->min_mod_revision = rng_below(r, 2) ? gen_rev(r, m) : 0;
		q->max_mod_revision = rng_below(r, 2) ? gen_rev(r, m) : 0;
		q->min_create_revision = rng_below(r, 2) ? gen_rev(r, m) : 0;
		q->max_create_revision = rng_below(r, 2) ? gen_rev(r, m) : 0;
	}
	return q;
}

static Etcdserverpb__Compare *gen_compare(struct rng *r, const struct model *m)
{
	Etcdserverpb__Compare *c = zalloc(sizeof *c);

	etcdserverpb__compare__init(c);
	c->key = gen_key(r);
	if (rng_below(r, 5) == 0)
		c->range_end = gen_end(r, &c->key);
	c->result = rng_below(r, 4);
	c->target = rng_below(r, 5);
	if (rng_below(r, 20) == 0)
		return c; /* union not set: compares with zero */
	switch (c->target) {
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
		c->version = rng_below(r, 4);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
		c->create_revision = gen_rev(r, m);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		c->mod_revision = gen_rev(r, m);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
		c->value = gen_value(r);
		break;
	default:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
		c->lease = gen_lease_ref(r, m);
		break;
	}
	return c;
}

static Etcdserverpb__TxnRequest *gen_txn(struct rng *r, const struct model *m, int depth);

static Etcdserverpb__RequestOp **gen_ops(struct rng *r, const struct model *m, int depth, size_t *n)
{
	Etcdserverpb__RequestOp **ops;

	*n = rng_below(r, 4);
	if (*n == 0)
		return NULL;
	ops = zalloc(*n * sizeof *ops);
	for (size_t i = 0; i < *n; i++) {
		Etcdserverpb__RequestOp *o = zalloc(sizeof *o);
		unsigned c = rng_below(r, 10);

		etcdserverpb__request_op__init(o);
		if (c < 3) {
			o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
			o->request_range = gen_range(r, m);
		} else if (c < 7) {
			o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
			o->request_put = gen_put(r, m);
		} else if (c < 9 || depth >= 2) {
			o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
			o->request_delete_range = gen_delete(r);
		} else {
			o->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
			o->request_txn = gen_txn(r, m, depth + 1);
		}
		ops[i] = o;
	}
	return ops;
}

static Etcdserverpb__TxnRequest *gen_txn(struct rng *r, const struct model *m, int depth)
{
	Etcdserverpb__TxnRequest *t = zalloc(sizeof *t);

	etcdserverpb__txn_request__init(t);
	t->n_compare = rng_below(r, 3);
	if (t->n_compare) {
		t->compare = zalloc(t->n_compare * sizeof *t->compare);
		for (size_t i = 0; i < t->n_compare; i++)
			t->compare[i] = gen_compare(r, m);
	}
	t->success = gen_ops(r, m, depth, &t->n_success);
	t->failure = gen_ops(r, m, depth, &t->n_failure);
	return t;
}

void gen_write(struct rng *r, const struct model *m, struct gen_op *op)
{
	unsigned c = rng_below(r, 100);

	memset(op, 0, sizeof *op);
	if (c < 45) {
		op->kind = GEN_PUT;
		op->put = gen_put(r, m);
	} else if (c < 60) {
		op->kind = GEN_DELETE;
		op->del = gen_delete(r);
	} else if (c < 88) {
		op->kind = GEN_TXN;
		op->txn = gen_txn(r, m, 0);
	} else if (c < 91) {
		op->kind = GEN_COMPACT;
		int64_t lo = m->compact > 1 ? m->compact - 1 : 0;

		unsigned span = (unsigned)(m->rev + 2 - lo);

		/* mostly small steps, so old revisions stay readable for a while */
		if (rng_below(r, 10) && span > 12)
			span = 12;
		op->compact_rev = lo + (int64_t)rng_below(r, span);
	} else if (c < 96) {
		op->kind = GEN_GRANT;
		op->lease_id = 1 + rng_below(r, 8);
		op->lease_ttl = rng_below(r, 50) == 0 ? 0 : 1 + rng_below(r, 100);
	} else {
		op->kind = GEN_REVOKE;
		op->lease_id = 1 + rng_below(r, 8);
	}
}

void gen_op_free(struct gen_op *op)
{
	if (op->put)
		protobuf_c_message_free_unpacked(&op->put->base, NULL);
	if (op->del)
		protobuf_c_message_free_unpacked(&op->del->base, NULL);
	if (op->txn)
		protobuf_c_message_free_unpacked(&op->txn->base, NULL);
	memset(op, 0, sizeof *op);
}

/*
 * KV calls: get with every range option, put, delete, compaction, and the
 * txn builder. Requests are built as etcd's protobuf messages with copies
 * of the caller's bytes (so the txn builder can outlive them).
 */
#include "client/internal.h"

#include <stdlib.h>
#include <string.h>

static int bin_copy(ProtobufCBinaryData *d, const void *p, size_t len)
{
	d->len = 0;
	d->data = malloc(len ? len : 1);
	if (!d->data)
		return MOOR_ENOMEM;
	if (len)
		memcpy(d->data, p, len);
	d->len = len;
	return 0;
}

/* key and range_end for a moor_range (see moor.h). */
static int range_fill(ProtobufCBinaryData *k, ProtobufCBinaryData *end, const void *key,
                      size_t key_len, const struct moor_range *r)
{
	static const uint8_t zero = 0;
	int n = 0;
	int rc;

	if (r)
		n = (r->range_end_len > 0) + r->prefix + r->from_key;
	if (n > 1)
		return cl_set_error(MOOR_EINVAL,
		                    "range_end, prefix and from_key exclude each other");
	if (key_len == 0 && n == 1 && (r->prefix || r->from_key))
		rc = bin_copy(k, &zero, 1); /* every key */
	else
		rc = bin_copy(k, key, key_len);
	if (rc || n == 0)
		return rc;
	if (r->range_end_len)
		return bin_copy(end, r->range_end, r->range_end_len);
	if (r->from_key || key_len == 0)
		return bin_copy(end, &zero, 1);
	end->data = malloc(key_len);
	if (!end->data)
		return MOOR_ENOMEM;
	end->len = moor_prefix_end(key, key_len, end->data);
	return 0;
}

int cl_range_fill(Etcdserverpb__RangeRequest *q, const void *key, size_t key_len,
                  const struct moor_get_opts *o, bool default_serializable)
{
	static const struct moor_get_opts none;

	etcdserverpb__range_request__init(q);
	if (!o)
		o = &none;
	if (o->limit < 0 || o->revision < 0 || o->sort_target > MOOR_SORT_VALUE ||
	    o->sort_order > MOOR_ORDER_DESCEND)
		return cl_set_error(MOOR_EINVAL, "bad get options");
	q->limit = o->limit;
	q->revision = o->revision;
	q->sort_order = (Etcdserverpb__RangeRequest__SortOrder)o->sort_order;
	q->sort_target = (Etcdserverpb__RangeRequest__SortTarget)o->sort_target;
	q->serializable = o->read_mode == MOOR_READ_SERIALIZABLE ||
	                  (o->read_mode == MOOR_READ_DEFAULT && default_serializable);
	q->keys_only = o->keys_only;
	q->count_only = o->count_only;
	q->min_mod_revision = o->min_mod_revision;
	q->max_mod_revision = o->max_mod_revision;
	q->min_create_revision = o->min_create_revision;
	q->max_create_revision = o->max_create_revision;
	return range_fill(&q->key, &q->range_end, key, key_len, &o->range);
}

void cl_range_clear(Etcdserverpb__RangeRequest *q)
{
	free(q->key.data);
	free(q->range_end.data);
	q->key.data = q->range_end.data = NULL;
}

int cl_put_fill(Etcdserverpb__PutRequest *q, const void *key, size_t key_len, const void *value,
                size_t value_len, const struct moor_put_opts *o)
{
	etcdserverpb__put_request__init(q);
	if (o) {
		q->lease = o->lease;
		q->prev_kv = o->prev_kv;
		q->ignore_value = o->ignore_value;
		q->ignore_lease = o->ignore_lease;
	}
	if (bin_copy(&q->key, key, key_len) || bin_copy(&q->value, value, value_len))
		return MOOR_ENOMEM;
	return 0;
}

void cl_put_clear(Etcdserverpb__PutRequest *q)
{
	free(q->key.data);
	free(q->value.data);
	q->key.data = q->value.data = NULL;
}

int cl_delete_fill(Etcdserverpb__DeleteRangeRequest *q, const void *key, size_t key_len,
                   const struct moor_delete_opts *o)
{
	etcdserverpb__delete_range_request__init(q);
	if (o)
		q->prev_kv = o->prev_kv;
	return range_fill(&q->key, &q->range_end, key, key_len, o ? &o->range : NULL);
}

void cl_delete_clear(Etcdserverpb__DeleteRangeRequest *q)
{
	free(q->key.data);
	free(q->range_end.data);
	q->key.data = q->range_end.data = NULL;
}

/* Wraps a decoded answer into a moor_response (taking it). */
static int wrap(ProtobufCMessage *m, int (*conv)(struct moor_response *, void *),
                struct moor_response **out)
{
	struct moor_response *r = calloc(1, sizeof *r);

	if (!r || conv(r, m) != 0) {
		if (r)
			cl_response_clear(r);
		free(r);
		protobuf_c_message_free_unpacked(m, NULL);
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	}
	r->priv_ = m;
	*out = r;
	return 0;
}

static int conv_range(struct moor_response *r, void *m)
{
	return cl_response_from_range(r, m);
}
static int conv_put(struct moor_response *r, void *m)
{
	return cl_response_from_put(r, m);
}
static int conv_delete(struct moor_response *r, void *m)
{
	return cl_response_from_delete(r, m);
}
static int conv_txn(struct moor_response *r, void *m)
{
	return cl_response_from_txn(r, m);
}

static int finish(int rc, ProtobufCMessage *m, int (*conv)(struct moor_response *, void *),
                  struct moor_response **out)
{
	if (rc)
		return rc;
	if (!out) {
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	return wrap(m, conv, out);
}

int moor_get(moor_client *c, const void *key, size_t key_len, const struct moor_get_opts *opts,
             struct moor_response **out)
{
	Etcdserverpb__RangeRequest q;
	ProtobufCMessage *m = NULL;
	int rc;

	*out = NULL;
	rc = cl_range_fill(&q, key, key_len, opts, c->serializable);
	if (rc == 0)
		rc = cl_call(c, "/v3/kv/range", &q.base, &etcdserverpb__range_response__descriptor,
		             CL_READ, NULL, &m);
	cl_range_clear(&q);
	return finish(rc, m, conv_range, out);
}

int moor_put(moor_client *c, const void *key, size_t key_len, const void *value, size_t value_len,
             const struct moor_put_opts *opts, struct moor_response **out)
{
	Etcdserverpb__PutRequest q;
	ProtobufCMessage *m = NULL;
	int rc;

	if (out)
		*out = NULL;
	rc = cl_put_fill(&q, key, key_len, value, value_len, opts);
	if (rc == 0)
		rc = cl_call(c, "/v3/kv/put", &q.base, &etcdserverpb__put_response__descriptor,
		             CL_WRITE, NULL, &m);
	cl_put_clear(&q);
	return finish(rc, m, conv_put, out);
}

int moor_delete(moor_client *c, const void *key, size_t key_len,
                const struct moor_delete_opts *opts, struct moor_response **out)
{
	Etcdserverpb__DeleteRangeRequest q;
	ProtobufCMessage *m = NULL;
	int rc;

	if (out)
		*out = NULL;
	rc = cl_delete_fill(&q, key, key_len, opts);
	if (rc == 0)
		rc = cl_call(c, "/v3/kv/deleterange", &q.base,
		             &etcdserverpb__delete_range_response__descriptor, CL_WRITE, NULL, &m);
	cl_delete_clear(&q);
	return finish(rc, m, conv_delete, out);
}

int moor_compact(moor_client *c, int64_t revision, bool physical, struct moor_header *header)
{
	Etcdserverpb__CompactionRequest q = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	Etcdserverpb__CompactionResponse *m = NULL;
	int rc;

	q.revision = revision;
	q.physical = physical;
	rc =
	    cl_call(c, "/v3/kv/compaction", &q.base, &etcdserverpb__compaction_response__descriptor,
	            CL_WRITE, NULL, (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	if (header)
		cl_header(header, m->header);
	etcdserverpb__compaction_response__free_unpacked(m, NULL);
	return 0;
}

/* ---- txn ---- */

struct moor_txn {
	Etcdserverpb__TxnRequest q;
	size_t cap_cmp, cap_ops[2];
	bool writes;
};

int moor_txn_new(moor_txn **out)
{
	moor_txn *t = calloc(1, sizeof *t);

	*out = NULL;
	if (!t)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	etcdserverpb__txn_request__init(&t->q);
	*out = t;
	return 0;
}

static void op_free(Etcdserverpb__RequestOp *op)
{
	switch (op->request_case) {
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
		cl_range_clear(op->request_range);
		free(op->request_range);
		break;
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
		cl_put_clear(op->request_put);
		free(op->request_put);
		break;
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
		cl_delete_clear(op->request_delete_range);
		free(op->request_delete_range);
		break;
	default:
		break;
	}
	free(op);
}

void moor_txn_free(moor_txn *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->q.n_compare; i++) {
		Etcdserverpb__Compare *cmp = t->q.compare[i];
		free(cmp->key.data);
		free(cmp->range_end.data);
		if (cmp->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE)
			free(cmp->value.data);
		free(cmp);
	}
	for (size_t i = 0; i < t->q.n_success; i++)
		op_free(t->q.success[i]);
	for (size_t i = 0; i < t->q.n_failure; i++)
		op_free(t->q.failure[i]);
	free(t->q.compare);
	free(t->q.success);
	free(t->q.failure);
	free(t);
}

static int grow(void ***arr, size_t n, size_t *cap)
{
	void **a;
	size_t nc;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 4;
	a = realloc(*arr, nc * sizeof *a);
	if (!a)
		return MOOR_ENOMEM;
	*arr = a;
	*cap = nc;
	return 0;
}

int moor_txn_if(moor_txn *t, const struct moor_cmp *cmp)
{
	Etcdserverpb__Compare *p;
	int rc;

	if (cmp->target > MOOR_CMP_LEASE || cmp->op > MOOR_CMP_NOT_EQUAL)
		return cl_set_error(MOOR_EINVAL, "bad compare");
	if (grow((void ***)&t->q.compare, t->q.n_compare, &t->cap_cmp))
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	p = calloc(1, sizeof *p);
	if (!p)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	etcdserverpb__compare__init(p);
	p->result = (Etcdserverpb__Compare__CompareResult)cmp->op;
	p->target = (Etcdserverpb__Compare__CompareTarget)cmp->target;
	rc = bin_copy(&p->key, cmp->key, cmp->key_len);
	if (rc == 0 && cmp->range_end_len)
		rc = bin_copy(&p->range_end, cmp->range_end, cmp->range_end_len);
	switch (cmp->target) {
	case MOOR_CMP_VERSION:
		p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
		p->version = cmp->number;
		break;
	case MOOR_CMP_CREATE:
		p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
		p->create_revision = cmp->number;
		break;
	case MOOR_CMP_MOD:
		p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		p->mod_revision = cmp->number;
		break;
	case MOOR_CMP_LEASE:
		p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
		p->lease = cmp->number;
		break;
	case MOOR_CMP_VALUE:
		p->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
		if (rc == 0)
			rc = bin_copy(&p->value, cmp->value, cmp->value_len);
		break;
	}
	t->q.compare[t->q.n_compare++] = p;
	return rc ? cl_set_error(MOOR_ENOMEM, "out of memory") : 0;
}

static int add_op(moor_txn *t, enum moor_txn_branch b, Etcdserverpb__RequestOp **out)
{
	Etcdserverpb__RequestOp ***arr = b == MOOR_TXN_THEN ? &t->q.success : &t->q.failure;
	size_t *n = b == MOOR_TXN_THEN ? &t->q.n_success : &t->q.n_failure;
	Etcdserverpb__RequestOp *op;

	if (b != MOOR_TXN_THEN && b != MOOR_TXN_ELSE)
		return cl_set_error(MOOR_EINVAL, "bad txn branch");
	if (grow((void ***)arr, *n, &t->cap_ops[b]))
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	op = calloc(1, sizeof *op);
	if (!op)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	etcdserverpb__request_op__init(op);
	(*arr)[(*n)++] = op;
	*out = op;
	return 0;
}

int moor_txn_get(moor_txn *t, enum moor_txn_branch b, const void *key, size_t key_len,
                 const struct moor_get_opts *opts)
{
	Etcdserverpb__RequestOp *op;
	int rc = add_op(t, b, &op);

	if (rc)
		return rc;
	op->request_range = calloc(1, sizeof *op->request_range);
	if (!op->request_range)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	return cl_range_fill(op->request_range, key, key_len, opts, false);
}

int moor_txn_put(moor_txn *t, enum moor_txn_branch b, const void *key, size_t key_len,
                 const void *value, size_t value_len, const struct moor_put_opts *opts)
{
	Etcdserverpb__RequestOp *op;
	int rc = add_op(t, b, &op);

	if (rc)
		return rc;
	t->writes = true;
	op->request_put = calloc(1, sizeof *op->request_put);
	if (!op->request_put)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	return cl_put_fill(op->request_put, key, key_len, value, value_len, opts);
}

int moor_txn_delete(moor_txn *t, enum moor_txn_branch b, const void *key, size_t key_len,
                    const struct moor_delete_opts *opts)
{
	Etcdserverpb__RequestOp *op;
	int rc = add_op(t, b, &op);

	if (rc)
		return rc;
	t->writes = true;
	op->request_delete_range = calloc(1, sizeof *op->request_delete_range);
	if (!op->request_delete_range)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	return cl_delete_fill(op->request_delete_range, key, key_len, opts);
}

int moor_txn_commit(moor_client *c, moor_txn *t, struct moor_response **out)
{
	ProtobufCMessage *m = NULL;
	int rc;

	if (out)
		*out = NULL;
	/* A txn of reads only is a read: safe to retry anywhere. */
	rc = cl_call(c, "/v3/kv/txn", &t->q.base, &etcdserverpb__txn_response__descriptor,
	             t->writes ? CL_WRITE : CL_READ, NULL, &m);
	return finish(rc, m, conv_txn, out);
}

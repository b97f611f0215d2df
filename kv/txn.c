/*
 * Transactions: validation of the whole request tree (limits, every op,
 * etcd's duplicate-key rule), compare evaluation, and execution of the chosen
 * branch at one main revision. Nested txns run inside the same revision.
 */
#include "kv/kv_int.h"

#include "common/error.h"

#include <string.h>

/* ---- duplicate keys: etcd's checkIntervals ----------------------------------- */

struct ivl {
	const ProtobufCBinaryData *key, *end;
};

struct ivset {
	struct ivl *v;
	size_t n, cap;
};

static const ProtobufCBinaryData no_end = {0, NULL};

static int ivset_add(const struct moor_alloc *a, struct ivset *s, const ProtobufCBinaryData *k,
                     const ProtobufCBinaryData *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct ivl *v = moor_realloc(a, s->v, cap * sizeof *v);

		if (!v)
			return MOOR_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct ivl){k, e};
	return 0;
}

static int bcmp2(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	int c =
	    (a->len && b->len) ? memcmp(a->data, b->data, a->len < b->len ? a->len : b->len) : 0;

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static bool ivl_has(const struct ivl *iv, const ProtobufCBinaryData *k)
{
	if (iv->end->len == 0)
		return bcmp2(k, iv->key) == 0;
	if (bcmp2(k, iv->key) < 0)
		return false;
	if (iv->end->len == 1 && iv->end->data[0] == 0)
		return true;
	return bcmp2(k, iv->end) < 0;
}

static bool ivset_hits(const struct ivset *s, const ProtobufCBinaryData *k)
{
	for (size_t i = 0; i < s->n; i++)
		if (ivl_has(&s->v[i], k))
			return true;
	return false;
}

/* Puts are stored as degenerate intervals (end empty). */
static bool puts_has(const struct ivset *s, const ProtobufCBinaryData *k)
{
	for (size_t i = 0; i < s->n; i++)
		if (bcmp2(s->v[i].key, k) == 0)
			return true;
	return false;
}

static int check_intervals(struct kv *kv, Etcdserverpb__RequestOp **ops, size_t n,
                           struct ivset *puts, struct ivset *dels)
{
	const struct moor_alloc *a = kv->alloc;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE)
			rc = ivset_add(a, dels, &ops[i]->request_delete_range->key,
			               &ops[i]->request_delete_range->range_end);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct ivset pt = {0}, dt = {0}, pe = {0}, de = {0};
		const Etcdserverpb__TxnRequest *t;

		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
			continue;
		t = ops[i]->request_txn;
		rc = check_intervals(kv, t->success, t->n_success, &pt, &dt);
		if (rc == 0)
			rc = check_intervals(kv, t->failure, t->n_failure, &pe, &de);
		for (size_t j = 0; rc == 0 && j < pt.n; j++) {
			if (puts_has(puts, pt.v[j].key) || ivset_hits(dels, pt.v[j].key))
				rc = MOOR_EDUPKEY;
			else
				rc = ivset_add(a, puts, pt.v[j].key, pt.v[j].end);
		}
		for (size_t j = 0; rc == 0 && j < pe.n; j++) {
			/* then and else exclude each other: the same key in both is fine */
			bool in_then = puts_has(&pt, pe.v[j].key);

			if ((puts_has(puts, pe.v[j].key) && !in_then) ||
			    ivset_hits(dels, pe.v[j].key))
				rc = MOOR_EDUPKEY;
			else if (!in_then) /* a set: each key once */
				rc = ivset_add(a, puts, pe.v[j].key, pe.v[j].end);
		}
		for (size_t j = 0; rc == 0 && j < dt.n; j++)
			rc = ivset_add(a, dels, dt.v[j].key, dt.v[j].end);
		for (size_t j = 0; rc == 0 && j < de.n; j++)
			rc = ivset_add(a, dels, de.v[j].key, de.v[j].end);
		moor_free(a, pt.v);
		moor_free(a, dt.v);
		moor_free(a, pe.v);
		moor_free(a, de.v);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const Etcdserverpb__PutRequest *p;

		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			continue;
		p = ops[i]->request_put;
		if (puts_has(puts, &p->key) || ivset_hits(dels, &p->key))
			rc = MOOR_EDUPKEY;
		else
			rc = ivset_add(a, puts, &p->key, &no_end);
	}
	return rc;
}

static int check_ops(struct kv *kv, Etcdserverpb__RequestOp **ops, size_t n, int depth);

static int check_one(struct kv *kv, const Etcdserverpb__TxnRequest *r, int depth)
{
	int rc;

	if (depth > 16)
		return kv_fail(kv, MOOR_ETOOMANYOPS, "kv: txn nested deeper than 16");
	if (r->n_compare > (size_t)kv->max_txn_ops || r->n_success > (size_t)kv->max_txn_ops ||
	    r->n_failure > (size_t)kv->max_txn_ops)
		return kv_fail(kv, MOOR_ETOOMANYOPS, "kv: txn over %d operations", kv->max_txn_ops);
	for (size_t i = 0; i < r->n_compare; i++) {
		const Etcdserverpb__Compare *c = r->compare[i];

		rc = kv_check_key_range(kv, &c->key, &c->range_end);
		if (rc)
			return rc;
		if ((unsigned)c->result > ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL ||
		    (unsigned)c->target > ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE)
			return kv_fail(kv, MOOR_EINVAL, "kv: compare result %d target %d",
			               c->result, c->target);
	}
	rc = check_ops(kv, r->success, r->n_success, depth);
	return rc ? rc : check_ops(kv, r->failure, r->n_failure, depth);
}

static int check_ops(struct kv *kv, Etcdserverpb__RequestOp **ops, size_t n, int depth)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		switch (ops[i]->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			rc = kv_check_range_req(kv, ops[i]->request_range);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			rc = kv_txn_check_put(kv, ops[i]->request_put);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
			rc = kv_txn_check_delete(kv, ops[i]->request_delete_range);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			rc = check_one(kv, ops[i]->request_txn, depth + 1);
			break;
		default:
			rc = kv_fail(kv, MOOR_EINVAL, "kv: txn op without a request");
			break;
		}
	}
	return rc;
}

static int check_dups(struct kv *kv, Etcdserverpb__RequestOp **ops, size_t n)
{
	struct ivset puts = {0}, dels = {0};
	int rc = check_intervals(kv, ops, n, &puts, &dels);

	moor_free(kv->alloc, puts.v);
	moor_free(kv->alloc, dels.v);
	if (rc == MOOR_EDUPKEY)
		kv_fail(kv, rc, "kv: duplicate key given in txn request");
	return rc;
}

int kv_txn_check(struct kv *kv, const Etcdserverpb__TxnRequest *r)
{
	int rc = check_one(kv, r, 0);

	if (rc == 0)
		rc = check_dups(kv, r->success, r->n_success);
	return rc ? rc : check_dups(kv, r->failure, r->n_failure);
}

/* ---- compares ------------------------------------------------------------------- */

static int cmp_i64(int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

static bool compare_rec(const Etcdserverpb__Compare *c, const struct kv_rec *r)
{
	int x;

	switch (c->target) {
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
		x = cmp_i64(r->version,
		            c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION
		                ? c->version
		                : 0);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
		x = cmp_i64(r->create_rev,
		            c->target_union_case ==
		                    ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION
		                ? c->create_revision
		                : 0);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
		x = cmp_i64(r->mod.main,
		            c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION
		                ? c->mod_revision
		                : 0);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
		x = cmp_i64(r->lease,
		            c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE
		                ? c->lease
		                : 0);
		break;
	default: {
		ProtobufCBinaryData v = {0, NULL}, rv = {r->value_len, (uint8_t *)r->value};

		if (c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE)
			v = c->value;
		x = bcmp2(&rv, &v);
		break;
	}
	}
	switch (c->result) {
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL:
		return x == 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER:
		return x > 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS:
		return x < 0;
	default:
		return x != 0;
	}
}

struct cmp_acc {
	const Etcdserverpb__Compare *c;
	bool ok;
	size_t n;
};

static int cmp_visit(void *ctx, const struct kv_rec *rec)
{
	struct cmp_acc *acc = ctx;

	acc->n++;
	if (!compare_rec(acc->c, rec))
		acc->ok = false;
	return 0;
}

/* etcd: every key in the range must satisfy it; with no key, VALUE fails and
 * the others compare against a zero KeyValue. */
static int eval_compare(struct req_ctx *q, const Etcdserverpb__Compare *c, bool *ok)
{
	struct cmp_acc acc = {.c = c, .ok = true};
	int rc = kv_visit_latest(&q->view, &c->key, &c->range_end, cmp_visit, &acc);

	if (rc)
		return rc;
	if (acc.n == 0) {
		struct kv_rec zero;

		memset(&zero, 0, sizeof zero);
		acc.ok = c->target != ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE &&
		         compare_rec(c, &zero);
	}
	*ok = acc.ok;
	return 0;
}

/* ---- execution ------------------------------------------------------------------ */

int kv_txn_exec(struct req_ctx *q, const Etcdserverpb__TxnRequest *r,
                Etcdserverpb__TxnResponse *resp)
{
	Etcdserverpb__RequestOp **ops;
	size_t n;
	bool ok = true;
	int rc = 0;

	for (size_t i = 0; ok && i < r->n_compare; i++) {
		rc = eval_compare(q, r->compare[i], &ok);
		if (rc)
			return rc;
	}
	resp->succeeded = ok;
	ops = ok ? r->success : r->failure;
	n = ok ? r->n_success : r->n_failure;
	if (n == 0)
		return 0;
	resp->responses = kv_arena_alloc(q->ar, n * sizeof *resp->responses);
	if (!resp->responses)
		return MOOR_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Etcdserverpb__ResponseOp *ro = kv_arena_alloc(q->ar, sizeof *ro);

		if (!ro)
			return MOOR_ENOMEM;
		etcdserverpb__response_op__init(ro);
		switch (ops[i]->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE: {
			Etcdserverpb__RangeResponse *rr = kv_arena_alloc(q->ar, sizeof *rr);

			if (!rr)
				return MOOR_ENOMEM;
			etcdserverpb__range_response__init(rr);
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
			ro->response_range = rr;
			q->view.pending = q->sub > 0;
			rc = kv_do_range(&q->view, ops[i]->request_range, q->ar, rr);
			break;
		}
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT: {
			Etcdserverpb__PutResponse *pr = kv_arena_alloc(q->ar, sizeof *pr);

			if (!pr)
				return MOOR_ENOMEM;
			etcdserverpb__put_response__init(pr);
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
			ro->response_put = pr;
			rc = kv_txn_put(q, ops[i]->request_put, pr);
			break;
		}
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
			Etcdserverpb__DeleteRangeResponse *dr = kv_arena_alloc(q->ar, sizeof *dr);

			if (!dr)
				return MOOR_ENOMEM;
			etcdserverpb__delete_range_response__init(dr);
			ro->response_case =
			    ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
			ro->response_delete_range = dr;
			rc = kv_txn_delete(q, ops[i]->request_delete_range, dr);
			break;
		}
		default: {
			Etcdserverpb__TxnResponse *tr = kv_arena_alloc(q->ar, sizeof *tr);

			if (!tr)
				return MOOR_ENOMEM;
			etcdserverpb__txn_response__init(tr);
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
			ro->response_txn = tr;
			rc = kv_txn_exec(q, ops[i]->request_txn, tr);
			break;
		}
		}
		if (rc)
			return rc;
		resp->responses[resp->n_responses++] = ro;
	}
	return 0;
}

int kv_txn_headers(struct kv_arena *ar, Etcdserverpb__TxnResponse *resp, int64_t rev)
{
	for (size_t i = 0; i < resp->n_responses; i++) {
		Etcdserverpb__ResponseOp *ro = resp->responses[i];
		Etcdserverpb__ResponseHeader *h = kv_arena_header(ar, rev);

		if (!h)
			return MOOR_ENOMEM;
		switch (ro->response_case) {
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
			ro->response_range->header = h;
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
			ro->response_put->header = h;
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
			ro->response_delete_range->header = h;
			break;
		default:
			/* etcd leaves a nested txn's own header empty */
			h->revision = 0;
			ro->response_txn->header = h;
			if (kv_txn_headers(ar, ro->response_txn, rev) != 0)
				return MOOR_ENOMEM;
			break;
		}
	}
	return 0;
}

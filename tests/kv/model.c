/*
 * The reference model (model.h): brute force over arrays, written from
 * etcd's documented semantics, sharing no code with kv/.
 */
#include "tests/kv/model.h"

#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const model_key_str[MODEL_NKEYS] = {
    "a",  "a\0", "a\0b", "a/",  "a/1", "a/2", "a/3",     "ab",   "abc", "b", "b\xff", "ba",
    "bb", "c",   "c/x",  "c/y", "d",   "foo", "foo/bar", "foo0", "x",   "y", "\x01",  "\xff\xff"};
const size_t model_key_len[MODEL_NKEYS] = {1, 2, 3, 2, 3, 3, 3, 2, 3, 1, 2, 2,
                                           2, 1, 3, 3, 1, 3, 7, 4, 1, 1, 1, 2};

static int bcmp_(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = (al && bl) ? memcmp(a, b, al < bl ? al : bl) : 0;

	return c ? c : (al < bl ? -1 : al > bl);
}

static int key_cmp(const void *x, const void *y)
{
	const struct mkey *a = x, *b = y;

	return bcmp_(a->key, a->klen, b->key, b->klen);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		abort();
	return p;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *q = xmalloc(n);

	if (n)
		memcpy(q, p, n);
	return q;
}

void model_init(struct model *m)
{
	memset(m, 0, sizeof *m);
	for (int i = 0; i < MODEL_NKEYS; i++) {
		m->keys[i].key = (const uint8_t *)model_key_str[i];
		m->keys[i].klen = model_key_len[i];
	}
	qsort(m->keys, MODEL_NKEYS, sizeof m->keys[0], key_cmp);
	m->rev = 1;
	m->max_txn_ops = 128;
}

void model_events_clear(struct model *m)
{
	for (size_t i = 0; i < m->nev; i++)
		protobuf_c_message_free_unpacked(&m->ev[i]->base, NULL);
	m->nev = 0;
}

void model_free(struct model *m)
{
	model_events_clear(m);
	free(m->ev);
	for (int i = 0; i < MODEL_NKEYS; i++) {
		for (size_t j = 0; j < m->keys[i].n; j++)
			free(m->keys[i].v[j].val);
		free(m->keys[i].v);
	}
	free(m->leases);
}

static struct mkey *find_key(struct model *m, const uint8_t *k, size_t kl)
{
	for (int i = 0; i < MODEL_NKEYS; i++)
		if (bcmp_(m->keys[i].key, m->keys[i].klen, k, kl) == 0)
			return &m->keys[i];
	return NULL;
}

/* The live version at revision r (INT64_MAX: the latest), or NULL. */
static struct mver *at(struct mkey *k, int64_t r)
{
	for (size_t i = k->n; i-- > 0;)
		if (k->v[i].main <= r)
			return k->v[i].tomb ? NULL : &k->v[i];
	return NULL;
}

static bool in_range(const struct mkey *k, const ProtobufCBinaryData *key,
                     const ProtobufCBinaryData *end)
{
	int c = bcmp_(k->key, k->klen, key->data, key->len);

	if (end->len == 0)
		return c == 0;
	if (c < 0)
		return false;
	if (end->len == 1 && end->data[0] == 0)
		return true;
	return bcmp_(k->key, k->klen, end->data, end->len) < 0;
}

static int check_range(const ProtobufCBinaryData *key, const ProtobufCBinaryData *end)
{
	(void)end; /* a range_end below its key is an empty range, as in etcd */
	if (key->len == 0)
		return MOOR_EEMPTYKEY;
	return 0;
}

static Mvccpb__KeyValue *mk_kv(const struct mkey *k, const struct mver *v, bool keys_only)
{
	Mvccpb__KeyValue *kv = xmalloc(sizeof *kv);

	mvccpb__key_value__init(kv);
	kv->key.data = dup_bytes(k->key, k->klen);
	kv->key.len = k->klen;
	kv->mod_revision = v->main;
	if (!v->tomb) {
		kv->create_revision = v->create;
		kv->version = v->version;
		kv->lease = v->lease;
		if (!keys_only && v->vlen) {
			kv->value.data = dup_bytes(v->val, v->vlen);
			kv->value.len = v->vlen;
		}
	}
	return kv;
}

static Etcdserverpb__ResponseHeader *mk_hdr(int64_t rev)
{
	Etcdserverpb__ResponseHeader *h = xmalloc(sizeof *h);

	etcdserverpb__response_header__init(h);
	h->revision = rev;
	return h;
}

/* ---- range ----------------------------------------------------------------- */

static int sort_target, sort_desc;

static int kv_sort_cmp(const void *x, const void *y)
{
	const Mvccpb__KeyValue *a = *(Mvccpb__KeyValue *const *)x,
	                       *b = *(Mvccpb__KeyValue *const *)y;
	int kc = bcmp_(a->key.data, a->key.len, b->key.data, b->key.len), c;

	switch (sort_target) {
	case 0:
		return sort_desc ? -kc : kc;
	case 1:
		c = (a->version > b->version) - (a->version < b->version);
		break;
	case 2:
		c = (a->create_revision > b->create_revision) -
		    (a->create_revision < b->create_revision);
		break;
	case 3:
		c = (a->mod_revision > b->mod_revision) - (a->mod_revision < b->mod_revision);
		break;
	default:
		c = bcmp_(a->value.data, a->value.len, b->value.data, b->value.len);
		break;
	}
	if (sort_desc)
		c = -c;
	return c ? c : kc;
}

static int range_in(struct model *m, const Etcdserverpb__RangeRequest *r, int64_t cur, int64_t hi,
                    Etcdserverpb__RangeResponse *resp)
{
	int rc = check_range(&r->key, &r->range_end);
	int64_t rv;

	if (rc)
		return rc;
	if ((unsigned)r->sort_order > 2 || (unsigned)r->sort_target > 4)
		return MOOR_ESORT;
	if (r->revision > hi) /* m->rev, or m->rev + 1 inside a txn that wrote */
		return MOOR_EFUTUREREV;
	rv = r->revision > 0 ? r->revision : cur;
	if (rv < m->compact)
		return MOOR_ECOMPACTED;
	resp->kvs = xmalloc(MODEL_NKEYS * sizeof *resp->kvs);
	for (int i = 0; i < MODEL_NKEYS; i++) {
		struct mkey *k = &m->keys[i];
		struct mver *v;

		if (!in_range(k, &r->key, &r->range_end) || !(v = at(k, rv)))
			continue;
		resp->count++;
		if (r->count_only)
			continue;
		if ((r->min_mod_revision > 0 && v->main < r->min_mod_revision) ||
		    (r->max_mod_revision > 0 && v->main > r->max_mod_revision) ||
		    (r->min_create_revision > 0 && v->create < r->min_create_revision) ||
		    (r->max_create_revision > 0 && v->create > r->max_create_revision))
			continue;
		resp->kvs[resp->n_kvs++] = mk_kv(k, v, r->keys_only);
	}
	if (r->sort_order != 0 || r->sort_target != 0) {
		sort_target = r->sort_target;
		sort_desc = r->sort_order == 2;
		qsort(resp->kvs, resp->n_kvs, sizeof *resp->kvs, kv_sort_cmp);
	}
	if (r->limit > 0 && resp->n_kvs > (size_t)r->limit) {
		for (size_t i = (size_t)r->limit; i < resp->n_kvs; i++)
			protobuf_c_message_free_unpacked(&resp->kvs[i]->base, NULL);
		resp->n_kvs = (size_t)r->limit;
		resp->more = 1;
	}
	if (resp->n_kvs == 0) {
		free(resp->kvs);
		resp->kvs = NULL;
	}
	return 0;
}

int model_range(struct model *m, const Etcdserverpb__RangeRequest *r,
                Etcdserverpb__RangeResponse **out)
{
	Etcdserverpb__RangeResponse *resp = xmalloc(sizeof *resp);
	int rc;

	etcdserverpb__range_response__init(resp);
	rc = range_in(m, r, m->rev, m->rev, resp);
	if (rc) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		*out = NULL;
		return rc;
	}
	resp->header = mk_hdr(m->rev);
	*out = resp;
	return 0;
}

/* ---- writes ------------------------------------------------------------------ */

struct undo {
	size_t n[MODEL_NKEYS];
	size_t nev;
	int64_t rev;
};

static void undo_save(struct model *m, struct undo *u)
{
	for (int i = 0; i < MODEL_NKEYS; i++)
		u->n[i] = m->keys[i].n;
	u->nev = m->nev;
	u->rev = m->rev;
}

static void undo_apply(struct model *m, const struct undo *u)
{
	for (int i = 0; i < MODEL_NKEYS; i++) {
		for (size_t j = u->n[i]; j < m->keys[i].n; j++)
			free(m->keys[i].v[j].val);
		m->keys[i].n = u->n[i];
	}
	for (size_t i = u->nev; i < m->nev; i++)
		protobuf_c_message_free_unpacked(&m->ev[i]->base, NULL);
	m->nev = u->nev;
	m->rev = u->rev;
}

static void push_event(struct model *m, const struct mkey *k, const struct mver *v,
                       const struct mver *prev)
{
	Mvccpb__Event *e = xmalloc(sizeof *e);

	mvccpb__event__init(e);
	e->type = v->tomb ? MVCCPB__EVENT__EVENT_TYPE__DELETE : MVCCPB__EVENT__EVENT_TYPE__PUT;
	e->kv = mk_kv(k, v, false);
	if (prev)
		e->prev_kv = mk_kv(k, prev, false);
	if (m->nev == m->capev) {
		m->capev = m->capev ? m->capev * 2 : 64;
		m->ev = realloc(m->ev, m->capev * sizeof *m->ev);
		if (!m->ev)
			abort();
	}
	m->ev[m->nev++] = e;
}

static struct mver *append(struct mkey *k)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 8;
		k->v = realloc(k->v, k->cap * sizeof *k->v);
		if (!k->v)
			abort();
	}
	memset(&k->v[k->n], 0, sizeof k->v[0]);
	return &k->v[k->n++];
}

bool model_lease_exists(const struct model *m, int64_t id)
{
	for (size_t i = 0; i < m->nleases; i++)
		if (m->leases[i].id == id)
			return true;
	return false;
}

static int check_put(const Etcdserverpb__PutRequest *r)
{
	if (r->key.len == 0)
		return MOOR_EEMPTYKEY;
	if (r->ignore_value && r->value.len)
		return MOOR_EVALUEPROVIDED;
	if (r->ignore_lease && r->lease)
		return MOOR_ELEASEPROVIDED;
	return 0;
}

static int put_in(struct model *m, const Etcdserverpb__PutRequest *r, int64_t main, int64_t *sub,
                  Etcdserverpb__PutResponse *resp)
{
	struct mkey *k = find_key(m, r->key.data, r->key.len);
	struct mver *prev, *v, pcopy;
	int64_t lease;

	if (!k)
		abort(); /* the generator stays in the universe */
	prev = at(k, INT64_MAX);
	if ((r->ignore_value || r->ignore_lease) && !prev)
		return MOOR_EKEYNOTFOUND;
	lease = r->ignore_lease ? prev->lease : r->lease;
	if (lease && !model_lease_exists(m, lease))
		return MOOR_ELEASENOTFOUND;
	if (prev)
		pcopy = *prev;
	v = append(k); /* may move prev */
	prev = prev ? &pcopy : NULL;
	v->main = main;
	v->sub = (*sub)++;
	v->create = prev ? prev->create : main;
	v->version = prev ? prev->version + 1 : 1;
	v->lease = lease;
	if (r->ignore_value) {
		v->val = dup_bytes(prev->val, prev->vlen);
		v->vlen = prev->vlen;
	} else {
		v->val = dup_bytes(r->value.data, r->value.len);
		v->vlen = r->value.len;
	}
	push_event(m, k, v, prev);
	if (r->prev_kv && prev)
		resp->prev_kv = mk_kv(k, prev, false);
	return 0;
}

static void delete_key(struct model *m, struct mkey *k, int64_t main, int64_t *sub)
{
	struct mver pcopy = *at(k, INT64_MAX), *v = append(k);

	v->main = main;
	v->sub = (*sub)++;
	v->tomb = true;
	push_event(m, k, v, &pcopy);
}

static int delete_in(struct model *m, const Etcdserverpb__DeleteRangeRequest *r, int64_t main,
                     int64_t *sub, Etcdserverpb__DeleteRangeResponse *resp)
{
	int rc = check_range(&r->key, &r->range_end);

	if (rc)
		return rc;
	for (int i = 0; i < MODEL_NKEYS; i++) {
		struct mkey *k = &m->keys[i];
		struct mver *v;

		if (!in_range(k, &r->key, &r->range_end) || !(v = at(k, INT64_MAX)))
			continue;
		if (r->prev_kv) {
			resp->prev_kvs = realloc(resp->prev_kvs,
			                         (resp->n_prev_kvs + 1) * sizeof *resp->prev_kvs);
			resp->prev_kvs[resp->n_prev_kvs++] = mk_kv(k, v, false);
		}
		resp->deleted++;
		delete_key(m, k, main, sub);
	}
	return 0;
}

int model_put(struct model *m, const Etcdserverpb__PutRequest *r, Etcdserverpb__PutResponse **out)
{
	Etcdserverpb__PutResponse *resp = xmalloc(sizeof *resp);
	struct undo u;
	int64_t sub = 0;
	int rc = check_put(r);

	etcdserverpb__put_response__init(resp);
	undo_save(m, &u);
	if (rc == 0)
		rc = put_in(m, r, m->rev + 1, &sub, resp);
	if (rc) {
		undo_apply(m, &u);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		*out = NULL;
		return rc;
	}
	m->rev++;
	resp->header = mk_hdr(m->rev);
	*out = resp;
	return 0;
}

int model_delete(struct model *m, const Etcdserverpb__DeleteRangeRequest *r,
                 Etcdserverpb__DeleteRangeResponse **out)
{
	Etcdserverpb__DeleteRangeResponse *resp = xmalloc(sizeof *resp);
	int64_t sub = 0;
	int rc;

	etcdserverpb__delete_range_response__init(resp);
	rc = delete_in(m, r, m->rev + 1, &sub, resp);
	if (rc) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		*out = NULL;
		return rc;
	}
	if (sub)
		m->rev++;
	resp->header = mk_hdr(m->rev);
	*out = resp;
	return 0;
}

/* ---- txn ------------------------------------------------------------------------ */

static int txn_check(struct model *m, const Etcdserverpb__TxnRequest *r);

static int ops_check(struct model *m, Etcdserverpb__RequestOp **ops, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		const Etcdserverpb__RequestOp *o = ops[i];

		if (o->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE) {
			const Etcdserverpb__RangeRequest *q = o->request_range;

			rc = check_range(&q->key, &q->range_end);
			if (rc == 0 &&
			    ((unsigned)q->sort_order > 2 || (unsigned)q->sort_target > 4))
				rc = MOOR_ESORT;
		} else if (o->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT) {
			rc = check_put(o->request_put);
		} else if (o->request_case ==
		           ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE) {
			rc = check_range(&o->request_delete_range->key,
			                 &o->request_delete_range->range_end);
		} else {
			rc = txn_check(m, o->request_txn);
		}
	}
	return rc;
}

static int txn_check(struct model *m, const Etcdserverpb__TxnRequest *r)
{
	int rc;

	if (r->n_compare > (size_t)m->max_txn_ops || r->n_success > (size_t)m->max_txn_ops ||
	    r->n_failure > (size_t)m->max_txn_ops)
		return MOOR_ETOOMANYOPS;
	for (size_t i = 0; i < r->n_compare; i++) {
		rc = check_range(&r->compare[i]->key, &r->compare[i]->range_end);
		if (rc)
			return rc;
	}
	rc = ops_check(m, r->success, r->n_success);
	return rc ? rc : ops_check(m, r->failure, r->n_failure);
}

/* Duplicate keys, as etcd's checkIntervals: key sets as bitmaps over the
 * universe (every key a request names is in it; ranges hit universe keys). */
typedef uint32_t kset;

static kset range_set(struct model *m, const ProtobufCBinaryData *key,
                      const ProtobufCBinaryData *end)
{
	kset s = 0;

	for (int i = 0; i < MODEL_NKEYS; i++)
		if (in_range(&m->keys[i], key, end))
			s |= 1u << i;
	return s;
}

static int intervals(struct model *m, Etcdserverpb__RequestOp **ops, size_t n, kset *puts,
                     kset *dels)
{
	*puts = *dels = 0;
	for (size_t i = 0; i < n; i++)
		if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE)
			*dels |= range_set(m, &ops[i]->request_delete_range->key,
			                   &ops[i]->request_delete_range->range_end);
	for (size_t i = 0; i < n; i++) {
		kset pt, dt, pe, de;
		const Etcdserverpb__TxnRequest *t;

		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
			continue;
		t = ops[i]->request_txn;
		if (intervals(m, t->success, t->n_success, &pt, &dt) ||
		    intervals(m, t->failure, t->n_failure, &pe, &de))
			return MOOR_EDUPKEY;
		if ((pt & *puts) || (pt & *dels))
			return MOOR_EDUPKEY;
		*puts |= pt;
		if ((pe & *puts & ~pt) || (pe & *dels))
			return MOOR_EDUPKEY;
		*puts |= pe;
		*dels |= dt | de;
	}
	for (size_t i = 0; i < n; i++) {
		kset p;

		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			continue;
		p = range_set(m, &ops[i]->request_put->key, &(ProtobufCBinaryData){0, NULL});
		if ((p & *puts) || (p & *dels))
			return MOOR_EDUPKEY;
		*puts |= p;
	}
	return 0;
}

static bool cmp_one(const Etcdserverpb__Compare *c, const struct mver *v)
{
	static const struct mver zero;
	int64_t a, b;
	int x;

	if (!v)
		v = &zero;
	switch (c->target) {
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE: {
		const uint8_t *cd =
		    c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE
		        ? c->value.data
		        : NULL;
		size_t cl = cd ? c->value.len : 0;

		x = bcmp_(v->val, v->vlen, cd, cl);
		goto result;
	}
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
		a = v->version;
		b = c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION ? c->version
		                                                                        : 0;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
		a = v->create;
		b = c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION
		        ? c->create_revision
		        : 0;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
		a = v->main;
		b = c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION
		        ? c->mod_revision
		        : 0;
		break;
	default:
		a = v->lease;
		b = c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE ? c->lease
		                                                                      : 0;
		break;
	}
	x = (a > b) - (a < b);
result:
	switch (c->result) {
	case 0:
		return x == 0;
	case 1:
		return x > 0;
	case 2:
		return x < 0;
	default:
		return x != 0;
	}
}

static bool compare(struct model *m, const Etcdserverpb__Compare *c)
{
	size_t n = 0;

	for (int i = 0; i < MODEL_NKEYS; i++) {
		struct mver *v;

		if (!in_range(&m->keys[i], &c->key, &c->range_end) ||
		    !(v = at(&m->keys[i], INT64_MAX)))
			continue;
		n++;
		if (!cmp_one(c, v))
			return false;
	}
	if (n == 0)
		return c->target != ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE &&
		       cmp_one(c, NULL);
	return true;
}

static int txn_exec(struct model *m, const Etcdserverpb__TxnRequest *r, int64_t main, int64_t *sub,
                    Etcdserverpb__TxnResponse *resp)
{
	bool ok = true;
	Etcdserverpb__RequestOp **ops;
	size_t n;
	int rc = 0;

	for (size_t i = 0; ok && i < r->n_compare; i++)
		ok = compare(m, r->compare[i]);
	resp->succeeded = ok;
	ops = ok ? r->success : r->failure;
	n = ok ? r->n_success : r->n_failure;
	if (n)
		resp->responses = xmalloc(n * sizeof *resp->responses);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		Etcdserverpb__ResponseOp *ro = xmalloc(sizeof *ro);

		etcdserverpb__response_op__init(ro);
		resp->responses[resp->n_responses++] = ro;
		switch (ops[i]->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
			ro->response_range = xmalloc(sizeof *ro->response_range);
			etcdserverpb__range_response__init(ro->response_range);
			rc = range_in(m, ops[i]->request_range, INT64_MAX, m->rev + (*sub > 0),
			              ro->response_range);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
			ro->response_put = xmalloc(sizeof *ro->response_put);
			etcdserverpb__put_response__init(ro->response_put);
			rc = put_in(m, ops[i]->request_put, main, sub, ro->response_put);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
			ro->response_case =
			    ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
			ro->response_delete_range = xmalloc(sizeof *ro->response_delete_range);
			etcdserverpb__delete_range_response__init(ro->response_delete_range);
			rc = delete_in(m, ops[i]->request_delete_range, main, sub,
			               ro->response_delete_range);
			break;
		default:
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
			ro->response_txn = xmalloc(sizeof *ro->response_txn);
			etcdserverpb__txn_response__init(ro->response_txn);
			rc = txn_exec(m, ops[i]->request_txn, main, sub, ro->response_txn);
			break;
		}
	}
	return rc;
}

static void set_headers(Etcdserverpb__TxnResponse *t, int64_t rev)
{
	for (size_t i = 0; i < t->n_responses; i++) {
		Etcdserverpb__ResponseOp *ro = t->responses[i];

		switch (ro->response_case) {
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
			ro->response_range->header = mk_hdr(rev);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
			ro->response_put->header = mk_hdr(rev);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
			ro->response_delete_range->header = mk_hdr(rev);
			break;
		default:
			ro->response_txn->header = mk_hdr(0); /* etcd leaves it empty */
			set_headers(ro->response_txn, rev);
			break;
		}
	}
}

int model_txn(struct model *m, const Etcdserverpb__TxnRequest *r, Etcdserverpb__TxnResponse **out)
{
	Etcdserverpb__TxnResponse *resp = xmalloc(sizeof *resp);
	struct undo u;
	int64_t sub = 0;
	kset p, d;
	int rc = txn_check(m, r);

	etcdserverpb__txn_response__init(resp);
	if (rc == 0)
		rc = intervals(m, r->success, r->n_success, &p, &d);
	if (rc == 0)
		rc = intervals(m, r->failure, r->n_failure, &p, &d);
	undo_save(m, &u);
	if (rc == 0)
		rc = txn_exec(m, r, m->rev + 1, &sub, resp);
	if (rc) {
		undo_apply(m, &u);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		*out = NULL;
		return rc;
	}
	if (sub)
		m->rev++;
	resp->header = mk_hdr(m->rev);
	set_headers(resp, m->rev);
	*out = resp;
	return 0;
}

/* ---- compaction, leases, history ---------------------------------------------- */

int model_compact(struct model *m, int64_t rev)
{
	if (rev <= m->compact)
		return MOOR_ECOMPACTED;
	if (rev > m->rev)
		return MOOR_EFUTUREREV;
	m->compact = rev;
	return 0;
}

int model_lease_grant(struct model *m, int64_t id, int64_t ttl)
{
	if (id <= 0 || ttl <= 0)
		return MOOR_EINVAL;
	if (model_lease_exists(m, id))
		return MOOR_ELEASEEXISTS;
	m->leases = realloc(m->leases, (m->nleases + 1) * sizeof *m->leases);
	m->leases[m->nleases++] = (struct mlease){id, ttl};
	return 0;
}

int model_lease_revoke(struct model *m, int64_t id, Etcdserverpb__LeaseRevokeResponse **out)
{
	Etcdserverpb__LeaseRevokeResponse *resp;
	int64_t sub = 0;
	size_t i;

	*out = NULL;
	for (i = 0; i < m->nleases && m->leases[i].id != id; i++)
		;
	if (i == m->nleases)
		return MOOR_ELEASENOTFOUND;
	m->leases[i] = m->leases[--m->nleases];
	for (int k = 0; k < MODEL_NKEYS; k++) {
		struct mver *v = at(&m->keys[k], INT64_MAX);

		if (v && v->lease == id)
			delete_key(m, &m->keys[k], m->rev + 1, &sub);
	}
	if (sub)
		m->rev++;
	resp = xmalloc(sizeof *resp);
	etcdserverpb__lease_revoke_response__init(resp);
	resp->header = mk_hdr(m->rev);
	*out = resp;
	return 0;
}

struct hev {
	int64_t main, sub;
	int key;
	size_t vi;
};

static int hev_cmp(const void *x, const void *y)
{
	const struct hev *a = x, *b = y;

	if (a->main != b->main)
		return a->main < b->main ? -1 : 1;
	return (a->sub > b->sub) - (a->sub < b->sub);
}

int model_history(struct model *m, int64_t from, size_t max, bool prev_kv, Mvccpb__Event ***ev,
                  size_t *n, int64_t *next_rev)
{
	struct hev *all = NULL;
	size_t na = 0, cap = 0, i;
	bool early = false;
	int64_t last = 0;

	*ev = NULL;
	*n = 0;
	if (from < 1)
		from = 1;
	if (from < m->compact)
		return MOOR_ECOMPACTED;
	for (int k = 0; k < MODEL_NKEYS; k++)
		for (size_t j = 0; j < m->keys[k].n; j++) {
			if (m->keys[k].v[j].main < from)
				continue;
			if (na == cap) {
				cap = cap ? cap * 2 : 64;
				all = realloc(all, cap * sizeof *all);
			}
			all[na++] = (struct hev){m->keys[k].v[j].main, m->keys[k].v[j].sub, k, j};
		}
	if (na)
		qsort(all, na, sizeof *all, hev_cmp);
	*ev = xmalloc((na + 1) * sizeof **ev);
	for (i = 0; i < na; i++) {
		struct mkey *k = &m->keys[all[i].key];
		struct mver *v = &k->v[all[i].vi];
		Mvccpb__Event *e;

		if (max && *n >= max && v->main != last) {
			early = true;
			break;
		}
		e = xmalloc(sizeof *e);
		mvccpb__event__init(e);
		e->type =
		    v->tomb ? MVCCPB__EVENT__EVENT_TYPE__DELETE : MVCCPB__EVENT__EVENT_TYPE__PUT;
		e->kv = mk_kv(k, v, false);
		if (prev_kv && v->main > m->compact && all[i].vi > 0 && !k->v[all[i].vi - 1].tomb)
			e->prev_kv = mk_kv(k, &k->v[all[i].vi - 1], false);
		(*ev)[(*n)++] = e;
		last = v->main;
	}
	*next_rev = early ? last + 1 : (from > m->rev ? from : m->rev + 1);
	free(all);
	return 0;
}

/* ---- comparison ------------------------------------------------------------------ */

static void dump(const char *tag, const uint8_t *p, size_t n)
{
	fprintf(stderr, "%s (%zu bytes):", tag, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n  ", p[i]);
	fprintf(stderr, "\n");
}

bool msg_equal(const char *what, const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t na, nb;
	uint8_t *pa, *pb;
	bool eq;

	if (!a || !b) {
		if (a != b)
			fprintf(stderr, "%s: one side is NULL (store %p, model %p)\n", what,
			        (const void *)a, (const void *)b);
		return a == b;
	}
	na = protobuf_c_message_get_packed_size(a);
	nb = protobuf_c_message_get_packed_size(b);
	pa = xmalloc(na);
	pb = xmalloc(nb);
	protobuf_c_message_pack(a, pa);
	protobuf_c_message_pack(b, pb);
	eq = na == nb && memcmp(pa, pb, na) == 0;
	if (!eq) {
		fprintf(stderr, "%s differs:\n", what);
		dump("store", pa, na);
		dump("model", pb, nb);
	}
	free(pa);
	free(pb);
	return eq;
}

size_t model_kept_records(const struct model *m)
{
	size_t n = 0;

	for (int k = 0; k < MODEL_NKEYS; k++) {
		const struct mkey *key = &m->keys[k];

		for (size_t j = 0; j < key->n; j++) {
			const struct mver *v = &key->v[j];
			bool newest_at_c = j + 1 == key->n || key->v[j + 1].main > m->compact;

			if (v->main > m->compact ||
			    (newest_at_c && (!v->tomb || v->main == m->compact)))
				n++;
		}
	}
	return n;
}

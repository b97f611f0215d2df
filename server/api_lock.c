/*
 * etcd's v3lock and v3election services. etcd runs them inside the server
 * as clients of its own KV, lease and watch API (server/etcdserver/api/
 * v3lock and v3election over clientv3/concurrency's Mutex and Election);
 * here they are the same steps driven from the loop:
 *
 *   Lock, Campaign: the key is name + "/" + the lease id in hex. A txn puts
 *   it with the lease if its create revision is 0 (else reads it); its
 *   create revision is the caller's place in the queue. The call then waits
 *   until no key under name + "/" has a lower create revision: it watches
 *   the predecessor (the key with the greatest create revision below its
 *   own) from the revision it read, through the watch hub, and looks at the
 *   store again when that key is deleted. No polling. A Campaign whose key
 *   exists with another value proclaims the new value first.
 *   Unlock: a delete. Proclaim and Resign: a txn guarded by the leader key's
 *   create revision. Leader: a linearizable read of the first-created key.
 *   Observe: a stream of the leader, then of each new value or new leader.
 *
 * A client that goes away while its call waits cancels the wait, and, as
 * etcd's Mutex (Unlock) and Election (Resign) do then, its key is deleted.
 * MHD does not watch a suspended connection, so the waiting calls' sockets
 * are looked at every LOCK_PEER_CHECK_MS (one recv with MSG_PEEK each).
 *
 * Where this differs from etcd, on purpose: a waiter also watches its own
 * key, and when that key is deleted (its lease expired, or an Unlock or
 * Resign of it) the call fails at once with concurrency's "mutex: session
 * is expired" (etcd's Mutex says so only once its predecessors are gone; its
 * Election reports success with a key that no longer exists).
 *
 * Errors are etcd's: its election server returns concurrency's Go errors,
 * which gRPC sends as Unknown (HTTP 500 on the gateway).
 */
#include "server/api_int.h"

#include "common/error.h"
#include "proto/lock.pb-c.h"
#include "watch/watch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_PEER_CHECK_MS 1000 /* how often waiting calls' sockets are looked at */
#define SESSION_TTL_S 60 /* concurrency's defaultSessionTTL: the lease of a call without one */
#define LEASE_HEX_MAX 18 /* "-" and 16 hex digits */
#define ERR_NOT_LEADER "election: not leader"
#define ERR_NO_LEADER "election: no leader"
#define ERR_EXPIRED "mutex: session is expired"
#define ERR_NO_LEADER_KEY "\"leader\" field must be provided"

/* ---- what waiters and observers share: lists, the watch stream ---- */

struct lk_ops {
	void (*ready)(struct lk_base *b); /* the watch stream has responses */
	void (*stop)(struct lk_base *b);  /* the server stops */
	void (*reset)(struct lk_base *b); /* the store was replaced */
	void (*tick)(struct lk_base *b);  /* every LOCK_PEER_CHECK_MS; may be NULL */
};

struct lk_base {
	struct srv_api *api;
	const struct lk_ops *ops;
	struct lk_base *next, *prev;   /* api->locks */
	struct lk_base *rnext, *rprev; /* api->locks_ready */
	int linked, queued;
	struct watch_stream *ws;
};

static void base_link(struct lk_base *b)
{
	struct srv_api *api = b->api;

	b->prev = NULL;
	b->next = api->locks;
	if (api->locks)
		api->locks->prev = b;
	api->locks = b;
	b->linked = 1;
}

static void ready_unlink(struct lk_base *b)
{
	struct srv_api *api = b->api;

	if (!b->queued)
		return;
	if (b->rprev)
		b->rprev->rnext = b->rnext;
	else
		api->locks_ready = b->rnext;
	if (b->rnext)
		b->rnext->rprev = b->rprev;
	b->rnext = b->rprev = NULL;
	b->queued = 0;
}

static void ws_close(struct lk_base *b)
{
	ready_unlink(b);
	if (b->ws) {
		watch_stream_close(b->ws);
		b->ws = NULL;
	}
}

/* Off every list, watch closed; safe to call twice. */
static void base_unlink(struct lk_base *b)
{
	struct srv_api *api = b->api;

	ws_close(b);
	if (!b->linked)
		return;
	if (b->prev)
		b->prev->next = b->next;
	else
		api->locks = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
	b->linked = 0;
}

/* Runs as many waiters as were ready when it started: one that pushes
 * itself back (no memory for a response now) runs on the next turn. */
static void on_lock_idle(uv_idle_t *idle)
{
	struct srv_api *api = idle->data;
	size_t n = 0;

	for (struct lk_base *b = api->locks_ready; b; b = b->rnext)
		n++;
	while (api->locks_ready && n--) {
		struct lk_base *b = api->locks_ready;
		ready_unlink(b);
		b->ops->ready(b); /* may free b */
	}
	if (!api->locks_ready)
		uv_idle_stop(idle);
}

static void ready_push(struct lk_base *b)
{
	struct srv_api *api = b->api;

	if (b->queued)
		return;
	b->queued = 1;
	b->rprev = NULL;
	b->rnext = api->locks_ready;
	if (api->locks_ready)
		api->locks_ready->rprev = b;
	api->locks_ready = b;
	uv_idle_start(&api->lock_idle, on_lock_idle);
}

/* Called from inside the hub: no hub call here, the idle runs it. */
static void on_ws_notify(struct watch_stream *s, void *ctx)
{
	(void)s;
	ready_push(ctx);
}

/* A fresh watch stream (the old one closed) with a watcher on one key
 * (range_end NULL) or a range, from revision `from`. */
static int ws_watch(struct lk_base *b, const uint8_t *key, size_t key_len, const uint8_t *end,
                    size_t end_len, int64_t from, bool no_put)
{
	struct watch_stream_config cfg = {on_ws_notify, b};
	struct watch_create wc = {0};
	int64_t id, rev;
	int rc;

	ws_close(b);
	rc = watch_stream_open(srv_node_hub(b->api->node), &cfg, &b->ws);
	if (rc)
		return rc;
	wc.key = key;
	wc.key_len = key_len;
	wc.range_end = end;
	wc.range_end_len = end_len;
	wc.start_rev = from;
	wc.watch_id = WATCH_AUTO_ID;
	wc.no_put = no_put;
	return watch_stream_watch(b->ws, &wc, &id, &rev);
}

static int ws_add(struct lk_base *b, const uint8_t *key, size_t key_len, int64_t from, bool no_put)
{
	struct watch_create wc = {0};
	int64_t id, rev;

	wc.key = key;
	wc.key_len = key_len;
	wc.start_rev = from;
	wc.watch_id = WATCH_AUTO_ID;
	wc.no_put = no_put;
	return watch_stream_watch(b->ws, &wc, &id, &rev);
}

static void on_lock_timer(uv_timer_t *t)
{
	struct srv_api *api = t->data;
	struct lk_base *b, *next;
	int any = 0;

	for (b = api->locks; b; b = next) {
		next = b->next;
		if (b->ops->tick) {
			any = 1;
			b->ops->tick(b); /* may free b */
		}
	}
	if (!any)
		uv_timer_stop(t);
}

static void lock_timer_start(struct srv_api *api)
{
	if (!uv_is_active((uv_handle_t *)&api->lock_timer))
		uv_timer_start(&api->lock_timer, on_lock_timer, LOCK_PEER_CHECK_MS,
		               LOCK_PEER_CHECK_MS);
}

void srv_api_locks_init(struct srv_api *api)
{
	uv_idle_init(api->loop, &api->lock_idle);
	api->lock_idle.data = api;
	uv_timer_init(api->loop, &api->lock_timer);
	api->lock_timer.data = api;
}

void srv_api_locks_close(struct srv_api *api)
{
	struct lk_base *b = api->locks, *next;

	for (; b; b = next) {
		next = b->next;
		b->ops->stop(b);
	}
	uv_idle_stop(&api->lock_idle);
	uv_close((uv_handle_t *)&api->lock_idle, NULL);
	uv_timer_stop(&api->lock_timer);
	uv_close((uv_handle_t *)&api->lock_timer, NULL);
}

void srv_api_locks_reset(struct srv_api *api)
{
	struct lk_base *b = api->locks, *next;

	for (; b; b = next) {
		next = b->next;
		b->ops->reset(b);
	}
}

/* ---- small helpers ---- */

static void reply_unknown(struct call *c, const char *msg)
{
	struct srv_gw_error e;

	srv_gw_error_set(&e, SRV_GRPC_UNKNOWN, "%s", msg);
	reply_gw_error(c, &e);
}

/* etcd's lock and election servers run their steps through an in-process
 * client, whose errors (etcdserver's, with their messages) they return as
 * plain Go errors: gRPC sends every one as Unknown (HTTP 500). So do we,
 * but for a member that is stopping, which answers Unavailable (503) so
 * that a client goes to another member. */
static void lk_reply_error(struct call *c, int rc)
{
	struct srv_gw_error e;

	if (rc == MOOR_ESTOPPED || rc == MOOR_ECLOSED) {
		reply_error(c, rc);
		return;
	}
	srv_gw_error_from_code(rc, &e);
	reply_unknown(c, e.message);
}

/* etcd's fmt.Sprintf("%x", leaseID) of an int64. */
static int lease_hex(int64_t id, char *out, size_t n)
{
	if (id < 0)
		return snprintf(out, n, "-%" PRIx64, (uint64_t)0 - (uint64_t)id);
	return snprintf(out, n, "%" PRIx64, (uint64_t)id);
}

/* A range over [pfx, prefix end) sorted by create revision, one key:
 * the first created (asc) or the last created below max_create (desc). */
static int range_by_create(struct srv_api *api, const uint8_t *pfx, size_t pfx_len, int desc,
                           int64_t max_create, Etcdserverpb__RangeResponse **out)
{
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	uint8_t *end = malloc(pfx_len ? pfx_len : 1);
	int rc;

	if (!end)
		return MOOR_ENOMEM;
	q.key.data = (uint8_t *)pfx;
	q.key.len = pfx_len;
	q.range_end.data = end;
	q.range_end.len = watch_prefix_end(pfx, pfx_len, end);
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
	q.sort_order = desc ? ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND
	                    : ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
	q.limit = 1;
	q.max_create_revision = max_create;
	rc = kv_range(srv_node_kv(api->node), &q, out);
	free(end);
	return rc;
}

static void header_at(struct call *c, Etcdserverpb__ResponseHeader *h, int64_t rev)
{
	h->revision = rev;
	fill_header(c, h);
}

/* ---- Lock and Campaign: a waiter ---- */

enum { W_GRANT, W_ACQUIRE, W_PROCLAIM, W_WAIT };

struct waiter {
	struct lk_base b;
	struct call *c; /* NULL once answered */
	int campaign;
	int step;
	int in_flight; /* a proposal is out: its callback comes, then frees an answered waiter */
	int waited;    /* the key was not first at once */
	int64_t lease;
	int64_t rev;     /* the key's create revision */
	int64_t txn_rev; /* the header revision of the acquiring txn */
	ProtobufCBinaryData name, value;
	uint8_t *key; /* name "/" hex(lease) */
	size_t key_len, pfx_len;
};

static void waiter_free(struct waiter *w)
{
	base_unlink(&w->b);
	free(w->key);
	free(w);
}

/* After the call was answered: the waiter goes once no callback is due. */
static void waiter_done(struct waiter *w)
{
	call_free(w->c);
	w->c = NULL;
	base_unlink(&w->b);
	if (!w->in_flight)
		waiter_free(w);
}

static void waiter_fail(struct waiter *w, int rc)
{
	lk_reply_error(w->c, rc);
	waiter_done(w);
}

static void waiter_fail_msg(struct waiter *w, const char *msg)
{
	reply_unknown(w->c, msg);
	waiter_done(w);
}

/* A proposal's callback came back: 1 when the waiter is still wanted. */
static int waiter_back(struct waiter *w)
{
	w->in_flight = 0;
	if (w->c)
		return 1;
	waiter_free(w);
	return 0;
}

static void waiter_propose(struct waiter *w, Moorpb__InternalRequest *ir, srv_apply_cb cb)
{
	int rc = srv_node_propose(w->b.api->node, ir, cb, w);

	if (rc) {
		waiter_fail(w, rc);
		return;
	}
	w->in_flight = 1;
}

static void waiter_granted(struct waiter *w)
{
	V3lockpb__LockResponse lr = V3LOCKPB__LOCK_RESPONSE__INIT;
	V3lockpb__CampaignResponse cr = V3LOCKPB__CAMPAIGN_RESPONSE__INIT;
	V3lockpb__LeaderKey lk = V3LOCKPB__LEADER_KEY__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

	header_at(w->c, &h, w->txn_rev);
	if (w->campaign) {
		lk.name = w->name;
		lk.key.data = w->key;
		lk.key.len = w->key_len;
		lk.rev = w->rev;
		lk.lease = w->lease;
		cr.header = &h;
		cr.leader = &lk;
		reply_msg(w->c, &cr.base);
	} else {
		lr.header = &h;
		lr.key.data = w->key;
		lr.key.len = w->key_len;
		reply_msg(w->c, &lr.base);
	}
	waiter_done(w);
}

/* Looks at the store: the waiter's key must still be its own; with no key
 * created before it, the call is answered; otherwise the predecessor and
 * the waiter's own key are watched from the next revision. */
static void waiter_check(struct waiter *w)
{
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *pred = NULL, *mine = NULL;
	int64_t read_rev;
	int rc;

	w->step = W_WAIT;
	rc = range_by_create(w->b.api, w->key, w->pfx_len, 1, w->rev - 1, &pred);
	if (rc == 0) {
		q.key.data = w->key;
		q.key.len = w->key_len;
		rc = kv_range(srv_node_kv(w->b.api->node), &q, &mine);
	}
	if (rc) {
		waiter_fail(w, rc);
		goto out;
	}
	if (mine->n_kvs == 0 || mine->kvs[0]->create_revision != w->rev) {
		waiter_fail_msg(w, ERR_EXPIRED);
		goto out;
	}
	read_rev = pred->header->revision;
	if (pred->n_kvs == 0) {
		/* etcd's Mutex answers with its last read's header when it
		 * waited, its Election with the campaign txn's */
		if (!w->campaign && w->waited)
			w->txn_rev = read_rev;
		waiter_granted(w);
		goto out;
	}
	w->waited = 1;
	rc = ws_watch(&w->b, pred->kvs[0]->key.data, pred->kvs[0]->key.len, NULL, 0, read_rev + 1,
	              true);
	if (rc == 0)
		rc = ws_add(&w->b, w->key, w->key_len, read_rev + 1, true);
	if (rc)
		waiter_fail(w, rc);
out:
	kv_response_free(pred);
	kv_response_free(mine);
}

static void waiter_ready(struct lk_base *b)
{
	struct waiter *w = (struct waiter *)b;
	struct watch_response r;
	int act = 0; /* 1: look again; 2: the waiter's key is gone */
	int rc;

	while (!act && b->ws && (rc = watch_stream_next(b->ws, &r)) != 0) {
		if (rc < 0) { /* no memory for now: try again */
			ready_push(b);
			return;
		}
		if (r.canceled)
			act = 1;
		for (size_t i = 0; i < r.n_events; i++) {
			const Mvccpb__KeyValue *kv = r.events[i]->kv;
			if (r.events[i]->type != MVCCPB__EVENT__EVENT_TYPE__DELETE)
				continue;
			if (kv->key.len == w->key_len &&
			    memcmp(kv->key.data, w->key, w->key_len) == 0)
				act = 2;
			else if (act == 0)
				act = 1;
		}
		watch_response_release(&r);
	}
	if (act == 2)
		waiter_fail_msg(w, ERR_EXPIRED);
	else if (act == 1)
		waiter_check(w);
}

static void waiter_stop(struct lk_base *b)
{
	struct waiter *w = (struct waiter *)b;

	if (w->c)
		waiter_fail(w, MOOR_ECLOSED);
}

static void waiter_reset(struct lk_base *b)
{
	struct waiter *w = (struct waiter *)b;

	if (w->c && w->step == W_WAIT && !w->in_flight)
		waiter_check(w);
}

static void on_abandoned(void *ctx, int rc, void *resp, int64_t aux)
{
	(void)ctx;
	(void)rc;
	(void)aux;
	kv_response_free(resp); /* failed: the key goes with its lease */
}

/* A txn guarded by create_revision(key) == rev, as etcd's Mutex and
 * Election write theirs: `then` on success and, after guarded_else,
 * `other` on failure. On the caller's stack; set the operations, then
 * propose &g->ir. */
struct guarded_txn {
	Moorpb__InternalRequest ir;
	Etcdserverpb__TxnRequest t;
	Etcdserverpb__Compare cmp, *cmps[1];
	Etcdserverpb__RequestOp then, *thens[1], other, *others[1];
};

static void guarded_init(struct guarded_txn *g, ProtobufCBinaryData key, int64_t rev)
{
	moorpb__internal_request__init(&g->ir);
	etcdserverpb__txn_request__init(&g->t);
	etcdserverpb__compare__init(&g->cmp);
	etcdserverpb__request_op__init(&g->then);
	etcdserverpb__request_op__init(&g->other);
	g->cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
	g->cmp.key = key;
	g->cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
	g->cmp.create_revision = rev;
	g->cmps[0] = &g->cmp;
	g->thens[0] = &g->then;
	g->others[0] = &g->other;
	g->t.n_compare = 1;
	g->t.compare = g->cmps;
	g->t.n_success = 1;
	g->t.success = g->thens;
	g->ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_TXN;
	g->ir.txn = &g->t;
}

static void guarded_else(struct guarded_txn *g)
{
	g->t.n_failure = 1;
	g->t.failure = g->others;
}

static void op_put(Etcdserverpb__RequestOp *op, Etcdserverpb__PutRequest *put)
{
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op->request_put = put;
}

static void op_delete(Etcdserverpb__RequestOp *op, Etcdserverpb__DeleteRangeRequest *del)
{
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	op->request_delete_range = del;
}

/* The client went away: etcd's Mutex.Lock unlocks (deletes the key) and
 * Election.Campaign resigns (deletes it if it is still the one created at
 * rev) when their wait is canceled. */
static void waiter_tick(struct lk_base *b)
{
	struct waiter *w = (struct waiter *)b;
	Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	struct guarded_txn g;
	struct srv_gw_error e;

	if (!w->c || w->in_flight || w->step != W_WAIT || !srv_req_peer_closed(w->c->req))
		return;
	del.key.data = w->key;
	del.key.len = w->key_len;
	guarded_init(&g, del.key, w->rev);
	op_delete(&g.then, &del);
	if (!w->campaign) { /* a lock deletes its key whatever it holds */
		g.ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE;
		g.ir.delete_range = &del;
	}
	moor_log(b->api->log, MOOR_LOG_INFO, "api",
	         "%s: the waiting client went away; deleting its key (revision %" PRId64 ")",
	         w->campaign ? "campaign" : "lock", w->rev);
	srv_node_propose(b->api->node, &g.ir, on_abandoned, NULL);
	srv_gw_error_set(&e, SRV_GRPC_CANCELED, "context canceled");
	reply_gw_error(w->c, &e); /* nobody reads it: it releases the request */
	waiter_done(w);
}

static const struct lk_ops waiter_ops = {waiter_ready, waiter_stop, waiter_reset, waiter_tick};

static void on_proclaimed(void *ctx, int rc, void *resp, int64_t aux)
{
	struct waiter *w = ctx;
	Etcdserverpb__TxnResponse *t = resp;

	(void)aux;
	if (!waiter_back(w))
		goto out;
	if (rc)
		waiter_fail(w, rc);
	else if (!t->succeeded)
		waiter_fail_msg(w, ERR_NOT_LEADER);
	else
		waiter_check(w);
out:
	kv_response_free(resp);
}

/* etcd's Election.Proclaim inside Campaign: put the value if the key is
 * still the one created at w->rev. */
static void waiter_proclaim(struct waiter *w)
{
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	struct guarded_txn g;

	w->step = W_PROCLAIM;
	put.key.data = w->key;
	put.key.len = w->key_len;
	put.value = w->value;
	put.lease = w->lease;
	guarded_init(&g, put.key, w->rev);
	op_put(&g.then, &put);
	waiter_propose(w, &g.ir, on_proclaimed);
}

static void on_acquired(void *ctx, int rc, void *resp, int64_t aux)
{
	struct waiter *w = ctx;
	Etcdserverpb__TxnResponse *t = resp;

	(void)aux;
	if (!waiter_back(w))
		goto out;
	if (rc) {
		waiter_fail(w, rc);
		goto out;
	}
	w->txn_rev = t->header->revision;
	if (t->succeeded) {
		w->rev = t->header->revision;
	} else {
		const Etcdserverpb__RangeResponse *g =
		    t->n_responses ? t->responses[0]->response_range : NULL;
		if (!g || g->n_kvs == 0) { /* the compare saw it: it cannot be missing */
			waiter_fail_msg(w, ERR_EXPIRED);
			goto out;
		}
		w->rev = g->kvs[0]->create_revision;
		if (w->campaign && (g->kvs[0]->value.len != w->value.len ||
		                    (w->value.len && memcmp(g->kvs[0]->value.data, w->value.data,
		                                            w->value.len) != 0))) {
			waiter_proclaim(w);
			goto out;
		}
	}
	waiter_check(w);
out:
	kv_response_free(resp);
}

/* The txn of etcd's Mutex.tryAcquire and Election.Campaign. */
static void waiter_acquire(struct waiter *w)
{
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
	struct guarded_txn g;
	char hex[LEASE_HEX_MAX + 1];
	int n = lease_hex(w->lease, hex, sizeof hex);

	w->step = W_ACQUIRE;
	w->pfx_len = w->name.len + 1;
	w->key_len = w->pfx_len + (size_t)n;
	w->key = malloc(w->key_len);
	if (!w->key) {
		waiter_fail(w, MOOR_ENOMEM);
		return;
	}
	if (w->name.len)
		memcpy(w->key, w->name.data, w->name.len);
	w->key[w->name.len] = '/';
	memcpy(w->key + w->pfx_len, hex, (size_t)n);

	put.key.data = w->key;
	put.key.len = w->key_len;
	put.value = w->value;
	put.lease = w->lease;
	get.key = put.key;
	guarded_init(&g, put.key, 0); /* create_revision 0: absent */
	op_put(&g.then, &put);
	guarded_else(&g);
	g.other.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	g.other.request_range = &get;
	waiter_propose(w, &g.ir, on_acquired);
}

static void on_lease_granted(void *ctx, int rc, void *resp, int64_t aux)
{
	struct waiter *w = ctx;

	(void)aux;
	kv_response_free(resp);
	if (!waiter_back(w))
		return;
	if (rc)
		waiter_fail(w, rc);
	else
		waiter_acquire(w);
}

/* etcd's NewSession without a lease grants one of 60 s (and, as the
 * server orphans the session, never renews it). */
static void waiter_grant(struct waiter *w)
{
	Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
	Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;

	w->step = W_GRANT;
	g.ttl = SESSION_TTL_S;
	g.id = api_lease_id_new(w->b.api);
	w->lease = g.id;
	ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT;
	ir.lease_grant = &g;
	waiter_propose(w, &ir, on_lease_granted);
}

void api_lock_acquire(struct call *c)
{
	struct waiter *w;

	if (srv_node_nospace(c->api->node)) {
		lk_reply_error(c, MOOR_ENOSPACE);
		call_free(c);
		return;
	}
	w = calloc(1, sizeof *w);
	if (!w) {
		lk_reply_error(c, MOOR_ENOMEM);
		call_free(c);
		return;
	}
	w->b.api = c->api;
	w->b.ops = &waiter_ops;
	w->c = c;
	if (c->route->rpc == SRV_RPC_CAMPAIGN) {
		V3lockpb__CampaignRequest *r = (V3lockpb__CampaignRequest *)c->msg;
		w->campaign = 1;
		w->name = r->name;
		w->value = r->value;
		w->lease = r->lease;
	} else {
		V3lockpb__LockRequest *r = (V3lockpb__LockRequest *)c->msg;
		w->name = r->name;
		w->lease = r->lease;
	}
	base_link(&w->b);
	lock_timer_start(c->api);
	/* deferred first: the answer may come before the call returns */
	srv_req_defer(c->req);
	if (w->lease == 0)
		waiter_grant(w);
	else
		waiter_acquire(w);
}

/* ---- Unlock, Proclaim, Resign: one write each ---- */

static void on_released(void *ctx, int rc, void *resp, int64_t aux)
{
	struct call *c = ctx;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	int64_t rev = 0;

	(void)aux;
	if (rc) {
		lk_reply_error(c, rc);
		goto out;
	}
	if (c->route->rpc == SRV_RPC_UNLOCK) {
		rev = ((Etcdserverpb__DeleteRangeResponse *)resp)->header->revision;
	} else {
		Etcdserverpb__TxnResponse *t = resp;
		rev = t->header->revision;
		if (c->route->rpc == SRV_RPC_PROCLAIM && !t->succeeded) {
			reply_unknown(c, ERR_NOT_LEADER);
			goto out;
		}
	}
	header_at(c, &h, rev);
	if (c->route->rpc == SRV_RPC_UNLOCK) {
		V3lockpb__UnlockResponse m = V3LOCKPB__UNLOCK_RESPONSE__INIT;
		m.header = &h;
		reply_msg(c, &m.base);
	} else if (c->route->rpc == SRV_RPC_PROCLAIM) {
		V3lockpb__ProclaimResponse m = V3LOCKPB__PROCLAIM_RESPONSE__INIT;
		m.header = &h;
		reply_msg(c, &m.base);
	} else {
		V3lockpb__ResignResponse m = V3LOCKPB__RESIGN_RESPONSE__INIT;
		m.header = &h;
		reply_msg(c, &m.base);
	}
out:
	kv_response_free(resp);
	call_free(c);
}

void api_lock_release(struct call *c)
{
	Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	const V3lockpb__LeaderKey *leader = NULL;
	struct guarded_txn g;
	int rc;

	if (c->route->rpc == SRV_RPC_UNLOCK) {
		del.key = ((V3lockpb__UnlockRequest *)c->msg)->key;
		moorpb__internal_request__init(&g.ir);
		g.ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE;
		g.ir.delete_range = &del;
	} else {
		if (c->route->rpc == SRV_RPC_PROCLAIM) {
			V3lockpb__ProclaimRequest *r = (V3lockpb__ProclaimRequest *)c->msg;
			leader = r->leader;
			put.value = r->value;
		} else {
			leader = ((V3lockpb__ResignRequest *)c->msg)->leader;
		}
		if (!leader) {
			reply_unknown(c, ERR_NO_LEADER_KEY);
			call_free(c);
			return;
		}
		if (c->route->rpc == SRV_RPC_PROCLAIM && srv_node_nospace(c->api->node)) {
			lk_reply_error(c, MOOR_ENOSPACE);
			call_free(c);
			return;
		}
		put.key = leader->key;
		put.lease = leader->lease;
		del.key = leader->key;
		guarded_init(&g, leader->key, leader->rev);
		if (c->route->rpc == SRV_RPC_PROCLAIM)
			op_put(&g.then, &put);
		else
			op_delete(&g.then, &del);
	}
	/* deferred first: the answer may come before the call returns */
	srv_req_defer(c->req);
	rc = srv_node_propose(c->api->node, &g.ir, on_released, c);
	if (rc) {
		lk_reply_error(c, rc);
		call_free(c);
	}
}

/* ---- Leader ---- */

static void on_leader_ready(void *ctx, int rc)
{
	struct call *c = ctx;
	V3lockpb__LeaderRequest *r = (V3lockpb__LeaderRequest *)c->msg;
	V3lockpb__LeaderResponse m = V3LOCKPB__LEADER_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__RangeResponse *g = NULL;
	uint8_t *pfx = malloc(r->name.len + 1);

	if (!rc && !pfx)
		rc = MOOR_ENOMEM;
	if (!rc) {
		if (r->name.len)
			memcpy(pfx, r->name.data, r->name.len);
		pfx[r->name.len] = '/';
		rc = range_by_create(c->api, pfx, r->name.len + 1, 0, 0, &g);
	}
	if (rc) {
		lk_reply_error(c, rc);
	} else if (g->n_kvs == 0) {
		reply_unknown(c, ERR_NO_LEADER);
	} else {
		header_at(c, &h, g->header->revision);
		m.header = &h;
		m.kv = g->kvs[0];
		reply_msg(c, &m.base);
	}
	kv_response_free(g);
	free(pfx);
	call_free(c);
}

void api_election_leader(struct call *c)
{
	int rc;

	/* deferred first: the answer may come before the call returns */
	srv_req_defer(c->req);
	rc = srv_node_read_barrier(c->api->node, on_leader_ready, c);
	if (rc) {
		lk_reply_error(c, rc);
		call_free(c);
	}
}

/* ---- Observe: a stream ---- */

enum { O_FIND, O_FIRST, O_KEY };

struct observer {
	struct lk_base b;
	struct srv_stream *out;
	int proto;
	int state;
	int barrier;  /* a read barrier is out: its callback frees a closed observer */
	int closed;   /* the stream is gone */
	int ended;    /* srv_stream_end was called */
	uint8_t *pfx; /* name "/" */
	size_t pfx_len;
	uint8_t *key; /* the leader's key (O_KEY) */
	size_t key_len;
};

static void observer_free(struct observer *o)
{
	base_unlink(&o->b);
	free(o->pfx);
	free(o->key);
	free(o);
}

static void observer_end(struct observer *o, int rc)
{
	ws_close(&o->b);
	if (o->ended || o->closed)
		return;
	if (rc) {
		struct srv_gw_error e;
		struct moor_buf b;
		srv_gw_error_from_code(rc, &e);
		moor_buf_init(&b, NULL);
		if (srv_gw_write_stream_error(&b, &e) == 0)
			srv_stream_write(o->out, b.data, b.len);
		moor_buf_free(&b);
	}
	o->ended = 1;
	srv_stream_end(o->out);
}

static void observer_send(struct observer *o, int64_t rev, Mvccpb__KeyValue *kv)
{
	V3lockpb__LeaderResponse m = V3LOCKPB__LEADER_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	struct srv_node_info info;
	struct moor_buf b;

	srv_node_info(o->b.api->node, &info);
	h.cluster_id = info.cluster_id;
	h.member_id = info.id;
	h.raft_term = info.term;
	h.revision = rev;
	m.header = &h;
	m.kv = kv;
	moor_buf_init(&b, NULL);
	if (srv_api_stream_encode(&m.base, o->proto, &b) == 0)
		srv_stream_write(o->out, b.data, b.len);
	moor_buf_free(&b);
}

/* Follows the leader's key from revision `from`: each put is a new value,
 * its delete means looking for the next leader. */
static int observer_follow(struct observer *o, const Mvccpb__KeyValue *kv, int64_t from)
{
	uint8_t *k = malloc(kv->key.len ? kv->key.len : 1);

	if (!k)
		return MOOR_ENOMEM;
	memcpy(k, kv->key.data, kv->key.len);
	free(o->key);
	o->key = k;
	o->key_len = kv->key.len;
	o->state = O_KEY;
	return ws_watch(&o->b, o->key, o->key_len, NULL, 0, from, false);
}

static void observer_find(struct observer *o);

static void on_find_ready(void *ctx, int rc)
{
	struct observer *o = ctx;
	Etcdserverpb__RangeResponse *g = NULL;
	int64_t rev;

	o->barrier = 0;
	if (o->closed) {
		observer_free(o);
		return;
	}
	if (o->ended)
		return;
	if (!rc)
		rc = range_by_create(o->b.api, o->pfx, o->pfx_len, 0, 0, &g);
	if (rc) {
		observer_end(o, rc);
		return;
	}
	rev = g->header->revision;
	if (g->n_kvs) {
		observer_send(o, rev, g->kvs[0]);
		rc = observer_follow(o, g->kvs[0], rev + 1);
	} else {
		/* no leader yet: wait for the first key put under the prefix */
		uint8_t *end = malloc(o->pfx_len);
		o->state = O_FIRST;
		rc = MOOR_ENOMEM;
		if (end)
			rc = ws_watch(&o->b, o->pfx, o->pfx_len, end,
			              watch_prefix_end(o->pfx, o->pfx_len, end), rev + 1, false);
		free(end);
	}
	kv_response_free(g);
	if (rc)
		observer_end(o, rc);
}

static void observer_find(struct observer *o)
{
	int rc;

	ws_close(&o->b);
	o->state = O_FIND;
	if (o->b.api->closed) {
		observer_end(o, MOOR_ECLOSED);
		return;
	}
	rc = srv_node_read_barrier(o->b.api->node, on_find_ready, o);
	if (rc) {
		observer_end(o, rc);
		return;
	}
	o->barrier = 1;
}

static void observer_ready(struct lk_base *b)
{
	struct observer *o = (struct observer *)b;
	struct watch_response r;
	int rc;

	while (b->ws && srv_stream_buffered(o->out) < SRV_STREAM_HIGH_WATER) {
		int find = 0;
		rc = watch_stream_next(b->ws, &r);
		if (rc == 0)
			return;
		if (rc < 0) { /* no memory for now: try again */
			ready_push(b);
			return;
		}
		if (r.canceled)
			find = 1;
		for (size_t i = 0; i < r.n_events && !find; i++) {
			Mvccpb__Event *ev = r.events[i];
			if (o->state == O_FIRST) {
				if (ev->type != MVCCPB__EVENT__EVENT_TYPE__PUT)
					continue;
				/* etcd: the header's revision is the put's */
				observer_send(o, ev->kv->mod_revision, ev->kv);
				rc = observer_follow(o, ev->kv, ev->kv->mod_revision + 1);
				watch_response_release(&r); /* ws is new: r's stream is closed */
				if (rc)
					observer_end(o, rc);
				goto next;
			}
			if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE)
				find = 1;
			else
				observer_send(o, r.revision, ev->kv);
		}
		watch_response_release(&r);
		if (find) {
			observer_find(o);
			return;
		}
	next:;
	}
}

static void observer_stop(struct lk_base *b)
{
	observer_end((struct observer *)b, 0);
}

static void observer_reset(struct lk_base *b)
{
	struct observer *o = (struct observer *)b;

	if (!o->closed && !o->ended && !o->barrier)
		observer_find(o);
}

static const struct lk_ops observer_ops = {observer_ready, observer_stop, observer_reset, NULL};

static void on_observe_closed(void *ctx)
{
	struct observer *o = ctx;

	o->closed = 1;
	base_unlink(&o->b);
	if (!o->barrier)
		observer_free(o);
}

static void on_observe_drained(void *ctx)
{
	struct observer *o = ctx;

	if (!o->closed && o->b.ws)
		ready_push(&o->b);
}

void api_election_observe(struct call *c)
{
	V3lockpb__LeaderRequest *r = (V3lockpb__LeaderRequest *)c->msg;
	struct srv_stream_callbacks cb = {on_observe_closed, on_observe_drained, NULL};
	struct observer *o = calloc(1, sizeof *o);

	if (!o || !(o->pfx = malloc(r->name.len + 1))) {
		free(o);
		lk_reply_error(c, MOOR_ENOMEM);
		call_free(c);
		return;
	}
	o->b.api = c->api;
	o->b.ops = &observer_ops;
	o->proto = c->proto;
	if (r->name.len)
		memcpy(o->pfx, r->name.data, r->name.len);
	o->pfx[r->name.len] = '/';
	o->pfx_len = r->name.len + 1;
	cb.ctx = o;
	if (srv_req_stream(c->req, 200, c->proto ? "application/x-protobuf" : "application/json",
	                   &cb, &o->out) != 0) {
		free(o->pfx);
		free(o);
		lk_reply_error(c, MOOR_ENOMEM);
		call_free(c);
		return;
	}
	call_free(c);
	base_link(&o->b);
	observer_find(o);
}

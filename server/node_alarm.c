/*
 * Alarms and the backend quota. An alarm (NOSPACE, CORRUPT) is replicated
 * state: raised and cleared through raft, kept by the apply thread and in
 * the store's meta ("alarms") with the applied index, so every member and
 * every restart agree. Each member checks its own store's size against
 * --quota-backend-bytes now and then and raises NOSPACE for itself when it
 * is over; while any NOSPACE alarm is raised, writes that add data (put,
 * txn with a put, lease grant) are refused with "database space exceeded",
 * while reads, deletes, revokes and compaction go on, so an operator can
 * compact, wait for the store to shrink, and disarm.
 */
#include "server/node_int.h"

#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define LOG(n, lvl, ...) moor_log((n)->log, lvl, "alarm", __VA_ARGS__)
#define QUOTA_CHECK_MS 5000
#define DEFAULT_QUOTA (2ull << 30) /* etcd's DefaultQuotaBytes */

static void encode(const struct node_alarms *a, unsigned char *out, size_t *len)
{
	size_t o = 0;
	for (int i = 0; i < a->n; i++) {
		moor_put_be64(out + o, a->a[i].member);
		out[o + 8] = (unsigned char)a->a[i].type;
		o += 9;
	}
	*len = o;
}

static void decode(const unsigned char *d, size_t len, struct node_alarms *a)
{
	memset(a, 0, sizeof *a);
	for (size_t o = 0; o + 9 <= len && a->n < NODE_MAX_ALARMS; o += 9) {
		a->a[a->n].member = moor_get_be64(d + o);
		a->a[a->n].type = d[o + 8];
		a->n++;
	}
}

/* The apply thread: one AlarmRequest entry. */
int node_alarm_apply(struct srv_node *n, uint64_t index, const Etcdserverpb__AlarmRequest *r)
{
	struct node_alarms *a = &n->apply_alarms;
	unsigned char buf[NODE_MAX_ALARMS * 9];
	size_t len;
	int found = -1;

	if (r->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET)
		return 0;
	for (int i = 0; i < a->n; i++)
		if (a->a[i].member == r->memberid && a->a[i].type == (int)r->alarm)
			found = i;
	if (r->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE) {
		if (r->alarm == ETCDSERVERPB__ALARM_TYPE__NONE)
			return MOOR_EINVAL;
		if (found >= 0)
			return 0;
		if (a->n == NODE_MAX_ALARMS)
			return MOOR_ETOOLARGE;
		a->a[a->n].member = r->memberid;
		a->a[a->n].type = (int)r->alarm;
		a->n++;
	} else if (r->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE) {
		if (found < 0)
			return 0;
		a->a[found] = a->a[--a->n];
	} else {
		return MOOR_EINVAL;
	}
	encode(a, buf, &len);
	return kv_batch_meta_put(n->kv, index, "alarms", len ? buf : (const void *)"", len);
}

void node_alarms_load(struct srv_node *n)
{
	void *v = NULL;
	size_t len = 0;

	memset(&n->alarms, 0, sizeof n->alarms);
	if (kv_meta_get(n->kv, "alarms", &v, &len) == 0) {
		decode(v, len, &n->alarms);
		free(v);
	}
	n->apply_alarms = n->alarms;
}

int srv_node_alarms(const struct srv_node *n, uint64_t *members, int *types, int max)
{
	int k = 0;
	for (int i = 0; i < n->alarms.n && k < max; i++, k++) {
		members[k] = n->alarms.a[i].member;
		types[k] = n->alarms.a[i].type;
	}
	return k;
}

int srv_node_nospace(const struct srv_node *n)
{
	for (int i = 0; i < n->alarms.n; i++)
		if (n->alarms.a[i].type == ETCDSERVERPB__ALARM_TYPE__NOSPACE)
			return 1;
	return 0;
}

static void on_raised(void *ctx, int rc, void *resp, int64_t aux)
{
	struct srv_node *n = ctx;

	(void)aux;
	kv_response_free(resp);
	n->alarm_proposing = false;
	if (rc)
		LOG(n, MOOR_LOG_WARN, "raising NOSPACE failed: %s", moor_strerror(rc));
}

/* Every few seconds: is this member's store over the quota? */
void node_quota_tick(struct srv_node *n)
{
	uint64_t now = node_now_ms(), size, quota;
	Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
	Etcdserverpb__AlarmRequest ar = ETCDSERVERPB__ALARM_REQUEST__INIT;

	if (n->stopping || n->alarm_proposing || now - n->last_quota_check_ms < QUOTA_CHECK_MS)
		return;
	n->last_quota_check_ms = now;
	quota = n->quota_bytes ? n->quota_bytes : DEFAULT_QUOTA;
	size = srv_node_db_size(n);
	if (size <= quota)
		return;
	for (int i = 0; i < n->alarms.n; i++)
		if (n->alarms.a[i].member == n->id &&
		    n->alarms.a[i].type == ETCDSERVERPB__ALARM_TYPE__NOSPACE)
			return;
	LOG(n, MOOR_LOG_WARN, "store is %llu bytes, over the %llu-byte quota: raising NOSPACE",
	    (unsigned long long)size, (unsigned long long)quota);
	ar.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
	ar.memberid = n->id;
	ar.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
	ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_ALARM;
	ir.alarm = &ar;
	if (srv_node_propose(n, &ir, on_raised, n) == 0)
		n->alarm_proposing = true;
}

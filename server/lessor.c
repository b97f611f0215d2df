/* The lessor (see lessor.h): a sorted array of leases by id. */
#include "server/lessor.h"

#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void srv_lessor_init(struct srv_lessor *l)
{
	memset(l, 0, sizeof *l);
}

void srv_lessor_free(struct srv_lessor *l)
{
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Index of id, or of where it would go. */
static size_t find(const struct srv_lessor *l, int64_t id)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (l->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct srv_lease *get(const struct srv_lessor *l, int64_t id)
{
	size_t i = find(l, id);
	return i < l->n && l->v[i].id == id ? &l->v[i] : NULL;
}

int srv_lessor_grant(struct srv_lessor *l, int64_t id, int64_t ttl_s, uint64_t now_ms)
{
	size_t i = find(l, id);

	if (i < l->n && l->v[i].id == id)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct srv_lease *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return MOOR_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof *l->v);
	l->n++;
	l->v[i] = (struct srv_lease){
	    .id = id,
	    .ttl_s = ttl_s,
	    .expiry_ms = now_ms + (uint64_t)ttl_s * 1000,
	    .remaining_ms = -1,
	};
	return 0;
}

void srv_lessor_revoke(struct srv_lessor *l, int64_t id)
{
	size_t i = find(l, id);

	if (i < l->n && l->v[i].id == id) {
		memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof *l->v);
		l->n--;
	}
}

int64_t srv_lessor_renew(struct srv_lessor *l, int64_t id, uint64_t now_ms)
{
	struct srv_lease *e = get(l, id);

	if (!e)
		return 0;
	e->expiry_ms = now_ms + (uint64_t)e->ttl_s * 1000;
	e->remaining_ms = -1;
	e->revoke_at_ms = 0;
	return e->ttl_s;
}

void srv_lessor_checkpoint(struct srv_lessor *l, int64_t id, int64_t remaining_ms)
{
	struct srv_lease *e = get(l, id);

	if (e)
		e->remaining_ms = remaining_ms;
}

void srv_lessor_set_leader(struct srv_lessor *l, int leader, uint64_t now_ms, uint64_t extend_ms)
{
	if (leader && !l->leader) {
		for (size_t i = 0; i < l->n; i++) {
			struct srv_lease *e = &l->v[i];
			int64_t left = e->remaining_ms >= 0 ? e->remaining_ms : e->ttl_s * 1000;
			e->expiry_ms = now_ms + (uint64_t)left + extend_ms;
			e->revoke_at_ms = 0;
		}
	}
	l->leader = leader;
}

size_t srv_lessor_expired(struct srv_lessor *l, uint64_t now_ms, int64_t *ids, size_t max)
{
	size_t k = 0;

	if (!l->leader)
		return 0;
	for (size_t i = 0; i < l->n && k < max; i++) {
		struct srv_lease *e = &l->v[i];
		if (e->expiry_ms > now_ms || (e->revoke_at_ms && e->revoke_at_ms > now_ms))
			continue;
		e->revoke_at_ms = now_ms + SRV_LEASE_REVOKE_RETRY_MS;
		ids[k++] = e->id;
	}
	return k;
}

int64_t srv_lessor_remaining(const struct srv_lessor *l, int64_t id, uint64_t now_ms)
{
	const struct srv_lease *e = get(l, id);

	if (!e)
		return -1;
	if (l->leader)
		return e->expiry_ms > now_ms ? (int64_t)((e->expiry_ms - now_ms + 999) / 1000) : 0;
	if (e->remaining_ms >= 0)
		return (e->remaining_ms + 999) / 1000;
	return e->ttl_s;
}

size_t srv_lessor_snapshot(const struct srv_lessor *l, uint64_t now_ms, int64_t *ids,
                           int64_t *remaining_ms, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < l->n && k < max; i++) {
		const struct srv_lease *e = &l->v[i];
		ids[k] = e->id;
		remaining_ms[k] = e->expiry_ms > now_ms ? (int64_t)(e->expiry_ms - now_ms) : 0;
		k++;
	}
	return k;
}

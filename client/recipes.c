/*
 * Recipes on leases, txns and watches, as etcd's concurrency package builds
 * them:
 * - a session is a lease kept alive;
 * - a mutex and an election are keys "<prefix>/<lease id in hex>" attached
 *   to the session's lease, ordered by create_revision: the key with the
 *   lowest create_revision holds the lock (leads). A waiter watches only
 *   the key created just before its own, so a release wakes one waiter,
 *   and a holder whose session dies loses its key with the lease;
 * - list-then-watch reads a range at one revision R and watches from R + 1.
 */
#include "client/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- session ---- */

struct moor_session {
	moor_client *c;
	int64_t lease;
	moor_keepalive *ka;
};

int moor_session_open(moor_client *c, int ttl_s, moor_session **out)
{
	struct moor_session *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	s->c = c;
	rc = moor_lease_grant(c, ttl_s > 0 ? ttl_s : 60, 0, &s->lease, NULL);
	if (rc == 0)
		rc = moor_keepalive_start(c, s->lease, NULL, NULL, &s->ka);
	if (rc) {
		if (s->lease)
			moor_lease_revoke(c, s->lease);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int64_t moor_session_lease(moor_session *s)
{
	return s->lease;
}

int moor_session_status(moor_session *s)
{
	return moor_keepalive_status(s->ka);
}

void moor_session_close(moor_session *s)
{
	if (!s)
		return;
	moor_keepalive_stop(s->ka);
	moor_lease_revoke(s->c, s->lease); /* best effort: it expires anyway */
	free(s);
}

/* ---- waiting for deletions ---- */

int cl_wait_delete(moor_client *c, const void *key, size_t key_len, int64_t rev,
                   uint64_t deadline_ms)
{
	struct moor_watch_opts o = {.start_revision = rev, .no_put = true};
	moor_watch *w = NULL;
	int rc;

	for (;;) {
		struct moor_watch_response *r = NULL;
		int wait_ms = -1;

		if (!w) {
			rc = moor_watch_start(c, key, key_len, &o, &w);
			if (rc)
				return rc;
		}
		if (deadline_ms) {
			uint64_t now = cl_now_ms();
			if (now >= deadline_ms) {
				rc =
				    cl_set_error(MOOR_ETIMEOUT, "timed out waiting for a deletion");
				break;
			}
			wait_ms = (int)(deadline_ms - now);
		}
		rc = moor_watch_next(w, wait_ms, &r);
		if (rc)
			continue; /* the deadline check above ends it */
		if (r->err == MOOR_ECOMPACTED) {
			/* history is gone: look at the key itself */
			struct moor_response *g = NULL;
			moor_watch_response_free(r);
			moor_watch_stop(w);
			w = NULL;
			rc = moor_get(c, key, key_len, NULL, &g);
			if (rc)
				return rc;
			if (g->n_kvs == 0) {
				moor_response_free(g);
				return 0;
			}
			o.start_revision = g->header.revision + 1;
			moor_response_free(g);
			continue;
		}
		if (r->err) {
			rc = r->err;
			moor_watch_response_free(r);
			break;
		}
		for (size_t i = 0; i < r->n_events; i++)
			if (r->events[i].type == MOOR_EVENT_DELETE)
				rc = 1;
		moor_watch_response_free(r);
		if (rc == 1) {
			rc = 0;
			break;
		}
	}
	moor_watch_stop(w);
	return rc;
}

/* Waits until no key under pfx has a create_revision below max_rev + 1. */
static int wait_deletes(moor_client *c, const char *pfx, int64_t max_rev, uint64_t deadline_ms)
{
	for (;;) {
		struct moor_get_opts o = {
		    .range.prefix = true,
		    .sort_target = MOOR_SORT_CREATE,
		    .sort_order = MOOR_ORDER_DESCEND,
		    .limit = 1,
		    .max_create_revision = max_rev,
		};
		struct moor_response *g = NULL;
		int rc = moor_get(c, pfx, strlen(pfx), &o, &g);

		if (rc)
			return rc;
		if (g->n_kvs == 0) {
			moor_response_free(g);
			return 0;
		}
		rc = cl_wait_delete(c, g->kvs[0].key, g->kvs[0].key_len, g->header.revision + 1,
		                    deadline_ms);
		moor_response_free(g);
		if (rc)
			return rc;
	}
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? 0 : cl_now_ms() + (uint64_t)timeout_ms;
}

/* Our key exists (create it if not, with value): *rev is its
 * create_revision, *owner whether it is the first under pfx. */
static int key_claim(moor_session *s, const char *pfx, const char *key, const void *val, size_t len,
                     int64_t *rev, bool *owner, bool *created)
{
	struct moor_cmp cmp = {
	    .key = key, .key_len = strlen(key), .target = MOOR_CMP_CREATE, .op = MOOR_CMP_EQUAL};
	struct moor_put_opts po = {.lease = s->lease};
	struct moor_get_opts first = {.range.prefix = true,
	                              .sort_target = MOOR_SORT_CREATE,
	                              .sort_order = MOOR_ORDER_ASCEND,
	                              .limit = 1};
	struct moor_response *r = NULL;
	moor_txn *t = NULL;
	int rc;

	rc = moor_txn_new(&t);
	if (rc == 0)
		rc = moor_txn_if(t, &cmp);
	if (rc == 0)
		rc = moor_txn_put(t, MOOR_TXN_THEN, key, strlen(key), val, len, &po);
	if (rc == 0)
		rc = moor_txn_get(t, MOOR_TXN_ELSE, key, strlen(key), NULL);
	if (rc == 0)
		rc = moor_txn_get(t, MOOR_TXN_THEN, pfx, strlen(pfx), &first);
	if (rc == 0)
		rc = moor_txn_get(t, MOOR_TXN_ELSE, pfx, strlen(pfx), &first);
	/* The claim is idempotent (the key is this session's alone): when a
	 * member dies with its outcome, asking again settles it - the second
	 * try finds the key if the first one made it. */
	if (rc == 0) {
		int tries = 0;

		do
			rc = moor_txn_commit(s->c, t, &r);
		while (rc == MOOR_EINDETERMINATE && ++tries < 5);
	}
	moor_txn_free(t);
	if (rc)
		return rc;
	if (r->n_responses != 2) {
		moor_response_free(r);
		return cl_set_error(MOOR_EPROTO, "txn answer of %zu responses", r->n_responses);
	}
	*created = r->succeeded;
	if (r->succeeded) {
		*rev = r->header.revision;
	} else if (r->responses[0].n_kvs == 1) {
		*rev = r->responses[0].kvs[0].create_revision;
	} else {
		moor_response_free(r);
		return cl_set_error(MOOR_EPROTO, "our key vanished during the claim");
	}
	*owner = r->responses[1].n_kvs == 0 || r->responses[1].kvs[0].create_revision == *rev;
	moor_response_free(r);
	return 0;
}

/* After waiting: our key must still be there (else the session expired). */
static int key_still_ours(moor_session *s, const char *key, int64_t rev)
{
	struct moor_response *g = NULL;
	int rc = moor_get(s->c, key, strlen(key), NULL, &g);

	if (rc)
		return rc;
	if (g->n_kvs == 0 || g->kvs[0].create_revision != rev)
		rc = cl_set_error(MOOR_ELEASEEXPIRED, "session expired while waiting (key %s gone)",
		                  key);
	moor_response_free(g);
	return rc;
}

/* ---- mutex ---- */

struct moor_mutex {
	moor_session *s;
	char pfx[256];
	char key[300];
	int64_t rev;
	bool held;
};

int moor_mutex_new(moor_session *s, const char *prefix, moor_mutex **out)
{
	struct moor_mutex *m;

	*out = NULL;
	if (!prefix || strlen(prefix) > 200)
		return cl_set_error(MOOR_EINVAL, "mutex prefix missing or over 200 bytes");
	m = calloc(1, sizeof *m);
	if (!m)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	m->s = s;
	snprintf(m->pfx, sizeof m->pfx, "%s/", prefix);
	snprintf(m->key, sizeof m->key, "%s%llx", m->pfx, (unsigned long long)s->lease);
	*out = m;
	return 0;
}

static void key_drop(moor_session *s, const char *key)
{
	moor_delete(s->c, key, strlen(key), NULL, NULL);
}

int moor_mutex_trylock(moor_mutex *m)
{
	bool owner = false, created = false;
	int rc = key_claim(m->s, m->pfx, m->key, "", 0, &m->rev, &owner, &created);

	if (rc)
		return rc;
	if (!owner) {
		key_drop(m->s, m->key);
		return cl_set_error(MOOR_EBUSY, "%s is held by another", m->pfx);
	}
	m->held = true;
	return 0;
}

int moor_mutex_lock(moor_mutex *m, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	bool owner = false, created = false;
	int rc = key_claim(m->s, m->pfx, m->key, "", 0, &m->rev, &owner, &created);

	if (rc)
		return rc;
	if (!owner) {
		rc = wait_deletes(m->s->c, m->pfx, m->rev - 1, deadline);
		if (rc == 0)
			rc = key_still_ours(m->s, m->key, m->rev);
		if (rc) {
			key_drop(m->s, m->key);
			return rc;
		}
	}
	m->held = true;
	return 0;
}

int moor_mutex_unlock(moor_mutex *m)
{
	int rc;

	if (!m->held)
		return cl_set_error(MOOR_EINVAL, "not locked");
	rc = moor_delete(m->s->c, m->key, strlen(m->key), NULL, NULL);
	if (rc == 0)
		m->held = false;
	return rc;
}

const char *moor_mutex_key(moor_mutex *m)
{
	return m->held ? m->key : NULL;
}

void moor_mutex_free(moor_mutex *m)
{
	free(m);
}

/* ---- election ---- */

struct moor_election {
	moor_session *s;
	char pfx[256];
	char key[300];
	int64_t rev;
	bool leading;
};

int moor_election_new(moor_session *s, const char *prefix, moor_election **out)
{
	struct moor_election *e;

	*out = NULL;
	if (!prefix || strlen(prefix) > 200)
		return cl_set_error(MOOR_EINVAL, "election prefix missing or over 200 bytes");
	e = calloc(1, sizeof *e);
	if (!e)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	e->s = s;
	snprintf(e->pfx, sizeof e->pfx, "%s/", prefix);
	snprintf(e->key, sizeof e->key, "%s%llx", e->pfx, (unsigned long long)s->lease);
	*out = e;
	return 0;
}

int moor_election_campaign(moor_election *e, const void *value, size_t len, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	bool first = false, created = false;
	int rc = key_claim(e->s, e->pfx, e->key, value, len, &e->rev, &first, &created);

	if (rc)
		return rc;
	/* a candidacy from before (same lease): proclaim the new value */
	if (!created)
		rc = moor_election_proclaim(e, value, len);
	if (rc == 0 && !first)
		rc = wait_deletes(e->s->c, e->pfx, e->rev - 1, deadline);
	if (rc == 0)
		rc = key_still_ours(e->s, e->key, e->rev);
	if (rc) {
		key_drop(e->s, e->key);
		return rc;
	}
	e->leading = true;
	return 0;
}

int moor_election_proclaim(moor_election *e, const void *value, size_t len)
{
	struct moor_cmp cmp = {.key = e->key,
	                       .key_len = strlen(e->key),
	                       .target = MOOR_CMP_CREATE,
	                       .op = MOOR_CMP_EQUAL,
	                       .number = e->rev};
	struct moor_put_opts po = {.lease = e->s->lease};
	struct moor_response *r = NULL;
	moor_txn *t = NULL;
	int rc = moor_txn_new(&t);

	if (rc == 0)
		rc = moor_txn_if(t, &cmp);
	if (rc == 0)
		rc = moor_txn_put(t, MOOR_TXN_THEN, e->key, strlen(e->key), value, len, &po);
	if (rc == 0)
		rc = moor_txn_commit(e->s->c, t, &r);
	moor_txn_free(t);
	if (rc)
		return rc;
	if (!r->succeeded) {
		e->leading = false;
		rc = cl_set_error(MOOR_ENOTLEADER, "election %s: our candidacy is gone", e->pfx);
	}
	moor_response_free(r);
	return rc;
}

int moor_election_resign(moor_election *e)
{
	struct moor_cmp cmp = {.key = e->key,
	                       .key_len = strlen(e->key),
	                       .target = MOOR_CMP_CREATE,
	                       .op = MOOR_CMP_EQUAL,
	                       .number = e->rev};
	moor_txn *t = NULL;
	int rc = moor_txn_new(&t);

	if (rc == 0)
		rc = moor_txn_if(t, &cmp);
	if (rc == 0)
		rc = moor_txn_delete(t, MOOR_TXN_THEN, e->key, strlen(e->key), NULL);
	if (rc == 0)
		rc = moor_txn_commit(e->s->c, t, NULL);
	moor_txn_free(t);
	if (rc == 0)
		e->leading = false;
	return rc;
}

const char *moor_election_key(moor_election *e, int64_t *rev)
{
	if (!e->leading)
		return NULL;
	if (rev)
		*rev = e->rev;
	return e->key;
}

int moor_election_leader(moor_client *c, const char *prefix, struct moor_response **out)
{
	struct moor_get_opts o = {.range.prefix = true,
	                          .sort_target = MOOR_SORT_CREATE,
	                          .sort_order = MOOR_ORDER_ASCEND,
	                          .limit = 1};
	char pfx[256];
	int rc;

	*out = NULL;
	if (!prefix || strlen(prefix) > 200)
		return cl_set_error(MOOR_EINVAL, "election prefix missing or over 200 bytes");
	snprintf(pfx, sizeof pfx, "%s/", prefix);
	rc = moor_get(c, pfx, strlen(pfx), &o, out);
	if (rc == 0 && (*out)->n_kvs == 0) {
		moor_response_free(*out);
		*out = NULL;
		rc = cl_set_error(MOOR_ENOTFOUND, "election %s has no leader", prefix);
	}
	return rc;
}

void moor_election_free(moor_election *e)
{
	free(e);
}

/* ---- list, then watch ---- */

int moor_list_watch(moor_client *c, const void *key, size_t key_len,
                    const struct moor_watch_opts *opts, struct moor_response **list,
                    moor_watch **watch)
{
	struct moor_watch_opts wo = opts ? *opts : (struct moor_watch_opts){0};
	struct moor_get_opts go = {.range = wo.range, .read_mode = MOOR_READ_LINEARIZABLE};
	int rc;

	*watch = NULL;
	rc = moor_get(c, key, key_len, &go, list);
	if (rc)
		return rc;
	wo.start_revision = (*list)->header.revision + 1;
	rc = moor_watch_start(c, key, key_len, &wo, watch);
	if (rc) {
		moor_response_free(*list);
		*list = NULL;
	}
	return rc;
}

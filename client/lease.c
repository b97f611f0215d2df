/*
 * Leases: grant, revoke, time-to-live, list, and the keep-alive that runs
 * by itself.
 *
 * A keep-alive is one thread per lease. It learns the lease's TTL from
 * time-to-live, then sends one LeaseKeepAliveRequest frame to
 * /v3/lease/keepalive every TTL/3 (the answer is one LeaseKeepAliveResponse
 * frame). The lease is alive until `deadline`: the time of the last
 * confirmation plus the TTL it reported. Failed rounds are retried (the
 * transport fails over) every CL_KA_RETRY_MS until the deadline passes; the
 * lease is lost when the server says TTL 0 (it is gone) or the deadline
 * passes without a confirmation. Either way the caller hears it once.
 */
#include "client/internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CL_KA_RETRY_MS 500

int moor_lease_grant(moor_client *c, int64_t ttl_s, int64_t id, int64_t *id_out, int64_t *ttl_out)
{
	Etcdserverpb__LeaseGrantRequest q = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	Etcdserverpb__LeaseGrantResponse *m = NULL;
	int rc;

	if (ttl_s <= 0)
		return cl_set_error(MOOR_EINVAL, "lease TTL must be positive");
	q.ttl = ttl_s;
	q.id = id;
	rc = cl_call(c, "/v3/lease/grant", &q.base, &etcdserverpb__lease_grant_response__descriptor,
	             CL_WRITE, NULL, (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	if (m->error && *m->error) {
		cl_set_error(MOOR_EINVAL, "lease grant: %s", m->error);
		etcdserverpb__lease_grant_response__free_unpacked(m, NULL);
		return MOOR_EINVAL;
	}
	if (id_out)
		*id_out = m->id;
	if (ttl_out)
		*ttl_out = m->ttl;
	etcdserverpb__lease_grant_response__free_unpacked(m, NULL);
	return 0;
}

int moor_lease_revoke(moor_client *c, int64_t id)
{
	Etcdserverpb__LeaseRevokeRequest q = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	int rc;

	q.id = id;
	rc = cl_call(c, "/v3/lease/revoke", &q.base,
	             &etcdserverpb__lease_revoke_response__descriptor, CL_WRITE, NULL, &m);
	if (rc == 0)
		protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

int moor_lease_timetolive(moor_client *c, int64_t id, bool with_keys, struct moor_lease_info **out)
{
	Etcdserverpb__LeaseTimeToLiveRequest q = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	Etcdserverpb__LeaseTimeToLiveResponse *m = NULL;
	struct moor_lease_info *i;
	int rc;

	*out = NULL;
	q.id = id;
	q.keys = with_keys;
	rc = cl_call(c, "/v3/lease/timetolive", &q.base,
	             &etcdserverpb__lease_time_to_live_response__descriptor, CL_READ, NULL,
	             (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	i = calloc(1, sizeof *i);
	if (i && m->n_keys)
		i->keys = calloc(m->n_keys, sizeof *i->keys);
	if (!i || (m->n_keys && !i->keys)) {
		free(i);
		etcdserverpb__lease_time_to_live_response__free_unpacked(m, NULL);
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	}
	i->id = m->id;
	i->ttl = m->ttl;
	i->granted_ttl = m->grantedttl;
	i->n_keys = m->n_keys;
	for (size_t k = 0; k < m->n_keys; k++) {
		i->keys[k].key = m->keys[k].data;
		i->keys[k].len = m->keys[k].len;
	}
	i->priv_ = m;
	*out = i;
	return 0;
}

void moor_lease_info_free(struct moor_lease_info *i)
{
	if (!i)
		return;
	free(i->keys);
	if (i->priv_)
		protobuf_c_message_free_unpacked(i->priv_, NULL);
	free(i);
}

int moor_lease_list(moor_client *c, int64_t **ids, size_t *n)
{
	Etcdserverpb__LeaseLeasesRequest q = ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
	Etcdserverpb__LeaseLeasesResponse *m = NULL;
	int rc;

	*ids = NULL;
	*n = 0;
	rc = cl_call(c, "/v3/lease/leases", &q.base,
	             &etcdserverpb__lease_leases_response__descriptor, CL_READ, NULL,
	             (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	if (m->n_leases) {
		*ids = calloc(m->n_leases, sizeof **ids);
		if (!*ids) {
			etcdserverpb__lease_leases_response__free_unpacked(m, NULL);
			return cl_set_error(MOOR_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < m->n_leases; i++)
			(*ids)[i] = m->leases[i]->id;
		*n = m->n_leases;
	}
	etcdserverpb__lease_leases_response__free_unpacked(m, NULL);
	return 0;
}

static int keepalive_once(moor_client *c, int64_t id, int timeout_ms, int64_t *ttl_out);

int moor_lease_keepalive_once(moor_client *c, int64_t id, int64_t *ttl_out)
{
	return keepalive_once(c, id, c->request_timeout_ms, ttl_out);
}

static int keepalive_once(moor_client *c, int64_t id, int timeout_ms, int64_t *ttl_out)
{
	Etcdserverpb__LeaseKeepAliveRequest q = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
	Etcdserverpb__LeaseKeepAliveResponse *m = NULL;
	struct moor_buf in, out;
	size_t off = 0;
	int rc;

	q.id = id;
	moor_buf_init(&in, NULL);
	moor_buf_init(&out, NULL);
	rc = cl_frame_append(&in, &q.base);
	/* a keep-alive is idempotent: a read for the retry rules */
	if (rc == 0)
		rc = cl_http_t(c, "/v3/lease/keepalive", in.data, in.len, CL_READ, NULL, timeout_ms,
		               &out);
	if (rc == 0) {
		rc = cl_frame_next(out.data, out.len, &off,
		                   &etcdserverpb__lease_keep_alive_response__descriptor,
		                   (ProtobufCMessage **)&m);
		if (rc == 1) {
			if (ttl_out)
				*ttl_out = m->ttl;
			etcdserverpb__lease_keep_alive_response__free_unpacked(m, NULL);
			rc = 0;
		} else if (rc == 0) {
			rc = cl_set_error(MOOR_EPROTO,
			                  "keep-alive: the answer holds no whole frame");
		}
	}
	moor_buf_free(&in);
	moor_buf_free(&out);
	return rc;
}

/* ---- the keep-alive thread ---- */

struct moor_keepalive {
	moor_client *c;
	int64_t id;
	moor_lease_lost_fn lost;
	void *ctx;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
	atomic_int status;
	int64_t ttl_s;
	uint64_t deadline_ms;
};

/* Waits until `until_ms` or a stop; true when stopped. */
static bool ka_wait(struct moor_keepalive *k, uint64_t until_ms)
{
	bool stop;

	pthread_mutex_lock(&k->mu);
	while (!k->stop && cl_now_ms() < until_ms) {
		uint64_t left = until_ms - cl_now_ms();
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&k->cond, &k->mu, &ts);
	}
	stop = k->stop;
	pthread_mutex_unlock(&k->mu);
	return stop;
}

static void ka_lost(struct moor_keepalive *k, int err)
{
	atomic_store(&k->status, err);
	cl_log(k->c, MOOR_CLIENT_LOG_WARN, "lease %lld lost: %s", (long long)k->id,
	       moor_strerror(err));
	if (k->lost)
		k->lost(k->ctx, k->id, err);
}

static void *ka_main(void *arg)
{
	struct moor_keepalive *k = arg;
	uint64_t next = cl_now_ms() + (uint64_t)(k->ttl_s * 1000 / 3);
	bool warned = false;

	for (;;) {
		int64_t ttl = -1;
		int rc;

		if (ka_wait(k, next))
			break;
		/* one round may take a third of the TTL: a member that hangs must
		 * leave time to try the next before the lease runs out */
		int64_t t = k->ttl_s * 1000 / 3;
		if (t > k->c->request_timeout_ms)
			t = k->c->request_timeout_ms;
		rc = keepalive_once(k->c, k->id,
		                    t < CL_READ_ATTEMPT_MIN_MS ? CL_READ_ATTEMPT_MIN_MS : (int)t,
		                    &ttl);
		if (rc == 0 && ttl <= 0) {
			ka_lost(k, MOOR_ELEASENOTFOUND);
			break;
		}
		if (rc == 0) {
			k->ttl_s = ttl;
			k->deadline_ms = cl_now_ms() + (uint64_t)ttl * 1000;
			next = cl_now_ms() + (uint64_t)(ttl * 1000 / 3);
			continue;
		}
		if (rc == MOOR_ELEASENOTFOUND) {
			ka_lost(k, rc);
			break;
		}
		if (rc == MOOR_EUNSUPPORTED && !warned) {
			cl_log(k->c, MOOR_CLIENT_LOG_WARN,
			       "lease %lld: the server has no keep-alive yet", (long long)k->id);
			warned = true;
		}
		if (cl_now_ms() >= k->deadline_ms) {
			ka_lost(k, MOOR_ELEASEEXPIRED);
			break;
		}
		next = cl_now_ms() + CL_KA_RETRY_MS;
		if (next > k->deadline_ms)
			next = k->deadline_ms;
	}
	return NULL;
}

int moor_keepalive_start(moor_client *c, int64_t id, moor_lease_lost_fn lost, void *ctx,
                         moor_keepalive **out)
{
	struct moor_lease_info *info = NULL;
	struct moor_keepalive *k;
	int rc;

	*out = NULL;
	rc = moor_lease_timetolive(c, id, false, &info);
	if (rc)
		return rc;
	if (info->ttl <= 0) {
		moor_lease_info_free(info);
		return cl_set_error(MOOR_ELEASENOTFOUND, "lease %lld not found", (long long)id);
	}
	k = calloc(1, sizeof *k);
	if (!k) {
		moor_lease_info_free(info);
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	}
	k->c = c;
	k->id = id;
	k->lost = lost;
	k->ctx = ctx;
	k->ttl_s = info->granted_ttl > 0 ? info->granted_ttl : info->ttl;
	k->deadline_ms = cl_now_ms() + (uint64_t)info->ttl * 1000;
	moor_lease_info_free(info);
	atomic_init(&k->status, 0);
	pthread_mutex_init(&k->mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&k->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	rc = pthread_create(&k->thread, NULL, ka_main, k);
	if (rc) {
		pthread_cond_destroy(&k->cond);
		pthread_mutex_destroy(&k->mu);
		free(k);
		return cl_set_error(-rc, "pthread_create failed");
	}
	*out = k;
	return 0;
}

int moor_keepalive_status(moor_keepalive *k)
{
	return atomic_load(&k->status);
}

void moor_keepalive_stop(moor_keepalive *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

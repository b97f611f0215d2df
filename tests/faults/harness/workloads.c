/*
 * The workloads of moor-jepsen-client: registers (get/put/cas on a few
 * keys, unique values), sets (unique adds, the final read) and locks
 * (libmoor's mutex, fenced writes). Each thread keeps at most one op in
 * flight and records it through worker.c.
 */
#include "tests/faults/harness/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- registers */

static void register_step(struct thread *t, long *counter, int64_t *last_read)
{
	char key[32], fields[200], more[200], vb[64];
	int k = (int)(rng_next(&t->rng) % (uint64_t)opt.keys);
	int kind = (int)(rng_next(&t->rng) % 10);
	struct moor_response *r = NULL;
	struct op o;
	int rc;

	snprintf(key, sizeof key, "r/%d", k);
	if (kind >= 7 && last_read[k] < 0)
		kind = 0; /* a cas needs a value to compare with: read first */
	if (kind < 4) {
		op_invoke(&o, t->process, "read", key, "");
		rc = moor_get(t->c, key, strlen(key), NULL, &r);
		if (rc != 0) {
			op_error(&o, "fail", rc);
		} else if (r->n_kvs == 0) {
			snprintf(more, sizeof more, "\"value\":null,\"revision\":%" PRId64,
			         r->header.revision);
			op_complete(&o, "ok", more);
			last_read[k] = -1;
		} else {
			const struct moor_kv *kv = &r->kvs[0];
			snprintf(more, sizeof more, "\"value\":%s,\"revision\":%" PRId64,
			         hist_value(kv->value, kv->value_len, vb, sizeof vb),
			         r->header.revision);
			op_complete(&o, "ok", more);
			char tmp[32];
			size_t n = kv->value_len < sizeof tmp - 1 ? kv->value_len : sizeof tmp - 1;
			memcpy(tmp, kv->value, n);
			tmp[n] = '\0';
			last_read[k] = strtoll(tmp, NULL, 10);
		}
		moor_response_free(r);
		return;
	}
	/* Unique values: thread index and a counter. */
	int64_t value = (int64_t)(t->idx + 1) * 100000000 + (int64_t)(++*counter);
	char vs[32];
	snprintf(vs, sizeof vs, "%" PRId64, value);
	bool ok;
	if (kind < 7) {
		snprintf(fields, sizeof fields, "\"value\":%s", vs);
		op_invoke(&o, t->process, "write", key, fields);
		do_write(t, &o, key, vs, RAW_CMP_NONE, NULL, NULL, 0, &ok);
		return;
	}
	char es[32];
	snprintf(es, sizeof es, "%" PRId64, last_read[k]);
	snprintf(fields, sizeof fields, "\"expect\":%s,\"value\":%s", es, vs);
	op_invoke(&o, t->process, "cas", key, fields);
	if (do_write(t, &o, key, vs, RAW_CMP_VALUE, key, es, 0, &ok) == RAW_OK && ok)
		last_read[k] = value;
}

void *register_thread(void *arg)
{
	struct thread *t = arg;
	int64_t last_read[MAX_KEYS];
	long counter = 0;
	for (int i = 0; i < MAX_KEYS; i++)
		last_read[i] = -1;
	while (!atomic_load(&stop_ops)) {
		register_step(t, &counter, last_read);
		t->ops++;
		if (opt.think_ms)
			sleep_ms(opt.think_ms);
	}
	return NULL;
}

/* ----------------------------------------------------------------- sets */

void *set_thread(void *arg)
{
	struct thread *t = arg;
	while (!atomic_load(&stop_ops)) {
		long long e = atomic_fetch_add(&next_element, 1);
		char key[48], vs[32], fields[64];
		struct op o;
		snprintf(key, sizeof key, "s/%lld", e);
		snprintf(vs, sizeof vs, "%lld", e);
		snprintf(fields, sizeof fields, "\"value\":%lld", e);
		bool ok;
		op_invoke(&o, t->process, "add", "s", fields);
		do_write(t, &o, key, vs, RAW_CMP_NONE, NULL, NULL, 0, &ok);
		t->ops++;
		if (opt.think_ms)
			sleep_ms(opt.think_ms);
	}
	return NULL;
}

/* The final read of the set: retried (as new ops) until one succeeds or the
 * final timeout passes. Returns 0 when one succeeded. */
int set_final_read(struct thread *t, uint64_t deadline_ns)
{
	while (hist_now_ns() < deadline_ns) {
		struct moor_get_opts go = {.range.prefix = true};
		struct moor_response *r = NULL;
		struct op o;
		op_invoke(&o, t->process, "final-read", "s", "");
		int rc = moor_get(t->c, "s/", 2, &go, &r);
		if (rc != 0) {
			op_error(&o, "fail", rc);
			sleep_ms(500);
			continue;
		}
		size_t cap = 64 + r->n_kvs * 24, len = 0;
		char *buf = malloc(cap);
		if (!buf)
			abort();
		len += (size_t)snprintf(buf + len, cap - len, "\"value\":[");
		for (size_t i = 0; i < r->n_kvs; i++) {
			char vb[64];
			len += (size_t)snprintf(
			    buf + len, cap - len, "%s%s", i ? "," : "",
			    hist_value(r->kvs[i].value, r->kvs[i].value_len, vb, sizeof vb));
		}
		snprintf(buf + len, cap - len, "],\"revision\":%" PRId64, r->header.revision);
		op_complete(&o, "ok", buf);
		fprintf(stderr, "final read: %zu elements at revision %" PRId64 "\n", r->n_kvs,
		        r->header.revision);
		free(buf);
		moor_response_free(r);
		return 0;
	}
	return -1;
}

/* ----------------------------------------------------------------- locks */

static void lock_abandon(moor_session **s, moor_mutex **m)
{
	/* Revoking the lease frees the lock key whatever state it is in. */
	if (*m)
		moor_mutex_free(*m);
	*m = NULL;
	if (*s)
		moor_session_close(*s);
	*s = NULL;
}

void *lock_thread(void *arg)
{
	struct thread *t = arg;
	moor_session *s = NULL;
	moor_mutex *m = NULL;
	long counter = 0;
	while (!atomic_load(&stop_ops)) {
		if (!s && moor_session_open(t->c, 2, &s) != 0) {
			s = NULL;
			sleep_ms(200);
			continue;
		}
		int l = (int)(rng_next(&t->rng) % (uint64_t)opt.locks);
		char name[32], prefix[48], fields[200], more[200];
		struct op o;
		snprintf(name, sizeof name, "l%d", l);
		snprintf(prefix, sizeof prefix, "lock/%s", name);
		if (moor_mutex_new(s, prefix, &m) != 0)
			abort();
		op_invoke(&o, t->process, "acquire", name, "");
		int rc = moor_mutex_lock(m, 3000);
		if (rc == 0) {
			/* The fence: our lock key's create_revision. */
			struct moor_response *r = NULL;
			const char *mk = moor_mutex_key(m);
			rc = moor_get(t->c, mk, strlen(mk), NULL, &r);
			if (rc == 0 && r->n_kvs == 1) {
				int64_t fence = r->kvs[0].create_revision;
				moor_response_free(r);
				snprintf(more, sizeof more, "\"fence\":%" PRId64, fence);
				op_complete(&o, "ok", more);
				int writes = 1 + (int)(rng_next(&t->rng) % 3);
				int lost = 0;
				for (int w = 0; w < writes && !lost; w++) {
					char dk[48], vs[32];
					int64_t value = (int64_t)(t->idx + 1) * 100000000 +
					                (int64_t)(++counter);
					snprintf(dk, sizeof dk, "lockdata/%s", name);
					snprintf(vs, sizeof vs, "%" PRId64, value);
					snprintf(fields, sizeof fields,
					         "\"fence\":%" PRId64 ",\"value\":%s", fence, vs);
					op_invoke(&o, t->process, "fenced-write", name, fields);
					bool ok;
					if (do_write(t, &o, dk, vs, RAW_CMP_CREATE, mk, NULL, fence,
					             &ok) != RAW_OK)
						lost = 1; /* info retired the process; a refused
						             write too: start over */
					else if (!ok)
						lost = 2; /* the lock is gone (lease expired) */
					t->ops++;
				}
				if (lost == 1) {
					retire(t);
					lock_abandon(&s, &m);
					continue;
				}
				op_invoke(&o, t->process, "release", name, "");
				rc = moor_mutex_unlock(m);
				if (rc != 0) {
					op_error(&o, "info", rc);
					retire(t);
					lock_abandon(&s, &m);
					continue;
				}
				op_complete(&o, "ok", NULL);
				if (lost == 2)
					lock_abandon(&s,
					             &m); /* new session: the old lease is gone */
			} else {
				moor_response_free(r);
				op_error(&o, "info", rc != 0 ? rc : MOOR_ENOTFOUND);
				retire(t);
				lock_abandon(&s, &m);
				continue;
			}
		} else {
			/* Not acquired in time or an error: whether our key still
			 * waits in the queue is unknown, so the session goes. */
			op_error(&o, "info", rc);
			retire(t);
			lock_abandon(&s, &m);
			continue;
		}
		moor_mutex_free(m);
		m = NULL;
		t->ops++;
	}
	lock_abandon(&s, &m);
	return NULL;
}

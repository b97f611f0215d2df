/*
 * moor-jepsen-client: the client side of the fault-injection suite.
 *
 * Runs N client threads against a moord cluster, each with its own libmoor
 * client (its own connections, its endpoint list rotated so the threads start
 * on different members), for --duration seconds, recording every operation
 * to a history in the checkers' format (tests/faults/README.md). Workloads:
 *   register  get / put / cas (a txn comparing the value) on a few keys,
 *             every written value unique;
 *   set       unique adds (a put of key s/<element>), then a final read of
 *             the prefix, retried until it succeeds;
 *   lock      libmoor's mutex recipe on a session lease; each holder writes
 *             the protected key with a txn comparing its lock key's
 *             create_revision (the fence);
 *   watch     watchers on different members over the whole key space from
 *             revision 1, recorded as streams; at the end each is seen caught
 *             up to the final revision and a log of every revision is dumped
 *             (a watch from revision 1) for the watch checker.
 * Outcomes: ok when the server answered; for a write, any error is `info`
 * (indeterminate) and the thread goes on under a new process id — this is
 * stricter than libmoor's own classification, which is itself under test;
 * a cas whose compare lost is `fail` without error; a failed read is `fail`.
 *
 * Exit status: 0 when the run and its final phase completed, 1 when the final
 * phase could not complete (e.g. the cluster did not recover), 2 on usage.
 */
#include "client/moor.h"
#include "tests/faults/harness/history.h"
#include "tests/faults/harness/rawkv.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_WATCHERS 16

static struct {
	char *endpoints[MOOR_MAX_ENDPOINTS];
	size_t n_endpoints;
	int threads;
	int watchers;
	int keys;
	int locks;
	double duration_s;
	int final_timeout_s;
	uint64_t seed;
	int request_timeout_ms;
	int w_register, w_set, w_lock, w_watch;
	int libmoor_writes; /* writes through libmoor (its retry rules under test) */
	int think_ms;       /* pause between two ops of a thread */
} opt = {.threads = 6, .watchers = 3, .keys = 4, .locks = 2, .duration_s = 30, .final_timeout_s = 90,
         .seed = 1, .request_timeout_ms = 1500};

static atomic_int stop_ops;
static atomic_llong next_element;

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: a per-thread stream derived from the seed */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static moor_client *client_open(int rotate)
{
	const char *eps[MOOR_MAX_ENDPOINTS];
	for (size_t i = 0; i < opt.n_endpoints; i++)
		eps[i] = opt.endpoints[(i + (size_t)rotate) % opt.n_endpoints];
	struct moor_config cfg = {.endpoints = eps,
	                          .n_endpoints = opt.n_endpoints,
	                          .dial_timeout_ms = 500,
	                          .request_timeout_ms = opt.request_timeout_ms};
	moor_client *c = NULL;
	int rc = moor_client_open(&cfg, &c);
	if (rc != 0) {
		fprintf(stderr, "moor_client_open: %s\n", moor_strerror(rc));
		exit(1);
	}
	return c;
}

/* The error of the last call as a JSON string. */
static char *err_json(int rc, char *buf, size_t size)
{
	char tmp[400];
	snprintf(tmp, sizeof tmp, "%s: %s", moor_strerror(rc), moor_error_detail());
	return hist_quote(tmp, strlen(tmp), buf, size);
}

/* One operation's records. `fields` is extra JSON members (", "-joined,
 * without braces) repeated on the invoke and the completion. */
struct op {
	int process;
	const char *f;
	char key[96];
	char fields[256];
	uint64_t t_invoke;
};

static void op_invoke(struct op *o, int process, const char *f, const char *key, const char *fields)
{
	char qk[200];
	o->process = process;
	o->f = f;
	snprintf(o->key, sizeof o->key, "%s", key);
	snprintf(o->fields, sizeof o->fields, "%s", fields);
	o->t_invoke = hist_now_ns();
	hist_linef("{\"process\":%d,\"type\":\"invoke\",\"f\":\"%s\",\"key\":%s%s%s,\"time_ns\":%" PRIu64 "}", process, f,
	           hist_quote(key, strlen(key), qk, sizeof qk), *fields ? "," : "", fields, o->t_invoke);
}

/* type "ok"/"fail"/"info"; more: extra members for the completion only. */
static void op_complete(struct op *o, const char *type, const char *more)
{
	char qk[200];
	uint64_t t = hist_now_ns();
	hist_linef("{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\",\"key\":%s%s%s%s%s,\"time_ns\":%" PRIu64 "}", o->process,
	           type, o->f, hist_quote(o->key, strlen(o->key), qk, sizeof qk), *o->fields ? "," : "", o->fields,
	           more && *more ? "," : "", more ? more : "", t);
	hist_latency(o->t_invoke, t, o->f, type);
}

static void op_error(struct op *o, const char *type, int rc)
{
	char e[512], more[540];
	snprintf(more, sizeof more, "\"error\":%s", err_json(rc, e, sizeof e));
	op_complete(o, type, more);
}

struct thread {
	int idx;
	int process;
	uint64_t rng;
	moor_client *c;
	struct raw_kv *raw;
	pthread_t tid;
	long ops;
};

/* After an indeterminate outcome the process may still have an op in
 * flight: continue as a new process (Jepsen's rule, and the checkers'). */
static void retire(struct thread *t)
{
	t->process += opt.threads;
}

/* A write: a put, or a txn putting key=value if cmp holds. Through rawkv
 * (one attempt, the member's answer as it is) or through libmoor. Records
 * the completion of `o`: ok, fail without error (compare lost), fail with
 * error (refused before proposing), info (retires the process). Returns the
 * outcome; *succeeded and *rev are set on RAW_OK. */
static enum raw_outcome do_write(struct thread *t, struct op *o, const char *key, const char *value,
                                 enum raw_cmp cmp, const char *cmp_key, const char *cmp_value, int64_t cmp_number,
                                 bool *succeeded)
{
	char more[600], e[540];
	int64_t rev = 0;
	enum raw_outcome out;
	*succeeded = false;
	if (!opt.libmoor_writes) {
		out = raw_put(t->raw, key, value, cmp, cmp_key, cmp_value, cmp_number, succeeded, &rev);
		if (out != RAW_OK) {
			const char *err = raw_error(t->raw);
			snprintf(more, sizeof more, "\"error\":%s", hist_quote(err, strlen(err), e, sizeof e));
			op_complete(o, out == RAW_FAIL ? "fail" : "info", more);
			if (out == RAW_INFO)
				retire(t);
			return out;
		}
	} else {
		struct moor_response *r = NULL;
		int rc;
		if (cmp == RAW_CMP_NONE) {
			rc = moor_put(t->c, key, strlen(key), value, strlen(value), NULL, &r);
		} else {
			moor_txn *txn = NULL;
			struct moor_cmp mc = {.key = cmp_key, .key_len = strlen(cmp_key), .op = MOOR_CMP_EQUAL};
			if (cmp == RAW_CMP_VALUE) {
				mc.target = MOOR_CMP_VALUE;
				mc.value = cmp_value;
				mc.value_len = strlen(cmp_value);
			} else {
				mc.target = MOOR_CMP_CREATE;
				mc.number = cmp_number;
			}
			if (moor_txn_new(&txn) != 0 || moor_txn_if(txn, &mc) != 0 ||
			    moor_txn_put(txn, MOOR_TXN_THEN, key, strlen(key), value, strlen(value), NULL) != 0)
				abort();
			rc = moor_txn_commit(t->c, txn, &r);
			moor_txn_free(txn);
		}
		if (rc != 0) {
			op_error(o, "info", rc);
			retire(t);
			return RAW_INFO;
		}
		*succeeded = cmp == RAW_CMP_NONE || r->succeeded;
		rev = r->header.revision;
		moor_response_free(r);
	}
	snprintf(more, sizeof more, "\"revision\":%" PRId64, rev);
	op_complete(o, *succeeded ? "ok" : "fail", more);
	return RAW_OK;
}

/* ----------------------------------------------------------- registers */

#define MAX_KEYS 64

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
			snprintf(more, sizeof more, "\"value\":null,\"revision\":%" PRId64, r->header.revision);
			op_complete(&o, "ok", more);
			last_read[k] = -1;
		} else {
			const struct moor_kv *kv = &r->kvs[0];
			snprintf(more, sizeof more, "\"value\":%s,\"revision\":%" PRId64,
			         hist_value(kv->value, kv->value_len, vb, sizeof vb), r->header.revision);
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

static void *register_thread(void *arg)
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

static void *set_thread(void *arg)
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
static int set_final_read(struct thread *t, uint64_t deadline_ns)
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
			len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "",
			                        hist_value(r->kvs[i].value, r->kvs[i].value_len, vb, sizeof vb));
		}
		snprintf(buf + len, cap - len, "],\"revision\":%" PRId64, r->header.revision);
		op_complete(&o, "ok", buf);
		fprintf(stderr, "final read: %zu elements at revision %" PRId64 "\n", r->n_kvs, r->header.revision);
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

static void *lock_thread(void *arg)
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
					int64_t value = (int64_t)(t->idx + 1) * 100000000 + (int64_t)(++counter);
					snprintf(dk, sizeof dk, "lockdata/%s", name);
					snprintf(vs, sizeof vs, "%" PRId64, value);
					snprintf(fields, sizeof fields, "\"fence\":%" PRId64 ",\"value\":%s", fence, vs);
					op_invoke(&o, t->process, "fenced-write", name, fields);
					bool ok;
					if (do_write(t, &o, dk, vs, RAW_CMP_CREATE, mk, NULL, fence, &ok) != RAW_OK)
						lost = 1; /* info retired the process; a refused write too: start over */
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
					lock_abandon(&s, &m); /* new session: the old lease is gone */
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

/* ---------------------------------------------------------------- watches */

struct watcher {
	int idx;
	char id[16];
	moor_client *c;
	moor_watch *w;
	atomic_llong last_rev;
	atomic_int ended_err;
	int is_log; /* the log dump: writes log records */
	long events;
};

static void watch_record_start(struct watcher *w, int64_t start)
{
	hist_linef("{\"f\":\"watch\",\"type\":\"start\",\"watch\":\"%s\",\"key\":\"\",\"prefix\":true,"
	           "\"start_revision\":%" PRId64 ",\"time_ns\":%" PRIu64 "}",
	           w->id, start, hist_now_ns());
}

static void watch_cb(void *ctx, const struct moor_watch_response *r)
{
	struct watcher *w = ctx;
	if (r->err != 0) {
		if (r->err == MOOR_ECOMPACTED && !w->is_log)
			hist_linef("{\"f\":\"watch\",\"type\":\"compacted\",\"watch\":\"%s\",\"compact_revision\":%" PRId64 "}",
			           w->id, r->compact_revision);
		atomic_store(&w->ended_err, r->err);
		return;
	}
	if (r->n_events == 0) {
		if (!w->is_log && r->header.revision > 0)
			hist_linef("{\"f\":\"watch\",\"type\":\"progress\",\"watch\":\"%s\",\"revision\":%" PRId64 "}", w->id,
			           r->header.revision);
		return;
	}
	size_t cap = 128 + r->n_events * 200, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		abort();
	for (size_t i = 0; i < r->n_events; i++) {
		const struct moor_event *e = &r->events[i];
		char qk[200], vb[200];
		if (len + 600 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		const char *op = e->type == MOOR_EVENT_PUT ? "put" : "delete";
		hist_quote(e->kv.key, e->kv.key_len, qk, sizeof qk);
		hist_value(e->kv.value, e->kv.value_len, vb, sizeof vb);
		if (w->is_log)
			hist_linef("{\"type\":\"log\",\"revision\":%" PRId64 ",\"key\":%s,\"op\":\"%s\",\"value\":%s}",
			           e->kv.mod_revision, qk, op, e->type == MOOR_EVENT_PUT ? vb : "null");
		else
			len += (size_t)snprintf(buf + len, cap - len,
			                        "%s{\"revision\":%" PRId64 ",\"key\":%s,\"op\":\"%s\",\"value\":%s}",
			                        i ? "," : "", e->kv.mod_revision, qk, op,
			                        e->type == MOOR_EVENT_PUT ? vb : "null");
		atomic_store(&w->last_rev, e->kv.mod_revision);
	}
	if (!w->is_log)
		hist_linef("{\"f\":\"watch\",\"type\":\"event\",\"watch\":\"%s\",\"events\":[%s],\"time_ns\":%" PRIu64 "}",
		           w->id, buf, hist_now_ns());
	w->events += (long)r->n_events;
	free(buf);
}

static int watcher_start(struct watcher *w, int64_t start)
{
	struct moor_watch_opts wo = {.range.from_key = true, .start_revision = start, .cb = watch_cb, .cb_ctx = w};
	if (!w->is_log)
		watch_record_start(w, start);
	atomic_store(&w->ended_err, 0);
	return moor_watch_start(w->c, "", 0, &wo, &w->w);
}

/* Waits until the watcher has delivered revision `rev`; restarts it from
 * last + 1 if it ended with an error other than compaction. */
static int watcher_catch_up(struct watcher *w, int64_t rev, uint64_t deadline_ns)
{
	while (hist_now_ns() < deadline_ns) {
		if (moor_watch_next_revision(w->w) > rev)
			return 0;
		int err = atomic_load(&w->ended_err);
		if (err == MOOR_ECOMPACTED)
			return -1;
		if (err != 0) {
			moor_watch_stop(w->w);
			w->w = NULL;
			if (watcher_start(w, atomic_load(&w->last_rev) + 1) != 0)
				return -1;
		}
		sleep_ms(50);
	}
	return -1;
}

/* The current revision, read linearizably (retried until the deadline). */
static int64_t current_revision(moor_client *c, uint64_t deadline_ns)
{
	while (hist_now_ns() < deadline_ns) {
		struct moor_response *r = NULL;
		if (moor_get(c, "r/0", 3, NULL, &r) == 0) {
			int64_t rev = r->header.revision;
			moor_response_free(r);
			return rev;
		}
		sleep_ms(300);
	}
	return -1;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
	fprintf(stderr,
	        "usage: moor-jepsen-client --endpoints URL,URL,... --history FILE --latency FILE\n"
	        "       [--workload register,set,lock,watch] [--threads N] [--watchers N] [--keys N]\n"
	        "       [--locks N] [--duration S] [--final-timeout S] [--seed N] [--request-timeout-ms N]\n"
	        "       [--writes raw|libmoor] [--think-ms N]\n");
	exit(2);
}

static void parse_workloads(char *s)
{
	for (char *save = NULL, *w = strtok_r(s, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (!strcmp(w, "register"))
			opt.w_register = 1;
		else if (!strcmp(w, "set"))
			opt.w_set = 1;
		else if (!strcmp(w, "lock"))
			opt.w_lock = 1;
		else if (!strcmp(w, "watch"))
			opt.w_watch = 1;
		else
			usage();
	}
}

static void on_stop(int sig)
{
	(void)sig;
	atomic_store(&stop_ops, 1);
}

int main(int argc, char **argv)
{
	const char *history = NULL, *latency = NULL;
	char *eps = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--endpoints"))
			eps = strdup(v);
		else if (!strcmp(a, "--history"))
			history = v;
		else if (!strcmp(a, "--latency"))
			latency = v;
		else if (!strcmp(a, "--workload")) {
			char *w = strdup(v);
			parse_workloads(w);
			free(w);
		} else if (!strcmp(a, "--threads"))
			opt.threads = atoi(v);
		else if (!strcmp(a, "--watchers"))
			opt.watchers = atoi(v);
		else if (!strcmp(a, "--keys"))
			opt.keys = atoi(v);
		else if (!strcmp(a, "--locks"))
			opt.locks = atoi(v);
		else if (!strcmp(a, "--duration"))
			opt.duration_s = atof(v);
		else if (!strcmp(a, "--final-timeout"))
			opt.final_timeout_s = atoi(v);
		else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--request-timeout-ms"))
			opt.request_timeout_ms = atoi(v);
		else if (!strcmp(a, "--think-ms"))
			opt.think_ms = atoi(v);
		else if (!strcmp(a, "--writes"))
			opt.libmoor_writes = !strcmp(v, "libmoor");
		else
			usage();
	}
	if (!eps || !history || !latency || opt.threads < 1 || opt.threads > MAX_THREADS || opt.keys < 1 ||
	    opt.keys > MAX_KEYS || opt.locks < 1 || opt.watchers < 0 || opt.watchers > MAX_WATCHERS)
		usage();
	if (!opt.w_register && !opt.w_set && !opt.w_lock && !opt.w_watch)
		opt.w_register = 1;
	for (char *save = NULL, *e = strtok_r(eps, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		if (opt.n_endpoints == MOOR_MAX_ENDPOINTS)
			usage();
		opt.endpoints[opt.n_endpoints++] = e;
	}
	if (opt.n_endpoints == 0)
		usage();
	int rc = hist_open(history, latency);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", history, strerror(-rc));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_stop);

	/* Watchers first, from revision 1, so they see every write. */
	struct watcher ws[MAX_WATCHERS];
	int nw = opt.w_watch ? opt.watchers : 0;
	for (int i = 0; i < nw; i++) {
		memset(&ws[i], 0, sizeof ws[i]);
		ws[i].idx = i;
		snprintf(ws[i].id, sizeof ws[i].id, "w%d", i);
		ws[i].c = client_open(i);
		if (watcher_start(&ws[i], 1) != 0) {
			fprintf(stderr, "watch start failed: %s\n", moor_error_detail());
			return 1;
		}
	}

	/* Threads: the workloads share them round-robin. */
	const char *kinds[4];
	void *(*fns[4])(void *);
	int nk = 0;
	if (opt.w_register || (opt.w_watch && !opt.w_set && !opt.w_lock)) {
		kinds[nk] = "register";
		fns[nk++] = register_thread;
	}
	if (opt.w_set) {
		kinds[nk] = "set";
		fns[nk++] = set_thread;
	}
	if (opt.w_lock) {
		kinds[nk] = "lock";
		fns[nk++] = lock_thread;
	}
	struct thread ts[MAX_THREADS];
	int set_thread_idx = -1;
	uint64_t seed = opt.seed;
	for (int i = 0; i < opt.threads; i++) {
		memset(&ts[i], 0, sizeof ts[i]);
		ts[i].idx = i;
		ts[i].process = i;
		ts[i].rng = rng_next(&seed);
		ts[i].c = client_open(i);
		ts[i].raw = raw_open((const char *const *)opt.endpoints, opt.n_endpoints, (size_t)i, opt.request_timeout_ms);
		if (fns[i % nk] == set_thread && set_thread_idx < 0)
			set_thread_idx = i;
		if (pthread_create(&ts[i].tid, NULL, fns[i % nk], &ts[i]) != 0)
			abort();
	}
	uint64_t end_ns = hist_now_ns() + (uint64_t)(opt.duration_s * 1e9);
	while (!atomic_load(&stop_ops) && hist_now_ns() < end_ns)
		sleep_ms(100);
	atomic_store(&stop_ops, 1);
	long total = 0;
	for (int i = 0; i < opt.threads; i++) {
		pthread_join(ts[i].tid, NULL);
		total += ts[i].ops;
	}
	fprintf(stderr, "workload ops done: %ld (%s%s%s)\n", total, kinds[0], nk > 1 ? ",..." : "", "");

	/* Final phase: the harness has healed the cluster by now. */
	int status = 0;
	uint64_t deadline = hist_now_ns() + (uint64_t)opt.final_timeout_s * 1000000000u;
	if (set_thread_idx >= 0) {
		struct thread *t = &ts[set_thread_idx];
		t->process += opt.threads * 1000; /* a process of its own */
		if (set_final_read(t, deadline) != 0) {
			fprintf(stderr, "final read never succeeded\n");
			status = 1;
		}
	}
	if (nw > 0) {
		int64_t rev = current_revision(ts[0].c, deadline);
		if (rev < 0) {
			fprintf(stderr, "final revision never read\n");
			status = 1;
		}
		for (int i = 0; i < nw && rev >= 0; i++) {
			if (watcher_catch_up(&ws[i], rev, deadline) == 0) {
				hist_linef("{\"f\":\"watch\",\"type\":\"end\",\"watch\":\"%s\",\"revision\":%" PRId64 "}", ws[i].id,
				           rev);
			} else {
				fprintf(stderr, "watcher %s did not reach revision %" PRId64 " (at %" PRId64 ")\n", ws[i].id, rev,
				        (int64_t)moor_watch_next_revision(ws[i].w) - 1);
				status = 1;
			}
			fprintf(stderr, "watcher %s: %ld events\n", ws[i].id, ws[i].events);
		}
		for (int i = 0; i < nw; i++)
			if (ws[i].w)
				moor_watch_stop(ws[i].w);
		/* The log: every revision from 1 to rev, by one more watch. */
		if (rev > 0) {
			struct watcher lw;
			memset(&lw, 0, sizeof lw);
			snprintf(lw.id, sizeof lw.id, "log");
			lw.is_log = 1;
			lw.c = ts[0].c;
			if (watcher_start(&lw, 1) != 0 || watcher_catch_up(&lw, rev, deadline) != 0) {
				fprintf(stderr, "log dump did not reach revision %" PRId64 "\n", rev);
				status = 1;
			}
			if (lw.w)
				moor_watch_stop(lw.w);
		}
		for (int i = 0; i < nw; i++)
			moor_client_close(ws[i].c);
	}
	for (int i = 0; i < opt.threads; i++) {
		moor_client_close(ts[i].c);
		raw_close(ts[i].raw);
	}
	hist_close();
	free(eps);
	return status;
}

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
#include "tests/faults/harness/worker.h"

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

struct jc_opts opt = {.threads = 6,
                      .watchers = 3,
                      .keys = 4,
                      .locks = 2,
                      .duration_s = 30,
                      .final_timeout_s = 90,
                      .seed = 1,
                      .request_timeout_ms = 1500};

atomic_int stop_ops;
atomic_llong next_element;

uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: a per-thread stream derived from the seed */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void sleep_ms(int ms)
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

void op_invoke(struct op *o, int process, const char *f, const char *key, const char *fields)
{
	char qk[200];
	o->process = process;
	o->f = f;
	snprintf(o->key, sizeof o->key, "%s", key);
	snprintf(o->fields, sizeof o->fields, "%s", fields);
	o->t_invoke = hist_now_ns();
	hist_linef(
	    "{\"process\":%d,\"type\":\"invoke\",\"f\":\"%s\",\"key\":%s%s%s,\"time_ns\":%" PRIu64
	    "}",
	    process, f, hist_quote(key, strlen(key), qk, sizeof qk), *fields ? "," : "", fields,
	    o->t_invoke);
}

/* type "ok"/"fail"/"info"; more: extra members for the completion only. */
void op_complete(struct op *o, const char *type, const char *more)
{
	char qk[200];
	uint64_t t = hist_now_ns();
	hist_linef(
	    "{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\",\"key\":%s%s%s%s%s,\"time_ns\":%" PRIu64
	    "}",
	    o->process, type, o->f, hist_quote(o->key, strlen(o->key), qk, sizeof qk),
	    *o->fields ? "," : "", o->fields, more && *more ? "," : "", more ? more : "", t);
	hist_latency(o->t_invoke, t, o->f, type);
}

void op_error(struct op *o, const char *type, int rc)
{
	char e[512], more[540];
	snprintf(more, sizeof more, "\"error\":%s", err_json(rc, e, sizeof e));
	op_complete(o, type, more);
}

/* After an indeterminate outcome the process may still have an op in
 * flight: continue as a new process (Jepsen's rule, and the checkers'). */
void retire(struct thread *t)
{
	t->process += opt.threads;
}

/* A write: a put, or a txn putting key=value if cmp holds. Through rawkv
 * (one attempt, the member's answer as it is) or through libmoor. Records
 * the completion of `o`: ok, fail without error (compare lost), fail with
 * error (refused before proposing), info (retires the process). Returns the
 * outcome; *succeeded and *rev are set on RAW_OK. */
enum raw_outcome do_write(struct thread *t, struct op *o, const char *key, const char *value,
                          enum raw_cmp cmp, const char *cmp_key, const char *cmp_value,
                          int64_t cmp_number, bool *succeeded)
{
	char more[600], e[540];
	int64_t rev = 0;
	enum raw_outcome out;
	*succeeded = false;
	if (!opt.libmoor_writes) {
		out = raw_put(t->raw, key, value, cmp, cmp_key, cmp_value, cmp_number, succeeded,
		              &rev);
		if (out != RAW_OK) {
			const char *err = raw_error(t->raw);
			snprintf(more, sizeof more, "\"error\":%s",
			         hist_quote(err, strlen(err), e, sizeof e));
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
			struct moor_cmp mc = {
			    .key = cmp_key, .key_len = strlen(cmp_key), .op = MOOR_CMP_EQUAL};
			if (cmp == RAW_CMP_VALUE) {
				mc.target = MOOR_CMP_VALUE;
				mc.value = cmp_value;
				mc.value_len = strlen(cmp_value);
			} else {
				mc.target = MOOR_CMP_CREATE;
				mc.number = cmp_number;
			}
			if (moor_txn_new(&txn) != 0 || moor_txn_if(txn, &mc) != 0 ||
			    moor_txn_put(txn, MOOR_TXN_THEN, key, strlen(key), value, strlen(value),
			                 NULL) != 0)
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

/* ------------------------------------------------------------------ main */

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: moor-jepsen-client --endpoints URL,URL,... --history FILE --latency FILE\n"
	    "       [--workload register,set,lock,watch] [--threads N] [--watchers N] [--keys N]\n"
	    "       [--locks N] [--duration S] [--final-timeout S] [--seed N] "
	    "[--request-timeout-ms N]\n"
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
	if (!eps || !history || !latency || opt.threads < 1 || opt.threads > MAX_THREADS ||
	    opt.keys < 1 || opt.keys > MAX_KEYS || opt.locks < 1 || opt.watchers < 0 ||
	    opt.watchers > MAX_WATCHERS)
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
		ts[i].raw = raw_open((const char *const *)opt.endpoints, opt.n_endpoints, (size_t)i,
		                     opt.request_timeout_ms);
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
	fprintf(stderr, "workload ops done: %ld (%s%s%s)\n", total, kinds[0], nk > 1 ? ",..." : "",
	        "");

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
				hist_linef("{\"f\":\"watch\",\"type\":\"end\",\"watch\":\"%s\","
				           "\"revision\":%" PRId64 "}",
				           ws[i].id, rev);
			} else {
				fprintf(stderr,
				        "watcher %s did not reach revision %" PRId64 " (at %" PRId64
				        ")\n",
				        ws[i].id, rev,
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
			if (watcher_start(&lw, 1) != 0 ||
			    watcher_catch_up(&lw, rev, deadline) != 0) {
				fprintf(stderr, "log dump did not reach revision %" PRId64 "\n",
				        rev);
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

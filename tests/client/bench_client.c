/*
 * libmoor against a 3-member moord cluster on loopback: latency of
 * sequential puts, throughput of concurrent puts and of linearizable and
 * serializable gets, and how fast a watch delivers a burst of writes.
 * Prints one table; runs under `make bench`, never in `make test`.
 */
#include "client/moor.h"
#include "tests/client/fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREADS 8

static struct fx_cluster fx;
static moor_client *cli;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct job {
	int id, n;
	int kind; /* 0 put, 1 linearizable get, 2 serializable get */
	atomic_int *errors;
};

static void *worker(void *arg)
{
	struct job *j = arg;
	char k[32];

	for (int i = 0; i < j->n; i++) {
		int rc;
		snprintf(k, sizeof k, "bench/%d/%d", j->id, i % 100);
		if (j->kind == 0) {
			rc = moor_put(cli, k, strlen(k), "value-0123456789", 16, NULL, NULL);
		} else {
			struct moor_get_opts o = {.read_mode = j->kind == 2
			                                           ? MOOR_READ_SERIALIZABLE
			                                           : MOOR_READ_LINEARIZABLE};
			struct moor_response *r = NULL;
			rc = moor_get(cli, k, strlen(k), &o, &r);
			moor_response_free(r);
		}
		if (rc)
			atomic_fetch_add(j->errors, 1);
	}
	return NULL;
}

static double run_parallel(int kind, int per_thread, int *errors)
{
	pthread_t th[THREADS];
	struct job jobs[THREADS];
	atomic_int errs = 0;
	uint64_t t0 = mono_us();

	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct job){i, per_thread, kind, &errs};
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	*errors = atomic_load(&errs);
	return (double)THREADS * per_thread / ((double)(mono_us() - t0) / 1e6);
}

struct wcount {
	atomic_long events;
};

static void count_cb(void *ctx, const struct moor_watch_response *r)
{
	struct wcount *w = ctx;
	atomic_fetch_add(&w->events, (long)r->n_events);
}

int main(void)
{
	enum { SEQ = 2000, PER = 500 };
	uint64_t *lat = calloc(SEQ, sizeof *lat);
	int errors;

	if (!lat || fx_cluster_start(&fx, 3) != 0) {
		fprintf(stderr, "bench_client: cannot start a cluster\n");
		fx_cluster_stop(&fx);
		return 1;
	}
	cli = fx_client(&fx, -1, 10000);

	uint64_t t0 = mono_us();
	for (int i = 0; i < SEQ; i++) {
		uint64_t s = mono_us();
		if (moor_put(cli, "bench/seq", 9, "v", 1, NULL, NULL) != 0)
			fprintf(stderr, "put: %s\n", moor_error_detail());
		lat[i] = mono_us() - s;
	}
	double seq_rate = SEQ / ((double)(mono_us() - t0) / 1e6);
	qsort(lat, SEQ, sizeof *lat, cmp_u64);

	printf("%-44s %14s %10s\n", "libmoor against 3 moord members (loopback)", "value",
	       "errors");
	printf("%-44s %12.0f/s %10d\n", "sequential put, 1 thread", seq_rate, 0);
	printf("%-44s %11.2fms %10s\n", "  put latency p50", (double)lat[SEQ / 2] / 1000, "");
	printf("%-44s %11.2fms %10s\n", "  put latency p99", (double)lat[SEQ * 99 / 100] / 1000,
	       "");
	double r = run_parallel(0, PER, &errors);
	printf("%-44s %12.0f/s %10d\n", "put, 8 threads sharing one client", r, errors);
	r = run_parallel(1, PER * 2, &errors);
	printf("%-44s %12.0f/s %10d\n", "linearizable get, 8 threads", r, errors);
	r = run_parallel(2, PER * 2, &errors);
	printf("%-44s %12.0f/s %10d\n", "serializable get, 8 threads", r, errors);

	/* a watch on the prefix, then a burst of puts: events/s delivered */
	struct wcount wc = {0};
	struct moor_watch_opts o = {.range.prefix = true, .cb = count_cb, .cb_ctx = &wc};
	struct moor_response *g = NULL;
	moor_watch *w = NULL;
	moor_get(cli, "bench/", 6, NULL, &g);
	o.start_revision = g->header.revision + 1;
	moor_response_free(g);
	moor_watch_start(cli, "bench/", 6, &o, &w);
	t0 = mono_us();
	run_parallel(0, PER, &errors);
	long want = (long)THREADS * PER - errors;
	uint64_t until = fx_now_ms() + 30000;
	while (atomic_load(&wc.events) < want && fx_now_ms() < until)
		fx_sleep_ms(1);
	double wrate = (double)atomic_load(&wc.events) / ((double)(mono_us() - t0) / 1e6);
	printf("%-44s %12.0f/s %10ld\n", "watch delivery of an 8-thread put burst", wrate,
	       want - atomic_load(&wc.events));
	moor_watch_stop(w);

	moor_client_close(cli);
	fx_cluster_stop(&fx);
	free(lat);
	return 0;
}

/*
 * Shared by the pieces of moor-jepsen-client (worker.c: options, records,
 * the write path and main; workloads.c: registers, sets, locks; watchers.c:
 * watch streams and the log dump). See worker.c for what the program does.
 */
#ifndef MOOR_FAULTS_HARNESS_WORKER_H
#define MOOR_FAULTS_HARNESS_WORKER_H

#include "client/moor.h"
#include "tests/faults/harness/history.h"
#include "tests/faults/harness/rawkv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_THREADS 64
#define MAX_WATCHERS 16
#define MAX_KEYS 64

struct jc_opts {
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
};
extern struct jc_opts opt;
extern atomic_int stop_ops; /* set at the end of the run: threads finish their op and return */
extern atomic_llong next_element; /* the set workload's next unique element */

/* One operation's records. `fields` is extra JSON members (", "-joined,
 * without braces) repeated on the invoke and the completion. */
struct op {
	int process;
	const char *f;
	char key[96];
	char fields[256];
	uint64_t t_invoke;
};

struct thread {
	int idx;
	int process;
	uint64_t rng;
	moor_client *c;
	struct raw_kv *raw;
	pthread_t tid;
	long ops;
};

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

uint64_t rng_next(uint64_t *s);
void sleep_ms(int ms);
void op_invoke(struct op *o, int process, const char *f, const char *key, const char *fields);
void op_complete(struct op *o, const char *type, const char *more);
void op_error(struct op *o, const char *type, int rc);
void retire(struct thread *t);
enum raw_outcome do_write(struct thread *t, struct op *o, const char *key, const char *value,
                          enum raw_cmp cmp, const char *cmp_key, const char *cmp_value,
                          int64_t cmp_number, bool *succeeded);

/* workloads.c: thread bodies (arg: struct thread *) */
void *register_thread(void *arg);
void *set_thread(void *arg);
void *lock_thread(void *arg);
int set_final_read(struct thread *t, uint64_t deadline_ns);

/* watchers.c */
int watcher_start(struct watcher *w, int64_t start);
int watcher_catch_up(struct watcher *w, int64_t rev, uint64_t deadline_ns);
int64_t current_revision(moor_client *c, uint64_t deadline_ns);

#endif

/*
 * A worker thread fed from the loop: jobs go in through a mutex-protected
 * queue, run() executes on the worker, and done() comes back on the loop
 * thread through uv_async, in submission order. The WAL's fsync and the
 * store's apply each run on one of these, so the loop never blocks on disk.
 */
#ifndef MOOR_SERVER_WORKER_H
#define MOOR_SERVER_WORKER_H

#include <pthread.h>
#include <uv.h>

struct srv_job {
	struct srv_job *next;
	void (*run)(struct srv_job *job);  /* on the worker thread */
	void (*done)(struct srv_job *job); /* on the loop thread; may free the job */
};

struct srv_worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct srv_job *in_head, *in_tail;
	struct srv_job *out_head, *out_tail;
	uv_async_t async;
	unsigned queued; /* submitted, not yet done */
	int stopping;
	int started;
	char name[16];
};

/* Starts the thread. 0 or a negative errno. */
int srv_worker_start(struct srv_worker *w, uv_loop_t *loop, const char *name);
/* Queues a job (never blocks). */
void srv_worker_submit(struct srv_worker *w, struct srv_job *job);
/* Runs every queued job, joins the thread, delivers every done(), and
 * closes the async handle (the loop must run on to finish closing). */
void srv_worker_stop(struct srv_worker *w);

#endif

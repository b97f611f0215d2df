/* The loop-fed worker thread (see worker.h). */
#include "server/worker.h"

#include <stdio.h>
#include <string.h>

static void *worker_main(void *arg)
{
	struct srv_worker *w = arg;

	pthread_setname_np(pthread_self(), w->name);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->in_head && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->in_head)
			break;
		struct srv_job *j = w->in_head;
		w->in_head = j->next;
		if (!w->in_head)
			w->in_tail = NULL;
		pthread_mutex_unlock(&w->mu);
		j->next = NULL;
		j->run(j);
		pthread_mutex_lock(&w->mu);
		if (w->out_tail)
			w->out_tail->next = j;
		else
			w->out_head = j;
		w->out_tail = j;
		uv_async_send(&w->async);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void deliver(struct srv_worker *w)
{
	struct srv_job *j;

	pthread_mutex_lock(&w->mu);
	j = w->out_head;
	w->out_head = w->out_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	while (j) {
		struct srv_job *next = j->next;
		w->queued--;
		j->done(j);
		j = next;
	}
}

static void on_async(uv_async_t *a)
{
	deliver(a->data);
}

int srv_worker_start(struct srv_worker *w, uv_loop_t *loop, const char *name)
{
	int rc;

	memset(w, 0, sizeof *w);
	snprintf(w->name, sizeof w->name, "%s", name);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	rc = uv_async_init(loop, &w->async, on_async);
	if (rc)
		return rc;
	w->async.data = w;
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc) {
		uv_close((uv_handle_t *)&w->async, NULL);
		return -rc;
	}
	w->started = 1;
	return 0;
}

void srv_worker_submit(struct srv_worker *w, struct srv_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->in_tail)
		w->in_tail->next = job;
	else
		w->in_head = job;
	w->in_tail = job;
	w->queued++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void srv_worker_stop(struct srv_worker *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	deliver(w);
	uv_close((uv_handle_t *)&w->async, NULL);
	w->started = 0;
}

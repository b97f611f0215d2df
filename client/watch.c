/*
 * Watches: one thread and one long-lived HTTP request per watch.
 *
 * Why a thread per watch and not one shared curl multi loop: a controller
 * holds a handful of watches, each must fail over on its own, and a thread
 * can block on its own back-pressure (a full poll-mode queue stops reading
 * the socket, so the server's bounded buffers, not our memory, absorb a slow
 * reader) without holding up any other watch. Each thread drives its one
 * request through its own curl multi handle so that moor_watch_stop can
 * wake it at once with curl_multi_wakeup.
 *
 * The server reads the whole request body before it answers, so the body
 * is one frame: a WatchRequest with the create request. The answer is a
 * chunked stream of frames (4-byte big-endian length, WatchResponse): first
 * the created response, then events.
 *
 * Exactly once: `next_rev` is the first revision not yet delivered. It is
 * set from the created response (header revision + 1) for a watch from
 * "now", advanced past every delivered event and every progress
 * notification, and on any failure the watch is created again on the next
 * endpoint from `next_rev`. Events below `next_rev` on a new stream are
 * dropped, so nothing repeats; the server's watch from `next_rev` misses
 * nothing, so nothing is lost. A compacted `next_rev` ends the watch with
 * MOOR_ECOMPACTED and the compact revision.
 */
#include "client/internal.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CL_WATCH_BACKOFF_MAX_MS 1000
/* A stream silent this long has its member asked whether it is alive and
 * knows a leader (a frozen or partitioned member sends nothing, and TCP
 * may not say so for minutes). */
#define CL_WATCH_CHECK_MS 2000
#define CL_WATCH_ERRBODY_MAX 4096

enum stream_end { STREAM_STOPPED, STREAM_TERMINAL, STREAM_FAILED };

struct moor_watch {
	moor_client *c;
	Etcdserverpb__WatchCreateRequest create;
	Etcdserverpb__WatchCreateRequest__FilterType filters[2];
	moor_watch_fn cb;
	void *cb_ctx;
	pthread_t thread;
	CURLM *multi;
	atomic_bool stop;
	_Atomic int64_t next_rev;
	/* poll mode */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct moor_watch_response **q;
	size_t q_head, q_len, q_max;
	int pipe_fd[2];
	/* the current stream (watch thread only) */
	struct moor_buf rx;
	long status;
	bool terminal;
	bool retry; /* the server canceled for a reason another member may not have */
	bool progressed;
	uint64_t last_rx_ms;
};

void moor_watch_response_free(struct moor_watch_response *r)
{
	if (!r)
		return;
	free(r->events);
	if (r->priv_)
		protobuf_c_message_free_unpacked(r->priv_, NULL);
	free(r);
}

/* Hands a response to the caller (taking it). Poll mode waits for room. */
static void deliver(struct moor_watch *w, struct moor_watch_response *r)
{
	if (w->cb) {
		w->cb(w->cb_ctx, r);
		moor_watch_response_free(r);
		return;
	}
	pthread_mutex_lock(&w->mu);
	while (w->q_len == w->q_max && !atomic_load(&w->stop))
		pthread_cond_wait(&w->cond, &w->mu);
	if (atomic_load(&w->stop)) {
		pthread_mutex_unlock(&w->mu);
		moor_watch_response_free(r);
		return;
	}
	w->q[(w->q_head + w->q_len) % w->q_max] = r;
	w->q_len++;
	pthread_mutex_unlock(&w->mu);
	{
		char b = 1;
		ssize_t n = write(w->pipe_fd[1], &b, 1);
		(void)n; /* the pipe holds more bytes than the queue holds responses */
	}
}

static void deliver_error(struct moor_watch *w, int err, int64_t compact_rev, const char *why)
{
	struct moor_watch_response *r = calloc(1, sizeof *r);

	cl_log(w->c, MOOR_CLIENT_LOG_WARN, "watch ends: %s%s%s", moor_strerror(err),
	       why ? ": " : "", why ? why : "");
	w->terminal = true;
	if (!r)
		return; /* nothing to say it with; the watch ends all the same */
	r->err = err;
	r->compact_revision = compact_rev;
	r->header.revision = atomic_load(&w->next_rev) - 1;
	deliver(w, r);
}

/* One decoded WatchResponse (taken). */
static void handle(struct moor_watch *w, Etcdserverpb__WatchResponse *m)
{
	int64_t next = atomic_load(&w->next_rev);
	struct moor_watch_response *r;
	size_t n = 0;

	if (m->canceled) {
		if (m->compact_revision > 0)
			deliver_error(w, MOOR_ECOMPACTED, m->compact_revision,
			              "the start revision is compacted");
		else if (m->cancel_reason && strstr(m->cancel_reason, "no leader"))
			w->retry = true;
		else
			deliver_error(w, MOOR_EWATCHCANCELED, 0, m->cancel_reason);
		etcdserverpb__watch_response__free_unpacked(m, NULL);
		return;
	}
	w->progressed = true;
	if (m->created && next == 0 && m->header) {
		next = m->header->revision + 1;
		atomic_store(&w->next_rev, next);
	}
	if (m->n_events == 0) {
		if (!m->created && m->header && m->header->revision + 1 > next) {
			/* a progress notification: everything up to it was sent */
			atomic_store(&w->next_rev, m->header->revision + 1);
			if (w->create.progress_notify && (r = calloc(1, sizeof *r)) != NULL) {
				cl_header(&r->header, m->header);
				r->priv_ = m;
				deliver(w, r);
				return;
			}
		}
		etcdserverpb__watch_response__free_unpacked(m, NULL);
		return;
	}
	r = calloc(1, sizeof *r);
	if (r)
		r->events = calloc(m->n_events, sizeof *r->events);
	if (!r || !r->events) {
		/* Cannot hold it: end this stream; the retry resumes from next. */
		free(r);
		etcdserverpb__watch_response__free_unpacked(m, NULL);
		w->retry = true;
		return;
	}
	for (size_t i = 0; i < m->n_events; i++) {
		Mvccpb__Event *e = m->events[i];
		struct moor_event *out = &r->events[n];

		if (!e->kv || e->kv->mod_revision < next)
			continue; /* delivered before a failover */
		out->type = e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? MOOR_EVENT_DELETE
		                                                         : MOOR_EVENT_PUT;
		cl_kv(&out->kv, e->kv);
		if (e->prev_kv) {
			out->has_prev_kv = true;
			cl_kv(&out->prev_kv, e->prev_kv);
		}
		n++;
	}
	if (n == 0) {
		moor_watch_response_free(r);
		etcdserverpb__watch_response__free_unpacked(m, NULL);
		return;
	}
	r->n_events = n;
	cl_header(&r->header, m->header);
	r->priv_ = m;
	/* events of one revision come together (no fragments are asked for) */
	atomic_store(&w->next_rev, r->events[n - 1].kv.mod_revision + 1);
	deliver(w, r);
}

static size_t stream_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct moor_watch *w = arg;
	size_t off = 0;

	(void)size;
	if (atomic_load(&w->stop) || w->terminal || w->retry)
		return 0;
	w->last_rx_ms = cl_now_ms();
	if (w->status != 200) {
		if (w->rx.len + nmemb <= CL_WATCH_ERRBODY_MAX)
			moor_buf_append(&w->rx, p, nmemb);
		return nmemb;
	}
	if (moor_buf_append(&w->rx, p, nmemb) != 0)
		return 0;
	for (;;) {
		ProtobufCMessage *m = NULL;
		int rc = cl_frame_next(w->rx.data, w->rx.len, &off,
		                       &etcdserverpb__watch_response__descriptor, &m);

		if (rc == 0)
			break;
		if (rc < 0) {
			cl_log(w->c, MOOR_CLIENT_LOG_WARN, "watch: %s", moor_error_detail());
			w->retry = true;
			return 0;
		}
		handle(w, (Etcdserverpb__WatchResponse *)m);
		if (w->terminal || w->retry || atomic_load(&w->stop))
			return 0;
	}
	memmove(w->rx.data, w->rx.data + off, w->rx.len - off);
	w->rx.len -= off;
	return nmemb;
}

static size_t stream_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct moor_watch *w = arg;
	int code;

	(void)size;
	if (nmemb > 12 && strncmp(p, "HTTP/", 5) == 0 && sscanf(p, "HTTP/%*s %d", &code) == 1)
		w->status = code;
	return nmemb;
}

static enum stream_end stream_once(struct moor_watch *w, const char *endpoint)
{
	Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
	struct curl_slist *hdrs = NULL;
	struct moor_buf body;
	enum stream_end end = STREAM_FAILED;
	char url[512];
	CURL *h;
	int running = 1;

	moor_buf_init(&body, NULL);
	w->create.start_revision = atomic_load(&w->next_rev);
	req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	req.create_request = &w->create;
	h = curl_easy_init();
	hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	if (!h || !hdrs || cl_frame_append(&body, &req.base) != 0) {
		cl_log(w->c, MOOR_CLIENT_LOG_WARN, "watch: out of memory");
		goto out;
	}
	snprintf(url, sizeof url, "%s/v3/watch", endpoint);
	cl_easy_setup(w->c, h, url, 0);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, stream_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, w);
	/* a member that vanishes without a FIN is noticed by TCP keep-alive */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
	w->rx.len = 0;
	w->status = 0;
	w->retry = false;
	w->progressed = false;
	curl_multi_add_handle(w->multi, h);
	w->last_rx_ms = cl_now_ms();
	int no_leader = 0;
	while (running && !atomic_load(&w->stop) && !w->retry) {
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		curl_multi_poll(w->multi, NULL, 0, 500, NULL);
		if (cl_now_ms() - w->last_rx_ms >= CL_WATCH_CHECK_MS && !atomic_load(&w->stop)) {
			/* Silent: a member that does not answer in time is left at once;
			 * one without a leader after two checks (an election passes). */
			int t = w->c->request_timeout_ms < CL_WATCH_CHECK_MS
			            ? w->c->request_timeout_ms
			            : CL_WATCH_CHECK_MS;
			int lead = cl_endpoint_has_leader(w->c, endpoint, t);
			no_leader = lead == 1 ? 0 : lead == 0 ? no_leader + 1 : 2;
			w->last_rx_ms = cl_now_ms();
			if (no_leader >= 2) {
				cl_log(w->c, MOOR_CLIENT_LOG_INFO,
				       "watch: %s is unresponsive or has no leader", endpoint);
				w->retry = true;
			}
		}
	}
	curl_multi_remove_handle(w->multi, h);
	if (atomic_load(&w->stop))
		end = STREAM_STOPPED;
	else if (w->terminal)
		end = STREAM_TERMINAL;
	else if (w->status != 200 && w->status != 0) {
		char msg[256];
		int rc =
		    cl_map_error(w->status, (const char *)w->rx.data, w->rx.len, msg, sizeof msg);

		if (cl_err_not_applied(rc) || cl_err_rotate(rc)) {
			cl_log(w->c, MOOR_CLIENT_LOG_INFO, "watch: %s: %s; trying another member",
			       endpoint, msg);
		} else {
			deliver_error(w, rc, 0, msg);
			end = STREAM_TERMINAL;
		}
	} else {
		cl_log(w->c, MOOR_CLIENT_LOG_INFO,
		       "watch: stream from %s ended; resuming at revision %lld", endpoint,
		       (long long)atomic_load(&w->next_rev));
	}
out:
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	moor_buf_free(&body);
	return end;
}

static void *watch_main(void *arg)
{
	struct moor_watch *w = arg;
	int backoff = CL_BACKOFF_MIN_MS;

	while (!atomic_load(&w->stop)) {
		char ep[256];
		size_t idx;
		enum stream_end end;

		cl_endpoint_current(w->c, ep, sizeof ep, &idx);
		end = stream_once(w, ep);
		if (end != STREAM_FAILED)
			break;
		cl_endpoint_rotate(w->c, idx);
		if (w->progressed)
			backoff = CL_BACKOFF_MIN_MS;
		/* an empty multi handle: waits for the time or a wakeup */
		curl_multi_poll(w->multi, NULL, 0, backoff, NULL);
		backoff =
		    backoff * 2 > CL_WATCH_BACKOFF_MAX_MS ? CL_WATCH_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

static int bin_dup(ProtobufCBinaryData *d, const void *p, size_t len)
{
	d->data = malloc(len ? len : 1);
	if (!d->data)
		return MOOR_ENOMEM;
	if (len)
		memcpy(d->data, p, len);
	d->len = len;
	return 0;
}

static void watch_free(struct moor_watch *w)
{
	if (w->q) {
		for (size_t i = 0; i < w->q_len; i++)
			moor_watch_response_free(w->q[(w->q_head + i) % w->q_max]);
		free(w->q);
	}
	if (w->pipe_fd[0] >= 0)
		close(w->pipe_fd[0]);
	if (w->pipe_fd[1] >= 0)
		close(w->pipe_fd[1]);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	free(w->create.key.data);
	free(w->create.range_end.data);
	moor_buf_free(&w->rx);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int moor_watch_start(moor_client *c, const void *key, size_t key_len,
                     const struct moor_watch_opts *opts, moor_watch **out)
{
	static const struct moor_watch_opts none;
	Etcdserverpb__RangeRequest range;
	struct moor_watch *w;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &none;
	if (opts->start_revision < 0)
		return cl_set_error(MOOR_EINVAL, "negative start revision");
	w = calloc(1, sizeof *w);
	if (!w)
		return cl_set_error(MOOR_ENOMEM, "out of memory");
	w->pipe_fd[0] = w->pipe_fd[1] = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	moor_buf_init(&w->rx, NULL);
	w->c = c;
	w->cb = opts->cb;
	w->cb_ctx = opts->cb_ctx;
	atomic_init(&w->stop, false);
	atomic_init(&w->next_rev, opts->start_revision);
	etcdserverpb__watch_create_request__init(&w->create);
	/* the key and range end are built the way a get builds them */
	{
		struct moor_get_opts go = {.range = opts->range};
		rc = cl_range_fill(&range, key, key_len, &go, false);
		if (rc == 0)
			rc = bin_dup(&w->create.key, range.key.data, range.key.len);
		if (rc == 0 && range.range_end.data)
			rc = bin_dup(&w->create.range_end, range.range_end.data,
			             range.range_end.len);
		cl_range_clear(&range);
		if (rc)
			goto err;
	}
	w->create.prev_kv = opts->prev_kv;
	w->create.progress_notify = opts->progress_notify;
	if (opts->no_put)
		w->filters[w->create.n_filters++] =
		    ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT;
	if (opts->no_delete)
		w->filters[w->create.n_filters++] =
		    ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE;
	w->create.filters = w->filters;
	if (!w->cb) {
		w->q_max = opts->queue_max ? opts->queue_max : MOOR_WATCH_QUEUE_DEFAULT;
		/* one byte in the pipe per queued response: the pipe must hold them all */
		if (w->q_max > MOOR_WATCH_QUEUE_MAX)
			w->q_max = MOOR_WATCH_QUEUE_MAX;
		w->q = calloc(w->q_max, sizeof *w->q);
		if (!w->q) {
			rc = MOOR_ENOMEM;
			goto err;
		}
		if (pipe2(w->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
			rc = cl_set_error(MOOR_EUNAVAILABLE, "pipe2 failed");
			goto err;
		}
	}
	w->multi = curl_multi_init();
	if (!w->multi) {
		rc = MOOR_ENOMEM;
		goto err;
	}
	rc = pthread_create(&w->thread, NULL, watch_main, w);
	if (rc) {
		rc = cl_set_error(-rc, "pthread_create failed");
		goto err;
	}
	*out = w;
	return 0;
err:
	watch_free(w);
	return rc == MOOR_ENOMEM ? cl_set_error(rc, "out of memory") : rc;
}

int moor_watch_fd(moor_watch *w)
{
	return w->pipe_fd[0];
}

int64_t moor_watch_next_revision(moor_watch *w)
{
	return atomic_load(&w->next_rev);
}

int moor_watch_next(moor_watch *w, int timeout_ms, struct moor_watch_response **out)
{
	uint64_t deadline = timeout_ms > 0 ? cl_now_ms() + (uint64_t)timeout_ms : 0;

	*out = NULL;
	if (w->cb)
		return cl_set_error(MOOR_EINVAL, "a watch with a callback has no queue");
	for (;;) {
		struct pollfd pfd = {.fd = w->pipe_fd[0], .events = POLLIN};
		int wait_ms;

		pthread_mutex_lock(&w->mu);
		if (w->q_len > 0) {
			char b;
			ssize_t n;

			*out = w->q[w->q_head];
			w->q_head = (w->q_head + 1) % w->q_max;
			w->q_len--;
			pthread_cond_broadcast(&w->cond);
			pthread_mutex_unlock(&w->mu);
			n = read(w->pipe_fd[0], &b, 1); /* one byte per response */
			(void)n;
			return 0;
		}
		pthread_mutex_unlock(&w->mu);
		if (timeout_ms == 0)
			return cl_set_error(MOOR_ETIMEOUT, "no watch response waiting");
		if (timeout_ms < 0) {
			wait_ms = -1;
		} else {
			uint64_t now = cl_now_ms();
			if (now >= deadline)
				return cl_set_error(MOOR_ETIMEOUT, "no watch response within %d ms",
				                    timeout_ms);
			wait_ms = (int)(deadline - now);
		}
		poll(&pfd, 1, wait_ms);
	}
}

void moor_watch_stop(moor_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_mutex_lock(&w->mu);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	watch_free(w);
}

/*
 * Watches of moor-jepsen-client: watchers over the whole key space recorded
 * as streams for the watch checker, restarted from last + 1 if a stream ends
 * with an error, and the log dump (one more watch from revision 1) that gives
 * the checker every write of every revision.
 */
#include "tests/faults/harness/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- watches */

static void watch_record_start(struct watcher *w, int64_t start)
{
	hist_linef(
	    "{\"f\":\"watch\",\"type\":\"start\",\"watch\":\"%s\",\"key\":\"\",\"prefix\":true,"
	    "\"start_revision\":%" PRId64 ",\"time_ns\":%" PRIu64 "}",
	    w->id, start, hist_now_ns());
}

static void watch_cb(void *ctx, const struct moor_watch_response *r)
{
	struct watcher *w = ctx;
	if (r->err != 0) {
		if (r->err == MOOR_ECOMPACTED && !w->is_log)
			hist_linef("{\"f\":\"watch\",\"type\":\"compacted\",\"watch\":\"%s\","
			           "\"compact_revision\":%" PRId64 "}",
			           w->id, r->compact_revision);
		atomic_store(&w->ended_err, r->err);
		return;
	}
	if (r->n_events == 0) {
		if (!w->is_log && r->header.revision > 0)
			hist_linef("{\"f\":\"watch\",\"type\":\"progress\",\"watch\":\"%s\","
			           "\"revision\":%" PRId64 "}",
			           w->id, r->header.revision);
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
			hist_linef("{\"type\":\"log\",\"revision\":%" PRId64
			           ",\"key\":%s,\"op\":\"%s\",\"value\":%s}",
			           e->kv.mod_revision, qk, op,
			           e->type == MOOR_EVENT_PUT ? vb : "null");
		else
			len += (size_t)snprintf(buf + len, cap - len,
			                        "%s{\"revision\":%" PRId64
			                        ",\"key\":%s,\"op\":\"%s\",\"value\":%s}",
			                        i ? "," : "", e->kv.mod_revision, qk, op,
			                        e->type == MOOR_EVENT_PUT ? vb : "null");
		atomic_store(&w->last_rev, e->kv.mod_revision);
	}
	if (!w->is_log)
		hist_linef("{\"f\":\"watch\",\"type\":\"event\",\"watch\":\"%s\",\"events\":[%s],"
		           "\"time_ns\":%" PRIu64 "}",
		           w->id, buf, hist_now_ns());
	w->events += (long)r->n_events;
	free(buf);
}

int watcher_start(struct watcher *w, int64_t start)
{
	struct moor_watch_opts wo = {
	    .range.from_key = true, .start_revision = start, .cb = watch_cb, .cb_ctx = w};
	if (!w->is_log)
		watch_record_start(w, start);
	atomic_store(&w->ended_err, 0);
	return moor_watch_start(w->c, "", 0, &wo, &w->w);
}

/* Waits until the watcher has delivered revision `rev`; restarts it from
 * last + 1 if it ended with an error other than compaction. */
int watcher_catch_up(struct watcher *w, int64_t rev, uint64_t deadline_ns)
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
int64_t current_revision(moor_client *c, uint64_t deadline_ns)
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

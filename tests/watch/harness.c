/* Fixtures of the watch tests (see harness.h). cmocka asserts throughout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/watch/harness.h"

#include <string.h>

static void on_wakeup(void *ctx)
{
	((struct th *)ctx)->wakeups++;
}

void th_init(struct th *t, const struct watch_hub_config *cfg)
{
	memset(t, 0, sizeof *t);
	memstore_init(&t->ms);
	if (cfg)
		t->cfg = *cfg;
	t->cfg.store = memstore_reader(&t->ms);
	t->cfg.revision = t->ms.rev;
	t->cfg.wakeup = on_wakeup;
	t->cfg.wakeup_ctx = t;
	t->applied = t->ms.rev;
	t->ms.applied_rev = &t->applied;
	assert_int_equal(watch_hub_new(&t->cfg, &t->hub), 0);
}

void th_fini(struct th *t)
{
	watch_hub_free(t->hub);
	assert_int_equal(t->ms.live_batches, 0);
	memstore_free(&t->ms);
}

void th_apply_to(struct th *t, int64_t rev)
{
	struct watch_batch *b;

	if (rev <= t->applied)
		return;
	b = memstore_batch(&t->ms, t->applied + 1, rev);
	t->applied = rev;
	if (b)
		assert_int_equal(watch_hub_apply(t->hub, b), 0);
	else
		assert_int_equal(watch_hub_set_revision(t->hub, rev), 0);
	assert_int_equal(watch_hub_revision(t->hub), rev);
}

void th_apply(struct th *t)
{
	th_apply_to(t, t->ms.rev);
}

int64_t th_put(struct th *t, const char *key, const char *val)
{
	int64_t rev = memstore_put(&t->ms, key, val);

	th_apply(t);
	return rev;
}

int64_t th_del(struct th *t, const char *key)
{
	int64_t rev = memstore_del(&t->ms, key);

	th_apply(t);
	return rev;
}

void th_sync(struct th *t)
{
	int rc;

	while ((rc = watch_hub_sync(t->hub, 1000)) == 1)
		;
	assert_int_equal(rc, 0);
}

static void on_notify(struct watch_stream *s, void *ctx)
{
	struct th_stream *ts = ctx;

	assert_ptr_equal(ts->s, s);
	ts->notifies++;
}

void th_stream_open(struct th *t, struct th_stream *ts)
{
	struct watch_stream_config c = {on_notify, ts};

	memset(ts, 0, sizeof *ts);
	assert_int_equal(watch_stream_open(t->hub, &c, &ts->s), 0);
}

int64_t th_watch_req(struct th_stream *ts, const struct watch_create *req)
{
	int64_t id = -5, rev = -5;

	assert_int_equal(watch_stream_watch(ts->s, req, &id, &rev), 0);
	assert_true(id >= 0);
	assert_true(rev >= 0);
	return id;
}

int64_t th_watch(struct th_stream *ts, const char *key, const char *end, int64_t start_rev)
{
	struct watch_create req = {0};

	req.key = (const uint8_t *)key;
	req.key_len = strlen(key);
	if (end) {
		req.range_end = (const uint8_t *)end;
		req.range_end_len = end[0] ? strlen(end) : 1; /* "" means "\0" */
	}
	req.start_rev = start_rev;
	req.watch_id = WATCH_AUTO_ID;
	return th_watch_req(ts, &req);
}

static void copy_str(char *dst, size_t cap, const ProtobufCBinaryData *b)
{
	size_t n = b->len < cap - 1 ? b->len : cap - 1;

	if (n)
		memcpy(dst, b->data, n);
	dst[n] = '\0';
}

int th_next(struct th_stream *ts, struct got *g)
{
	struct watch_response r;
	int rc = watch_stream_next(ts->s, &r);

	assert_true(rc == 0 || rc == 1);
	memset(g, 0, sizeof *g);
	if (rc == 0)
		return 0;
	g->id = r.watch_id;
	g->rev = r.revision;
	g->compact = r.compact_revision;
	g->canceled = r.canceled;
	g->fragment = r.fragment;
	g->progress = r.progress;
	g->n = r.n_events;
	assert_true(r.n_events <= 64);
	for (size_t i = 0; i < r.n_events; i++) {
		const Mvccpb__Event *ev = r.events[i];
		g->ev[i].rev = ev->kv->mod_revision;
		g->ev[i].type = ev->type;
		copy_str(g->ev[i].key, sizeof g->ev[i].key, &ev->kv->key);
		copy_str(g->ev[i].val, sizeof g->ev[i].val, &ev->kv->value);
		g->ev[i].has_prev = ev->prev_kv != NULL;
		if (ev->prev_kv)
			copy_str(g->ev[i].prev_val, sizeof g->ev[i].prev_val, &ev->prev_kv->value);
	}
	watch_response_release(&r);
	return 1;
}

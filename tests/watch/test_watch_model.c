/*
 * The watch hub checked against a model, under random and exhaustive
 * schedules.
 *
 * The memstore's log is the model's history. Every watcher the test creates
 * gets a model record: its range, filters and start revision, and its
 * position in the history. Every response pulled is checked against it:
 *   - each event is the next matching change of the history (so: in order,
 *     no gap, no duplicate), with the right value and prev_kv;
 *   - a response ends at a revision boundary unless it is a fragment, and
 *     fragments come only to watchers that asked, one revision at a time;
 *   - the revision a response claims is reached: nothing matching at or
 *     below it is still owed (for progress notifications too, and for the
 *     stream's requested progress, for every watcher of the stream);
 *   - a compacted response names a compact revision the store really had,
 *     and nothing follows it.
 * At the end everything is applied, synced and drained, and every live
 * watcher must have received its whole history (nothing lost at the tail).
 *
 * Two drivers: seeded random runs (writes, applies with the store running
 * ahead of the hub, syncs, pulls by slow and fast consumers, creates at
 * past, present, future and compacted revisions, cancels, compactions,
 * progress), and every schedule of a few writes, applies, one-event syncs
 * and pulls around watchers that start in the past: the catch-up to live
 * hand-over, exhaustively.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "tests/watch/memstore.h"
#include "watch/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MOOR_SAN
#define SCALE 4
#else
#define SCALE 1
#endif

#define MAX_STREAMS 4
#define MAX_WATCHERS 256

struct mw {
	int stream;
	int64_t id;
	bool alive;
	uint8_t key[8], end[8];
	size_t key_len, end_len;
	bool end_inf, prev_kv, no_put, no_delete, fragment;
	int64_t start;
	size_t pos;       /* next history record to consider */
	int64_t frag_rev; /* inside a fragmented revision */
	uint64_t received;
};

struct model {
	struct memstore ms;
	struct watch_hub *hub;
	int64_t applied;
	struct watch_stream *streams[MAX_STREAMS];
	int pull_pct[MAX_STREAMS]; /* slow consumers pull rarely */
	struct mw w[MAX_WATCHERS];
	int nw;
	uint64_t rng;
	uint64_t seed;
	/* what was exercised, to prove the runs are not vacuous */
	uint64_t events, progress, compacted, fragments;
	uint64_t trace; /* a hash of every response, in order */
	/* An allocator that fails fail_pct% of calls, drawn from its own rng. */
	struct {
		struct moor_alloc a;
		uint64_t rng;
		int fail_pct;
		long live;
		uint64_t failures;
	} fl;
};

static void *fl_malloc(void *ctx, size_t n)
{
	struct model *m = ctx;
	void *p;

	m->fl.rng = m->fl.rng * 6364136223846793005ull + 1442695040888963407ull;
	if ((int)((m->fl.rng >> 33) % 100) < m->fl.fail_pct) {
		m->fl.failures++;
		return NULL;
	}
	p = malloc(n ? n : 1);
	m->fl.live += p != NULL;
	return p;
}

static void *fl_realloc(void *ctx, void *old, size_t n)
{
	struct model *m = ctx;
	void *p;

	if (!old)
		return fl_malloc(ctx, n);
	m->fl.rng = m->fl.rng * 6364136223846793005ull + 1442695040888963407ull;
	if ((int)((m->fl.rng >> 33) % 100) < m->fl.fail_pct) {
		m->fl.failures++;
		return NULL;
	}
	p = realloc(old, n ? n : 1);
	return p;
}

static void fl_free(void *ctx, void *p)
{
	struct model *m = ctx;

	m->fl.live -= p != NULL;
	free(p);
}

static uint64_t rnd(struct model *m)
{
	uint64_t x = m->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	m->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t rnd_below(struct model *m, uint64_t n)
{
	return n ? rnd(m) % n : 0;
}

#define CHECK(m, cond)                                                             \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "seed %llu: check failed: %s (line %d)\n", \
			        (unsigned long long)(m)->seed, #cond, __LINE__);   \
			fail();                                                    \
		}                                                                  \
	} while (0)

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	return c ? c : (alen < blen ? -1 : alen > blen);
}

static bool rec_matches(const struct model *m, const struct mw *w, const struct memstore_rec *r)
{
	const uint8_t *k = m->ms.keys[r->key_id];
	size_t kl = m->ms.key_lens[r->key_id];
	int c;

	if (r->rev < w->start)
		return false;
	if (r->type == MVCCPB__EVENT__EVENT_TYPE__PUT ? w->no_put : w->no_delete)
		return false;
	c = key_cmp(k, kl, w->key, w->key_len);
	if (!w->end_inf && w->end_len == 0)
		return c == 0;
	return c >= 0 && (w->end_inf || key_cmp(k, kl, w->end, w->end_len) < 0);
}

/* The index of the next record w must receive, or ms.n. */
static size_t next_expected(const struct model *m, const struct mw *w)
{
	size_t i = w->pos;

	while (i < m->ms.n && !rec_matches(m, w, &m->ms.recs[i]))
		i++;
	return i;
}

static int64_t next_expected_rev(const struct model *m, const struct mw *w)
{
	size_t i = next_expected(m, w);

	return i < m->ms.n ? m->ms.recs[i].rev : INT64_MAX;
}

static bool bin_eq(const ProtobufCBinaryData *b, const uint8_t *p, size_t n)
{
	return b->len == n && (n == 0 || !memcmp(b->data, p, n));
}

static void check_event(struct model *m, struct mw *w, const Mvccpb__Event *ev)
{
	size_t i = next_expected(m, w);
	const struct memstore_rec *r, *p = NULL;

	CHECK(m, i < m->ms.n); /* no event beyond the history */
	r = &m->ms.recs[i];
	CHECK(m, ev->kv->mod_revision == r->rev);
	CHECK(m, (int)ev->type == r->type);
	CHECK(m, bin_eq(&ev->kv->key, m->ms.keys[r->key_id], m->ms.key_lens[r->key_id]));
	if (r->type == MVCCPB__EVENT__EVENT_TYPE__PUT) {
		CHECK(m, bin_eq(&ev->kv->value, m->ms.vals + r->val_off, r->val_len));
		CHECK(m, ev->kv->version == r->version);
		CHECK(m, ev->kv->create_revision == r->create_rev);
	}
	if (r->prev >= 0 && m->ms.recs[r->prev].type == MVCCPB__EVENT__EVENT_TYPE__PUT)
		p = &m->ms.recs[r->prev];
	if (!w->prev_kv) {
		CHECK(m, ev->prev_kv == NULL);
	} else if (ev->prev_kv) {
		CHECK(m, p != NULL);
		CHECK(m, ev->prev_kv->mod_revision == p->rev);
		CHECK(m, bin_eq(&ev->prev_kv->value, m->ms.vals + p->val_off, p->val_len));
	} else {
		/* Omitted only when there was none or it was compacted. */
		CHECK(m, p == NULL || r->rev - 1 < m->ms.compact_rev);
	}
	w->pos = i + 1;
	w->received++;
	m->events++;
}

static struct mw *find_mw(struct model *m, int stream, int64_t id)
{
	for (int i = 0; i < m->nw; i++)
		if (m->w[i].alive && m->w[i].stream == stream && m->w[i].id == id)
			return &m->w[i];
	return NULL;
}

static void check_response(struct model *m, int si, const struct watch_response *r)
{
	struct mw *w;

	/* Fragments of a revision are consecutive on the stream (etcd's client
	 * merges them until fragment is clear): nothing else in between. */
	for (int i = 0; i < m->nw; i++)
		if (m->w[i].alive && m->w[i].stream == si && m->w[i].frag_rev)
			CHECK(m, r->watch_id == m->w[i].id);

	if (r->watch_id == -1) {
		CHECK(m, r->progress && r->n_events == 0);
		CHECK(m, r->revision <= watch_hub_revision(m->hub));
		for (int i = 0; i < m->nw; i++)
			if (m->w[i].alive && m->w[i].stream == si)
				CHECK(m, next_expected_rev(m, &m->w[i]) > r->revision &&
				             m->w[i].frag_rev == 0);
		m->progress++;
		return;
	}
	w = find_mw(m, si, r->watch_id);
	CHECK(m, w != NULL); /* nothing for unknown, cancelled or ended watchers */
	if (r->canceled) {
		CHECK(m, r->compact_revision > 0 && r->compact_revision <= m->ms.compact_rev);
		CHECK(m, r->n_events == 0 && w->frag_rev == 0);
		/* It was behind the compact revision. */
		CHECK(m, w->pos == 0 || m->ms.recs[w->pos - 1].rev < r->compact_revision);
		w->alive = false;
		m->compacted++;
		return;
	}
	if (r->progress) {
		CHECK(m, r->n_events == 0 && w->frag_rev == 0);
		CHECK(m, next_expected_rev(m, w) > r->revision);
		m->progress++;
		return;
	}
	CHECK(m, r->n_events > 0);
	if (w->frag_rev)
		CHECK(m, r->events[0]->kv->mod_revision == w->frag_rev);
	for (size_t i = 0; i < r->n_events; i++)
		check_event(m, w, r->events[i]);
	if (r->fragment) {
		int64_t rev = r->events[0]->kv->mod_revision;
		CHECK(m, w->fragment);
		CHECK(m, r->events[r->n_events - 1]->kv->mod_revision == rev);
		CHECK(m, next_expected_rev(m, w) == rev); /* more of it follows */
		w->frag_rev = rev;
		m->fragments++;
	} else {
		/* Whole revisions: nothing of the last one is left. */
		CHECK(m, next_expected_rev(m, w) > r->events[r->n_events - 1]->kv->mod_revision);
		CHECK(m, next_expected_rev(m, w) > r->revision);
		CHECK(m, r->revision <= watch_hub_revision(m->hub));
		w->frag_rev = 0;
	}
}

static int pull(struct model *m, int si)
{
	struct watch_response r;
	int rc;

	if (!m->streams[si])
		return 0;
	rc = watch_stream_next(m->streams[si], &r);
	if (rc == MOOR_ENOMEM && m->fl.fail_pct)
		return 0;
	CHECK(m, rc == 0 || rc == 1);
	if (rc == 1) {
		uint64_t h = m->trace ^ ((uint64_t)si << 56) ^ (uint64_t)r.watch_id;
		h = (h ^ (uint64_t)r.revision) * 0x100000001B3ull;
		h = (h ^ r.n_events ^ (uint64_t)r.fragment << 40 ^ (uint64_t)r.canceled << 41 ^
		     (uint64_t)r.progress << 42) *
		    0x100000001B3ull;
		for (size_t i = 0; i < r.n_events; i++)
			h = (h ^ (uint64_t)r.events[i]->kv->mod_revision) * 0x100000001B3ull;
		m->trace = h;
		check_response(m, si, &r);
		watch_response_release(&r);
	}
	return rc;
}

static void apply_to(struct model *m, int64_t rev)
{
	struct watch_batch *b;

	if (rev <= m->applied)
		return;
	b = memstore_batch(&m->ms, m->applied + 1, rev);
	m->applied = rev;
	CHECK(m, b != NULL);
	CHECK(m, watch_hub_apply(m->hub, b) == 0);
}

static const char *const keyspace[] = {"a", "ab", "abc", "abd", "b", "ba", "bb", "c", "d", "\xff"};
#define NKEYS (sizeof keyspace / sizeof *keyspace)

static void random_write(struct model *m)
{
	struct memstore_op ops[3];
	char vals[3][8];
	size_t n = 1 + rnd_below(m, 3), used = 0;

	for (size_t i = 0; i < n; i++) {
		const char *k = keyspace[rnd_below(m, NKEYS)];
		bool dup = false;
		for (size_t j = 0; j < used; j++)
			dup |= ops[j].key == k;
		if (dup)
			continue;
		snprintf(vals[used], sizeof vals[used], "%u", (unsigned)rnd_below(m, 100000));
		ops[used] = (struct memstore_op){rnd_below(m, 4) == 0, k, strlen(k), vals[used],
		                                 strlen(vals[used])};
		used++;
	}
	memstore_txn(&m->ms, ops, used);
}

static void add_watcher(struct model *m, int si, const struct watch_create *req, struct mw *proto)
{
	int64_t id, rev;
	int rc;
	struct mw *w;

	if (!m->streams[si] || m->nw == MAX_WATCHERS)
		return;
	rc = watch_stream_watch(m->streams[si], req, &id, &rev);
	if (rc == MOOR_EEXIST) {
		CHECK(m, find_mw(m, si, req->watch_id) != NULL);
		return;
	}
	if (rc == MOOR_ENOMEM && m->fl.fail_pct)
		return;
	CHECK(m, rc == 0);
	CHECK(m, rev == watch_hub_revision(m->hub));
	CHECK(m, find_mw(m, si, id) == NULL);
	w = &m->w[m->nw++];
	*w = *proto;
	w->stream = si;
	w->id = id;
	w->alive = true;
	w->start = req->start_rev ? req->start_rev : rev + 1;
	w->prev_kv = req->prev_kv;
	w->no_put = req->no_put;
	w->no_delete = req->no_delete;
	w->fragment = req->fragment;
	w->pos = 0;
}

static void random_watcher(struct model *m)
{
	struct watch_create req = {0};
	struct mw proto = {0};
	int si = (int)rnd_below(m, MAX_STREAMS);
	const char *k = keyspace[rnd_below(m, NKEYS)];
	int64_t hub_rev = watch_hub_revision(m->hub);

	proto.key_len = strlen(k);
	memcpy(proto.key, k, proto.key_len);
	switch (rnd_below(m, 5)) {
	case 0: /* single key */
		break;
	case 1: /* prefix */
		proto.end_len = watch_prefix_end(proto.key, proto.key_len, proto.end);
		proto.end_inf = proto.end_len == 1 && proto.end[0] == 0;
		break;
	case 2: { /* range */
		const char *e = keyspace[rnd_below(m, NKEYS)];
		if (key_cmp((const uint8_t *)e, strlen(e), proto.key, proto.key_len) <= 0)
			return;
		proto.end_len = strlen(e);
		memcpy(proto.end, e, proto.end_len);
		break;
	}
	case 3: /* from key */
		proto.end_inf = true;
		break;
	default: /* everything */
		proto.key_len = 0;
		proto.end_inf = true;
		break;
	}
	req.key = proto.key;
	req.key_len = proto.key_len;
	if (proto.key_len == 0) {
		proto.key[0] = 0; /* an empty key is "\0" */
		proto.key_len = 1;
	}
	if (proto.end_inf) {
		static const uint8_t zero = 0;
		req.range_end = &zero;
		req.range_end_len = 1;
		proto.end_len = 0;
	} else {
		req.range_end = proto.end;
		req.range_end_len = proto.end_len;
	}
	switch (rnd_below(m, 6)) {
	case 0:
		req.start_rev = 0;
		break;
	case 1:
		req.start_rev = hub_rev + 1 + (int64_t)rnd_below(m, 3); /* future */
		break;
	case 2:
		req.start_rev = m->ms.compact_rev
		                    ? (int64_t)rnd_below(m, (uint64_t)m->ms.compact_rev) + 1
		                    : 1; /* compacted, mostly */
		break;
	default:
		req.start_rev = 1 + (int64_t)rnd_below(m, (uint64_t)hub_rev);
		break;
	}
	req.watch_id = rnd_below(m, 4) == 0 ? (int64_t)rnd_below(m, 8) : WATCH_AUTO_ID;
	req.prev_kv = rnd_below(m, 3) == 0;
	req.no_put = rnd_below(m, 8) == 0;
	req.no_delete = !req.no_put && rnd_below(m, 8) == 0;
	req.progress_notify = rnd_below(m, 2) == 0;
	req.fragment = rnd_below(m, 2) == 0;
	add_watcher(m, si, &req, &proto);
}

static void random_cancel(struct model *m)
{
	int n = 0, pick;

	for (int i = 0; i < m->nw; i++)
		n += m->w[i].alive;
	if (!n)
		return;
	pick = (int)rnd_below(m, (uint64_t)n);
	for (int i = 0; i < m->nw; i++) {
		if (m->w[i].alive && pick-- == 0) {
			CHECK(m, watch_stream_cancel(m->streams[m->w[i].stream], m->w[i].id) == 0);
			m->w[i].alive = false;
			return;
		}
	}
}

static void close_stream(struct model *m, int si)
{
	watch_stream_close(m->streams[si]);
	m->streams[si] = NULL;
	for (int i = 0; i < m->nw; i++)
		if (m->w[i].stream == si)
			m->w[i].alive = false;
}

static void open_stream(struct model *m, int si)
{
	int rc = watch_stream_open(m->hub, NULL, &m->streams[si]);

	if (rc == MOOR_ENOMEM && m->fl.fail_pct) {
		m->streams[si] = NULL;
		return;
	}
	CHECK(m, rc == 0);
	m->pull_pct[si] = rnd_below(m, 3) == 0 ? 5 : 60;
}

static void model_init(struct model *m, uint64_t seed, const struct watch_hub_config *cfg,
                       int fail_pct)
{
	struct watch_hub_config c = *cfg;

	memset(m, 0, sizeof *m);
	m->fl.a = (struct moor_alloc){fl_malloc, fl_realloc, fl_free, m};
	m->fl.rng = seed;
	c.alloc = &m->fl.a;
	m->seed = seed;
	m->rng = seed * 0x9E3779B97F4A7C15ull + 1;
	memstore_init(&m->ms);
	c.store = memstore_reader(&m->ms);
	c.revision = m->ms.rev;
	c.seed = seed;
	m->applied = m->ms.rev;
	m->ms.applied_rev = &m->applied;
	CHECK(m, watch_hub_new(&c, &m->hub) == 0);
	m->fl.fail_pct = fail_pct;
}

/* Apply, sync and drain everything; every live watcher has all it wanted. */
static void model_finish(struct model *m)
{
	int rc, idle = 0;

	m->fl.fail_pct = 0; /* memory is back: everything must get through */
	for (int si = 0; si < MAX_STREAMS; si++)
		if (!m->streams[si])
			open_stream(m, si);
	apply_to(m, m->ms.rev);
	while (idle < 2) {
		bool any = false;
		while ((rc = watch_hub_sync(m->hub, 1000)) == 1)
			;
		CHECK(m, rc == 0);
		for (int si = 0; si < MAX_STREAMS; si++)
			while (pull(m, si))
				any = true;
		idle = any ? 0 : idle + 1;
	}
	for (int i = 0; i < m->nw; i++)
		if (m->w[i].alive)
			CHECK(m, next_expected(m, &m->w[i]) == m->ms.n && m->w[i].frag_rev == 0);
	watch_hub_free(m->hub);
	CHECK(m, m->ms.live_batches == 0);
	CHECK(m, m->fl.live == 0);
	memstore_free(&m->ms);
}

/* Memory stays bounded: a watcher queues at most its limit plus one
 * revision (at most 3 events here), a stream its limit plus one revision
 * per watcher. */
static void check_bounded(struct model *m, const struct watch_hub_config *cfg)
{
	struct watch_hub_stats st;
	uint64_t per_watcher =
	    (cfg->max_pending_events ? cfg->max_pending_events : WATCH_MAX_PENDING_EVENTS) + 3;
	uint64_t bound = 0;

	watch_hub_stats(m->hub, &st);
	for (int si = 0; si < MAX_STREAMS; si++) {
		uint64_t n = 0, b;
		for (int i = 0; i < m->nw; i++)
			n += m->w[i].alive && m->w[i].stream == si;
		b = n * per_watcher;
		if (cfg->max_stream_pending_events && cfg->max_stream_pending_events + 3 * n < b)
			b = cfg->max_stream_pending_events + 3 * n;
		bound += b;
	}
	if (st.queued_events > bound && getenv("WDEBUG")) {
		fprintf(stderr, "queued %llu bound %llu max_pending %u stream_max %u\n",
		        (unsigned long long)st.queued_events, (unsigned long long)bound,
		        cfg->max_pending_events, cfg->max_stream_pending_events);
		for (int i = 0; i < m->nw; i++)
			if (m->w[i].alive)
				fprintf(stderr, "  w%d stream %d id %lld start %lld frag %d\n", i,
				        m->w[i].stream, (long long)m->w[i].id,
				        (long long)m->w[i].start, m->w[i].fragment);
	}
	CHECK(m, st.queued_events <= bound);
}

static void random_run(uint64_t seed, int steps, int fail_pct, struct model *m)
{
	struct watch_hub_config cfg = {0};
	uint64_t r;

	m->rng = seed + 17;
	cfg.max_pending_events = (uint32_t)(1 + rnd_below(m, 16));
	cfg.history_batch_events = (uint32_t)(1 + rnd_below(m, 8));
	cfg.max_response_bytes = (uint32_t)(20 + rnd_below(m, 150));
	cfg.max_response_events = (uint32_t)(1 + rnd_below(m, 10));
	cfg.max_stream_pending_events = (uint32_t)(rnd_below(m, 2) ? 1 + rnd_below(m, 40) : 0);
	model_init(m, seed, &cfg, fail_pct);
	m->ms.filter_keys = seed & 1;
	for (int si = 0; si < MAX_STREAMS; si++)
		open_stream(m, si);
	for (int step = 0; step < steps; step++) {
		r = rnd_below(m, 1000);
		if (r < 250) {
			random_write(m);
		} else if (r < 420) {
			int64_t ahead = m->ms.rev - m->applied;
			apply_to(m, m->applied + (int64_t)rnd_below(m, (uint64_t)ahead + 1));
		} else if (r < 550) {
			int rc = watch_hub_sync(m->hub, 1 + rnd_below(m, 20));
			CHECK(m, rc == 0 || rc == 1 || (rc == MOOR_ENOMEM && fail_pct));
		} else if (r < 800) {
			int si = (int)rnd_below(m, MAX_STREAMS);
			if (rnd_below(m, 100) < (uint64_t)m->pull_pct[si])
				for (uint64_t k = 1 + rnd_below(m, 6); k > 0 && pull(m, si); k--)
					;
		} else if (r < 880) {
			random_watcher(m);
		} else if (r < 910) {
			random_cancel(m);
		} else if (r < 930) {
			int64_t lo = m->ms.compact_rev + 1, hi = m->ms.rev;
			if (hi >= lo && rnd_below(m, 2))
				memstore_compact(
				    &m->ms, lo + (int64_t)rnd_below(m, (uint64_t)(hi - lo + 1)));
		} else if (r < 960) {
			int si = (int)rnd_below(m, MAX_STREAMS);
			if (m->streams[si])
				CHECK(m, watch_stream_request_progress(m->streams[si]) >= 0);
		} else if (r < 990) {
			watch_hub_progress_tick(m->hub);
		} else {
			int si = (int)rnd_below(m, MAX_STREAMS);
			if (m->streams[si])
				close_stream(m, si);
			else
				open_stream(m, si);
		}
		check_bounded(m, &cfg);
	}
	model_finish(m);
}

static void random_schedules_keep_every_guarantee_for_every_watcher(void **state)
{
	static struct model m;
	uint64_t events = 0, progress = 0, compacted = 0, fragments = 0;
	int seeds = 2000 / SCALE, first = 1;

	(void)state;
	/* MOOR_WATCH_SEED=S replays one seed; MOOR_WATCH_SEEDS=N runs N seeds
	 * (from S when both are given): a soak. */
	if (getenv("MOOR_WATCH_SEED")) {
		first = atoi(getenv("MOOR_WATCH_SEED"));
		seeds = 1;
	}
	if (getenv("MOOR_WATCH_SEEDS"))
		seeds = atoi(getenv("MOOR_WATCH_SEEDS"));
	for (int s = first; s < first + seeds; s++) {
		random_run((uint64_t)s, 3000, 0, &m);
		events += m.events;
		progress += m.progress;
		compacted += m.compacted;
		fragments += m.fragments;
	}
	printf("random: %d seeds, %llu events, %llu progress, %llu compacted, %llu fragments\n",
	       seeds, (unsigned long long)events, (unsigned long long)progress,
	       (unsigned long long)compacted, (unsigned long long)fragments);
	/* The runs exercised every kind of response. */
	if (seeds < 2000 / SCALE)
		return;
	assert_true(events > 200000 / SCALE && progress > 2000 / SCALE &&
	            compacted > 2000 / SCALE && fragments > 2000 / SCALE);
}

/* Allocations fail at random (2%, 10%): creates, pulls and syncs may fail
 * with MOOR_ENOMEM and apply sends watchers back to history, but nothing is
 * lost, repeated or leaked, and once memory is back everything arrives. */
static void random_schedules_under_failing_allocations_keep_every_guarantee(void **state)
{
	static struct model m;
	uint64_t failures = 0;
	int seeds = 400 / SCALE;

	(void)state;
	if (getenv("MOOR_WATCH_FAIL_SEEDS")) /* a soak */
		seeds = atoi(getenv("MOOR_WATCH_FAIL_SEEDS"));
	for (int s = 1; s <= seeds; s++) {
		random_run((uint64_t)s + 500000, 3000, s % 2 ? 2 : 10, &m);
		failures += m.fl.failures;
	}
	printf("failing allocations: %llu failures\n", (unsigned long long)failures);
	if (seeds >= 400 / SCALE)
		assert_true(failures > 1000 / SCALE);
}

static void the_same_seed_gives_the_same_trace(void **state)
{
	static struct model m;
	uint64_t first;

	(void)state;
	random_run(7, 3000, 0, &m);
	first = m.trace;
	random_run(7, 3000, 0, &m);
	assert_true(m.trace == first);
	random_run(8, 3000, 0, &m);
	assert_true(m.trace != first);
}

/*
 * The hand-over, exhaustively: a history of a few revisions, watchers that
 * start at every past revision (one key, a prefix, everything), then every
 * schedule of SCHED_LEN steps over {write to the store, apply one revision
 * to the hub, sync one event, pull one response}. The store may be ahead of
 * the hub by several revisions while watchers read history.
 */
#define SCHED_LEN 8

static void run_schedule(uint32_t code, uint32_t max_pending, struct model *m)
{
	struct watch_hub_config cfg = {0};
	struct watch_create req = {0};
	struct mw proto = {0};
	int64_t hist;

	cfg.max_pending_events = max_pending;
	cfg.history_batch_events = 1;
	model_init(m, code, &cfg, 0);
	memstore_put(&m->ms, "a", "0");
	memstore_put(&m->ms, "b", "0");
	memstore_put(&m->ms, "a", "1");
	memstore_del(&m->ms, "a");
	hist = m->ms.rev;
	apply_to(m, hist);
	open_stream(m, 0);
	for (int64_t start = 0; start <= hist + 1; start++) {
		for (int kind = 0; kind < 3; kind++) {
			memset(&proto, 0, sizeof proto);
			memset(&req, 0, sizeof req);
			proto.key[0] = 'a';
			proto.key_len = 1;
			if (kind == 1) {
				proto.end[0] = 'b';
				proto.end_len = 1;
			} else if (kind == 2) {
				proto.key[0] = 0;
				proto.end_inf = true;
			}
			req.key = proto.key;
			req.key_len = proto.key_len;
			req.range_end = kind == 2 ? proto.key : proto.end;
			req.range_end_len = kind == 0 ? 0 : 1;
			req.start_rev = start;
			req.watch_id = WATCH_AUTO_ID;
			req.prev_kv = true;
			add_watcher(m, 0, &req, &proto);
		}
	}
	for (int step = 0; step < SCHED_LEN; step++, code /= 4) {
		switch (code % 4) {
		case 0:
			if (step & 1)
				memstore_put(&m->ms, "a", "w");
			else
				memstore_put(&m->ms, "ab", "w");
			break;
		case 1:
			apply_to(m, m->applied + (m->applied < m->ms.rev));
			break;
		case 2:
			CHECK(m, watch_hub_sync(m->hub, 1) >= 0);
			break;
		default:
			pull(m, 0);
			break;
		}
	}
	model_finish(m);
}

static void every_schedule_of_the_catch_up_to_live_hand_over_loses_and_repeats_nothing(void **state)
{
	static struct model m;
	uint32_t n = 1;

	(void)state;
	for (int i = 0; i < SCHED_LEN; i++)
		n *= 4;
	for (uint32_t code = 0; code < n; code += SCALE) {
		run_schedule(code, 1000, &m); /* roomy queues */
		run_schedule(code, 2, &m);    /* tiny queues: overflow during the hand-over */
	}
}

/* Many watchers on few keys with a tiny queue limit and rare pulls: most
 * of the time most watchers are behind, compaction chases them. */
static void slow_consumers_under_compaction_lose_nothing_they_are_owed(void **state)
{
	static struct model m;
	struct watch_hub_config cfg = {0};

	(void)state;
	for (uint64_t seed = 1000; seed < 1000 + 200 / SCALE; seed++) {
		cfg.max_pending_events = 3;
		cfg.history_batch_events = 2;
		model_init(&m, seed, &cfg, 0);
		for (int si = 0; si < MAX_STREAMS; si++) {
			open_stream(&m, si);
			m.pull_pct[si] = 3;
		}
		for (int i = 0; i < 40; i++)
			random_watcher(&m);
		for (int step = 0; step < 2000; step++) {
			uint64_t r = rnd_below(&m, 100);
			if (r < 40) {
				random_write(&m);
				apply_to(&m, m.ms.rev);
			} else if (r < 70) {
				CHECK(&m, watch_hub_sync(m.hub, 5) >= 0);
			} else if (r < 95) {
				pull(&m, (int)rnd_below(&m, MAX_STREAMS));
			} else if (r < 97) {
				memstore_compact(&m.ms, m.ms.rev - (int64_t)rnd_below(&m, 10));
			} else {
				random_watcher(&m);
			}
		}
		model_finish(&m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(random_schedules_keep_every_guarantee_for_every_watcher),
	    cmocka_unit_test(random_schedules_under_failing_allocations_keep_every_guarantee),
	    cmocka_unit_test(the_same_seed_gives_the_same_trace),
	    cmocka_unit_test(
	        every_schedule_of_the_catch_up_to_live_hand_over_loses_and_repeats_nothing),
	    cmocka_unit_test(slow_consumers_under_compaction_lose_nothing_they_are_owed),
	};
	return cmocka_run_group_tests_name("watch_model", tests, NULL, NULL);
}

/*
 * moor-bench: a load generator for moord and etcd, over etcd's v3 JSON
 * gateway (both serve it) or moord's protobuf bodies.
 *
 * Why libcurl's multi interface and not a thread per connection: the
 * machine this runs on has two cores shared with the three members under
 * test. 256 clients as 256 threads would spend the generator's share of the
 * CPU on context switches and make the servers' figures depend on the
 * scheduler; one event loop per generator thread (--threads, default 1)
 * drives any number of connections with one epoll wait per batch of
 * completions. Each client is one easy handle that issues one request at a
 * time (HTTP/1.1 has one request in flight per connection); --conns caps the
 * connections, and curl queues the transfers of clients beyond it.
 *
 * Closed loop: each client sends its next request when the previous one
 * answers. Open loop (--rate): requests are due at fixed intervals whether
 * or not earlier ones have answered; a request waits for an idle client, and
 * its latency is measured from the time it was due, not from when it was
 * sent — the coordinated-omission correction (as in wrk2): a stall of the
 * server shows up in the latency of every request that should have been
 * sent during it.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/moorbench/hist.h"
#include "bench/moorbench/wire.h"

enum workload {
	WL_PUT,
	WL_RANGE,
	WL_TXN,
	WL_MIXED,
	WL_WATCH,
	WL_LEASE_GRANT,
	WL_LEASE_KEEPALIVE,
	WL_FILL,
};

static const char *const WL_NAMES[] = {"put",         "range",           "txn", "mixed", "watch",
                                       "lease-grant", "lease-keepalive", "fill"};

enum dist { DIST_SEQ, DIST_UNIFORM, DIST_ZIPF };

struct opts {
	char **endpoints;
	int n_endpoints;
	enum wire_proto proto;
	enum workload wl;
	int clients;
	int conns;
	int threads;
	double duration_s;
	uint64_t total;
	double rate;
	int key_size;
	int val_size;
	uint64_t keyspace;
	enum dist dist;
	double zipf_theta;
	bool serializable;
	bool prefix;
	double read_ratio;
	int watchers;
	bool prefill;
	int64_t ttl;
	long timeout_ms;
	const char *label;
	uint64_t seed;
	const char *key_prefix;
};

static struct opts O = {
    .proto = WIRE_JSON,
    .wl = WL_PUT,
    .clients = 64,
    .threads = 1,
    .duration_s = 10,
    .key_size = 32,
    .val_size = 256,
    .keyspace = 10000,
    .dist = DIST_UNIFORM,
    .zipf_theta = 0.99,
    .read_ratio = 0.9,
    .watchers = 100,
    .ttl = 60,
    .timeout_ms = 10000,
    .seed = 1,
    .key_prefix = "/bench/",
};

#define MAX_ERR_KINDS 32

struct errtab {
	char kind[MAX_ERR_KINDS][96];
	uint64_t count[MAX_ERR_KINDS];
	int n;
};

static void err_count(struct errtab *t, const char *kind, uint64_t n)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->kind[i], kind) == 0) {
			t->count[i] += n;
			return;
		}
	int i = t->n < MAX_ERR_KINDS ? t->n++ : MAX_ERR_KINDS - 1;
	if (i == MAX_ERR_KINDS - 1 && t->count[i] && strcmp(t->kind[i], "other") != 0)
		kind = "other";
	snprintf(t->kind[i], sizeof(t->kind[i]), "%s", kind);
	t->count[i] += n;
}

struct worker;

struct client {
	struct worker *w;
	CURL *easy;
	const char *endpoint;
	struct wbuf body;
	struct wbuf resp;
	enum wire_op op;
	uint64_t key_idx;
	uint64_t due_ns;
	int64_t lease_id;
	bool measure;
};

struct watcher {
	struct worker *w;
	CURL *easy;
	struct wbuf body;
	struct wbuf buf;
	int created;
	bool ended;
};

struct worker {
	int id;
	pthread_t thread;
	CURLM *multi;
	struct curl_slist *hdrs;
	struct client *cl;
	int n_cl;
	int *idle;
	int n_idle;
	struct watcher *wt;
	int n_wt;
	uint64_t rng;
	int64_t *known_rev; /* txn: the mod_revision last seen per key */
	uint64_t seq_next;  /* fill: next key, stepping by threads */
	bool measuring;
	/* results */
	struct hist lat;
	struct hist wlat; /* watch delivery: event received - put sent */
	uint64_t ok;
	uint64_t errors;
	uint64_t txn_ok, txn_fail;
	uint64_t ranges, range_kvs; /* kvs returned by the measured ranges */
	uint64_t late;              /* open loop: due but never sent when time ran out */
	uint64_t start_ns, end_ns;
	struct errtab errs;
	int setup_failed;
};

static pthread_barrier_t g_barrier;
static double g_zipf_zetan, g_zipf_eta, g_zipf_alpha;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Zipfian ranks as in Gray et al., "Quickly generating billion-record
 * synthetic databases" (the generator YCSB uses); rank 0 is the hottest. */
static void zipf_init(uint64_t n, double theta)
{
	double zetan = 0, zeta2 = 1.0 + pow(0.5, theta);
	for (uint64_t i = 1; i <= n; i++)
		zetan += 1.0 / pow((double)i, theta);
	g_zipf_zetan = zetan;
	g_zipf_alpha = 1.0 / (1.0 - theta);
	g_zipf_eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
}

static uint64_t zipf_next(uint64_t *s, uint64_t n, double theta)
{
	double u = rng_unit(s);
	double uz = u * g_zipf_zetan;
	if (uz < 1.0)
		return 0;
	if (uz < 1.0 + pow(0.5, theta))
		return 1;
	uint64_t r = (uint64_t)((double)n * pow(g_zipf_eta * u - g_zipf_eta + 1.0, g_zipf_alpha));
	return r < n ? r : n - 1;
}

static uint64_t pick_key(struct worker *w)
{
	switch (O.dist) {
	case DIST_SEQ: {
		uint64_t k = w->seq_next;
		w->seq_next += (uint64_t)O.threads;
		return k % O.keyspace;
	}
	case DIST_ZIPF:
		/* scatter the hot ranks over the key space */
		return (zipf_next(&w->rng, O.keyspace, O.zipf_theta) * 0x9E3779B97F4A7C15ULL) %
		       O.keyspace;
	case DIST_UNIFORM:
		break;
	}
	return rng_next(&w->rng) % O.keyspace;
}

/* key = prefix + zero-padded index, O.key_size bytes in all (longer if the
 * index does not fit). */
static size_t make_key(const char *prefix, uint64_t idx, char *out, size_t cap)
{
	size_t pl = strlen(prefix);
	int digits = O.key_size > (int)pl ? O.key_size - (int)pl : 1;
	int n = snprintf(out, cap, "%s%0*" PRIu64, prefix, digits, idx);
	return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static const char *WATCH_PREFIX = "/bench-watch/";
/* txn keys live apart from the preloaded ones and from earlier runs' (a
 * prefix of their own per run): the first txn on a key creates it (compare
 * mod_revision = 0, as Kubernetes creates an object), later ones update it
 * at the mod_revision last seen. */
static char TXN_PREFIX[32];

/* Builds the next request of client c and hands it to curl. */
static void client_start(struct client *c, uint64_t due_ns, bool measure)
{
	struct worker *w = c->w;
	char key[512], end[512];
	uint8_t val[65536];
	size_t vlen = (size_t)O.val_size < sizeof(val) ? (size_t)O.val_size : sizeof(val);
	struct wire_req r = {0};
	enum workload wl = measure ? O.wl : WL_FILL;

	uint64_t k = wl == WL_FILL ? w->seq_next : pick_key(w);
	if (wl == WL_FILL) {
		w->seq_next += (uint64_t)O.threads;
	}
	c->key_idx = k;
	size_t kl = make_key(wl == WL_WATCH ? WATCH_PREFIX
	                     : wl == WL_TXN ? TXN_PREFIX
	                                    : O.key_prefix,
	                     k, key, sizeof(key));
	memset(val, 'v', vlen);
	if (vlen >= 8)
		put_be64(val, now_ns());
	r.key = (const uint8_t *)key;
	r.key_len = kl;
	r.value = val;
	r.value_len = vlen;

	switch (wl) {
	case WL_PUT:
	case WL_FILL:
	case WL_WATCH:
		r.op = WIRE_PUT;
		break;
	case WL_RANGE:
		r.op = WIRE_RANGE;
		break;
	case WL_MIXED:
		r.op = rng_unit(&w->rng) < O.read_ratio ? WIRE_RANGE : WIRE_PUT;
		break;
	case WL_TXN:
		r.op = WIRE_TXN;
		r.mod_rev = w->known_rev[k];
		break;
	case WL_LEASE_GRANT:
		r.op = WIRE_LEASE_GRANT;
		r.ttl = O.ttl;
		break;
	case WL_LEASE_KEEPALIVE:
		r.op = c->lease_id ? WIRE_LEASE_KEEPALIVE : WIRE_LEASE_GRANT;
		r.lease_id = c->lease_id;
		r.ttl = O.ttl;
		break;
	}
	if (r.op == WIRE_RANGE) {
		r.serializable = O.serializable;
		if (O.prefix && kl > 2) {
			/* the 100 keys that share all but the last two digits */
			memcpy(end, key, kl);
			r.key_len = kl - 2;
			end[kl - 3]++;
			r.range_end = (const uint8_t *)end;
			r.range_end_len = kl - 2;
		}
	}
	c->op = r.op;
	c->measure = measure;
	c->due_ns = due_ns;
	wire_encode(O.proto, &r, &c->body);
	wbuf_reset(&c->resp);

	char url[600];
	snprintf(url, sizeof(url), "%s%s", c->endpoint, wire_path(r.op));
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, (char *)c->body.p);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)c->body.len);
	curl_multi_add_handle(w->multi, c->easy);
}

static void record_error(struct client *c, const char *kind)
{
	struct worker *w = c->w;
	if (c->measure) {
		w->errors++;
		err_count(&w->errs, kind, 1);
	}
}

/* A finished transfer: check it, update the txn and lease state, record. */
static void client_done(struct client *c, CURLcode res)
{
	struct worker *w = c->w;
	uint64_t now = now_ns();
	char kind[96];
	long status = 0;
	if (res != CURLE_OK) {
		snprintf(kind, sizeof(kind), "curl: %s", curl_easy_strerror(res));
		record_error(c, kind);
		return;
	}
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		int code = wire_error_code(c->resp.p, c->resp.len);
		snprintf(kind, sizeof(kind), "http %ld code %d", status, code);
		record_error(c, kind);
		return;
	}
	struct wire_resp r;
	if (wire_decode(O.proto, c->op, c->resp.p, c->resp.len, &r) < 0) {
		record_error(c, "undecodable response");
		return;
	}
	switch (c->op) {
	case WIRE_TXN:
		w->known_rev[c->key_idx] = r.succeeded ? r.revision : r.mod_rev;
		if (c->measure) {
			if (r.succeeded)
				w->txn_ok++;
			else
				w->txn_fail++;
		}
		break;
	case WIRE_LEASE_GRANT:
		if (r.lease_id == 0) {
			record_error(c, "lease grant without ID");
			return;
		}
		if (O.wl == WL_LEASE_KEEPALIVE)
			c->lease_id = r.lease_id;
		break;
	case WIRE_LEASE_KEEPALIVE:
		if (r.ttl <= 0) {
			c->lease_id = 0; /* gone: grant another */
			record_error(c, "keepalive of an expired lease");
			return;
		}
		break;
	default:
		break;
	}
	if (c->measure && c->op == WIRE_RANGE) {
		w->ranges++;
		w->range_kvs += (uint64_t)r.kvs;
	}
	if (c->measure) {
		w->ok++;
		hist_record(&w->lat, now > c->due_ns ? now - c->due_ns : 0);
	}
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct client *c = arg;
	wbuf_add(&c->resp, p, size * n);
	return size * n;
}

static void on_watch_event(const uint8_t *v, size_t len, void *arg)
{
	struct worker *w = arg;
	if (!w->measuring || len < 8)
		return;
	uint64_t now = now_ns();
	uint64_t sent = get_be64(v); /* the put's send time, written by client_start */
	hist_record(&w->wlat, now > sent ? now - sent : 0);
}

static size_t on_watch_body(char *p, size_t size, size_t n, void *arg)
{
	struct watcher *wt = arg;
	wbuf_add(&wt->buf, p, size * n);
	if (wire_watch_feed(O.proto, &wt->buf, on_watch_event, wt->w, &wt->created) < 0)
		err_count(&wt->w->errs, "undecodable watch message", 1);
	return size * n;
}

/* Drives curl until every started request has finished or until_ns passes;
 * the dispatch callback starts new requests. Returns the number of
 * requests still running. */
typedef void (*dispatch_fn)(struct worker *w, uint64_t now, long *wait_ms);

static void handle_done(struct worker *w)
{
	CURLMsg *m;
	int q;
	while ((m = curl_multi_info_read(w->multi, &q))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode res = m->data.result;
		void *priv = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		curl_multi_remove_handle(w->multi, e);
		if (priv == NULL)
			continue;
		if ((uintptr_t)priv & 1) {
			struct watcher *wt = (struct watcher *)((uintptr_t)priv & ~(uintptr_t)1);
			wt->ended = true;
			if (w->measuring)
				err_count(&w->errs, "watch stream ended", 1);
			continue;
		}
		struct client *c = priv;
		client_done(c, res);
		w->idle[w->n_idle++] = (int)(c - w->cl);
	}
}

static int client_setup(struct worker *w, struct client *c, int global_idx)
{
	c->w = w;
	c->endpoint = O.endpoints[global_idx % O.n_endpoints];
	c->easy = curl_easy_init();
	if (!c->easy)
		return -1;
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, w->hdrs);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, O.timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L);
	return 0;
}

static int watcher_setup(struct worker *w, struct watcher *wt, int global_idx)
{
	char key[64], end[64];
	wt->w = w;
	wt->easy = curl_easy_init();
	if (!wt->easy)
		return -1;
	size_t kl = strlen(WATCH_PREFIX);
	memcpy(key, WATCH_PREFIX, kl);
	memcpy(end, WATCH_PREFIX, kl);
	end[kl - 1]++;
	struct wire_req r = {.op = WIRE_WATCH,
	                     .key = (const uint8_t *)key,
	                     .key_len = kl,
	                     .range_end = (const uint8_t *)end,
	                     .range_end_len = kl};
	wire_encode(O.proto, &r, &wt->body);
	char url[600];
	snprintf(url, sizeof(url), "%s%s", O.endpoints[global_idx % O.n_endpoints], "/v3/watch");
	curl_easy_setopt(wt->easy, CURLOPT_URL, url);
	curl_easy_setopt(wt->easy, CURLOPT_PRIVATE, (void *)((uintptr_t)wt | 1));
	curl_easy_setopt(wt->easy, CURLOPT_HTTPHEADER, w->hdrs);
	curl_easy_setopt(wt->easy, CURLOPT_WRITEFUNCTION, on_watch_body);
	curl_easy_setopt(wt->easy, CURLOPT_WRITEDATA, wt);
	curl_easy_setopt(wt->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(wt->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(wt->easy, CURLOPT_POSTFIELDS, (char *)wt->body.p);
	curl_easy_setopt(wt->easy, CURLOPT_POSTFIELDSIZE, (long)wt->body.len);
	curl_multi_add_handle(w->multi, wt->easy);
	return 0;
}

/* One pass of the event loop: perform, collect, wait at most wait_ms. */
static void loop_once(struct worker *w, long wait_ms)
{
	int running;
	curl_multi_perform(w->multi, &running);
	handle_done(w);
	if (wait_ms > 0)
		curl_multi_poll(w->multi, NULL, 0, (int)wait_ms, NULL);
	curl_multi_perform(w->multi, &running);
	handle_done(w);
}

static int busy(struct worker *w)
{
	return w->n_cl - w->n_idle;
}

/* Unmeasured: put keys w->id, w->id + T, ... < keyspace (the prefill). */
static void run_fill(struct worker *w)
{
	w->seq_next = (uint64_t)w->id;
	while (w->seq_next < O.keyspace || busy(w) > 0) {
		while (w->n_idle > 0 && w->seq_next < O.keyspace)
			client_start(&w->cl[w->idle[--w->n_idle]], now_ns(), false);
		loop_once(w, 10);
	}
}

/* Unmeasured: one lease per client for the keep-alive workload. */
static int run_lease_setup(struct worker *w)
{
	uint64_t until = now_ns() + 30ull * 1000000000u;
	for (int i = 0; i < w->n_cl; i++) {
		struct client *c = &w->cl[w->idle[--w->n_idle]];
		struct wire_req r = {.op = WIRE_LEASE_GRANT, .ttl = O.ttl};
		wire_encode(O.proto, &r, &c->body);
		wbuf_reset(&c->resp);
		c->op = WIRE_LEASE_GRANT;
		c->measure = false;
		char url[600];
		snprintf(url, sizeof(url), "%s/v3/lease/grant", c->endpoint);
		curl_easy_setopt(c->easy, CURLOPT_URL, url);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, (char *)c->body.p);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)c->body.len);
		curl_multi_add_handle(w->multi, c->easy);
	}
	while (busy(w) > 0 && now_ns() < until)
		loop_once(w, 10);
	for (int i = 0; i < w->n_cl; i++)
		if (w->cl[i].lease_id == 0)
			return -1;
	return 0;
}

static int run_watch_setup(struct worker *w, int first_global)
{
	for (int i = 0; i < w->n_wt; i++)
		if (watcher_setup(w, &w->wt[i], first_global + i) < 0)
			return -1;
	uint64_t until = now_ns() + 30ull * 1000000000u;
	for (;;) {
		int created = 0;
		for (int i = 0; i < w->n_wt; i++)
			created += w->wt[i].created;
		if (created == w->n_wt)
			return 0;
		if (now_ns() > until)
			return -1;
		loop_once(w, 10);
	}
}

static void run_measure(struct worker *w)
{
	uint64_t limit =
	    O.total ? (O.total + (uint64_t)O.threads - 1 - (uint64_t)w->id) / (uint64_t)O.threads
	            : UINT64_MAX;
	double period_ns = O.rate > 0 ? 1e9 * O.threads / O.rate : 0;
	uint64_t start = now_ns();
	uint64_t deadline = O.duration_s > 0 ? start + (uint64_t)(O.duration_s * 1e9) : UINT64_MAX;
	uint64_t issued = 0;
	w->start_ns = start;
	w->measuring = true;
	if (O.wl == WL_FILL)
		w->seq_next = (uint64_t)w->id;
	for (;;) {
		uint64_t now = now_ns();
		bool open = now < deadline && issued < limit;
		if (O.wl == WL_FILL && w->seq_next >= O.keyspace)
			open = false;
		long wait_ms = 10;
		if (open && period_ns == 0) {
			while (w->n_idle > 0 && issued < limit &&
			       !(O.wl == WL_FILL && w->seq_next >= O.keyspace)) {
				client_start(&w->cl[w->idle[--w->n_idle]], now_ns(), true);
				issued++;
			}
		} else if (open) {
			uint64_t due = (uint64_t)((double)(now - start) / period_ns) + 1;
			if (due > limit)
				due = limit;
			while (issued < due && w->n_idle > 0) {
				uint64_t t = start + (uint64_t)((double)issued * period_ns);
				client_start(&w->cl[w->idle[--w->n_idle]], t, true);
				issued++;
			}
			if (issued < due) {
				wait_ms = 1; /* late: waiting for a client to finish */
			} else {
				double next = (double)start + (double)issued * period_ns;
				wait_ms =
				    next > (double)now ? (long)((next - (double)now) / 1e6) : 0;
				if (wait_ms > 10)
					wait_ms = 10;
			}
		}
		if (!open && busy(w) == 0)
			break;
		if (!open && period_ns > 0 && w->late == 0 && now >= deadline) {
			uint64_t due = (uint64_t)((double)(deadline - start) / period_ns) + 1;
			if (due > limit)
				due = limit;
			w->late = due > issued ? due - issued : 0;
		}
		loop_once(w, wait_ms);
	}
	w->end_ns = now_ns();
	if (O.wl == WL_WATCH) {
		/* events of the last puts are still on their way: wait up to 1 s */
		uint64_t grace = now_ns() + 1000000000u;
		while (now_ns() < grace && w->wlat.total < w->ok * (uint64_t)O.watchers)
			loop_once(w, 10);
	}
	w->measuring = false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int rc = 0;
	if (O.prefill)
		run_fill(w);
	if (O.wl == WL_LEASE_KEEPALIVE)
		rc = run_lease_setup(w);
	if (rc == 0 && O.wl == WL_WATCH) {
		int first = 0;
		for (int i = 0; i < w->id; i++)
			first += O.watchers / O.threads + (i < O.watchers % O.threads);
		rc = run_watch_setup(w, first);
	}
	w->setup_failed = rc < 0;
	pthread_barrier_wait(&g_barrier);
	run_measure(w);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: moor-bench --endpoints URL[,URL...] [options]\n"
	    "  --workload W      put|range|txn|mixed|watch|lease-grant|lease-keepalive|fill (put)\n"
	    "  --proto P         json (etcd's v3 gateway) | pb (moord's protobuf bodies) (json)\n"
	    "  --clients M       concurrent clients, one request in flight each (64)\n"
	    "  --conns N         HTTP connections per generator thread, at most M (M)\n"
	    "  --threads T       generator threads, each its own event loop (1)\n"
	    "  --duration S      seconds to measure (10); 0 = until --total\n"
	    "  --total N         stop after N requests\n"
	    "  --rate R          open loop at R requests/s in all (0 = closed loop)\n"
	    "  --key-size B      (32)   --val-size B (256)   --keyspace K (10000)\n"
	    "  --dist D          seq|uniform|zipf (uniform)   --zipf-theta X (0.99)\n"
	    "  --serializable    ranges read locally (default: linearizable)\n"
	    "  --prefix          ranges cover 100 keys sharing a prefix\n"
	    "  --read-ratio X    mixed: share of ranges (0.9)\n"
	    "  --watchers W      watch: watch streams on one prefix; puts at --rate (100)\n"
	    "  --prefill         put every key of the key space once before measuring\n"
	    "  --ttl S           lease TTL (60)   --timeout-ms MS per request (10000)\n"
	    "  --label TEXT      name of the result row   --seed N\n"
	    "  --key-prefix P    keys are P + zero-padded index (/bench/)\n"
	    "fill: put keys 0..K-1 once each (sequential), measured.\n");
}

static int split_endpoints(char *s)
{
	int n = 1;
	for (char *p = s; *p; p++)
		n += *p == ',';
	O.endpoints = calloc((size_t)n, sizeof(char *));
	if (!O.endpoints)
		return -1;
	O.n_endpoints = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
		O.endpoints[O.n_endpoints++] = tok;
	return O.n_endpoints > 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {{"endpoints", 1, 0, 'e'},    {"workload", 1, 0, 'w'},
	                                   {"proto", 1, 0, 'p'},        {"clients", 1, 0, 'c'},
	                                   {"conns", 1, 0, 'n'},        {"threads", 1, 0, 'T'},
	                                   {"duration", 1, 0, 'd'},     {"total", 1, 0, 't'},
	                                   {"rate", 1, 0, 'r'},         {"key-size", 1, 0, 'k'},
	                                   {"val-size", 1, 0, 'v'},     {"keyspace", 1, 0, 'K'},
	                                   {"dist", 1, 0, 'D'},         {"zipf-theta", 1, 0, 'Z'},
	                                   {"serializable", 0, 0, 's'}, {"prefix", 0, 0, 'P'},
	                                   {"read-ratio", 1, 0, 'R'},   {"watchers", 1, 0, 'W'},
	                                   {"prefill", 0, 0, 'F'},      {"ttl", 1, 0, 'L'},
	                                   {"timeout-ms", 1, 0, 'o'},   {"label", 1, 0, 'l'},
	                                   {"seed", 1, 0, 'S'},         {"help", 0, 0, 'h'},
	                                   {"key-prefix", 1, 0, 'x'},   {0, 0, 0, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'e':
			if (split_endpoints(optarg) < 0)
				return -1;
			break;
		case 'w': {
			int found = 0;
			for (unsigned i = 0; i < sizeof(WL_NAMES) / sizeof(WL_NAMES[0]); i++)
				if (strcmp(optarg, WL_NAMES[i]) == 0) {
					O.wl = (enum workload)i;
					found = 1;
				}
			if (!found)
				return -1;
			break;
		}
		case 'p':
			if (strcmp(optarg, "json") == 0)
				O.proto = WIRE_JSON;
			else if (strcmp(optarg, "pb") == 0)
				O.proto = WIRE_PB;
			else
				return -1;
			break;
		case 'c':
			O.clients = atoi(optarg);
			break;
		case 'n':
			O.conns = atoi(optarg);
			break;
		case 'T':
			O.threads = atoi(optarg);
			break;
		case 'd':
			O.duration_s = atof(optarg);
			break;
		case 't':
			O.total = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			O.rate = atof(optarg);
			break;
		case 'k':
			O.key_size = atoi(optarg);
			break;
		case 'v':
			O.val_size = atoi(optarg);
			break;
		case 'K':
			O.keyspace = strtoull(optarg, NULL, 10);
			break;
		case 'D':
			if (strcmp(optarg, "seq") == 0)
				O.dist = DIST_SEQ;
			else if (strcmp(optarg, "uniform") == 0)
				O.dist = DIST_UNIFORM;
			else if (strcmp(optarg, "zipf") == 0)
				O.dist = DIST_ZIPF;
			else
				return -1;
			break;
		case 'Z':
			O.zipf_theta = atof(optarg);
			break;
		case 's':
			O.serializable = true;
			break;
		case 'P':
			O.prefix = true;
			break;
		case 'R':
			O.read_ratio = atof(optarg);
			break;
		case 'W':
			O.watchers = atoi(optarg);
			break;
		case 'F':
			O.prefill = true;
			break;
		case 'L':
			O.ttl = atoll(optarg);
			break;
		case 'o':
			O.timeout_ms = atol(optarg);
			break;
		case 'l':
			O.label = optarg;
			break;
		case 'x':
			O.key_prefix = optarg;
			break;
		case 'S':
			O.seed = strtoull(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (!O.endpoints || O.clients < 1 || O.threads < 1 || O.threads > O.clients ||
	    O.keyspace < 1 || O.key_size < 1 || O.key_size > 400 || O.val_size < 0 ||
	    O.val_size > 65536 || (O.duration_s <= 0 && O.total == 0 && O.wl != WL_FILL) ||
	    (O.wl == WL_WATCH && (O.watchers < O.threads || O.rate <= 0)) ||
	    (O.zipf_theta <= 0 || O.zipf_theta >= 1))
		return -1;
	if (O.wl == WL_FILL) {
		O.dist = DIST_SEQ;
		if (O.total == 0 || O.total > O.keyspace)
			O.total = O.keyspace;
		if (O.duration_s <= 0)
			O.duration_s = 0;
	}
	if (O.wl == WL_WATCH && O.val_size < 8)
		O.val_size = 8;
	if (O.conns <= 0 || O.conns > O.clients)
		O.conns = O.clients;
	if (!O.label)
		O.label = WL_NAMES[O.wl];
	return 0;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void print_hist_row(const char *what, const struct hist *h)
{
	printf("  %-18s %10" PRIu64 " %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", what, h->total,
	       h->total ? ms((uint64_t)(h->sum_ns / (double)h->total)) : 0.0,
	       ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.9)), ms(hist_quantile(h, 0.99)),
	       ms(hist_quantile(h, 0.999)), ms(h->max_ns));
}

int main(int argc, char **argv)
{
	if (parse_args(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	if (O.dist == DIST_ZIPF)
		zipf_init(O.keyspace, O.zipf_theta);
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t run = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
		               (uint64_t)getpid() << 20;
		snprintf(TXN_PREFIX, sizeof(TXN_PREFIX), "/bench-txn/%06" PRIx64 "/",
		         run % 0x1000000);
	}
	struct worker *ws = calloc((size_t)O.threads, sizeof(*ws));
	if (!ws)
		return 1;
	pthread_barrier_init(&g_barrier, NULL, (unsigned)O.threads);
	int gidx = 0;
	for (int t = 0; t < O.threads; t++) {
		struct worker *w = &ws[t];
		w->id = t;
		w->rng = O.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)t + 1;
		hist_reset(&w->lat);
		hist_reset(&w->wlat);
		w->n_cl = O.clients / O.threads + (t < O.clients % O.threads);
		w->n_wt =
		    O.wl == WL_WATCH ? O.watchers / O.threads + (t < O.watchers % O.threads) : 0;
		w->cl = calloc((size_t)w->n_cl, sizeof(*w->cl));
		w->idle = calloc((size_t)w->n_cl, sizeof(int));
		w->wt = calloc((size_t)(w->n_wt ? w->n_wt : 1), sizeof(*w->wt));
		w->known_rev = O.wl == WL_TXN ? calloc(O.keyspace, sizeof(int64_t)) : NULL;
		w->multi = curl_multi_init();
		if (!w->cl || !w->idle || !w->wt || !w->multi || (O.wl == WL_TXN && !w->known_rev))
			return 1;
		w->hdrs = curl_slist_append(NULL, O.proto == WIRE_PB
		                                      ? "Content-Type: application/x-protobuf"
		                                      : "Content-Type: application/json");
		w->hdrs = curl_slist_append(w->hdrs, "Expect:");
		int conns = O.conns / O.threads + (t < O.conns % O.threads);
		if (conns < 1)
			conns = 1;
		curl_multi_setopt(w->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
		                  (long)(conns + w->n_wt));
		curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)(conns + w->n_wt));
		for (int i = 0; i < w->n_cl; i++) {
			if (client_setup(w, &w->cl[i], gidx++) < 0)
				return 1;
			w->idle[w->n_idle++] = i;
		}
	}
	double cpu0 = cpu_s();
	for (int t = 0; t < O.threads; t++)
		if (pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]) != 0)
			return 1;
	for (int t = 0; t < O.threads; t++)
		pthread_join(ws[t].thread, NULL);
	double gen_cpu = cpu_s() - cpu0;

	struct hist lat, wlat;
	hist_reset(&lat);
	hist_reset(&wlat);
	struct errtab errs = {0};
	uint64_t ok = 0, nerr = 0, txn_ok = 0, txn_fail = 0, late = 0, start = UINT64_MAX, end = 0;
	uint64_t ranges = 0, range_kvs = 0;
	int setup_failed = 0;
	for (int t = 0; t < O.threads; t++) {
		struct worker *w = &ws[t];
		hist_merge(&lat, &w->lat);
		hist_merge(&wlat, &w->wlat);
		ok += w->ok;
		nerr += w->errors;
		txn_ok += w->txn_ok;
		txn_fail += w->txn_fail;
		ranges += w->ranges;
		range_kvs += w->range_kvs;
		late += w->late;
		setup_failed |= w->setup_failed;
		if (w->start_ns < start)
			start = w->start_ns;
		if (w->end_ns > end)
			end = w->end_ns;
		for (int i = 0; i < w->errs.n; i++)
			err_count(&errs, w->errs.kind[i], w->errs.count[i]);
	}
	double secs = (double)(end - start) / 1e9;
	double rps = secs > 0 ? (double)ok / secs : 0;
	printf("moor-bench %s: workload=%s proto=%s endpoints=%d clients=%d conns=%d threads=%d "
	       "%s key=%dB value=%dB keyspace=%" PRIu64 " dist=%s%s%s\n",
	       O.label, WL_NAMES[O.wl], O.proto == WIRE_JSON ? "json" : "pb", O.n_endpoints,
	       O.clients, O.conns, O.threads, O.rate > 0 ? "open-loop" : "closed-loop", O.key_size,
	       O.val_size, O.keyspace,
	       O.dist == DIST_SEQ    ? "seq"
	       : O.dist == DIST_ZIPF ? "zipf"
	                             : "uniform",
	       O.serializable ? " serializable" : "", O.prefix ? " prefix" : "");
	if (O.rate > 0)
		printf("  target rate %.0f/s; latency from each request's due time "
		       "(coordinated omission corrected); due but unsent at the end: %" PRIu64 "\n",
		       O.rate, late);
	printf("  %.2f s, %" PRIu64 " ok, %" PRIu64
	       " errors, %.0f ok/s; generator CPU %.1f us/request "
	       "(setup included)\n",
	       secs, ok, nerr, rps, ok ? gen_cpu * 1e6 / (double)ok : 0.0);
	printf("  %-18s %10s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "mean", "p50",
	       "p90", "p99", "p99.9", "max");
	print_hist_row("request", &lat);
	if (O.wl == WL_WATCH)
		print_hist_row("watch delivery", &wlat);
	if (O.wl == WL_TXN)
		printf("  txn: %" PRIu64 " succeeded, %" PRIu64 " failed the compare\n", txn_ok,
		       txn_fail);
	if (ranges)
		printf("  ranges returned %.2f keys each on average\n",
		       (double)range_kvs / (double)ranges);
	for (int i = 0; i < errs.n; i++)
		printf("  error %-40s %" PRIu64 "\n", errs.kind[i], errs.count[i]);
	if (setup_failed)
		printf("  setup failed (leases or watches not established)\n");
	/* one machine-readable line: label rps p50 p90 p99 p99.9 max (ms) ok errors */
	const struct hist *h = O.wl == WL_WATCH ? &wlat : &lat;
	printf("RESULT\t%s\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%" PRIu64 "\t%" PRIu64 "\n",
	       O.label, rps, ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.9)),
	       ms(hist_quantile(h, 0.99)), ms(hist_quantile(h, 0.999)), ms(h->max_ns), ok, nerr);

	for (int t = 0; t < O.threads; t++) {
		struct worker *w = &ws[t];
		for (int i = 0; i < w->n_wt; i++) {
			curl_multi_remove_handle(w->multi, w->wt[i].easy);
			curl_easy_cleanup(w->wt[i].easy);
			wbuf_free(&w->wt[i].body);
			wbuf_free(&w->wt[i].buf);
		}
		for (int i = 0; i < w->n_cl; i++) {
			curl_multi_remove_handle(w->multi, w->cl[i].easy);
			curl_easy_cleanup(w->cl[i].easy);
			wbuf_free(&w->cl[i].body);
			wbuf_free(&w->cl[i].resp);
		}
		curl_multi_cleanup(w->multi);
		curl_slist_free_all(w->hdrs);
		free(w->cl);
		free(w->idle);
		free(w->wt);
		free(w->known_rev);
	}
	free(ws);
	free(O.endpoints);
	pthread_barrier_destroy(&g_barrier);
	curl_global_cleanup();
	return setup_failed || (ok == 0) ? 1 : 0;
}

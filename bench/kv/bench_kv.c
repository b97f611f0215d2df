/*
 * kv microbenchmark: apply throughput in batches of 1, 100 and 1000 puts
 * (8-32 byte keys, 256-byte values), current single-key ranges, 1000-key
 * prefix ranges, ranges at an old revision, txns (compare mod_revision then
 * put), watch catch-up from the store (kv_history_read over the last
 * 1,000,000 revisions, with and without prev_kv), and reopen time and resident memory with
 * 1,000,000 keys (measured in a freshly executed process). Prints one table. Uses a temp dir in
 * /tmp, removed at the end. Single-threaded: figures are per core.
 *
 *   bench_kv [keys]      (default 1000000)
 */
#include "kv/kv.h"

#include "common/error.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VALUE_BYTES 256

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Rate by wall time, and by the calling thread's CPU time (the figure that
 * does not depend on what else the machine runs; RocksDB's background
 * flushes and compactions run on their own threads and are not in it). */
struct rate {
	double wall, cpu;
};

static double t_wall, t_cpu;

static void t_start(void)
{
	t_wall = now_s();
	t_cpu = cpu_s();
}

static struct rate t_rate(double n)
{
	return (struct rate){n / (now_s() - t_wall), n / (cpu_s() - t_cpu)};
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Key i: "gggg/iiiiii" padded to 8..32 bytes; group gggg holds 1000 keys. */
static size_t make_key(char *buf, uint64_t i)
{
	int n = snprintf(buf, 40, "%04llu/%07llu", (unsigned long long)(i / 1000),
	                 (unsigned long long)i);
	size_t len = 12 + (size_t)((i * 2654435761u) % 21); /* 12..32 */

	while ((size_t)n < len)
		buf[n++] = 'x';
	return len;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_kv: %s: %s\n", what, moor_strerror(rc));
	exit(1);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static size_t cache_bytes; /* 0: kv's default; MOOR_KV_CACHE_MB sets it */

static struct kv *open_store(const char *path)
{
	struct kv_config cfg = {.path = path, .block_cache_bytes = cache_bytes};
	struct kv *kv;
	int rc = kv_open(&cfg, &kv);

	if (rc)
		die("open", rc);
	return kv;
}

static uint64_t g_index;
static char value[VALUE_BYTES];

/* Put keys [from, to) in batches of `batch`. */
static struct rate load(struct kv *kv, uint64_t from, uint64_t to, unsigned batch)
{
	Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutResponse *resp;
	char key[40];
	int rc;

	t_start();
	req.value = (ProtobufCBinaryData){VALUE_BYTES, (uint8_t *)value};
	for (uint64_t i = from; i < to;) {
		if ((rc = kv_batch_begin(kv)) != 0)
			die("begin", rc);
		for (unsigned b = 0; b < batch && i < to; b++, i++) {
			req.key = (ProtobufCBinaryData){make_key(key, i), (uint8_t *)key};
			value[i % VALUE_BYTES] ^= 1;
			if ((rc = kv_batch_put(kv, ++g_index, &req, &resp)) != 0)
				die("put", rc);
			kv_response_free(resp);
		}
		if ((rc = kv_batch_commit(kv, g_index, 1)) != 0)
			die("commit", rc);
	}
	return t_rate((double)(to - from));
}

static struct rate point_reads(struct kv *kv, uint64_t nkeys, long n, int64_t rev)
{
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *resp;
	char key[40];
	int rc;

	t_start();
	req.revision = rev;
	for (long i = 0; i < n; i++) {
		req.key = (ProtobufCBinaryData){make_key(key, rnd() % nkeys), (uint8_t *)key};
		if ((rc = kv_range(kv, &req, &resp)) != 0)
			die("range", rc);
		if (resp->n_kvs != 1)
			die("range: key missing", MOOR_ENOTFOUND);
		kv_response_free(resp);
	}
	return t_rate((double)n);
}

static struct rate prefix_reads(struct kv *kv, uint64_t nkeys, long n)
{
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *resp;
	char k[32], e[32];
	int rc;

	t_start();
	for (long i = 0; i < n; i++) {
		unsigned long long g = rnd() % (nkeys / 1000);

		snprintf(k, sizeof k, "%04llu/", g);
		snprintf(e, sizeof e, "%04llu0", g); /* '/' + 1 == '0' */
		req.key = (ProtobufCBinaryData){5, (uint8_t *)k};
		req.range_end = (ProtobufCBinaryData){5, (uint8_t *)e};
		if ((rc = kv_range(kv, &req, &resp)) != 0)
			die("prefix range", rc);
		if (resp->n_kvs != 1000)
			die("prefix range: not 1000 keys", MOOR_ENOTFOUND);
		kv_response_free(resp);
	}
	return t_rate((double)n);
}

/* Watch catch-up from the store: every revision from `from` to the
 * current one through kv_history_read, 1000 events per read (as the
 * server's catch-up reads), with or without prev_kv; *events counts them. */
static struct rate history_reads(struct kv *kv, int64_t from, bool prev_kv, long *events)
{
	struct kv_history h;
	int64_t rev = from;
	int rc;

	*events = 0;
	t_start();
	for (;;) {
		if ((rc = kv_history_read(kv, rev, 1000, prev_kv, &h)) != 0)
			die("history", rc);
		*events += (long)h.n_events;
		rev = h.next_rev;
		if (h.n_events == 0 || rev > h.revision) {
			kv_history_free(&h);
			break;
		}
		kv_history_free(&h);
	}
	return t_rate((double)*events);
}

/* Txns: if mod_revision(key) == known then put; batches of 100. */
static struct rate txns(struct kv *kv, long n)
{
	enum { KEYS = 1000 };
	static int64_t mod[KEYS];
	Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__Compare c = ETCDSERVERPB__COMPARE__INIT, *cp = &c;
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT, *opp = &op;
	Etcdserverpb__TxnResponse *resp;
	char key[40];
	long ok = 0;
	int rc;

	c.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
	c.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op.request_put = &p;
	p.value = (ProtobufCBinaryData){VALUE_BYTES, (uint8_t *)value};
	t.compare = &cp;
	t.n_compare = 1;
	t.success = &opp;
	t.n_success = 1;
	/* learn the current mod revisions */
	for (int i = 0; i < KEYS; i++) {
		Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
		Etcdserverpb__RangeResponse *rr;

		r.key = (ProtobufCBinaryData){make_key(key, (uint64_t)i), (uint8_t *)key};
		if ((rc = kv_range(kv, &r, &rr)) != 0)
			die("range", rc);
		mod[i] = rr->kvs[0]->mod_revision;
		kv_response_free(rr);
	}
	t_start();
	for (long i = 0; i < n;) {
		if ((rc = kv_batch_begin(kv)) != 0)
			die("begin", rc);
		for (int b = 0; b < 100 && i < n; b++, i++) {
			int k = (int)(rnd() % KEYS);

			c.key = (ProtobufCBinaryData){make_key(key, (uint64_t)k), (uint8_t *)key};
			p.key = c.key;
			c.mod_revision = mod[k];
			if ((rc = kv_batch_txn(kv, ++g_index, &t, &resp)) != 0)
				die("txn", rc);
			if (resp->succeeded) {
				ok++;
				mod[k] = resp->header->revision;
			}
			kv_response_free(resp);
		}
		if ((rc = kv_batch_commit(kv, g_index, 1)) != 0)
			die("commit", rc);
	}
	if (ok != n)
		die("txn compares failed", MOOR_EINVAL);
	return t_rate((double)n);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* In a fresh process: open, read 1000 keys, print "seconds rss_kib revision". */
static int reopen_child(const char *path, uint64_t nkeys)
{
	double t0 = now_s(), t;
	struct kv *kv = open_store(path);
	struct kv_status st;

	t = now_s() - t0;
	point_reads(kv, nkeys, 1000, 0);
	kv_status(kv, &st);
	printf("%.6f %ld %lld\n", t, rss_kib(), (long long)st.revision);
	kv_close(kv);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t nkeys = 1000000;
	char dir[] = "/tmp/moor-kv-bench-XXXXXX", path[64], cmd[256];
	struct rate r1, r100, r1000, reads, prefix, old, txn, hist, hist_prev;
	long hist_n, hist_prev_n;
	double open_s = 0;
	long rss = 0;
	long long rev_seen = 0;
	int64_t mid_rev;
	struct kv_status st;
	struct kv *kv;
	FILE *p;

	if (getenv("MOOR_KV_CACHE_MB"))
		cache_bytes = strtoull(getenv("MOOR_KV_CACHE_MB"), NULL, 0) << 20;
	if (argc == 4 && strcmp(argv[1], "--reopen") == 0)
		return reopen_child(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 3 && (strcmp(argv[1], "--puts") == 0 || strcmp(argv[1], "--reads") == 0 ||
	                  strcmp(argv[1], "--history") == 0)) {
		/* one measure alone, for profiling: puts in batches of 1000;
		 * current single-key reads; watch catch-up from revision 1
		 * (PREV_KV=1 in the environment: with prev_kv) */
		struct rate r;
		long n;

		nkeys = strtoull(argv[2], NULL, 0);
		if (!mkdtemp(dir))
			die("mkdtemp", MOOR_EINVAL);
		snprintf(path, sizeof path, "%s/kv", dir);
		kv = open_store(path);
		r = load(kv, 0, nkeys, 1000);
		if (strcmp(argv[1], "--puts") == 0) {
			printf("puts/s applied, batches of 1000: %.0f (%.0f per CPU-second)\n",
			       r.wall, r.cpu);
		} else if (strcmp(argv[1], "--reads") == 0) {
			kv_flush(kv, NULL);
			r = point_reads(kv, nkeys, 1000000, 0);
			printf("single-key range/s: %.0f (%.0f per CPU-second)\n", r.wall, r.cpu);
		} else {
			kv_flush(kv, NULL);
			r = history_reads(kv, 1, getenv("PREV_KV") != NULL, &n);
			printf("history events/s: %.0f (%.0f per CPU-second), %ld events\n", r.wall,
			       r.cpu, n);
		}
		kv_close(kv);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		return 0;
	}
	if (argc > 1)
		nkeys = strtoull(argv[1], NULL, 0);
	if (nkeys < 20000)
		nkeys = 20000;
	nkeys -= nkeys % 1000;
	memset(value, 'v', sizeof value);
	if (!mkdtemp(dir))
		die("mkdtemp", MOOR_EINVAL);
	snprintf(path, sizeof path, "%s/kv", dir);
	kv = open_store(path);

	r1 = load(kv, 0, 10000, 1);
	r100 = load(kv, 10000, 110000 < nkeys ? 110000 : nkeys, 100);
	kv_status(kv, &st);
	mid_rev = st.revision;
	r1000 = load(kv, 110000 < nkeys ? 110000 : nkeys, nkeys, 1000);
	/* overwrite the first 110000 keys so reads at mid_rev go to history */
	load(kv, 0, 110000 < nkeys ? 110000 : nkeys, 1000);

	reads = point_reads(kv, nkeys, 500000, 0);
	prefix = prefix_reads(kv, nkeys, 2000);
	old = point_reads(kv, 110000 < nkeys ? 110000 : nkeys, 200000, mid_rev);
	txn = txns(kv, 200000);
	kv_status(kv, &st);
	hist = history_reads(kv, st.revision - 1000000 > 1 ? st.revision - 1000000 : 1, false,
	                     &hist_n);
	hist_prev = history_reads(kv, st.revision - 1000000 > 1 ? st.revision - 1000000 : 1, true,
	                          &hist_prev_n);
	kv_close(kv);

	snprintf(cmd, sizeof cmd, "/proc/%d/exe --reopen %s %llu", (int)getpid(), path,
	         (unsigned long long)nkeys);
	p = popen(cmd, "r");
	if (!p || fscanf(p, "%lf %ld %lld", &open_s, &rss, &rev_seen) != 3)
		die("reopen child", MOOR_EINVAL);
	pclose(p);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);

	printf("kv benchmark: %llu keys, keys 12-32 bytes, values %d bytes, one thread\n",
	       (unsigned long long)nkeys, VALUE_BYTES);
	printf("%-46s %12s %12s\n", "measure", "per second", "per CPU-s");
#define ROW(name, r) printf("%-46s %12.0f %12.0f\n", name, (r).wall, (r).cpu)
	ROW("puts applied, batches of 1", r1);
	ROW("puts applied, batches of 100", r100);
	ROW("puts applied, batches of 1000", r1000);
	ROW("single-key range, current revision", reads);
	ROW("1000-key prefix range", prefix);
	ROW("single-key range, old revision", old);
	ROW("txn (compare mod_revision + put), batch 100", txn);
	printf("watch catch-up from the store, %ld events:\n", hist_n);
	ROW("  history events read, 1000 per read", hist);
	(void)hist_prev_n;
	ROW("  ... with prev_kv", hist_prev);
	printf("%-46s %12.3f\n", "reopen with all keys, seconds", open_s);
	printf("%-46s %12.1f\n", "resident memory after reopen + 1000 reads, MiB", rss / 1024.0);
	printf("%-46s %12lld\n", "revision after reopen", rev_seen);
	return 0;
}

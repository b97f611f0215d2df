/*
 * WAL benchmark: appends of 256-byte entries made durable, against a raw
 * baseline, and group commit under 64 concurrent writers.
 *
 * Single writer, for batch sizes 1, 16, 256 and 4096: each batch is
 * wal_append + wal_sync (one write, one fdatasync) on 64 MiB preallocated
 * segments; the raw baseline writes the same number of bytes per batch (the
 * WAL's average encoded batch, headers included) with pwrite + fdatasync in a
 * plain loop on a preallocated file of the same size. Figures: records/s,
 * MiB/s of entry data, fdatasync/s, p50/p99 append-to-durable latency, and
 * the WAL/raw throughput ratio.
 *
 * Group commit: 64 threads each append one entry at a time (index order fixed
 * by wal_submit under a mutex, durability awaited with wal_wait); a wrapper
 * around the POSIX file system counts fdatasyncs in flight, whose maximum
 * must be 1.
 *
 * Files go under a mkdtemp() directory in $MOOR_BENCH_DIR (default /tmp) and
 * are removed at the end. $MOOR_BENCH_SECONDS sets each run's length
 * (default 1.5).
 */
#include "common/clock.h"
#include "common/error.h"
#include "wal/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ENTRY_BYTES 256
#define SEGMENT_BYTES (64u << 20)
#define WRITERS 64

static double run_seconds = 1.5;
static char base_dir[4096];

/* ---- an fdatasync-counting wrapper around the POSIX file system ---------- */

static const struct wal_fs *real_fs;
static atomic_uint in_flight, max_in_flight;
static atomic_ulong syncs;

static int c_open(void *c, const char *d, const char *n, int f, int *fd)
{
	return real_fs->open(c, d, n, f, fd);
}
static int c_close(void *c, int fd)
{
	return real_fs->close(c, fd);
}
static int c_pread(void *c, int fd, void *b, size_t l, uint64_t o, size_t *n)
{
	return real_fs->pread(c, fd, b, l, o, n);
}
static int c_pwrite(void *c, int fd, const void *b, size_t l, uint64_t o, size_t *n)
{
	return real_fs->pwrite(c, fd, b, l, o, n);
}
static int c_fdatasync(void *c, int fd)
{
	unsigned now = atomic_fetch_add(&in_flight, 1) + 1, m = atomic_load(&max_in_flight);
	int rc;

	while (now > m && !atomic_compare_exchange_weak(&max_in_flight, &m, now))
		;
	rc = real_fs->fdatasync(c, fd);
	atomic_fetch_sub(&in_flight, 1);
	atomic_fetch_add(&syncs, 1);
	return rc;
}
static int c_fallocate(void *c, int fd, uint64_t l)
{
	return real_fs->fallocate(c, fd, l);
}
static int c_ftruncate(void *c, int fd, uint64_t l)
{
	return real_fs->ftruncate(c, fd, l);
}
static int c_size(void *c, int fd, uint64_t *l)
{
	return real_fs->size(c, fd, l);
}
static int c_rename(void *c, const char *d, const char *a, const char *b)
{
	return real_fs->rename(c, d, a, b);
}
static int c_unlink(void *c, const char *d, const char *n)
{
	return real_fs->unlink(c, d, n);
}
static int c_dir_sync(void *c, const char *d)
{
	return real_fs->dir_sync(c, d);
}
static int c_dir_list(void *c, const char *d, int (*fn)(void *, const char *), void *a)
{
	return real_fs->dir_list(c, d, fn, a);
}
static struct wal_fs counting_fs = {c_open,      c_close,     c_pread, c_pwrite, c_fdatasync,
                                    c_fallocate, c_ftruncate, c_size,  c_rename, c_unlink,
                                    c_dir_sync,  c_dir_list,  NULL};

/* ---- helpers --------------------------------------------------------------- */

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_wal: %s: %s\n", what, moor_strerror(rc));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[8192];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR)
			remove_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static struct wal *open_wal(const char *name)
{
	struct wal_config cfg = {.fs = &counting_fs, .segment_bytes = SEGMENT_BYTES};
	static char dir[8192];
	char err[512];
	struct wal *w;
	int rc;

	snprintf(dir, sizeof dir, "%s/%s", base_dir, name);
	if (mkdir(dir, 0755) != 0)
		die(dir, -errno);
	cfg.dir = dir;
	if ((rc = wal_open(&cfg, &w, NULL, err, sizeof err)) != 0) {
		fprintf(stderr, "%s\n", err);
		die("wal_open", rc);
	}
	return w;
}

struct result {
	double recs_per_s, mib_per_s, syncs_per_s, p50_us, p99_us;
	uint64_t bytes_per_batch;
};

/* ---- single writer ------------------------------------------------------- */

/*
 * The WAL and the raw loop run interleaved, one batch each in turn, so that
 * both see the same disk and the same neighbours (this machine is shared);
 * each side's throughput is its records over the time spent in its own calls.
 */
struct side {
	uint64_t *lat;
	size_t n, cap;
	uint64_t ns;
};

static void side_add(struct side *s, uint64_t ns)
{
	if (s->n == s->cap &&
	    !(s->lat = realloc(s->lat, (s->cap = s->cap ? s->cap * 2 : 4096) * sizeof *s->lat)))
		die("realloc", MOOR_ENOMEM);
	s->lat[s->n++] = ns;
	s->ns += ns;
}

static void side_result(struct side *s, size_t batch, uint64_t nsyncs, struct result *r)
{
	double secs = (double)s->ns / 1e9;

	r->recs_per_s = (double)(s->n * batch) / secs;
	r->mib_per_s = r->recs_per_s * ENTRY_BYTES / (1 << 20);
	r->syncs_per_s = (double)nsyncs / secs;
	r->p50_us = pct_us(s->lat, s->n, 0.50);
	r->p99_us = pct_us(s->lat, s->n, 0.99);
	free(s->lat);
}

/* Bytes of one batch of `batch` entries on disk (docs/wal-format.md):
 * record header 24, entries header 16, per entry 16 + data, padded to 8. */
static uint64_t encoded_batch_bytes(size_t batch)
{
	uint64_t n = 24 + 16 + (uint64_t)batch * (16 + ENTRY_BYTES);

	return (n + 7) & ~(uint64_t)7;
}

static void run_pair(size_t batch, struct result *wr, struct result *rr)
{
	char name[64], path[8192];
	struct wal *w;
	struct wal_entry *e = calloc(batch, sizeof *e);
	static unsigned char data[ENTRY_BYTES];
	uint64_t bytes = encoded_batch_bytes(batch), idx = 1, off = 0, start, t0, wal_syncs = 0;
	unsigned char *buf = malloc(bytes);
	struct side ws = {0}, rs = {0};
	struct wal_stats st;
	size_t files = 0;
	int fd = -1;

	if (!e || !buf)
		die("malloc", MOOR_ENOMEM);
	memset(data, 0xab, sizeof data);
	memset(buf, 0xab, bytes);
	snprintf(name, sizeof name, "wal-%zu", batch);
	w = open_wal(name);
	start = moor_clock_mono_ns();
	do {
		struct wal_batch b = {NULL, e, batch, NULL};
		uint64_t s0 = atomic_load(&syncs);
		int rc;
		for (size_t i = 0; i < batch; i++)
			e[i] = (struct wal_entry){idx + i, 1, 0, data, sizeof data};
		t0 = moor_clock_mono_ns();
		if ((rc = wal_append(w, &b)) != 0 || (rc = wal_sync(w, NULL)) != 0)
			die("append", rc);
		side_add(&ws, moor_clock_mono_ns() - t0);
		wal_syncs += atomic_load(&syncs) - s0;
		idx += batch;

		if (fd < 0 || off + bytes > SEGMENT_BYTES) {
			if (fd >= 0)
				close(fd);
			snprintf(path, sizeof path, "%s/raw-%zu-%zu", base_dir, batch, files++);
			fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0 || fallocate(fd, 0, 0, SEGMENT_BYTES) != 0)
				die(path, -errno);
			off = 0;
		}
		t0 = moor_clock_mono_ns();
		if (pwrite(fd, buf, bytes, (off_t)off) != (ssize_t)bytes || fdatasync(fd) != 0)
			die("raw write", -errno);
		side_add(&rs, moor_clock_mono_ns() - t0);
		off += bytes;
	} while (ws.n < 20 || (double)(moor_clock_mono_ns() - start) / 1e9 < 2 * run_seconds);
	close(fd);
	wal_stats_get(w, &st);
	side_result(&ws, batch, wal_syncs, wr);
	side_result(&rs, batch, rs.n, rr);
	wr->bytes_per_batch = st.bytes / st.batches;
	rr->bytes_per_batch = bytes;
	wal_close(w);
	free(buf);
	free(e);
}

/* ---- recovery ------------------------------------------------------------- */

/* Reopen a WAL the single-writer run left behind: time recovery (read and
 * verify every segment) and reading every entry back in 64 MiB slices. */
static void run_recovery(const char *name)
{
	struct wal_config cfg = {.fs = &counting_fs, .segment_bytes = SEGMENT_BYTES};
	char dir[8192], err[512];
	struct wal_recovered rec;
	struct wal *w;
	uint64_t t0, t1, t2, idx, bytes = 0;
	int rc;

	snprintf(dir, sizeof dir, "%s/%s", base_dir, name);
	cfg.dir = dir;
	t0 = moor_clock_mono_ns();
	if ((rc = wal_open(&cfg, &w, &rec, err, sizeof err)) != 0) {
		fprintf(stderr, "%s\n", err);
		die("wal_open (recovery)", rc);
	}
	t1 = moor_clock_mono_ns();
	for (idx = rec.first_index; idx <= rec.last_index;) {
		struct wal_entries es;
		if ((rc = wal_read(w, idx, rec.last_index + 1, 64u << 20, &es)) != 0)
			die("wal_read", rc);
		for (size_t i = 0; i < es.n; i++)
			bytes += es.v[i].len;
		idx += es.n;
		wal_entries_free(&es);
	}
	t2 = moor_clock_mono_ns();
	printf("\nrecovery of %s: %" PRIu64 " segments, %" PRIu64
	       " entries; open (scan + verify) %.0f ms; "
	       "read back %.1f MiB of entry data at %.0f MiB/s\n",
	       name, rec.segments, rec.last_index - rec.first_index + 1, (double)(t1 - t0) / 1e6,
	       (double)bytes / (1 << 20), (double)bytes / (1 << 20) / ((double)(t2 - t1) / 1e9));
	wal_close(w);
}

/* ---- 64 concurrent writers ------------------------------------------------ */

struct group {
	struct wal *w;
	pthread_mutex_t order; /* fixes the index order of submissions */
	uint64_t next_index;
	atomic_int stop;
};

struct writer {
	struct group *g;
	pthread_t t;
	uint64_t *lat;
	size_t n, cap;
};

static void *writer_main(void *arg)
{
	struct writer *me = arg;
	struct group *g = me->g;
	static const unsigned char data[ENTRY_BYTES];

	while (!atomic_load(&g->stop)) {
		struct wal_entry e = {0, 1, 0, data, sizeof data};
		struct wal_batch b = {NULL, &e, 1, NULL};
		struct wal_req req;
		uint64_t t0 = moor_clock_mono_ns();
		int rc;
		pthread_mutex_lock(&g->order);
		e.index = g->next_index++;
		rc = wal_submit(g->w, &req, &b);
		pthread_mutex_unlock(&g->order);
		if (rc != 0 || (rc = wal_wait(g->w, &req, NULL)) != 0)
			die("group append", rc);
		if (me->n == me->cap &&
		    !(me->lat = realloc(me->lat, (me->cap = me->cap ? me->cap * 2 : 1024) *
		                                     sizeof *me->lat)))
			die("realloc", MOOR_ENOMEM);
		me->lat[me->n++] = moor_clock_mono_ns() - t0;
	}
	return NULL;
}

static void run_group(void)
{
	struct group g;
	struct writer *ws = calloc(WRITERS, sizeof *ws);
	struct timespec ts = {(time_t)(2 * run_seconds),
	                      (long)((2 * run_seconds - (double)(time_t)(2 * run_seconds)) * 1e9)};
	uint64_t start, end, s0, *all, total = 0;
	struct wal_stats st;
	size_t k = 0;
	double secs;

	memset(&g, 0, sizeof g);
	pthread_mutex_init(&g.order, NULL);
	g.next_index = 1;
	g.w = open_wal("group");
	atomic_store(&max_in_flight, 0);
	s0 = atomic_load(&syncs);
	start = moor_clock_mono_ns();
	for (int i = 0; i < WRITERS; i++) {
		ws[i].g = &g;
		if (pthread_create(&ws[i].t, NULL, writer_main, &ws[i]) != 0)
			die("pthread_create", -errno);
	}
	nanosleep(&ts, NULL);
	atomic_store(&g.stop, 1);
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(ws[i].t, NULL);
		total += ws[i].n;
	}
	end = moor_clock_mono_ns();
	secs = (double)(end - start) / 1e9;
	wal_stats_get(g.w, &st);
	if (!(all = malloc(total * sizeof *all)))
		die("malloc", MOOR_ENOMEM);
	for (int i = 0; i < WRITERS; i++) {
		memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
		k += ws[i].n;
		free(ws[i].lat);
	}
	printf("\ngroup commit, %d writers, 1 entry of %d B per append:\n", WRITERS, ENTRY_BYTES);
	printf("%12s %10s %12s %14s %10s %10s %16s\n", "records/s", "MiB/s", "fdatasync/s",
	       "records/fsync", "p50 us", "p99 us", "max fsync inflight");
	printf("%12.0f %10.2f %12.0f %14.1f %10.0f %10.0f %16u\n", (double)total / secs,
	       (double)total * ENTRY_BYTES / (1 << 20) / secs,
	       (double)(atomic_load(&syncs) - s0) / secs,
	       (double)total / (double)(atomic_load(&syncs) - s0), pct_us(all, total, 0.5),
	       pct_us(all, total, 0.99), atomic_load(&max_in_flight));
	printf("write calls: %" PRIu64 " for %" PRIu64 " batches\n", st.writes, st.batches);
	if (atomic_load(&max_in_flight) != 1) {
		fprintf(stderr, "bench_wal: %u fdatasyncs were in flight at once\n",
		        atomic_load(&max_in_flight));
		exit(1);
	}
	free(all);
	free(ws);
	wal_close(g.w);
	pthread_mutex_destroy(&g.order);
}

int main(void)
{
	static const size_t batches[] = {1, 16, 256, 4096};
	const char *env = getenv("MOOR_BENCH_DIR"), *secs = getenv("MOOR_BENCH_SECONDS");

	real_fs = wal_fs_posix();
	if (secs && atof(secs) > 0)
		run_seconds = atof(secs);
	snprintf(base_dir, sizeof base_dir, "%s/moor-bench-wal-XXXXXX", env ? env : "/tmp");
	if (!mkdtemp(base_dir))
		die("mkdtemp", -errno);
	printf("WAL vs raw write+fdatasync, %d B entries, %.1f s per run, dir %s\n", ENTRY_BYTES,
	       run_seconds, base_dir);
	printf("%6s | %11s %8s %9s %8s %8s | %11s %8s %8s %8s | %6s\n", "batch", "records/s",
	       "MiB/s", "fsync/s", "p50 us", "p99 us", "raw rec/s", "raw MiB/s", "p50 us", "p99 us",
	       "ratio");
	for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
		struct result wr, rr;
		run_pair(batches[i], &wr, &rr);
		printf("%6zu | %11.0f %8.2f %9.0f %8.0f %8.0f | %11.0f %8.2f %8.0f %8.0f | %6.3f\n",
		       batches[i], wr.recs_per_s, wr.mib_per_s, wr.syncs_per_s, wr.p50_us,
		       wr.p99_us, rr.recs_per_s, rr.mib_per_s, rr.p50_us, rr.p99_us,
		       wr.recs_per_s / rr.recs_per_s);
		fflush(stdout);
	}
	run_recovery("wal-4096");
	run_group();
	remove_tree(base_dir);
	return 0;
}

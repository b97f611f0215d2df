/*
 * Raft core throughput: entries per second committed and applied through a
 * 3-member cluster in one thread, with no I/O (raft_memstorage as the disk,
 * messages handed from ready batches straight to raft_step), 256-byte
 * entries, proposed in batches of 1 (raft_propose) and of 64
 * (raft_propose_batch) per round. A round is: the leader proposes the batch,
 * then every member runs one ready/advance cycle and its messages are
 * delivered. Storage is compacted every 8192 entries
 * so memory stays flat, as a real member's would.
 *
 * Allocations are counted with a counting moor_alloc, separately for the
 * three raft cores and for the three in-memory storages.
 *
 *   build/bench/bench_raft [total_entries]
 */
#include "raft/raft.h"

#include "common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENTRY_BYTES 256
#define N 3

struct counting {
	struct moor_alloc a;
	unsigned long long allocs; /* malloc + realloc(NULL) + realloc growth */
};

static void *c_malloc(void *ctx, size_t n)
{
	((struct counting *)ctx)->allocs++;
	return malloc(n ? n : 1);
}

static void *c_realloc(void *ctx, void *p, size_t n)
{
	((struct counting *)ctx)->allocs++;
	return realloc(p, n ? n : 1);
}

static void c_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void counting_init(struct counting *c)
{
	memset(c, 0, sizeof *c);
	c->a.malloc = c_malloc;
	c->a.realloc = c_realloc;
	c->a.free = c_free;
	c->a.ctx = c;
}

struct cluster {
	struct raft *r[N + 1];
	struct raft_memstorage *ms[N + 1];
	uint64_t applied[N + 1];
	uint64_t compacted[N + 1];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_raft: %s failed: %d\n", what, rc);
	exit(1);
}

/* One ready/advance cycle of member i; its messages go straight to their
 * targets (none of which is inside its own ready at that moment). */
static void cycle(struct cluster *c, int i)
{
	struct raft_ready rd;
	int rc;

	if (!raft_has_ready(c->r[i]))
		return;
	if ((rc = raft_ready(c->r[i], &rd)))
		die("ready", rc);
	for (size_t k = 0; k < rd.n_msgs_now; k++)
		raft_step(c->r[rd.msgs_now[k].to], &rd.msgs_now[k]);
	if (rd.n_entries && (rc = raft_memstorage_append(c->ms[i], rd.entries, rd.n_entries)))
		die("append", rc);
	if (rd.hard_state_changed)
		raft_memstorage_set_hard_state(c->ms[i], &rd.hard_state);
	for (size_t k = 0; k < rd.n_msgs_after_persist; k++)
		raft_step(c->r[rd.msgs_after_persist[k].to], &rd.msgs_after_persist[k]);
	if (rd.n_committed)
		c->applied[i] = rd.committed[rd.n_committed - 1].index;
	if ((rc = raft_advance(c->r[i], &rd)))
		die("advance", rc);
	if (c->applied[i] >= c->compacted[i] + 8192) {
		struct raft_conf_state cs;

		raft_conf_state_applied(c->r[i], &cs);
		raft_memstorage_compact(c->ms[i], c->applied[i] - 1024, &cs, NULL, 0);
		c->compacted[i] = c->applied[i] - 1024;
	}
}

static void run(unsigned batch, unsigned long total, struct counting *core, struct counting *store,
                double *secs, unsigned long long *core_allocs, unsigned long long *store_allocs)
{
	struct cluster c;
	const uint64_t voters[N] = {1, 2, 3};
	unsigned char data[ENTRY_BYTES];
	unsigned long proposed = 0;
	struct raft_buf bufs[64];
	double t0;

	memset(&c, 0, sizeof c);
	memset(data, 0xAB, sizeof data);
	for (int i = 1; i <= N; i++) {
		struct raft_config cfg = {0};

		if (raft_memstorage_create(&store->a, &c.ms[i]) ||
		    raft_memstorage_bootstrap(c.ms[i], voters, N))
			die("storage", -1);
		cfg.id = (uint64_t)i;
		cfg.storage = raft_memstorage_storage(c.ms[i]);
		cfg.alloc = &core->a;
		cfg.max_inflight_msgs = 512;
		if (raft_create(&cfg, &c.r[i]))
			die("create", -1);
	}
	raft_campaign(c.r[1]);
	for (int k = 0; k < 20; k++)
		for (int i = 1; i <= N; i++)
			cycle(&c, i);
	/* warm up to the steady state, then count */
	for (unsigned b = 0; b < batch; b++) {
		bufs[b].data = data;
		bufs[b].len = sizeof data;
	}
	for (int w = 0; w < 2000; w++) {
		raft_propose_batch(c.r[1], bufs, batch);
		for (int i = 1; i <= N; i++)
			cycle(&c, i);
		cycle(&c, 1);
	}
	uint64_t start_index = c.applied[1];
	core->allocs = store->allocs = 0;
	t0 = now_s();
	while (proposed < total) {
		int rc = batch == 1 ? raft_propose(c.r[1], data, sizeof data)
		                    : raft_propose_batch(c.r[1], bufs, batch);

		if (rc)
			die("propose", rc);
		proposed += batch;
		for (int i = 1; i <= N; i++)
			cycle(&c, i);
		cycle(&c, 1);
	}
	while (c.applied[1] < start_index + proposed || c.applied[2] < start_index + proposed ||
	       c.applied[3] < start_index + proposed)
		for (int i = 1; i <= N; i++)
			cycle(&c, i);
	*secs = now_s() - t0;
	*core_allocs = core->allocs;
	*store_allocs = store->allocs;
	for (int i = 1; i <= N; i++) {
		raft_destroy(c.r[i]);
		raft_memstorage_destroy(c.ms[i]);
	}
}

int main(int argc, char **argv)
{
	unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 0) : 2000000;
	const unsigned batches[] = {1, 64};

	printf("raft core, 3 members in one thread, no I/O, %d-byte entries, %lu entries per run\n",
	       ENTRY_BYTES, total);
	printf("%-8s %14s %10s %16s %18s\n", "batch", "entries/s", "seconds", "core allocs/ent",
	       "storage allocs/ent");
	for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
		struct counting core, store;
		double secs;
		unsigned long long ca, sa;
		unsigned long n = batches[k] == 1 ? total / 4 : total;

		counting_init(&core);
		counting_init(&store);
		run(batches[k], n, &core, &store, &secs, &ca, &sa);
		printf("%-8u %14.0f %10.3f %16.2f %18.2f\n", batches[k], (double)n / secs, secs,
		       (double)ca / (double)n, (double)sa / (double)n);
	}
	return 0;
}

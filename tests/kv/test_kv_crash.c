/*
 * Crash recovery: a child process applies a seeded stream of batches to a
 * store (RocksDB's WAL off, a tiny memtable so background flushes happen all
 * the time, an explicit kv_flush now and then) and reports each committed
 * raft index through a pipe; the parent SIGKILLs it at a random point, then
 * reopens the store and checks, against the reference model replayed from
 * the same seed:
 *  - the applied index is a batch boundary the child committed, no later;
 *  - the state equals the model at exactly that index (no partial batch);
 *  - replaying the stream from the start (as the server replays the raft
 *    log) ignores every entry at or below the applied index, and applying
 *    the rest gives the model's responses, events and state.
 */
#include "kv/kv.h"
#include "tests/kv/harness.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#ifdef MOOR_SAN
#define ROUNDS 4
#define OPS 1500
#else
#define ROUNDS 10
#define OPS 3000
#endif

#define CRASH_WRITE_BUFFER (64u * 1024u)

/*
 * The batch stream, identical in child and parent: batch sizes, the ops,
 * the gaps of non-kv entries and the flushes all come from the seed.
 * `on_batch` runs after each commit. Returns false on a mismatch.
 */
typedef bool (*batch_fn)(struct harness *h, void *ctx);

static bool drive(struct harness *h, long nops, bool compare, batch_fn on_batch, void *ctx)
{
	long done = 0;

	while (done < nops) {
		unsigned n = 1 + rng_below(&h->rng, 6);
		bool ok = kv_batch_begin(h->kv) == 0;

		for (unsigned i = 0; ok && i < n; i++, done++) {
			struct gen_op op;

			gen_write(&h->rng, &h->m, &op);
			ok = harness_apply(h, &op, compare);
			gen_op_free(&op);
		}
		h->index += rng_below(&h->rng, 3) == 0 ? 1 : 0;
		ok = ok && harness_commit(h, h->index, compare);
		if (ok && rng_below(&h->rng, 40) == 0)
			ok = kv_flush(h->kv, NULL) == 0;
		if (!ok || (on_batch && !on_batch(h, ctx)))
			return false;
	}
	return true;
}

static bool child_report(struct harness *h, void *ctx)
{
	int fd = *(int *)ctx;
	uint64_t idx = h->index;

	return write(fd, &idx, sizeof idx) == (ssize_t)sizeof idx;
}

/* The child is this binary re-executed (a fresh process: RocksDB's thread
 * pools do not survive fork), given the store path and seed. */
static int child_main(const char *store, uint64_t seed, int fd)
{
	struct harness h;

	if (harness_open(&h, seed, CRASH_WRITE_BUFFER) != 0)
		return 2;
	/* harness_open made a fresh temp dir; use the parent's store instead */
	kv_close(h.kv);
	h.kv = NULL;
	rm_rf(h.dir);
	snprintf(h.store, sizeof h.store, "%s", store);
	if (harness_reopen(&h) != 0)
		return 3;
	drive(&h, OPS, true, child_report, &fd); /* the model steers the generator */
	/* done: wait to be killed */
	for (;;)
		pause();
}

struct check_ctx {
	uint64_t applied;
	uint64_t reported; /* the last index the child reported */
	uint64_t bound;    /* the first batch end after it: the kill may land
	                    * between a commit and its report, not later */
	bool checked;
};

/* When the replay reaches the recovered index, the states must be equal. */
static bool at_recovered(struct harness *h, void *ctx)
{
	struct check_ctx *c = ctx;

	if (c->bound == 0 && h->index > c->reported)
		c->bound = h->index;
	if (c->checked)
		return true;
	if (h->index == c->applied) {
		c->checked = true;
		if (!harness_check_state(h)) {
			fprintf(stderr, "state at recovered index %llu differs from the model\n",
			        (unsigned long long)c->applied);
			return false;
		}
		return true;
	}
	if (h->index > c->applied) {
		fprintf(stderr, "recovered index %llu is not a batch boundary\n",
		        (unsigned long long)c->applied);
		return false;
	}
	return true;
}

static bool crash_round(uint64_t seed)
{
	struct harness h;
	struct rng pick = {seed * 7919};
	uint64_t target, idx, last = 0;
	struct check_ctx cc = {0};
	struct kv_status st;
	int p[2], status;
	pid_t pid;
	bool ok;

	if (harness_open(&h, seed, CRASH_WRITE_BUFFER) != 0 || pipe(p) != 0)
		return false;
	kv_close(h.kv); /* the child owns the store until it dies */
	h.kv = NULL;
	rm_rf(h.store); /* and creates it */
	target = 1 + rng_below(&pick, OPS);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char seed_s[32], fd_s[16];

		close(p[0]);
		snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
		snprintf(fd_s, sizeof fd_s, "%d", p[1]);
		execl("/proc/self/exe", "kv_crash", "--child", h.store, seed_s, fd_s, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (read(p[0], &idx, sizeof idx) == (ssize_t)sizeof idx) {
		last = idx;
		if (idx >= target)
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* what else the child reported before dying */
	while (read(p[0], &idx, sizeof idx) == (ssize_t)sizeof idx)
		last = idx;
	close(p[0]);
	if (!WIFSIGNALED(status)) {
		fprintf(stderr, "seed %llu: child exited with %d before the kill\n",
		        (unsigned long long)seed, status);
		harness_close(&h, true);
		return false;
	}

	ok = harness_reopen(&h) == 0;
	if (ok) {
		kv_status(h.kv, &st);
		cc.applied = st.applied_index;
		printf("seed %llu: killed after index %llu, recovered at %llu\n",
		       (unsigned long long)seed, (unsigned long long)last,
		       (unsigned long long)st.applied_index);
	}
	cc.reported = last;
	h.replay_upto = cc.applied;
	if (ok && cc.applied == 0) {
		cc.checked = true;
		ok = harness_check_state(&h);
	}
	ok = ok && drive(&h, OPS, true, at_recovered, &cc) && cc.checked && harness_check_state(&h);
	if (ok && cc.applied > (cc.bound ? cc.bound : last)) {
		fprintf(stderr,
		        "recovered index %llu beyond the batch after the last report %llu\n",
		        (unsigned long long)cc.applied, (unsigned long long)cc.bound);
		ok = false;
	}
	if (!ok)
		fprintf(stderr, "FAILED crash round with seed %llu\n", (unsigned long long)seed);
	harness_close(&h, true);
	return ok;
}

static void a_killed_store_reopens_at_a_batch_boundary_and_replay_completes_it(void **state)
{
	const char *one = getenv("MOOR_KV_SEED");

	(void)state;
	if (one && *one) {
		assert_true(crash_round(strtoull(one, NULL, 0)));
		return;
	}
	for (uint64_t s = 1; s <= ROUNDS; s++)
		assert_true(crash_round(1000 + s));
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2], strtoull(argv[3], NULL, 0), atoi(argv[4]));

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_killed_store_reopens_at_a_batch_boundary_and_replay_completes_it),
	};

	return cmocka_run_group_tests_name("kv_crash", tests, NULL, NULL);
}

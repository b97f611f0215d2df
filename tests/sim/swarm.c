/*
 * The seeded swarm: for each seed, draw a cluster (3 or 5 voters) and a
 * fault mix, run it through random faults, heal, and demand liveness; every
 * step checks safety. A failing seed prints its trace tail and the command
 * that replays it exactly.
 *
 *   sim_swarm --start 1 --count 500        seeds 1..500
 *   sim_swarm --seed 42 --verbose          one seed, the whole trace
 *   sim_swarm --count 100000 --jobs 2      split across processes
 *
 * The last line reads "sim: N passed, N failed" (tests/run.sh counts it).
 */
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SWARM_STEPS 1500
#define SWARM_SETTLE_TICKS 800
/* The default seed count: about two minutes on one core in `make test`;
 * scaled down under the sanitizers. */
#ifdef MOOR_SAN
#define SWARM_DEFAULT_SEEDS 60
#else
#define SWARM_DEFAULT_SEEDS 1500
#endif

static const char *g_argv0 = "sim_swarm";

/* Runs one seed; returns its trace hash, sets *ok. */
uint64_t swarm_run(uint64_t seed, bool verbose, bool *ok);
uint64_t swarm_run(uint64_t seed, bool verbose, bool *ok)
{
	struct sim *s = calloc(1, sizeof *s);
	struct sim_opts o = { 0 };
	uint64_t pick = seed * 0x9E3779B97F4A7C15ull, h;

	if (!s)
		abort();
	pick ^= pick >> 29;
	o.n_voters = pick % 3 == 0 ? 5 : 3;
	o.drop_pct = (unsigned)(pick >> 8) % 11;
	o.dup_pct = (unsigned)(pick >> 16) % 6;
	o.max_delay = (unsigned)(pick >> 24) % 5;
	o.faults = true;
	o.membership = (pick >> 32) % 2 == 0;
	o.compact_every = (pick >> 40) % 3 == 0 ? 0 : 20 + (unsigned)(pick >> 44) % 80;
	o.verbose = verbose;
	sim_init(s, seed, &o);
	if (verbose)
		s->trace_out = stdout;
	for (unsigned i = 0; i < SWARM_STEPS && !s->failed; i++) {
		sim_chaos(s);
		sim_step(s);
	}
	if (!s->failed) {
		sim_heal(s);
		sim_settle(s, SWARM_SETTLE_TICKS);
	}
	*ok = !s->failed;
	if (s->failed)
		sim_report(s, stdout, g_argv0);
	else if (verbose)
		printf("seed %llu ok: %llu writes acknowledged, %llu reads, trace hash %016llx\n",
		       (unsigned long long)seed, (unsigned long long)s->acked,
		       (unsigned long long)s->reads_ok, (unsigned long long)s->trace_hash);
	h = s->trace_hash;
	sim_free(s);
	free(s);
	return h;
}

static int run_range(uint64_t start, uint64_t count, unsigned job, unsigned jobs, bool verbose,
		     unsigned *passed, unsigned *failed)
{
	for (uint64_t seed = start + job; seed < start + count; seed += jobs) {
		bool ok;

		swarm_run(seed, verbose, &ok);
		if (ok)
			(*passed)++;
		else
			(*failed)++;
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t start = 1, count = SWARM_DEFAULT_SEEDS;
	unsigned jobs = 1, passed = 0, failed = 0;
	bool verbose = false;

	g_argv0 = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			start = strtoull(argv[++i], NULL, 0);
			count = 1;
		} else if (!strcmp(argv[i], "--start") && i + 1 < argc) {
			start = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--jobs") && i + 1 < argc) {
			jobs = (unsigned)strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--verbose")) {
			verbose = true;
		} else {
			fprintf(stderr,
				"usage: %s [--seed S | --start S --count N] [--jobs J] [--verbose]\n",
				argv[0]);
			return 2;
		}
	}
	if (jobs < 1)
		jobs = 1;
	if (jobs == 1) {
		run_range(start, count, 0, 1, verbose, &passed, &failed);
	} else {
		/* Each child takes every jobs-th seed and reports through its exit
		 * code how many failed (capped); the seeds decide everything, so
		 * the split changes nothing but the wall time. */
		pid_t pids[64];
		int pipes[64][2];

		if (jobs > 64)
			jobs = 64;
		fflush(stdout);
		for (unsigned j = 0; j < jobs; j++) {
			if (pipe(pipes[j]))
				return 2;
			pids[j] = fork();
			if (pids[j] == 0) {
				unsigned res[2] = { 0, 0 };

				close(pipes[j][0]);
				run_range(start, count, j, jobs, verbose, &res[0], &res[1]);
				if (write(pipes[j][1], res, sizeof res) != sizeof res)
					_exit(3);
				_exit(0);
			}
			close(pipes[j][1]);
		}
		for (unsigned j = 0; j < jobs; j++) {
			unsigned res[2] = { 0, 1 };
			int st;

			if (read(pipes[j][0], res, sizeof res) != sizeof res)
				res[1] = 1;
			close(pipes[j][0]);
			waitpid(pids[j], &st, 0);
			passed += res[0];
			failed += res[1];
		}
	}
	printf("sim: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

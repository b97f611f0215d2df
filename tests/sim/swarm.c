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

/* The default seed count: about two minutes on one core in `make test`;
 * scaled down under the sanitizers. */
#ifdef MOOR_SAN
#define SWARM_DEFAULT_SEEDS 1500 /* about 25 s */
#else
#define SWARM_DEFAULT_SEEDS 30000 /* about 110 s of one core at 3.7 ms a seed */
#endif

static const char *g_argv0 = "sim_swarm";

static int run_range(uint64_t start, uint64_t count, unsigned job, unsigned jobs, bool verbose,
                     unsigned *passed, unsigned *failed)
{
	for (uint64_t seed = start + job; seed < start + count; seed += jobs) {
		bool ok;

		sim_swarm_run(seed, verbose, g_argv0, &ok);
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
			fprintf(
			    stderr,
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
				unsigned res[2] = {0, 0};

				close(pipes[j][0]);
				run_range(start, count, j, jobs, verbose, &res[0], &res[1]);
				if (write(pipes[j][1], res, sizeof res) != sizeof res)
					_exit(3);
				_exit(0);
			}
			close(pipes[j][1]);
		}
		for (unsigned j = 0; j < jobs; j++) {
			unsigned res[2] = {0, 1};
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

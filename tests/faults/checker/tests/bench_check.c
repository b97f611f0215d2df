/*
 * Benchmark of the linearizability checker on generated histories: how long
 * the search takes (parsing excluded) as concurrency, value domains,
 * indeterminate ops and history length grow. Prints one table row per case.
 * Run by `make bench`.
 */
#include "tests/faults/checker/checker.h"
#include "tests/faults/checker/tests/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct bench_case {
	const char *name;
	struct gen_cfg cfg;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	static const struct bench_case cases[] = {
	    {"unique values, 10 clients", {1, 10, 200000, 10, 1000000000, 50, 30, 1, 50}},
	    {"unique values, 50 clients", {2, 50, 200000, 4, 1000000000, 50, 30, 1, 50}},
	    {"5 values, 10 clients", {3, 10, 200000, 10, 5, 50, 30, 1, 50}},
	    {"5 values, 24 clients, one key", {4, 24, 50000, 1, 5, 50, 30, 2, 50}},
	    {"unique values, 5% info, 20 clients", {5, 20, 100000, 4, 1000000000, 50, 30, 5, 50}},
	};
	struct chk_budget b = {.max_steps = 0, .max_bytes = (size_t)4 << 30, .deadline_ns = 0};

	printf("%-38s %9s %5s %7s %12s %9s %12s %s\n", "case", "ops", "keys", "clients", "steps",
	       "check_s", "ops/s", "verdict");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct gen_cfg *cfg = &cases[i].cfg;
		struct gen_history g;
		struct chk_result r;
		struct hist h;
		char *text;
		double t0, t1;

		if (gen_register(cfg, &g) != 0 || !(text = gen_to_jsonl(&g)) ||
		    hist_load_string(&h, text) != 0) {
			fprintf(stderr, "bench: cannot build case %zu\n", i);
			return 1;
		}
		t0 = now_s();
		if (chk_linear(&h, &b, &r) != 0)
			return 1;
		t1 = now_s();
		printf("%-38s %9zu %5d %7d %12lld %9.3f %12.0f %s\n", cases[i].name, h.n_ops,
		       cfg->keys, cfg->processes,
		       (long long)json_integer_value(json_object_get(r.detail, "steps")), t1 - t0,
		       (double)h.n_ops / (t1 - t0), chk_verdict_name(r.verdict));
		if (r.verdict != CHK_VALID)
			return 1;
		chk_result_free(&r);
		hist_free(&h);
		free(text);
		gen_free(&g);
	}
	return 0;
}

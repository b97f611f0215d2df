/*
 * moor-check: judges a recorded history with the checkers named on the
 * command line and prints one JSON object (every verdict with its detail)
 * followed by one human line per checker.
 *
 *   moor-check [--time-limit S] [--max-steps N] [--max-mb M] HISTORY CHECKER...
 *   CHECKER: linear | set | watch | lock | revision | all
 *
 * Exit status: 0 every checker valid, 1 some checker found a violation,
 * 2 otherwise (unknown verdict, bad history, bad usage). A checker chosen
 * through "all" that finds nothing of its workload in the history is
 * reported as "skipped"; one named explicitly gives "unknown".
 */
#include "tests/faults/checker/checker.h"

#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const all_checkers[] = {"linear", "set", "watch", "lock", "revision"};

static void usage(void)
{
	fprintf(stderr, "usage: moor-check [--time-limit S] [--max-steps N] [--max-mb M] "
	                "HISTORY CHECKER...\n"
	                "checkers: linear set watch lock revision all\n");
}

static int run_one(const struct hist *h, const char *name, const struct chk_budget *b,
                   struct chk_result *r)
{
	if (strcmp(name, "linear") == 0)
		return chk_linear(h, b, r);
	if (strcmp(name, "set") == 0)
		return chk_set(h, r);
	if (strcmp(name, "watch") == 0)
		return chk_watch(h, r);
	if (strcmp(name, "lock") == 0)
		return chk_lock(h, r);
	if (strcmp(name, "revision") == 0)
		return chk_revision(h, r);
	return MOOR_EINVAL;
}

static int parse_num(const char *s, double *out)
{
	char *end;

	*out = strtod(s, &end);
	return end == s || *end || *out < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct chk_budget b = {.max_steps = 0, .max_bytes = (size_t)2 << 30, .deadline_ns = 0};
	const char *names[16];
	bool implied[16] = {false}; /* selected by "all": skipped if it has nothing to check */
	size_t n_names = 0;
	struct hist h;
	json_t *out, *checkers;
	int i = 1, worst = 0, rc;
	double x;

	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (parse_num(argv[i + 1], &x) != 0) {
			usage();
			return 2;
		}
		if (strcmp(argv[i], "--time-limit") == 0) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			b.deadline_ns =
			    (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (int64_t)(x * 1e9);
		} else if (strcmp(argv[i], "--max-steps") == 0) {
			b.max_steps = (uint64_t)x;
		} else if (strcmp(argv[i], "--max-mb") == 0) {
			b.max_bytes = (size_t)(x * 1048576.0);
		} else {
			usage();
			return 2;
		}
	}
	if (argc - i < 2) {
		usage();
		return 2;
	}
	for (int j = i + 1; j < argc; j++) {
		if (strcmp(argv[j], "all") == 0) {
			for (size_t k = 0; k < 5 && n_names < 16; k++) {
				implied[n_names] = true;
				names[n_names++] = all_checkers[k];
			}
			continue;
		}
		if (n_names == 16 || (strcmp(argv[j], "linear") && strcmp(argv[j], "set") &&
		                      strcmp(argv[j], "watch") && strcmp(argv[j], "lock") &&
		                      strcmp(argv[j], "revision"))) {
			usage();
			return 2;
		}
		names[n_names++] = argv[j];
	}
	rc = hist_load_file(&h, argv[i]);
	if (rc != 0) {
		fprintf(stderr, "moor-check: %s: %s\n", argv[i],
		        h.err[0] ? h.err : moor_strerror(rc));
		printf("{\"history\":\"%s\",\"error\":\"cannot load\"}\n", argv[i]);
		return 2;
	}
	out = json_object();
	checkers = json_object();
	if (!out || !checkers) {
		hist_free(&h);
		return 2;
	}
	json_object_set_new(out, "history", json_string(argv[i]));
	json_object_set_new(out, "checkers", checkers);
	char *lines[16] = {0};

	for (size_t k = 0; k < n_names; k++) {
		struct chk_result r;
		int v;

		rc = run_one(&h, names[k], &b, &r);
		v = rc != 0 ? CHK_UNKNOWN : (int)r.verdict;
		if (rc == 0 && r.empty && implied[k]) {
			json_object_set_new(r.detail, "valid", json_string("skipped"));
			v = CHK_VALID;
		}
		if (rc == 0) {
			char line[sizeof r.summary + 16];

			snprintf(line, sizeof line, "%s%s", r.summary,
			         r.empty && implied[k] ? " (skipped)" : "");
			json_object_set(checkers, names[k], r.detail);
			lines[k] = strdup(line);
		}
		chk_result_free(&r);
		if (v == CHK_INVALID)
			worst = 1;
		else if (v != CHK_VALID && worst == 0)
			worst = 2;
	}
	json_object_set_new(out, "valid",
	                    worst == 0   ? json_true()
	                    : worst == 1 ? json_false()
	                                 : json_string("unknown"));
	json_dumpf(out, stdout, JSON_COMPACT | JSON_SORT_KEYS);
	putchar('\n');
	for (size_t k = 0; k < n_names; k++) {
		printf("%s\n", lines[k] ? lines[k] : "error");
		free(lines[k]);
	}
	json_decref(out);
	hist_free(&h);
	return worst;
}

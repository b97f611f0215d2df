/*
 * moor's history checkers: the judges of the fault-injection suite.
 *
 * A history is a file of JSON lines written by the fault-injection clients
 * (the format is documented in tests/faults/README.md). hist_load_* parse it
 * and pair each invocation with its completion; the checkers read the parsed
 * history and return a verdict with a JSON detail object that explains it:
 *
 *   chk_linear  registers (read / write / cas / delete per key) are linearizable
 *   chk_set     a final read holds every acknowledged add and nothing invented
 *   chk_watch   watch streams are ordered, gap-free, duplicate-free, atomic
 *               per revision, and agree with the writes
 *   chk_lock    fenced writes of the lock workload never let two holders win
 *   chk_revision  response revisions never go back in real time
 *
 * This is test tooling, not a library of the server: it allocates with the C
 * library and reports out-of-memory as an "unknown" verdict. Nothing here
 * prints; the CLI (main.c) formats the results. Not thread-safe; a history
 * may be read by several checkers in turn.
 */
#ifndef MOOR_TESTS_FAULTS_CHECKER_H
#define MOOR_TESTS_FAULTS_CHECKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- histories ---------------------------------------------------------- */

enum hist_status {
	HIST_OK,   /* the operation took effect (or, for a failed cas, was evaluated) */
	HIST_FAIL, /* the operation definitely did not take effect */
	HIST_INFO, /* indeterminate: it may take effect at any time after its call, or never */
};

/* The return time of an operation that never returned. */
#define HIST_TIME_INF INT64_MAX

/*
 * One operation: an "invoke" record and its completion, reduced to the
 * fields the checkers read (the records themselves are not kept, so that a
 * history of millions of ops fits in memory). Strings are interned in the
 * history and live until hist_free; values are canonical JSON text (compact,
 * sorted keys), so equal values have equal text.
 */
struct hist_op {
	int64_t process;
	const char *f;   /* the operation's function ("read", "write", ...) */
	const char *key; /* "" when the record has none */
	size_t key_len;
	const char *value;  /* the invoke's "value"; NULL if absent */
	const char *expect; /* the invoke's "expect"; NULL if absent */
	const char *result; /* the completion's "value"; NULL if absent or not completed */
	int64_t fence;      /* the invoke's "fence", else the completion's */
	int64_t revision;   /* the completion's "revision" */
	bool has_fence, has_revision;
	bool has_error; /* the completion carries "error" */
	enum hist_status status;
	int64_t call_time; /* time_ns of the invoke (or its line number, see below) */
	int64_t ret_time;  /* time_ns of the completion; HIST_TIME_INF for info */
	long call_line;    /* 1-based line numbers in the history */
	long ret_line;     /* 0 if never completed */
};

struct hist {
	json_t *records;     /* the non-operation records (watch streams, write log), in order */
	long *record_lines;  /* the line of each of them */
	struct hist_op *ops; /* operations, in the order of their invoke records */
	size_t n_ops;
	void *pool;      /* interned strings (private) */
	bool line_times; /* some op record lacked time_ns: line numbers are the clock */
	char err[256];   /* why loading failed */
};

/*
 * Parses a history. On success fills *h (free it with hist_free). On failure
 * returns MOOR_EINVAL (malformed: h->err names the line and the problem),
 * MOOR_ENOMEM, or -errno for a file that cannot be read; *h then holds
 * nothing to free but hist_free is harmless.
 */
int hist_load_file(struct hist *h, const char *path);
int hist_load_string(struct hist *h, const char *text);
void hist_free(struct hist *h);

/* ---- verdicts ----------------------------------------------------------- */

enum chk_verdict {
	CHK_VALID = 0,
	CHK_INVALID = 1,
	CHK_UNKNOWN = 2, /* the budget ran out, the history lacks what is needed, or OOM */
};

struct chk_result {
	enum chk_verdict verdict;
	json_t *detail;    /* owned: {"valid": true|false|"unknown", ...counts, explanation} */
	char summary[512]; /* one human line */
	bool empty;        /* the history holds nothing for this checker (verdict unknown) */
};

void chk_result_free(struct chk_result *r);
const char *chk_verdict_name(enum chk_verdict v); /* "valid", "invalid", "unknown" */

/* Limits of the linearizability search; a zero field means no limit. */
struct chk_budget {
	uint64_t max_steps;  /* search steps, per key */
	size_t max_bytes;    /* memory of the state cache, per key */
	int64_t deadline_ns; /* CLOCK_MONOTONIC time at which to give up (all keys) */
};

/*
 * The register workload. Operations with f = "read", "write", "cas" or
 * "delete", grouped by key and checked independently (P-compositionality)
 * against a register that starts absent (null). Fills *r; always returns 0
 * unless memory runs out before a result exists (MOOR_ENOMEM).
 */
int chk_linear(const struct hist *h, const struct chk_budget *budget, struct chk_result *r);

/* The set workload: "add" operations and "final-read" results, per key. */
int chk_set(const struct hist *h, struct chk_result *r);

/* Watch streams ("f": "watch" records) against the writes of the history. */
int chk_watch(const struct hist *h, struct chk_result *r);

/* The lock workload: "acquire", "release" and "fenced-write" per lock key. */
int chk_lock(const struct hist *h, struct chk_result *r);

/* Response revisions of every workload never go back in real time. */
int chk_revision(const struct hist *h, struct chk_result *r);

#endif

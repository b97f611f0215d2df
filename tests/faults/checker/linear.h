/*
 * Private to the linearizability checker: the register operations of one
 * key as the search sees them (linear.c builds them from a history), and the
 * search itself (lin_search.c).
 */
#ifndef MOOR_TESTS_FAULTS_CHECKER_LINEAR_H
#define MOOR_TESTS_FAULTS_CHECKER_LINEAR_H

#include "tests/faults/checker/util.h"

enum lin_kind { LIN_READ, LIN_WRITE, LIN_CAS, LIN_CAS_FAIL };

struct lin_op {
	enum lin_kind kind;
	int32_t arg;    /* read: the value returned; write/cas: the value written */
	int32_t expect; /* cas and failed cas */
	bool info;
	int64_t call, ret;
	size_t hist_idx;
	int32_t orig_arg; /* arg before collapse_unobserved, for explanations */
	int64_t twin;     /* the previous identical op in (return, call) order, or -1 */
};

/* One key's register history and the values it mentions (id 0 = null). */
struct lin_key {
	const char *key;
	size_t key_len;
	struct lin_op *ops;
	size_t n, cap;
	struct strmap values;
	char **names; /* id → canonical text */
	size_t n_names, cap_names;
};

/* What a search found; best_* describe the deepest partial linearization. */
struct lin_outcome {
	uint64_t steps;
	const char *why;     /* for CHK_UNKNOWN: which budget ran out (static) */
	uint32_t *best_seq;  /* op ids in linearization order (owned) */
	long best_depth;     /* length of best_seq; -1 if none */
	uint32_t best_block; /* the op whose return could not be passed */
	uint32_t best_pending[8];
	size_t n_best_pending; /* ops pending at that point, for context */
};

/*
 * Searches for a linearization of k's ops. exact: cache whole bitsets
 * rather than 128-bit fingerprints drawn from seed. Returns CHK_VALID,
 * CHK_INVALID (out->best_* explain it) or CHK_UNKNOWN (out->why), or
 * MOOR_ENOMEM. Free *out with lin_outcome_free in every case.
 */
int lin_search(const struct lin_key *k, const struct chk_budget *b, bool exact, uint64_t seed,
               struct lin_outcome *out);
void lin_outcome_free(struct lin_outcome *out);

/* Orders op ids (uint32_t) by call time, then id; arg: the lin_op array. */
int lin_by_call(const void *a, const void *b, void *arg);

#endif

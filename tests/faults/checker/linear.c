/*
 * The linearizability checker for registers.
 *
 * Each key is an independent register (P-compositionality: a history is
 * linearizable iff its restriction to every key is), starting absent (null).
 * Operations: read (returns a value), write and delete (set it), cas (set it
 * to "value" if it equals "expect"), and a failed cas that was evaluated
 * (the register differed from "expect" at its linearization point). Failed
 * operations that did not take effect are dropped; indeterminate ("info")
 * writes and cas may take effect at any point after their invocation or
 * never; indeterminate reads tell nothing and are dropped.
 *
 * This file turns a history into per-key register ops (values interned as
 * small integers), applies two sound reductions to them (collapse_unobserved,
 * link_twins), runs the search of lin_search.c, confirms a violation, and
 * explains it. Steps, cache memory and a deadline bound the search; running
 * out gives "unknown", never a guess.
 *
 * On a violation the explanation is the deepest partial linearization the
 * search reached and the operation whose return it could not pass.
 */
#include "tests/faults/checker/linear.h"

#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Interns a value's text (consumed: freed or kept); its id in *id. */
static int intern_text(struct lin_key *k, char *s, int32_t *id)
{
	int64_t *slot;
	int rc;

	if (!s)
		return MOOR_ENOMEM;
	rc = strmap_put(&k->values, s, strlen(s), (int64_t)k->n_names, &slot);
	if (rc == 1) {
		if (k->n_names == k->cap_names) {
			size_t cap = k->cap_names ? k->cap_names * 2 : 16;
			char **nn = realloc(k->names, cap * sizeof *nn);

			if (!nn) {
				free(s);
				return MOOR_ENOMEM; /* the map keeps its own copy: harmless */
			}
			k->names = nn;
			k->cap_names = cap;
		}
		k->names[k->n_names++] = s;
		s = NULL;
	}
	free(s);
	if (rc < 0)
		return rc;
	*id = (int32_t)*slot;
	return 0;
}

/* Interns a value's canonical text; NULL (absent) is null. */
static int intern(struct lin_key *k, const char *canon, int32_t *id)
{
	return intern_text(k, strdup(canon ? canon : "null"), id);
}

static void lin_key_free(struct lin_key *k)
{
	free(k->ops);
	strmap_free(&k->values);
	for (size_t i = 0; i < k->n_names; i++)
		free(k->names[i]);
	free(k->names);
}

static int lin_key_init(struct lin_key *k, const char *key, size_t len)
{
	int32_t id;

	memset(k, 0, sizeof *k);
	k->key = key;
	k->key_len = len;
	strmap_init(&k->values);
	return intern(k, NULL, &id); /* id 0 is null: the absent key */
}

/* Translates one history op; *skip when it says nothing about the register. */
static int translate(struct lin_key *k, const struct hist_op *h, struct lin_op *op, bool *skip)
{
	const char *f = h->f;
	int rc = 0;

	*skip = false;
	memset(op, 0, sizeof *op);
	op->info = h->status == HIST_INFO;
	op->call = h->call_time;
	op->ret = h->ret_time;
	if (strcmp(f, "read") == 0) {
		if (h->status != HIST_OK) {
			*skip = true;
			return 0;
		}
		op->kind = LIN_READ;
		return intern(k, h->result, &op->arg);
	}
	if (strcmp(f, "write") == 0 || strcmp(f, "delete") == 0) {
		if (h->status == HIST_FAIL) {
			*skip = true;
			return 0;
		}
		op->kind = LIN_WRITE;
		if (f[0] == 'w')
			rc = intern(k, h->value, &op->arg);
		return rc;
	}
	if (strcmp(f, "cas") == 0) {
		/* A failed cas that carries "error" never ran; one without it compared and lost. */
		if (h->status == HIST_FAIL && h->has_error) {
			*skip = true;
			return 0;
		}
		op->kind = h->status == HIST_FAIL ? LIN_CAS_FAIL : LIN_CAS;
		rc = intern(k, h->expect, &op->expect);
		if (rc == 0)
			rc = intern(k, h->value, &op->arg);
		return rc;
	}
	*skip = true;
	return 0;
}

static bool is_register_f(const char *f)
{
	return strcmp(f, "read") == 0 || strcmp(f, "write") == 0 || strcmp(f, "cas") == 0 ||
	       strcmp(f, "delete") == 0;
}

/* Groups the register ops of a history by key. */
static int gather(const struct hist *h, struct lin_key **keys_out, size_t *n_out)
{
	struct strmap index;
	struct lin_key *keys = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	strmap_init(&index);
	for (size_t i = 0; rc == 0 && i < h->n_ops; i++) {
		const struct hist_op *ho = &h->ops[i];
		struct lin_key *k;
		struct lin_op op;
		int64_t *slot;
		bool skip;

		if (!is_register_f(ho->f))
			continue;
		rc = strmap_put(&index, ho->key, ho->key_len, (int64_t)n, &slot);
		if (rc < 0)
			break;
		if (rc == 1) {
			if (n == cap) {
				size_t c2 = cap ? cap * 2 : 8;
				struct lin_key *k2 = realloc(keys, c2 * sizeof *k2);

				if (!k2) {
					rc = MOOR_ENOMEM;
					break;
				}
				keys = k2;
				cap = c2;
			}
			rc = lin_key_init(&keys[n++], ho->key, ho->key_len);
			if (rc < 0)
				break;
		}
		k = &keys[*slot];
		rc = translate(k, ho, &op, &skip);
		if (rc < 0 || skip)
			continue;
		op.hist_idx = i;
		if (k->n == k->cap) {
			size_t c2 = k->cap ? k->cap * 2 : 64;
			struct lin_op *o2 = realloc(k->ops, c2 * sizeof *o2);

			if (!o2) {
				rc = MOOR_ENOMEM;
				break;
			}
			k->ops = o2;
			k->cap = c2;
		}
		k->ops[k->n++] = op;
	}
	strmap_free(&index);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			lin_key_free(&keys[i]);
		free(keys);
		return rc;
	}
	*keys_out = keys;
	*n_out = n;
	return 0;
}

/* ---- reductions ------------------------------------------------------------ */

/*
 * Values that no read returned and no cas compared against are
 * indistinguishable to every operation of the key (each observes the
 * register only by equality with a read result or an expect), so all of them
 * become one value: fewer distinct states, more hits in the cache. With the
 * unique values a harness writes, most indeterminate writes fall in here.
 */
static int collapse_unobserved(struct lin_key *k)
{
	uint8_t *seen = calloc(k->n_names + 1, 1);
	int32_t junk;
	int rc;

	if (!seen)
		return MOOR_ENOMEM;
	for (size_t i = 0; i < k->n; i++) {
		if (k->ops[i].kind == LIN_READ)
			seen[k->ops[i].arg] = 1;
		if (k->ops[i].kind == LIN_CAS || k->ops[i].kind == LIN_CAS_FAIL)
			seen[k->ops[i].expect] = 1;
	}
	seen[0] = 1; /* the initial null stays itself */
	/* Not valid JSON, so no written value can share its text. */
	rc = intern_text(k, strdup("<any value never read or compared>"), &junk);
	for (size_t i = 0; i < k->n; i++)
		k->ops[i].orig_arg = k->ops[i].arg;
	for (size_t i = 0; rc == 0 && i < k->n; i++)
		if ((k->ops[i].kind == LIN_WRITE || k->ops[i].kind == LIN_CAS) &&
		    !seen[k->ops[i].arg])
			k->ops[i].arg = junk;
	free(seen);
	return rc;
}

int lin_by_call(const void *a, const void *b, void *arg)
{
	const struct lin_op *ops = arg;
	const struct lin_op *x = &ops[*(const uint32_t *)a], *y = &ops[*(const uint32_t *)b];

	if (x->call != y->call)
		return x->call < y->call ? -1 : 1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static int by_return(const void *a, const void *b, void *arg)
{
	const struct lin_op *ops = arg;
	const struct lin_op *x = &ops[*(const uint32_t *)a], *y = &ops[*(const uint32_t *)b];

	if (x->ret != y->ret)
		return x->ret < y->ret ? -1 : 1;
	return lin_by_call(a, b, arg);
}

/*
 * Identical ops (same kind, value and expect) are interchangeable in a
 * linearization except for their real-time bounds. If two of them may both
 * come next, the one that returns first can always go first: swapping them
 * in any linearization keeps every state and every real-time constraint
 * (the earlier-returning one only moves earlier, the other takes a place
 * whose predecessors were all invoked before the first one returned).
 * Indeterminate ops return at infinity, so among themselves the earliest
 * invoked goes first. Each op is linked to the previous one of its class in
 * (return, call) order, and the search skips an op while an earlier one of
 * its class could still go next (see dominated). This turns the 2^n subsets
 * of n commuting identical writes into n + 1 prefixes.
 */
static int link_twins(struct lin_key *k)
{
	uint32_t *order = malloc(k->n * sizeof *order + 1);
	struct strmap last;
	int rc = 0;

	if (!order)
		return MOOR_ENOMEM;
	strmap_init(&last);
	for (uint32_t i = 0; i < k->n; i++) {
		order[i] = i;
		k->ops[i].twin = -1;
	}
	qsort_r(order, k->n, sizeof *order, by_return, k->ops);
	for (size_t j = 0; rc == 0 && j < k->n; j++) {
		struct lin_op *op = &k->ops[order[j]];
		int32_t cls[3] = {(int32_t)op->kind, op->arg, op->expect};
		int64_t *slot;

		rc = strmap_put(&last, (const char *)cls, sizeof cls, order[j], &slot);
		if (rc == 0) {
			op->twin = *slot;
			*slot = order[j];
		}
		rc = rc < 0 ? rc : 0;
	}
	strmap_free(&last);
	free(order);
	return rc;
}

/* ---- explanations -------------------------------------------------------- */

static void describe(const struct hist *h, const struct lin_key *k, uint32_t id, char *out,
                     size_t cap)
{
	hist_op_describe(&h->ops[k->ops[id].hist_idx], out, cap);
}

static json_t *explain(const struct hist *h, const struct lin_key *k, const struct lin_outcome *s)
{
	json_t *ex = json_object(), *pre = json_array(), *pend = json_array();
	char buf[512];
	size_t from = s->best_depth > 12 ? (size_t)s->best_depth - 12 : 0;

	if (!ex || !pre || !pend) {
		json_decref(ex);
		json_decref(pre);
		json_decref(pend);
		return NULL;
	}
	json_object_set_new(ex, "key", json_stringn(k->key, k->key_len));
	json_object_set_new(ex, "linearizable_prefix_length", json_integer(s->best_depth));
	if (from)
		json_array_appendf(pre, "... %zu earlier ops", from);
	for (size_t i = from; i < (size_t)s->best_depth; i++) {
		describe(h, k, s->best_seq[i], buf, sizeof buf);
		json_array_appendf(pre, "%s", buf);
	}
	json_object_set_new(ex, "linearizable_prefix", pre);
	/* The register's value after the prefix, in the values the clients wrote. */
	int32_t v = 0;

	for (size_t i = 0; i < (size_t)s->best_depth; i++) {
		const struct lin_op *op = &k->ops[s->best_seq[i]];

		if (op->kind == LIN_WRITE || op->kind == LIN_CAS)
			v = op->orig_arg;
	}
	json_object_set_new(ex, "value_after_prefix", json_string(k->names[v]));
	describe(h, k, s->best_block, buf, sizeof buf);
	json_object_set_new(ex, "cannot_place", json_string(buf));
	for (size_t i = 0; i < s->n_best_pending; i++) {
		describe(h, k, s->best_pending[i], buf, sizeof buf);
		json_array_appendf(pend, "%s", buf);
	}
	json_object_set_new(ex, "concurrent_candidates", pend);
	return ex;
}

/* A read of a value no write or cas of the key ever tried: the plainest violation. */
static json_t *find_phantom_read(const struct hist *h, const struct lin_key *k)
{
	uint8_t *written = calloc(k->n_names, 1);
	json_t *ex = NULL;
	char buf[512];

	if (!written)
		return NULL;
	written[0] = 1;
	for (size_t i = 0; i < k->n; i++)
		if (k->ops[i].kind == LIN_WRITE || k->ops[i].kind == LIN_CAS)
			written[k->ops[i].arg] = 1;
	for (size_t i = 0; i < k->n && !ex; i++) {
		if (k->ops[i].kind != LIN_READ || written[k->ops[i].arg])
			continue;
		ex = json_object();
		if (!ex)
			break;
		json_object_set_new(ex, "key", json_stringn(k->key, k->key_len));
		json_object_set_new(ex, "reason", json_string("read of a value never written"));
		describe(h, k, (uint32_t)i, buf, sizeof buf);
		json_object_set_new(ex, "cannot_place", json_string(buf));
	}
	free(written);
	return ex;
}

/* ---- the checker --------------------------------------------------------- */

/*
 * One key. The search first runs with 128-bit fingerprints of the linearized
 * set instead of the set itself (24 bytes per cached configuration instead
 * of n/8: a history of 10^5 ops on one key would otherwise need gigabytes).
 * A fingerprint collision can only make the search skip a configuration it
 * has not seen, so "linearizable" is exact; "not linearizable" is confirmed
 * by a second search with exact bitsets before it is reported, or, if that
 * one runs out of budget, by a third with independent fingerprints (then a
 * wrong verdict needs two collisions, each of probability ~ n^2 / 2^129).
 */
static int lin_check_key(const struct hist *h, struct lin_key *k, const struct chk_budget *b,
                         json_t **explanation, uint64_t *steps, const char **why)
{
	static const char *const confirmed_by[] = {
	    NULL, "an exact search", "two searches with independent 128-bit fingerprints"};
	struct lin_outcome out;
	int rc;

	*explanation = NULL;
	*steps = 0;
	*why = NULL;
	*explanation = find_phantom_read(h, k);
	if (*explanation)
		return CHK_INVALID;
	rc = collapse_unobserved(k);
	if (rc == 0)
		rc = link_twins(k);
	if (rc < 0)
		return rc;
	if (k->n > UINT32_MAX / 2 - 1)
		return MOOR_ENOMEM;
	for (int pass = 0; pass < 3; pass++) {
		rc = lin_search(k, b, pass == 1, (uint64_t)pass, &out);
		*steps += out.steps;
		*why = out.why;
		if (rc == CHK_INVALID && pass > 0) {
			*explanation = explain(h, k, &out);
			if (*explanation)
				json_object_set_new(*explanation, "confirmed_by",
				                    json_string(confirmed_by[pass]));
		}
		lin_outcome_free(&out);
		/* Done unless a violation awaits confirmation or the exact one ran out. */
		if ((pass == 0 && rc != CHK_INVALID) ||
		    (pass == 1 && rc >= 0 && rc != CHK_UNKNOWN) || pass == 2)
			break;
	}
	if (rc == CHK_UNKNOWN && *steps > out.steps)
		*why =
		    "a violation found with fingerprints could not be confirmed within the budget";
	return rc;
}

static const char *or_q(const char *s)
{
	return s ? s : "?";
}

int chk_linear(const struct hist *h, const struct chk_budget *budget, struct chk_result *r)
{
	static const struct chk_budget none;
	const struct chk_budget *b = budget ? budget : &none;
	struct lin_key *keys = NULL;
	size_t n_keys = 0, n_ops = 0, n_invalid = 0, n_unknown = 0;
	uint64_t total_steps = 0;
	json_t *bad, *unknown;
	int rc;

	memset(r, 0, sizeof *r);
	r->detail = json_object();
	bad = json_array();
	unknown = json_array();
	if (!r->detail || !bad || !unknown) {
		json_decref(bad);
		json_decref(unknown);
		json_decref(r->detail);
		r->detail = NULL;
		return MOOR_ENOMEM;
	}
	json_object_set_new(r->detail, "invalid_keys", bad);
	json_object_set_new(r->detail, "unknown_keys", unknown);
	rc = gather(h, &keys, &n_keys);
	if (rc < 0) {
		chk_result_set(r, CHK_UNKNOWN, "linear: out of memory reading the history");
		return 0;
	}
	for (size_t i = 0; i < n_keys; i++) {
		json_t *ex;
		uint64_t steps;
		const char *why;

		n_ops += keys[i].n;
		rc = lin_check_key(h, &keys[i], b, &ex, &steps, &why);
		total_steps += steps;
		if (rc == CHK_INVALID) {
			n_invalid++;
			if (ex)
				json_array_append_new(bad, ex);
		} else if (rc != CHK_VALID) {
			n_unknown++;
			json_array_appendf(unknown, "%.*s: %s", (int)keys[i].key_len, keys[i].key,
			                   rc < 0 ? "out of memory" : why);
		}
	}
	for (size_t i = 0; i < n_keys; i++)
		lin_key_free(&keys[i]);
	free(keys);
	json_object_set_new(r->detail, "keys", json_integer((json_int_t)n_keys));
	json_object_set_new(r->detail, "ops", json_integer((json_int_t)n_ops));
	json_object_set_new(r->detail, "steps", json_integer((json_int_t)total_steps));
	if (n_invalid) {
		json_t *first = json_array_get(bad, 0);

		chk_result_set(r, CHK_INVALID,
		               "linear: NOT linearizable: %zu of %zu keys; key %s cannot place %s",
		               n_invalid, n_keys,
		               or_q(json_string_value(json_object_get(first, "key"))),
		               or_q(json_string_value(json_object_get(first, "cannot_place"))));
	} else if (n_unknown) {
		chk_result_set(r, CHK_UNKNOWN, "linear: unknown for %zu of %zu keys (%s)",
		               n_unknown, n_keys, json_string_value(json_array_get(unknown, 0)));
	} else if (n_keys == 0) {
		r->empty = true;
		chk_result_set(r, CHK_UNKNOWN, "linear: no register operations in the history");
	} else {
		chk_result_set(r, CHK_VALID, "linear: linearizable: %zu keys, %zu ops", n_keys,
		               n_ops);
	}
	return 0;
}

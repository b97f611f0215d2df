/*
 * The fencing checker of the lock workload.
 *
 * A lease-based lock cannot exclude by itself (a paused holder outlives its
 * lease), so each holder writes the protected data with a txn that compares
 * its lock key's revision (its fencing token, "fence"). Per lock ("key"):
 *   "acquire"       ok completion carries "fence": the lock key's revision;
 *   "fenced-write"  invoke carries "fence"; ok = the guarded write happened,
 *                   and its completion may carry "revision" (the write's);
 *   "release"       ok = the holder's lock key was deleted.
 * A violation is two holders' writes both succeeding while their holds
 * overlapped, which with fences in creation order means:
 *   - two ok acquires returning the same fence;
 *   - an ok fenced write whose fence its process never acquired, invoked
 *     after that process's release completed, or whose revision is not
 *     after its fence;
 *   - an ok write with fence F ordered after an ok write with a newer fence
 *     G > F: by revision when both carry one, else by real time (the newer
 *     holder's write completed before the older one's was invoked). The newer
 *     lock exists only once the older key is gone, so the older compare
 *     must have failed.
 * Indeterminate writes are not counted: nothing says they happened.
 */
#include "tests/faults/checker/util.h"

#include "common/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct grant {
	int64_t fence;
	size_t acquire, release; /* op indexes + 1; release 0 = never released ok */
};

struct wr {
	int64_t fence, rev;
	bool has_rev;
	size_t op;
};

static int cmp_fence(const void *a, const void *b)
{
	const struct wr *x = a, *y = b;

	return x->fence < y->fence ? -1 : x->fence > y->fence;
}

static void violation(const struct hist *h, json_t *list, const char *what, size_t a, size_t b)
{
	char x[512], y[512] = "";

	if (json_array_size(list) >= 20)
		return;
	hist_op_describe(&h->ops[a], x, sizeof x);
	if (b != SIZE_MAX)
		hist_op_describe(&h->ops[b], y, sizeof y);
	json_array_appendf(list, "%s: %s%s%s", what, x, b != SIZE_MAX ? " / " : "", y);
}

/* Checks the ops of one lock (indexes into h->ops); returns violations found. */
static size_t check_lock(const struct hist *h, const size_t *ops, size_t n, json_t *out,
                         size_t *n_writes)
{
	struct grant *g = calloc(n + 1, sizeof *g);
	struct wr *w = calloc(n + 1, sizeof *w);
	size_t ng = 0, nw = 0, bad = 0;

	if (!g || !w) {
		free(g);
		free(w);
		return SIZE_MAX;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hist_op *op = &h->ops[ops[i]];
		int64_t fence;

		if (strcmp(op->f, "acquire") == 0 && op->status == HIST_OK && op->has_fence) {
			fence = op->fence;
			for (size_t j = 0; j < ng; j++)
				if (g[j].fence == fence) {
					violation(h, out, "two holders got the same fence", ops[i],
					          g[j].acquire - 1);
					bad++;
				}
			g[ng++] = (struct grant){fence, ops[i] + 1, 0};
		} else if (strcmp(op->f, "release") == 0 && op->status == HIST_OK) {
			for (size_t j = ng; j-- > 0;)
				if (h->ops[g[j].acquire - 1].process == op->process) {
					if (!g[j].release)
						g[j].release = ops[i] + 1;
					break;
				}
		} else if (strcmp(op->f, "fenced-write") == 0 && op->status == HIST_OK &&
		           op->has_fence) {
			fence = op->fence;
			w[nw].fence = fence;
			w[nw].op = ops[i];
			w[nw].has_rev = op->has_revision;
			w[nw].rev = op->revision;
			nw++;
		}
	}
	for (size_t i = 0; i < nw; i++) {
		const struct hist_op *op = &h->ops[w[i].op];
		const struct grant *mine = NULL;

		for (size_t j = 0; j < ng; j++)
			if (g[j].fence == w[i].fence &&
			    h->ops[g[j].acquire - 1].process == op->process)
				mine = &g[j];
		if (!mine || h->ops[mine->acquire - 1].ret_time > op->call_time) {
			violation(h, out, "write succeeded with a fence its process did not hold",
			          w[i].op, SIZE_MAX);
			bad++;
		} else if (w[i].has_rev && w[i].rev <= w[i].fence) {
			violation(h, out, "write's revision is not after its lock's revision",
			          w[i].op, SIZE_MAX);
			bad++;
		} else if (mine->release && h->ops[mine->release - 1].ret_time < op->call_time) {
			violation(h, out, "write succeeded after its holder released the lock",
			          w[i].op, mine->release - 1);
			bad++;
		}
	}
	qsort(w, nw, sizeof *w, cmp_fence);
	for (size_t i = 0; i < nw; i++)
		for (size_t j = i + 1; j < nw; j++) {
			const struct hist_op *old = &h->ops[w[i].op], *new = &h->ops[w[j].op];
			bool after;

			if (w[i].fence == w[j].fence)
				continue;
			after = w[i].has_rev && w[j].has_rev ? w[i].rev > w[j].rev
			                                     : new->ret_time < old->call_time;
			if (after) {
				violation(h, out,
				          "an older holder's write succeeded after a newer "
				          "holder's write (overlapping holds)",
				          w[i].op, w[j].op);
				bad++;
			}
		}
	*n_writes += nw;
	free(g);
	free(w);
	return bad;
}

int chk_lock(const struct hist *h, struct chk_result *r)
{
	struct strmap index;
	size_t *by_key = NULL, n_keys = 0, n_writes = 0, bad = 0, n_lock_ops = 0;
	size_t *ops = malloc((h->n_ops + 1) * sizeof *ops);
	json_t *out = json_array();
	int rc = 0;

	memset(r, 0, sizeof *r);
	r->detail = json_object();
	strmap_init(&index);
	by_key = malloc((h->n_ops + 1) * sizeof *by_key);
	if (!ops || !out || !r->detail || !by_key) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	/* Assign each lock op its key's number, then check key by key. */
	for (size_t i = 0; i < h->n_ops; i++) {
		const struct hist_op *op = &h->ops[i];
		int64_t *slot;
		int put;

		by_key[i] = SIZE_MAX;
		if (strcmp(op->f, "acquire") && strcmp(op->f, "release") &&
		    strcmp(op->f, "fenced-write"))
			continue;
		put = strmap_put(&index, op->key, op->key_len, (int64_t)n_keys, &slot);
		if (put < 0) {
			rc = put;
			goto out;
		}
		n_keys += put;
		by_key[i] = (size_t)*slot;
		n_lock_ops++;
	}
	for (size_t k = 0; k < n_keys; k++) {
		size_t n = 0, b;

		for (size_t i = 0; i < h->n_ops; i++)
			if (by_key[i] == k)
				ops[n++] = i;
		b = check_lock(h, ops, n, out, &n_writes);
		if (b == SIZE_MAX) {
			rc = MOOR_ENOMEM;
			goto out;
		}
		bad += b;
	}
out:
	strmap_free(&index);
	free(ops);
	free(by_key);
	if (!r->detail) {
		json_decref(out);
		return MOOR_ENOMEM;
	}
	json_object_set_new(r->detail, "locks", json_integer((json_int_t)n_keys));
	json_object_set_new(r->detail, "ok_fenced_writes", json_integer((json_int_t)n_writes));
	json_object_set_new(r->detail, "violations_count", json_integer((json_int_t)bad));
	if (out)
		json_object_set_new(r->detail, "violations", out);
	r->empty = n_lock_ops == 0;
	if (rc < 0)
		chk_result_set(r, CHK_UNKNOWN, "lock: out of memory");
	else if (bad)
		chk_result_set(r, CHK_INVALID, "lock: INVALID: %zu fencing violations; first: %s",
		               bad, json_string_value(json_array_get(out, 0)));
	else if (n_lock_ops == 0)
		chk_result_set(r, CHK_UNKNOWN, "lock: no lock operations in the history");
	else
		chk_result_set(r, CHK_VALID, "lock: valid: %zu locks, %zu successful fenced writes",
		               n_keys, n_writes);
	return 0;
}

/*
 * The revision checker: store revisions never go back in real time.
 *
 * Every ok completion that carries "revision" (the response header's
 * revision) says the store had reached it when the op took effect. So if an
 * op A completed before op B was invoked, B's revision is at least A's, and
 * strictly greater if B wrote (a write makes a new revision). A write's
 * header revision is its own, so no two acknowledged writes share one (each
 * op of the workloads is its own request). Writes here are ok "write",
 * "cas", "add" and "fenced-write"; any other op, and a cas that failed its
 * compare (fail without "error"), is read-like. This catches
 * a member that serves from the past after a partition or a restart (as
 * etcd's #15271 and #17780) even when values alone cannot show it.
 */
#include "tests/faults/checker/util.h"

#include "common/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct rev_op {
	int64_t rev;
	size_t op;
	bool write;
};

struct rev_event {
	int64_t time;
	uint32_t idx; /* into the rev_op array */
	bool call;
};

static int event_cmp(const void *a, const void *b)
{
	const struct rev_event *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->call != y->call)
		return x->call ? -1 : 1; /* equal times: concurrent */
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int rev_cmp(const void *a, const void *b)
{
	const struct rev_op *x = a, *y = b;

	return x->rev < y->rev ? -1 : x->rev > y->rev;
}

static bool writes(const struct hist_op *op)
{
	return strcmp(op->f, "write") == 0 || strcmp(op->f, "cas") == 0 ||
	       strcmp(op->f, "add") == 0 || strcmp(op->f, "fenced-write") == 0;
}

static void violation(const struct hist *h, json_t *out, size_t *n, const char *what,
                      const struct rev_op *a, const struct rev_op *b)
{
	char x[512], y[512];

	(*n)++;
	if (json_array_size(out) >= 20)
		return;
	hist_op_describe(&h->ops[a->op], x, sizeof x);
	hist_op_describe(&h->ops[b->op], y, sizeof y);
	json_array_appendf(out, "%s: %s at revision %" PRId64 " / %s at revision %" PRId64, what, x,
	                   a->rev, y, b->rev);
}

int chk_revision(const struct hist *h, struct chk_result *r)
{
	struct rev_op *ops = malloc((h->n_ops + 1) * sizeof *ops);
	struct rev_event *ev = malloc((2 * h->n_ops + 1) * sizeof *ev);
	size_t n = 0, m = 0, bad = 0;
	json_t *out = json_array();
	int64_t best = INT64_MIN;
	uint32_t best_idx = 0;

	memset(r, 0, sizeof *r);
	r->detail = json_object();
	if (!ops || !ev || !out || !r->detail) {
		free(ops);
		free(ev);
		json_decref(out);
		if (r->detail)
			chk_result_set(r, CHK_UNKNOWN, "revision: out of memory");
		return r->detail ? 0 : MOOR_ENOMEM;
	}
	for (size_t i = 0; i < h->n_ops; i++) {
		const struct hist_op *op = &h->ops[i];
		int64_t rev;

		/* A cas that lost its compare still read the store at its revision. */
		bool lost_cas =
		    op->status == HIST_FAIL && strcmp(op->f, "cas") == 0 && !op->has_error;

		if ((op->status != HIST_OK && !lost_cas) || !op->has_revision)
			continue;
		rev = op->revision;
		ops[n] = (struct rev_op){rev, i, op->status == HIST_OK && writes(op)};
		ev[m++] = (struct rev_event){op->call_time, (uint32_t)n, true};
		ev[m++] = (struct rev_event){op->ret_time, (uint32_t)n, false};
		n++;
	}
	/* Sweep in time: each call sees the highest revision completed before it. */
	qsort(ev, m, sizeof *ev, event_cmp);
	for (size_t i = 0; i < m; i++) {
		const struct rev_op *b = &ops[ev[i].idx];

		if (!ev[i].call) {
			if (b->rev > best) {
				best = b->rev;
				best_idx = ev[i].idx;
			}
			continue;
		}
		if (best == INT64_MIN)
			continue;
		if (b->rev < best || (b->write && b->rev == best))
			violation(h, out, &bad,
			          b->write ? "a write did not get a revision above one that "
			                     "completed before it began"
			                   : "revision went back in time",
			          &ops[best_idx], b);
	}
	/* No two acknowledged writes share a revision. */
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		if (ops[i].write)
			ops[w++] = ops[i];
	qsort(ops, w, sizeof *ops, rev_cmp);
	for (size_t i = 1; i < w; i++)
		if (ops[i].rev == ops[i - 1].rev)
			violation(h, out, &bad, "two acknowledged writes share a revision",
			          &ops[i - 1], &ops[i]);
	free(ops);
	free(ev);
	json_object_set_new(r->detail, "ops_with_revision", json_integer((json_int_t)n));
	json_object_set_new(r->detail, "violations_count", json_integer((json_int_t)bad));
	json_object_set_new(r->detail, "violations", out);
	r->empty = n == 0;
	if (bad)
		chk_result_set(r, CHK_INVALID, "revision: INVALID: %zu violations; first: %s", bad,
		               json_string_value(json_array_get(out, 0)));
	else if (n == 0)
		chk_result_set(r, CHK_UNKNOWN, "revision: no op carries a revision");
	else
		chk_result_set(r, CHK_VALID,
		               "revision: valid: %zu ops with revisions respect real time", n);
	return 0;
}

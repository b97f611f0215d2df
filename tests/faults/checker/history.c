/*
 * Loading a history: JSON lines → operations paired by process, plus the
 * other records kept as JSON.
 *
 * A record whose "type" is invoke, ok, fail or info is an operation event;
 * it is reduced to the fields the checkers read (struct hist_op, strings
 * interned) and its JSON freed at once, which keeps a long history small.
 * Any other record (watch stream records, the write log) is kept in order.
 * The pairing enforces Jepsen's rules: a process has at most one operation
 * in flight, a completion matches an invocation of the same function, and a
 * process whose operation ended "info" issues no further operation (the
 * client replaces it with a new process id). An operation still open at the
 * end of the history is indeterminate.
 */
#include "tests/faults/checker/util.h"

#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loader {
	struct hist *h;
	struct strmap procs; /* process → op index + 1; 0 none; -line: retired by info */
	size_t cap_ops, cap_records;
	bool missing_time; /* an op record without time_ns */
};

static int bad(struct hist *h, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct hist *h, long line, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(h->err, sizeof h->err, "line %ld: %s", line, msg);
	return MOOR_EINVAL;
}

static int status_of(const char *type, enum hist_status *s)
{
	if (strcmp(type, "ok") == 0)
		*s = HIST_OK;
	else if (strcmp(type, "fail") == 0)
		*s = HIST_FAIL;
	else if (strcmp(type, "info") == 0)
		*s = HIST_INFO;
	else
		return -1;
	return 0;
}

static struct strmap *pool(struct hist *h)
{
	return h->pool;
}

/* Interns rec[name]'s canonical text in *out (NULL if absent). */
static int intern_value(struct hist *h, const json_t *rec, const char *name, const char **out)
{
	const json_t *v = json_object_get(rec, name);
	char *canon;

	*out = NULL;
	if (!v)
		return 0;
	canon = json_canon(v);
	if (!canon)
		return MOOR_ENOMEM;
	*out = strmap_intern(pool(h), canon, strlen(canon));
	free(canon);
	return *out ? 0 : MOOR_ENOMEM;
}

static int keep_record(struct loader *l, json_t *rec, long line)
{
	struct hist *h = l->h;

	if (json_array_size(h->records) == l->cap_records) {
		size_t cap = l->cap_records ? l->cap_records * 2 : 64;
		long *lines = realloc(h->record_lines, cap * sizeof *lines);

		if (!lines)
			return MOOR_ENOMEM;
		h->record_lines = lines;
		l->cap_records = cap;
	}
	h->record_lines[json_array_size(h->records)] = line;
	return json_array_append(h->records, rec) == 0 ? 0 : MOOR_ENOMEM;
}

static int add_invoke(struct loader *l, const json_t *rec, long line, int64_t proc, const char *f,
                      int64_t t, int64_t *slot)
{
	struct hist *h = l->h;
	struct hist_op *op;
	size_t klen;
	const char *key = json_get_str(rec, "key", &klen);
	int rc;

	if (*slot > 0)
		return bad(h, line,
		           "process %" PRId64 " invokes %s while its op of line %ld is open", proc,
		           f, h->ops[*slot - 1].call_line);
	if (*slot < 0)
		return bad(h, line,
		           "process %" PRId64
		           " invokes %s after its indeterminate op of line %" PRId64
		           " (a client that got info must use a new process id)",
		           proc, f, -*slot);
	if (h->n_ops == l->cap_ops) {
		size_t cap = l->cap_ops ? l->cap_ops * 2 : 256;
		struct hist_op *o = realloc(h->ops, cap * sizeof *o);

		if (!o)
			return MOOR_ENOMEM;
		h->ops = o;
		l->cap_ops = cap;
	}
	op = &h->ops[h->n_ops];
	memset(op, 0, sizeof *op);
	op->process = proc;
	op->f = strmap_intern(pool(h), f, strlen(f));
	op->key = strmap_intern(pool(h), key ? key : "", key ? klen : 0);
	op->key_len = key ? klen : 0;
	if (!op->f || !op->key)
		return MOOR_ENOMEM;
	rc = intern_value(h, rec, "value", &op->value);
	if (rc == 0)
		rc = intern_value(h, rec, "expect", &op->expect);
	if (rc != 0)
		return rc;
	op->has_fence = json_get_i64(rec, "fence", &op->fence) == 0;
	op->status = HIST_INFO;
	op->call_time = t;
	op->ret_time = HIST_TIME_INF;
	op->call_line = line;
	*slot = (int64_t)++h->n_ops;
	return 0;
}

static int add_completion(struct loader *l, const json_t *rec, long line, int64_t proc,
                          const char *f, enum hist_status st, int64_t t, int64_t *slot)
{
	struct hist *h = l->h;
	struct hist_op *op;

	if (*slot <= 0)
		return bad(h, line, "process %" PRId64 " completes %s with no open invocation",
		           proc, f);
	op = &h->ops[*slot - 1];
	if (strcmp(op->f, f) != 0)
		return bad(h, line, "completion %s does not match the invocation %s of line %ld", f,
		           op->f, op->call_line);
	if (!l->missing_time && t < op->call_time)
		return bad(h, line, "completion time is before its invocation (line %ld)",
		           op->call_line);
	if (intern_value(h, rec, "value", &op->result) != 0)
		return MOOR_ENOMEM;
	if (!op->has_fence)
		op->has_fence = json_get_i64(rec, "fence", &op->fence) == 0;
	op->has_revision = json_get_i64(rec, "revision", &op->revision) == 0;
	op->has_error = json_object_get(rec, "error") != NULL;
	op->status = st;
	op->ret_line = line;
	op->ret_time = st == HIST_INFO ? HIST_TIME_INF : t;
	*slot = st == HIST_INFO ? -(int64_t)line : 0;
	return 0;
}

static int add_record(struct loader *l, json_t *rec, long line)
{
	struct hist *h = l->h;
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *f = json_string_value(json_object_get(rec, "f"));
	enum hist_status st = HIST_OK;
	int64_t proc, t = 0, *slot;
	char pkey[32];
	int rc;

	if (!type)
		return bad(h, line, "record has no \"type\"");
	if (strcmp(type, "invoke") != 0 && status_of(type, &st) != 0)
		return keep_record(l, rec, line);
	if (!f)
		return bad(h, line, "operation record has no \"f\"");
	if (json_get_i64(rec, "process", &proc) != 0)
		return bad(h, line, "operation record has no integer \"process\"");
	if (json_get_i64(rec, "time_ns", &t) != 0)
		l->missing_time = true;
	snprintf(pkey, sizeof pkey, "%" PRId64, proc);
	rc = strmap_put(&l->procs, pkey, strlen(pkey), 0, &slot);
	if (rc < 0)
		return rc;
	if (strcmp(type, "invoke") == 0)
		return add_invoke(l, rec, line, proc, f, t, slot);
	return add_completion(l, rec, line, proc, f, st, t, slot);
}

/* Without time_ns on every op record, line numbers are the clock for all. */
static void use_line_clock(struct hist *h)
{
	h->line_times = true;
	for (size_t i = 0; i < h->n_ops; i++) {
		struct hist_op *op = &h->ops[i];

		op->call_time = op->call_line;
		if (op->ret_time != HIST_TIME_INF)
			op->ret_time = op->ret_line;
	}
}

static int load_stream(struct hist *h, FILE *in)
{
	struct loader l = {.h = h};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int rc = 0;

	memset(h, 0, sizeof *h);
	strmap_init(&l.procs);
	h->records = json_array();
	h->pool = malloc(sizeof(struct strmap));
	if (!h->records || !h->pool) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	strmap_init(h->pool);
	while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
		json_error_t jerr;
		json_t *rec;
		ssize_t k = 0;

		lineno++;
		while (k < n &&
		       (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n'))
			k++;
		if (k == n || line[k] == '#')
			continue; /* blank lines and comments */
		rec = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &jerr);
		if (!rec) {
			rc = bad(h, lineno, "bad JSON: %s", jerr.text);
			break;
		}
		if (!json_is_object(rec))
			rc = bad(h, lineno, "record is not a JSON object");
		else
			rc = add_record(&l, rec, lineno);
		json_decref(rec);
	}
	if (rc == 0 && l.missing_time)
		use_line_clock(h);
out:
	free(line);
	strmap_free(&l.procs);
	if (rc != 0) {
		char err[sizeof h->err];

		memcpy(err, h->err, sizeof err);
		hist_free(h);
		memcpy(h->err, err, sizeof err);
	}
	return rc;
}

int hist_load_file(struct hist *h, const char *path)
{
	FILE *in = fopen(path, "r");
	int rc;

	if (!in) {
		rc = -errno;
		memset(h, 0, sizeof *h);
		snprintf(h->err, sizeof h->err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = load_stream(h, in);
	fclose(in);
	return rc;
}

int hist_load_string(struct hist *h, const char *text)
{
	/* fmemopen refuses a zero size: an empty history reads as one blank line. */
	FILE *in = strlen(text) ? fmemopen((void *)text, strlen(text), "r")
	                        : fmemopen((void *)"\n", 1, "r");
	int rc;

	if (!in) {
		memset(h, 0, sizeof *h);
		return MOOR_ENOMEM;
	}
	rc = load_stream(h, in);
	fclose(in);
	return rc;
}

void hist_free(struct hist *h)
{
	json_decref(h->records);
	free(h->record_lines);
	free(h->ops);
	if (h->pool) {
		strmap_free(h->pool);
		free(h->pool);
	}
	h->records = NULL;
	h->record_lines = NULL;
	h->ops = NULL;
	h->pool = NULL;
	h->n_ops = 0;
}

/*
 * Loading a history: JSON lines → records, and invocations paired with their
 * completions by process.
 *
 * A record whose "type" is invoke, ok, fail or info is an operation event;
 * any other record (watch stream records, the write log) is kept in order for
 * the checkers that read it. The pairing enforces Jepsen's rules: a process
 * has at most one operation in flight, a completion matches an invocation of
 * the same function, and a process whose operation ended "info" issues no
 * further operation (the client replaces it with a new process id). An
 * operation still open at the end of the history is indeterminate.
 */
#include "tests/faults/checker/util.h"

#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open operation per process: value = op index + 1; 0 = none; -line = retired by info. */
struct pairing {
	struct strmap procs;
	size_t cap_ops;
	size_t cap_others;
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

static int push_other(struct hist *h, struct pairing *p, size_t idx)
{
	if (h->n_others == p->cap_others) {
		size_t cap = p->cap_others ? p->cap_others * 2 : 64;
		size_t *o = realloc(h->others, cap * sizeof *o);

		if (!o)
			return MOOR_ENOMEM;
		h->others = o;
		p->cap_others = cap;
	}
	h->others[h->n_others++] = idx;
	return 0;
}

static int add_invoke(struct hist *h, struct pairing *p, json_t *rec, long line, int64_t proc,
                      const char *f, int64_t t, int64_t *slot)
{
	struct hist_op *op;

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
	if (h->n_ops == p->cap_ops) {
		size_t cap = p->cap_ops ? p->cap_ops * 2 : 256;
		struct hist_op *o = realloc(h->ops, cap * sizeof *o);

		if (!o)
			return MOOR_ENOMEM;
		h->ops = o;
		p->cap_ops = cap;
	}
	op = &h->ops[h->n_ops++];
	memset(op, 0, sizeof *op);
	op->process = proc;
	op->f = f;
	op->key = json_get_str(rec, "key", &op->key_len);
	if (!op->key)
		op->key = "";
	op->invoke = rec;
	op->status = HIST_INFO;
	op->call_time = t;
	op->ret_time = HIST_TIME_INF;
	op->call_line = line;
	*slot = (int64_t)h->n_ops;
	return 0;
}

static int add_completion(struct hist *h, json_t *rec, long line, int64_t proc, const char *f,
                          enum hist_status st, int64_t t, int64_t *slot)
{
	struct hist_op *op;

	if (*slot <= 0)
		return bad(h, line, "process %" PRId64 " completes %s with no open invocation",
		           proc, f);
	op = &h->ops[*slot - 1];
	if (strcmp(op->f, f) != 0)
		return bad(h, line, "completion %s does not match the invocation %s of line %ld", f,
		           op->f, op->call_line);
	if (t < op->call_time)
		return bad(h, line, "completion time is before its invocation (line %ld)",
		           op->call_line);
	op->done = rec;
	op->status = st;
	op->ret_line = line;
	op->ret_time = st == HIST_INFO ? HIST_TIME_INF : t;
	*slot = st == HIST_INFO ? -(int64_t)line : 0;
	return 0;
}

static int add_record(struct hist *h, struct pairing *p, size_t idx, long line)
{
	json_t *rec = json_array_get(h->records, idx);
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *f = json_string_value(json_object_get(rec, "f"));
	enum hist_status st;
	int64_t proc, t, *slot;
	char pkey[32];
	int rc;

	if (!type)
		return bad(h, line, "record has no \"type\"");
	if (strcmp(type, "invoke") != 0 && status_of(type, &st) != 0)
		return push_other(h, p, idx);
	if (!f)
		return bad(h, line, "operation record has no \"f\"");
	if (json_get_i64(rec, "process", &proc) != 0)
		return bad(h, line, "operation record has no integer \"process\"");
	if (h->line_times)
		t = line;
	else if (json_get_i64(rec, "time_ns", &t) != 0)
		return bad(h, line, "operation record has no \"time_ns\"");
	snprintf(pkey, sizeof pkey, "%" PRId64, proc);
	rc = strmap_put(&p->procs, pkey, strlen(pkey), 0, &slot);
	if (rc < 0)
		return rc;
	if (strcmp(type, "invoke") == 0)
		return add_invoke(h, p, rec, line, proc, f, t, slot);
	return add_completion(h, rec, line, proc, f, st, t, slot);
}

/* Records without time_ns make the line number the clock for the whole history. */
static void choose_clock(struct hist *h)
{
	size_t i;
	json_t *rec;

	h->line_times = false;
	json_array_foreach(h->records, i, rec)
	{
		const char *type = json_string_value(json_object_get(rec, "type"));
		int64_t t;
		enum hist_status st;

		if (type && (strcmp(type, "invoke") == 0 || status_of(type, &st) == 0) &&
		    json_get_i64(rec, "time_ns", &t) != 0)
			h->line_times = true;
	}
}

static int pair_all(struct hist *h)
{
	struct pairing p = {.cap_ops = 0, .cap_others = 0};
	int rc = 0;

	strmap_init(&p.procs);
	choose_clock(h);
	for (size_t i = 0; rc == 0 && i < json_array_size(h->records); i++)
		rc = add_record(h, &p, i, h->record_lines[i]);
	strmap_free(&p.procs);
	return rc;
}

static int load_stream(struct hist *h, FILE *in)
{
	char *line = NULL;
	size_t cap = 0, cap_lines = 0;
	ssize_t n;
	long lineno = 0;
	int rc = 0;

	memset(h, 0, sizeof *h);
	h->records = json_array();
	if (!h->records)
		return MOOR_ENOMEM;
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
		rec = json_loadb(line, (size_t)n, 0, &jerr);
		if (!rec) {
			rc = bad(h, lineno, "bad JSON: %s", jerr.text);
			break;
		}
		if (!json_is_object(rec)) {
			json_decref(rec);
			rc = bad(h, lineno, "record is not a JSON object");
			break;
		}
		if (json_array_size(h->records) == cap_lines) {
			size_t c2 = cap_lines ? cap_lines * 2 : 256;
			long *l2 = realloc(h->record_lines, c2 * sizeof *l2);

			if (!l2) {
				json_decref(rec);
				rc = MOOR_ENOMEM;
				break;
			}
			h->record_lines = l2;
			cap_lines = c2;
		}
		h->record_lines[json_array_size(h->records)] = lineno;
		if (json_array_append_new(h->records, rec) != 0)
			rc = MOOR_ENOMEM;
	}
	free(line);
	if (rc == 0)
		rc = pair_all(h);
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
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	int rc;

	if (!in) {
		memset(h, 0, sizeof *h);
		return strlen(text) == 0 ? hist_load_string(h, "\n") : MOOR_ENOMEM;
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
	free(h->others);
	h->records = NULL;
	h->record_lines = NULL;
	h->ops = NULL;
	h->others = NULL;
	h->n_ops = 0;
	h->n_others = 0;
}

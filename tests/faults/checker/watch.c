/*
 * The watch checker: every watcher's stream against the writes.
 *
 * The writes are known from three sources, strongest first: the write log
 * ("type":"log" records: every write of revisions [min, max], dumped after
 * the run), the acknowledged puts carrying their revision (ok "write" and
 * "cas" completions with "revision"), and what the other watchers received.
 * A watcher is one logical subscription ("watch": id) over a key, a prefix
 * or a range, made of a first "start" and any number of resumes; its
 * "event" records are the responses of the stream, "progress" records its
 * bookmarks, "compacted" the compaction that cancelled it. Checked:
 *   ordered     revisions strictly increase from response to response and
 *               never decrease inside one; no event below the start;
 *   unique      no (revision, key) twice; the same revision in two
 *               responses is a split revision (not atomic) or a repeat;
 *   in range    no event outside the watched range;
 *   resumable   a resume starts no later than one past what was delivered
 *               (or acknowledged by a bookmark, or compacted away);
 *   txn order   the events of one revision follow the log's order;
 *   values      an event matches the log or the acknowledgement of its
 *               revision, every watcher agrees on it, and without either
 *               its value was at least written by some client;
 *   reliable    every known write in the watched range with a revision
 *               between the watcher's first start and the last revision it
 *               reached (last event, bookmark or end) was delivered, except
 *               revisions a compaction removed before the watcher saw them.
 */
#include "tests/faults/checker/util.h"

#include "common/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum ref_source { REF_LOG, REF_ACK, REF_WATCH };

struct ref {
	int64_t rev;
	const char *key;
	size_t key_len;
	bool del;
	char *value; /* canonical; owned; NULL for a delete */
	long line;
	enum ref_source source;
};

struct span {
	int64_t from, to;
};

struct watcher {
	char *id;
	const char *key, *end;
	size_t key_len, end_len;
	bool prefix;
	int64_t s0, cur_start, pos, last_rev;
	long line0;
	size_t n_events;
	struct strmap delivered; /* rev+key → index of the event's record */
	struct span *excused;
	size_t n_excused;
};

struct wctx {
	const struct hist *h;
	struct ref *refs;
	size_t n_refs, cap_refs;
	struct strmap ref_index;  /* rev+key → ref index */
	struct strmap attempted;  /* key\0canonical-value → 1; key\0\0delete → 1 */
	struct strmap ack_by_rev; /* 8-byte revision → ref index of the ack there */
	bool have_log;
	int64_t log_min, log_max;
	struct watcher *w;
	size_t n_w, cap_w;
	json_t *violations, *errors;
	size_t n_violations;
	char tmp[4096];
};

static void violation(struct wctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(struct wctx *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	c->n_violations++;
	if (json_array_size(c->violations) >= 30)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	json_array_append_new(c->violations, json_string(buf));
}

/* rev (8 bytes, big-endian) then the key: a map key for (revision, key). */
static size_t revkey(struct wctx *c, int64_t rev, const char *key, size_t len)
{
	if (len > sizeof c->tmp - 8)
		len = sizeof c->tmp - 8;
	for (int i = 0; i < 8; i++)
		c->tmp[i] = (char)((uint64_t)rev >> (56 - 8 * i));
	memcpy(c->tmp + 8, key, len);
	return 8 + len;
}

static int attempted_put(struct wctx *c, const char *key, size_t len, const char *canon_or_null)
{
	size_t vl = canon_or_null ? strlen(canon_or_null) : 0;
	char *buf = malloc(len + vl + 2);
	int rc;

	if (!buf)
		return MOOR_ENOMEM;
	memcpy(buf, key, len);
	buf[len] = '\0';
	if (canon_or_null)
		memcpy(buf + len + 1, canon_or_null, vl);
	else
		buf[len + 1] = '\0', vl = 1;
	rc = strmap_put(&c->attempted, buf, len + 1 + vl, 1, NULL);
	free(buf);
	return rc < 0 ? rc : 0;
}

static bool was_attempted(struct wctx *c, const char *key, size_t len, const char *canon_or_null)
{
	size_t vl = canon_or_null ? strlen(canon_or_null) : 1;
	char *buf = malloc(len + vl + 2);
	bool yes;

	if (!buf)
		return true; /* cannot tell: do not accuse */
	memcpy(buf, key, len);
	buf[len] = '\0';
	if (canon_or_null)
		memcpy(buf + len + 1, canon_or_null, vl);
	else
		buf[len + 1] = '\0';
	yes = strmap_get(&c->attempted, buf, len + 1 + vl) != NULL;
	free(buf);
	return yes;
}

/* Adds a known write; 1 if new, 0 if the same was known, -2 on a conflict. */
static int ref_add(struct wctx *c, int64_t rev, const char *key, size_t len, bool del,
                   const json_t *value, long line, enum ref_source src, size_t *conflict)
{
	char *canon = del ? NULL : json_canon(value);
	int64_t *slot;
	int rc;

	if (!del && !canon)
		return MOOR_ENOMEM;
	rc = strmap_put(&c->ref_index, c->tmp, revkey(c, rev, key, len), (int64_t)c->n_refs, &slot);
	if (rc == 0) {
		const struct ref *r = &c->refs[*slot];
		bool same = r->del == del && (del || strcmp(r->value, canon) == 0);

		free(canon);
		*conflict = (size_t)*slot;
		return same ? 0 : -2;
	}
	if (rc < 0 || (c->n_refs == c->cap_refs && c->cap_refs > SIZE_MAX / 4)) {
		free(canon);
		return MOOR_ENOMEM;
	}
	if (c->n_refs == c->cap_refs) {
		size_t cap = c->cap_refs ? c->cap_refs * 2 : 256;
		struct ref *r2 = realloc(c->refs, cap * sizeof *r2);

		if (!r2) {
			free(canon);
			return MOOR_ENOMEM;
		}
		c->refs = r2;
		c->cap_refs = cap;
	}
	c->refs[c->n_refs++] = (struct ref){rev, key, len, del, canon, line, src};
	return 1;
}

static const char *op_name(bool del)
{
	return del ? "delete" : "put";
}

static int parse_op(const json_t *o, bool *del)
{
	const char *op = json_string_value(json_object_get(o, "op"));

	if (!op || strcmp(op, "put") == 0)
		*del = false;
	else if (strcmp(op, "delete") == 0)
		*del = true;
	else
		return -1;
	return 0;
}

/* The write log and the acknowledged, revision-stamped puts. */
static int load_writes(struct wctx *c)
{
	const struct hist *h = c->h;
	int rc = 0;

	for (size_t i = 0; rc >= 0 && i < json_array_size(h->records); i++) {
		const json_t *o = json_array_get(h->records, i);
		long line = h->record_lines[i];
		const char *key;
		size_t len, other;
		int64_t rev;
		bool del;

		if (strcmp(json_string_value(json_object_get(o, "type")), "log") != 0)
			continue;
		key = json_get_str(o, "key", &len);
		if (!key || json_get_i64(o, "revision", &rev) != 0 || parse_op(o, &del) != 0) {
			json_array_appendf(c->errors,
			                   "line %ld: log record needs key, revision, op", line);
			continue;
		}
		if (!c->have_log || rev < c->log_min)
			c->log_min = rev;
		if (!c->have_log || rev > c->log_max)
			c->log_max = rev;
		c->have_log = true;
		rc = ref_add(c, rev, key, len, del, json_object_get(o, "value"), line, REF_LOG,
		             &other);
		if (rc == -2 || rc == 0)
			json_array_appendf(c->errors,
			                   "line %ld: log lists revision %" PRId64
			                   " of this key twice (line %ld)",
			                   line, rev, c->refs[other].line);
	}
	for (size_t i = 0; rc >= 0 && i < h->n_ops; i++) {
		const struct hist_op *op = &h->ops[i];
		bool put = strcmp(op->f, "write") == 0 || strcmp(op->f, "cas") == 0;
		bool del = strcmp(op->f, "delete") == 0;
		char *canon;
		int64_t rev;
		size_t other;

		if ((!put && !del) || op->status == HIST_FAIL)
			continue;
		canon = put ? strdup(op->value ? op->value : "null") : NULL;
		if (put && !canon)
			return MOOR_ENOMEM;
		rc = attempted_put(c, op->key, op->key_len, canon);
		free(canon);
		/* A delete's header revision is not its own when it deleted nothing. */
		if (rc < 0 || !put || op->status != HIST_OK || !op->has_revision)
			continue;
		rev = op->revision;
		if (c->have_log && rev >= c->log_min && rev <= c->log_max) {
			int64_t *slot =
			    strmap_get(&c->ref_index, c->tmp, revkey(c, rev, op->key, op->key_len));
			char d[512];

			hist_op_describe(op, d, sizeof d);
			canon = strdup(op->value ? op->value : "null");
			if (!slot || c->refs[*slot].del || !canon ||
			    strcmp(c->refs[*slot].value, canon) != 0)
				violation(c,
				          "acknowledged write at revision %" PRId64
				          " is not in the write log: %s",
				          rev, d);
			free(canon);
			continue;
		}
		json_t *v = json_loads(op->value ? op->value : "null", JSON_DECODE_ANY, NULL);

		if (!v)
			return MOOR_ENOMEM;
		rc = ref_add(c, rev, op->key, op->key_len, false, v, op->ret_line, REF_ACK, &other);
		json_decref(v);
		if (rc == 1 && strmap_put(&c->ack_by_rev, c->tmp, revkey(c, rev, "", 0),
		                          (int64_t)c->n_refs - 1, NULL) < 0)
			return MOOR_ENOMEM;
		if (rc == -2) {
			violation(c,
			          "two acknowledgements claim revision %" PRId64
			          " of key %.*s with different values (lines %ld, %ld)",
			          rev, (int)op->key_len, op->key, c->refs[other].line,
			          op->ret_line);
			rc = 0;
		}
	}
	return rc < 0 ? rc : 0;
}

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	int x = memcmp(a, b, al < bl ? al : bl);

	return x ? x : (al > bl) - (al < bl);
}

static bool in_range(const struct watcher *w, const char *k, size_t len)
{
	if (w->prefix)
		return len >= w->key_len && memcmp(k, w->key, w->key_len) == 0;
	if (!w->end || w->end_len == 0)
		return keycmp(k, len, w->key, w->key_len) == 0;
	if (keycmp(k, len, w->key, w->key_len) < 0)
		return false;
	if (w->end_len == 1 && w->end[0] == '\0')
		return true;
	return keycmp(k, len, w->end, w->end_len) < 0;
}

static struct watcher *watcher_for(struct wctx *c, const json_t *o)
{
	char *id = json_canon(json_object_get(o, "watch"));

	if (!id)
		return NULL;
	for (size_t i = 0; i < c->n_w; i++)
		if (strcmp(c->w[i].id, id) == 0) {
			free(id);
			return &c->w[i];
		}
	if (c->n_w == c->cap_w) {
		size_t cap = c->cap_w ? c->cap_w * 2 : 8;
		struct watcher *w2 = realloc(c->w, cap * sizeof *w2);

		if (!w2) {
			free(id);
			return NULL;
		}
		c->w = w2;
		c->cap_w = cap;
	}
	memset(&c->w[c->n_w], 0, sizeof *c->w);
	c->w[c->n_w].id = id;
	c->w[c->n_w].s0 = -1;
	strmap_init(&c->w[c->n_w].delivered);
	return &c->w[c->n_w++];
}

static int excuse(struct watcher *w, int64_t from, int64_t to)
{
	struct span *s;

	if (from > to)
		return 0;
	s = realloc(w->excused, (w->n_excused + 1) * sizeof *s);
	if (!s)
		return MOOR_ENOMEM;
	w->excused = s;
	w->excused[w->n_excused++] = (struct span){from, to};
	return 0;
}

static void on_start(struct wctx *c, struct watcher *w, const json_t *o, long line)
{
	size_t kl, el;
	const char *key = json_get_str(o, "key", &kl), *end = json_get_str(o, "range_end", &el);
	int64_t s;

	if (!key || json_get_i64(o, "start_revision", &s) != 0 || s < 1) {
		json_array_appendf(c->errors,
		                   "line %ld: watch start needs key and start_revision >= 1", line);
		return;
	}
	if (w->s0 < 0) {
		w->key = key;
		w->key_len = kl;
		w->end = end;
		w->end_len = el;
		w->prefix = json_is_true(json_object_get(o, "prefix"));
		w->s0 = s;
		w->cur_start = s;
		w->pos = s - 1;
		w->line0 = line;
		return;
	}
	if (keycmp(key, kl, w->key, w->key_len) != 0 || el != w->end_len ||
	    (el && memcmp(end, w->end, el) != 0))
		json_array_appendf(c->errors, "line %ld: watch %s resumes with another range", line,
		                   w->id);
	if (s > w->pos + 1)
		violation(c,
		          "watch %s resumed at revision %" PRId64 " (line %ld) but had only "
		          "reached %" PRId64 ": revisions %" PRId64 "..%" PRId64 " skipped",
		          w->id, s, line, w->pos, w->pos + 1, s - 1);
	w->cur_start = s;
}

static void on_event(struct wctx *c, struct watcher *w, const json_t *o, size_t ri, long line)
{
	const json_t *evs = json_object_get(o, "events"), *e;
	int64_t prev = -1;
	size_t i;

	if (!json_is_array(evs)) {
		json_array_appendf(c->errors, "line %ld: watch event record needs \"events\"",
		                   line);
		return;
	}
	json_array_foreach(evs, i, e)
	{
		size_t kl;
		const char *k = json_get_str(e, "key", &kl);
		int64_t rev;
		bool del;
		int rc;

		if (!k || json_get_i64(e, "revision", &rev) != 0 || parse_op(e, &del) != 0) {
			json_array_appendf(c->errors, "line %ld: event needs key, revision, op",
			                   line);
			continue;
		}
		w->n_events++;
		if (!in_range(w, k, kl))
			violation(c,
			          "watch %s got key %.*s outside its range at revision %" PRId64
			          " (line %ld)",
			          w->id, (int)kl, k, rev, line);
		if (rev < w->cur_start)
			violation(c,
			          "watch %s got revision %" PRId64 " below its start %" PRId64
			          " (line %ld)",
			          w->id, rev, w->cur_start, line);
		if (prev >= 0 && rev < prev)
			violation(c,
			          "watch %s: revision %" PRId64 " after %" PRId64
			          " in one response (line %ld)",
			          w->id, rev, prev, line);
		rc = strmap_put(&w->delivered, c->tmp, revkey(c, rev, k, kl), (int64_t)ri, NULL);
		if (rc == 0)
			violation(c,
			          "watch %s: duplicate event for key %.*s at revision %" PRId64
			          " (line %ld)",
			          w->id, (int)kl, k, rev, line);
		else if (rev == w->last_rev && prev != rev)
			violation(c,
			          "watch %s: revision %" PRId64 " split across responses "
			          "(line %ld)",
			          w->id, rev, line);
		else if (rev <= w->pos && prev != rev && rev >= w->cur_start)
			violation(c,
			          "watch %s: revision %" PRId64 " delivered after the stream "
			          "had reached %" PRId64 " (line %ld)",
			          w->id, rev, w->pos, line);
		prev = rev;
	}
	if (prev > w->last_rev)
		w->last_rev = prev;
	if (prev > w->pos)
		w->pos = prev;
}

static void on_watch_record(struct wctx *c, const json_t *o, size_t ri, long line)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	struct watcher *w = watcher_for(c, o);
	int64_t r;

	if (!w) {
		json_array_appendf(c->errors, "line %ld: out of memory", line);
		return;
	}
	if (strcmp(type, "start") == 0) {
		on_start(c, w, o, line);
		return;
	}
	if (w->s0 < 0) {
		json_array_appendf(c->errors, "line %ld: watch %s has a %s before its start", line,
		                   w->id, type);
		return;
	}
	if (strcmp(type, "event") == 0) {
		on_event(c, w, o, ri, line);
	} else if (strcmp(type, "progress") == 0 || strcmp(type, "end") == 0) {
		if (json_get_i64(o, "revision", &r) == 0 && r > w->pos)
			w->pos = r;
	} else if (strcmp(type, "compacted") == 0) {
		if (json_get_i64(o, "compact_revision", &r) != 0) {
			json_array_appendf(c->errors, "line %ld: compacted needs compact_revision",
			                   line);
			return;
		}
		if (excuse(w, w->pos + 1, r - 1) != 0)
			json_array_appendf(c->errors, "line %ld: out of memory", line);
		if (r - 1 > w->pos)
			w->pos = r - 1;
	} else {
		json_array_appendf(c->errors, "line %ld: unknown watch record type %s", line, type);
	}
}

/* Every delivered event against the known writes, then added to them. */
static int check_values(struct wctx *c)
{
	for (size_t i = 0; i < c->n_w; i++) {
		struct watcher *w = &c->w[i];

		for (size_t s = 0; s < w->delivered.cap; s++) {
			const struct strmap_slot *sl = &w->delivered.slots[s];
			const json_t *rec = NULL, *evs, *e;
			size_t j, other;
			int64_t rev = 0, *slot;
			long line;
			int rc;

			if (!sl->key)
				continue;
			for (int b = 0; b < 8; b++)
				rev = (int64_t)((uint64_t)rev << 8 | (unsigned char)sl->key[b]);
			/* The event itself, in its record (index sl->val). */
			rec = json_array_get(c->h->records, (size_t)sl->val);
			line = c->h->record_lines[sl->val];
			evs = json_object_get(rec, "events");
			json_array_foreach(evs, j, e)
			{
				size_t kl;
				const char *k = json_get_str(e, "key", &kl);
				int64_t er;
				bool del;
				char *canon;

				if (!k || json_get_i64(e, "revision", &er) != 0 || er != rev ||
				    kl != sl->len - 8 || memcmp(k, sl->key + 8, kl) != 0 ||
				    parse_op(e, &del) != 0)
					continue;
				rc = ref_add(c, rev, k, kl, del, json_object_get(e, "value"), line,
				             REF_WATCH, &other);
				if (rc < 0 && rc != -2)
					return rc;
				if (rc == -2) {
					const struct ref *r = &c->refs[other];

					violation(c,
					          "watch %s: %s of %.*s at revision %" PRId64
					          " (line %ld) disagrees with the %s %s (line %ld)",
					          w->id, op_name(del), (int)kl, k, rev, line,
					          r->source == REF_LOG   ? "write log's"
					          : r->source == REF_ACK ? "acknowledged"
					                                 : "other watcher's",
					          op_name(r->del), r->line);
				} else if (rc == 1 && c->have_log && rev >= c->log_min &&
				           rev <= c->log_max) {
					violation(c,
					          "watch %s: %s of %.*s at revision %" PRId64
					          " (line %ld) is not in the write log",
					          w->id, op_name(del), (int)kl, k, rev, line);
				} else if (rc == 1 &&
				           (slot = strmap_get(&c->ack_by_rev, c->tmp,
				                              revkey(c, rev, "", 0))) != NULL) {
					/* Each op is one request on one key: its revision is its
					 * own. */
					const struct ref *r = &c->refs[*slot];

					violation(
					    c,
					    "watch %s: %s of %.*s at revision %" PRId64
					    " (line %ld), a revision acknowledged to a write of "
					    "%.*s (line %ld)",
					    w->id, op_name(del), (int)kl, k, rev, line,
					    (int)r->key_len, r->key, r->line);
				} else if (rc == 1) {
					canon =
					    del ? NULL : json_canon(json_object_get(e, "value"));
					if (!was_attempted(c, k, kl, canon))
						violation(
						    c,
						    "watch %s: %s of %.*s = %s at revision %" PRId64
						    " (line %ld) was never written",
						    w->id, op_name(del), (int)kl, k,
						    canon ? canon : "", rev, line);
					free(canon);
				}
				break;
			}
		}
	}
	return 0;
}

/*
 * The events of one txn arrive in the txn's op order, which the write log
 * gives by its line order within a revision.
 */
static void check_txn_order(struct wctx *c)
{
	for (size_t i = 0; c->have_log && i < json_array_size(c->h->records); i++) {
		const json_t *o = json_array_get(c->h->records, i), *evs, *e;
		const char *f = json_string_value(json_object_get(o, "f"));
		const char *type = json_string_value(json_object_get(o, "type"));
		const struct ref *prev = NULL;
		size_t j;

		if (!f || strcmp(f, "watch") != 0 || strcmp(type, "event") != 0)
			continue;
		evs = json_object_get(o, "events");
		json_array_foreach(evs, j, e)
		{
			size_t kl;
			const char *k = json_get_str(e, "key", &kl);
			const struct ref *r = NULL;
			int64_t rev, *slot;

			if (k && json_get_i64(e, "revision", &rev) == 0 &&
			    (slot = strmap_get(&c->ref_index, c->tmp, revkey(c, rev, k, kl))) &&
			    c->refs[*slot].source == REF_LOG)
				r = &c->refs[*slot];
			if (r && prev && prev->rev == r->rev && prev->line > r->line)
				violation(c,
				          "line %ld: the events of revision %" PRId64
				          " are not in the txn's order (%.*s before %.*s)",
				          c->h->record_lines[i], r->rev, (int)prev->key_len,
				          prev->key, (int)r->key_len, r->key);
			prev = r;
		}
	}
}

static bool excused(const struct watcher *w, int64_t rev)
{
	for (size_t i = 0; i < w->n_excused; i++)
		if (rev >= w->excused[i].from && rev <= w->excused[i].to)
			return true;
	return false;
}

static void check_gaps(struct wctx *c)
{
	for (size_t i = 0; i < c->n_w; i++) {
		struct watcher *w = &c->w[i];

		if (w->s0 < 0)
			continue;
		for (size_t r = 0; r < c->n_refs; r++) {
			const struct ref *f = &c->refs[r];

			if (f->rev < w->s0 || f->rev > w->pos || !in_range(w, f->key, f->key_len) ||
			    excused(w, f->rev))
				continue;
			if (strmap_get(&w->delivered, c->tmp,
			               revkey(c, f->rev, f->key, f->key_len)))
				continue;
			violation(c,
			          "watch %s missed the %s of %.*s at revision %" PRId64
			          " (known from %s line %ld) though it reached revision %" PRId64,
			          w->id, op_name(f->del), (int)f->key_len, f->key, f->rev,
			          f->source == REF_LOG   ? "the write log,"
			          : f->source == REF_ACK ? "an acknowledgement,"
			                                 : "another watcher,",
			          f->line, w->pos);
		}
	}
}

int chk_watch(const struct hist *h, struct chk_result *r)
{
	struct wctx c = {.h = h};
	size_t n_events = 0;
	int rc;

	memset(r, 0, sizeof *r);
	strmap_init(&c.ref_index);
	strmap_init(&c.attempted);
	strmap_init(&c.ack_by_rev);
	c.violations = json_array();
	c.errors = json_array();
	r->detail = json_object();
	rc = c.violations && c.errors && r->detail ? 0 : MOOR_ENOMEM;
	if (rc == 0)
		rc = load_writes(&c);
	for (size_t i = 0; rc == 0 && i < json_array_size(h->records); i++) {
		const json_t *o = json_array_get(h->records, i);
		const char *f = json_string_value(json_object_get(o, "f"));

		if (f && strcmp(f, "watch") == 0)
			on_watch_record(&c, o, i, h->record_lines[i]);
	}
	if (rc == 0)
		rc = check_values(&c);
	if (rc == 0) {
		check_txn_order(&c);
		check_gaps(&c);
	}
	for (size_t i = 0; i < c.n_w; i++) {
		n_events += c.w[i].n_events;
		free(c.w[i].id);
		free(c.w[i].excused);
		strmap_free(&c.w[i].delivered);
	}
	for (size_t i = 0; i < c.n_refs; i++)
		free(c.refs[i].value);
	free(c.refs);
	free(c.w);
	strmap_free(&c.ref_index);
	strmap_free(&c.attempted);
	strmap_free(&c.ack_by_rev);
	if (!r->detail) {
		json_decref(c.violations);
		json_decref(c.errors);
		return MOOR_ENOMEM;
	}
	json_object_set_new(r->detail, "watchers", json_integer((json_int_t)c.n_w));
	json_object_set_new(r->detail, "events", json_integer((json_int_t)n_events));
	json_object_set_new(r->detail, "known_writes", json_integer((json_int_t)c.n_refs));
	json_object_set_new(r->detail, "write_log", json_boolean(c.have_log));
	json_object_set_new(r->detail, "violations_count",
	                    json_integer((json_int_t)c.n_violations));
	if (c.violations)
		json_object_set_new(r->detail, "violations", c.violations);
	if (c.errors)
		json_object_set_new(r->detail, "history_errors", c.errors);
	r->empty = c.n_w == 0;
	if (rc < 0)
		chk_result_set(r, CHK_UNKNOWN, "watch: out of memory");
	else if (c.n_violations)
		chk_result_set(r, CHK_INVALID, "watch: INVALID: %zu violations; first: %s",
		               c.n_violations, json_string_value(json_array_get(c.violations, 0)));
	else if (json_array_size(c.errors))
		chk_result_set(r, CHK_UNKNOWN, "watch: bad history: %s",
		               json_string_value(json_array_get(c.errors, 0)));
	else if (c.n_w == 0)
		chk_result_set(r, CHK_UNKNOWN, "watch: no watchers in the history");
	else
		chk_result_set(r, CHK_VALID,
		               "watch: valid: %zu watchers, %zu events, %zu known writes", c.n_w,
		               n_events, c.n_refs);
	return 0;
}

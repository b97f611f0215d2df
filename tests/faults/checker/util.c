/*
 * Helpers shared by the checkers: an open-addressing hash map from byte
 * strings to integers, canonical JSON text for comparing values, field
 * accessors tolerant of etcd's "64-bit integers as strings", and the
 * formatting of results.
 */
#include "tests/faults/checker/util.h"

#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

void strmap_init(struct strmap *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->len = 0;
}

void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	strmap_init(m);
}

static struct strmap_slot *find_slot(struct strmap_slot *slots, size_t cap, const char *key,
                                     size_t len, uint64_t h)
{
	size_t i = (size_t)h & (cap - 1);

	for (;;) {
		struct strmap_slot *s = &slots[i];

		if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
			return s;
		i = (i + 1) & (cap - 1);
	}
}

int64_t *strmap_get(const struct strmap *m, const char *key, size_t len)
{
	struct strmap_slot *s;

	if (!m->cap)
		return NULL;
	s = find_slot(m->slots, m->cap, key, len, hash_bytes(key, len));
	return s->key ? &s->val : NULL;
}

static int grow(struct strmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct strmap_slot *slots = calloc(cap, sizeof *slots);

	if (!slots)
		return MOOR_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct strmap_slot *o = &m->slots[i];

		if (o->key)
			*find_slot(slots, cap, o->key, o->len, o->hash) = *o;
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, size_t len, int64_t val, int64_t **slot_val)
{
	uint64_t h = hash_bytes(key, len);
	struct strmap_slot *s;

	if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0)
		return MOOR_ENOMEM;
	s = find_slot(m->slots, m->cap, key, len, h);
	if (s->key) {
		if (slot_val)
			*slot_val = &s->val;
		return 0;
	}
	s->key = malloc(len + 1);
	if (!s->key)
		return MOOR_ENOMEM;
	memcpy(s->key, key, len);
	s->key[len] = '\0';
	s->len = len;
	s->hash = h;
	s->val = val;
	m->len++;
	if (slot_val)
		*slot_val = &s->val;
	return 1;
}

const char *strmap_intern(struct strmap *m, const char *key, size_t len)
{
	uint64_t h = hash_bytes(key, len);
	struct strmap_slot *s;

	/* A slot's key buffer never moves when the table grows, so the pointer is stable. */
	if (strmap_put(m, key, len, 0, NULL) < 0)
		return NULL;
	s = find_slot(m->slots, m->cap, key, len, h);
	return s->key;
}

char *json_canon(const json_t *v)
{
	if (!v)
		return strdup("null");
	return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
}

int json_get_i64(const json_t *obj, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(obj, name);
	const char *s;
	char *end;
	long long x;

	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return MOOR_ENOTFOUND;
	s = json_string_value(v);
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return MOOR_EINVAL;
	*out = (int64_t)x;
	return 0;
}

const char *json_get_str(const json_t *obj, const char *name, size_t *len)
{
	const json_t *v = json_object_get(obj, name);

	if (!json_is_string(v)) {
		*len = 0;
		return NULL;
	}
	*len = json_string_length(v);
	return json_string_value(v);
}

void json_array_appendf(json_t *arr, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	json_array_append_new(arr, json_string(buf));
}

static const char *status_name(enum hist_status s)
{
	return s == HIST_OK ? "ok" : s == HIST_FAIL ? "fail" : "info";
}

void hist_op_describe(const struct hist_op *op, char *out, size_t cap)
{
	bool is_read = strcmp(op->f, "read") == 0 || strcmp(op->f, "final-read") == 0;
	const char *val = is_read ? (op->status == HIST_OK ? op->result : NULL) : op->value;
	char ret[32];

	if (op->ret_time == HIST_TIME_INF)
		snprintf(ret, sizeof ret, "-");
	else
		snprintf(ret, sizeof ret, "%" PRId64, op->ret_time);
	snprintf(out, cap, "p%" PRId64 " %s %.*s%s%s%s%.200s -> %s [t=%" PRId64 "..%s, line %ld]",
	         op->process, op->f, (int)(op->key_len > 64 ? 64 : op->key_len), op->key,
	         op->expect ? " expect=" : "", op->expect ? op->expect : "", val ? " " : "",
	         val ? val : "", status_name(op->status), op->call_time, ret, op->call_line);
}

void chk_result_set(struct chk_result *r, enum chk_verdict v, const char *fmt, ...)
{
	va_list ap;

	r->verdict = v;
	if (!r->detail)
		r->detail = json_object();
	if (r->detail)
		json_object_set_new(r->detail, "valid",
		                    v == CHK_VALID     ? json_true()
		                    : v == CHK_INVALID ? json_false()
		                                       : json_string("unknown"));
	va_start(ap, fmt);
	vsnprintf(r->summary, sizeof r->summary, fmt, ap);
	va_end(ap);
}

void chk_result_free(struct chk_result *r)
{
	json_decref(r->detail);
	r->detail = NULL;
}

const char *chk_verdict_name(enum chk_verdict v)
{
	return v == CHK_VALID ? "valid" : v == CHK_INVALID ? "invalid" : "unknown";
}

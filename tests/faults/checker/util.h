/*
 * Private helpers of the checkers: a byte-string → int64 hash map (value
 * interning, sets, per-key grouping), canonical forms of JSON values, and
 * small accessors for history records.
 */
#ifndef MOOR_TESTS_FAULTS_CHECKER_UTIL_H
#define MOOR_TESTS_FAULTS_CHECKER_UTIL_H

#include "tests/faults/checker/checker.h"

#include <stdarg.h>

struct strmap_slot {
	char *key; /* owned copy, NUL-terminated; NULL = empty slot */
	size_t len;
	uint64_t hash;
	int64_t val;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t len;
};

void strmap_init(struct strmap *m);
void strmap_free(struct strmap *m);
/* The value stored for key, or NULL. The pointer lives until the next put. */
int64_t *strmap_get(const struct strmap *m, const char *key, size_t len);
/*
 * Stores key → val unless key is present. *slot_val (if not NULL) points at
 * the stored value afterwards; returns 1 if inserted, 0 if present, or
 * MOOR_ENOMEM.
 */
int strmap_put(struct strmap *m, const char *key, size_t len, int64_t val, int64_t **slot_val);

/*
 * A stable copy of key (NUL-terminated) shared by every equal key: the map
 * owns it until strmap_free. NULL on OOM.
 */
const char *strmap_intern(struct strmap *m, const char *key, size_t len);

/*
 * The canonical text of a JSON value (compact, sorted keys), malloc'd; NULL
 * on OOM. A missing value (NULL) reads as "null".
 */
char *json_canon(const json_t *v);

/* Reads an integer field that may be a JSON integer or a decimal string
 * (etcd writes 64-bit integers as strings). 0 if present and valid. */
int json_get_i64(const json_t *obj, const char *name, int64_t *out);

/* A string field with its length, or NULL (and *len = 0). */
const char *json_get_str(const json_t *obj, const char *name, size_t *len);

/* Appends a formatted string to a JSON array (silently drops on OOM). */
void json_array_appendf(json_t *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A short human description of an op: "p3 write k=\"x\" 5 ok [t 10..20]". */
void hist_op_describe(const struct hist_op *op, char *out, size_t cap);

/* Fills r: verdict, detail["valid"], and the summary line. */
void chk_result_set(struct chk_result *r, enum chk_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/*
 * The worker's own write path: one HTTP attempt per write against one
 * member, no retry, so that the outcome the history records is exactly what
 * the server said. A write answered 200 is ok; one refused with etcd's
 * "no leader" (returned before proposing) or whose connection could not be
 * made is a definite failure; anything else — a timeout, a lost connection,
 * "leader changed", "request timed out" — is indeterminate. After any error
 * the handle moves to the next member. One handle per thread.
 */
#ifndef MOOR_FAULTS_HARNESS_RAWKV_H
#define MOOR_FAULTS_HARNESS_RAWKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum raw_outcome { RAW_OK, RAW_FAIL, RAW_INFO };

struct raw_kv;
/* endpoints are copied; the first one used is endpoints[rotate % n]. */
struct raw_kv *raw_open(const char *const *endpoints, size_t n, size_t rotate, int timeout_ms);
void raw_close(struct raw_kv *r);
/* The last error's text ("" after success). */
const char *raw_error(const struct raw_kv *r);

enum raw_cmp { RAW_CMP_NONE, RAW_CMP_VALUE, RAW_CMP_CREATE };
/* A put of key=value, guarded (when cmp != RAW_CMP_NONE) by a txn comparing
 * cmp_key's value with cmp_value or its create_revision with cmp_number.
 * *succeeded is the txn's branch (true for a plain put); *revision the
 * response header's revision. */
enum raw_outcome raw_put(struct raw_kv *r, const char *key, const char *value, enum raw_cmp cmp,
                         const char *cmp_key, const char *cmp_value, int64_t cmp_number,
                         bool *succeeded, int64_t *revision);

#endif

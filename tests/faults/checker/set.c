/*
 * The set checker: nothing acknowledged is lost, nothing is invented.
 *
 * Per key, "add" operations each add one unique element ("value"); each ok
 * "final-read" returns the whole set as a JSON array ("value" of its
 * completion). For every final read:
 *   lost        an add acknowledged before the read was invoked is absent;
 *   unexpected  an element no add ever attempted, or whose add definitely
 *               failed, or one listed twice;
 *   recovered   an indeterminate add that is present (allowed);
 * an indeterminate add that is absent is allowed too, and so is any add whose
 * outcome arrived only after the read began (it was concurrent with it).
 * Elements compare by their canonical JSON text. A key with adds but no ok
 * final read gives "unknown": nothing was checked.
 */
#include "tests/faults/checker/util.h"

#include "common/error.h"

#include <stdlib.h>
#include <string.h>

/* Per element, the index + 1 of its add op in the history. */
struct set_key {
	const char *key;
	size_t key_len;
	struct strmap adds;
	size_t *reads; /* hist op indexes of ok final reads */
	size_t n_reads, cap_reads;
};

struct set_counts {
	size_t acked, lost, unexpected, recovered, indeterminate_absent;
};

static int note_unexpected(json_t *list, const char *elem, const char *why)
{
	if (json_array_size(list) < 20)
		json_array_appendf(list, "%s (%s)", elem, why);
	return 0;
}

static int check_read(const struct hist *h, const struct set_key *k, const struct hist_op *rd,
                      struct set_counts *c, json_t *lost, json_t *unexp)
{
	json_t *val = rd->result ? json_loads(rd->result, JSON_DECODE_ANY, NULL) : NULL;
	struct strmap seen;
	size_t i;
	json_t *e;
	int rc = 0;

	if (!json_is_array(val)) {
		note_unexpected(unexp, "final-read value", "is not an array");
		c->unexpected++;
		json_decref(val);
		return 0;
	}
	strmap_init(&seen);
	json_array_foreach(val, i, e)
	{
		char *s = json_canon(e);
		int64_t *add;

		if (!s) {
			rc = MOOR_ENOMEM;
			break;
		}
		rc = strmap_put(&seen, s, strlen(s), 0, NULL);
		add = strmap_get(&k->adds, s, strlen(s));
		if (rc == 0) {
			c->unexpected++;
			note_unexpected(unexp, s, "read twice");
		} else if (rc == 1 && !add) {
			c->unexpected++;
			note_unexpected(unexp, s, "never added");
		} else if (rc == 1 && h->ops[*add - 1].status == HIST_FAIL) {
			c->unexpected++;
			note_unexpected(unexp, s, "its add failed");
		} else if (rc == 1 && h->ops[*add - 1].status == HIST_INFO) {
			c->recovered++;
		}
		free(s);
		if (rc < 0)
			break;
		rc = 0;
	}
	for (size_t j = 0; rc == 0 && j < k->adds.cap; j++) {
		const struct strmap_slot *sl = &k->adds.slots[j];
		const struct hist_op *add;

		if (!sl->key)
			continue;
		add = &h->ops[sl->val - 1];
		if (add->status != HIST_OK || add->ret_time >= rd->call_time)
			continue;
		c->acked++;
		if (strmap_get(&seen, sl->key, sl->len))
			continue;
		c->lost++;
		if (json_array_size(lost) < 20) {
			char buf[512];

			hist_op_describe(add, buf, sizeof buf);
			json_array_appendf(lost, "%s", buf);
		}
	}
	for (size_t j = 0; rc == 0 && j < k->adds.cap; j++) {
		const struct strmap_slot *sl = &k->adds.slots[j];

		if (sl->key && h->ops[sl->val - 1].status == HIST_INFO &&
		    !strmap_get(&seen, sl->key, sl->len))
			c->indeterminate_absent++;
	}
	strmap_free(&seen);
	json_decref(val);
	return rc;
}

static struct set_key *key_for(struct set_key **keys, size_t *n, size_t *cap, struct strmap *index,
                               const struct hist_op *op, int *rc)
{
	int64_t *slot;

	*rc = strmap_put(index, op->key, op->key_len, (int64_t)*n, &slot);
	if (*rc < 0)
		return NULL;
	if (*rc == 1) {
		if (*n == *cap) {
			size_t c2 = *cap ? *cap * 2 : 4;
			struct set_key *k2 = realloc(*keys, c2 * sizeof *k2);

			if (!k2) {
				*rc = MOOR_ENOMEM;
				return NULL;
			}
			*keys = k2;
			*cap = c2;
		}
		memset(&(*keys)[*n], 0, sizeof **keys);
		(*keys)[*n].key = op->key;
		(*keys)[*n].key_len = op->key_len;
		strmap_init(&(*keys)[*n].adds);
		(*n)++;
	}
	*rc = 0;
	return &(*keys)[*slot];
}

static int gather(const struct hist *h, struct set_key **keys_out, size_t *n_out, json_t *errs)
{
	struct strmap index;
	struct set_key *keys = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	strmap_init(&index);
	for (size_t i = 0; rc == 0 && i < h->n_ops; i++) {
		const struct hist_op *op = &h->ops[i];
		bool add = strcmp(op->f, "add") == 0, rd = strcmp(op->f, "final-read") == 0;
		struct set_key *k;

		if (!add && !(rd && op->status == HIST_OK))
			continue;
		k = key_for(&keys, &n, &cap, &index, op, &rc);
		if (!k)
			break;
		if (add) {
			char *s = strdup(op->value ? op->value : "null");

			if (!s) {
				rc = MOOR_ENOMEM;
				break;
			}
			rc = strmap_put(&k->adds, s, strlen(s), (int64_t)i + 1, NULL);
			if (rc == 0)
				json_array_appendf(errs, "line %ld: element %s added twice",
				                   op->call_line, s);
			free(s);
			rc = rc < 0 ? rc : 0;
			continue;
		}
		if (k->n_reads == k->cap_reads) {
			size_t c2 = k->cap_reads ? k->cap_reads * 2 : 4;
			size_t *r2 = realloc(k->reads, c2 * sizeof *r2);

			if (!r2) {
				rc = MOOR_ENOMEM;
				break;
			}
			k->reads = r2;
			k->cap_reads = c2;
		}
		k->reads[k->n_reads++] = i;
	}
	strmap_free(&index);
	*keys_out = keys;
	*n_out = n;
	return rc;
}

int chk_set(const struct hist *h, struct chk_result *r)
{
	struct set_key *keys = NULL;
	size_t n = 0, n_adds = 0, n_reads = 0, unread = 0;
	struct set_counts c = {0};
	json_t *lost = json_array(), *unexp = json_array(), *errs = json_array();
	int rc;

	memset(r, 0, sizeof *r);
	r->detail = json_object();
	if (!r->detail || !lost || !unexp || !errs) {
		json_decref(lost);
		json_decref(unexp);
		json_decref(errs);
		json_decref(r->detail);
		r->detail = NULL;
		return MOOR_ENOMEM;
	}
	rc = gather(h, &keys, &n, errs);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		n_adds += keys[i].adds.len;
		n_reads += keys[i].n_reads;
		if (keys[i].n_reads == 0)
			unread++;
		for (size_t j = 0; rc == 0 && j < keys[i].n_reads; j++)
			rc = check_read(h, &keys[i], &h->ops[keys[i].reads[j]], &c, lost, unexp);
	}
	for (size_t i = 0; i < n; i++) {
		strmap_free(&keys[i].adds);
		free(keys[i].reads);
	}
	free(keys);
	json_object_set_new(r->detail, "adds", json_integer((json_int_t)n_adds));
	json_object_set_new(r->detail, "final_reads", json_integer((json_int_t)n_reads));
	json_object_set_new(r->detail, "acknowledged", json_integer((json_int_t)c.acked));
	json_object_set_new(r->detail, "lost_count", json_integer((json_int_t)c.lost));
	json_object_set_new(r->detail, "unexpected_count", json_integer((json_int_t)c.unexpected));
	json_object_set_new(r->detail, "recovered_count", json_integer((json_int_t)c.recovered));
	json_object_set_new(r->detail, "indeterminate_absent",
	                    json_integer((json_int_t)c.indeterminate_absent));
	json_object_set_new(r->detail, "lost", lost);
	json_object_set_new(r->detail, "unexpected", unexp);
	json_object_set_new(r->detail, "history_errors", errs);
	r->empty = n == 0;
	if (rc < 0)
		chk_result_set(r, CHK_UNKNOWN, "set: out of memory");
	else if (json_array_size(errs))
		chk_result_set(r, CHK_UNKNOWN, "set: bad history: %s",
		               json_string_value(json_array_get(errs, 0)));
	else if (c.lost || c.unexpected)
		chk_result_set(r, CHK_INVALID,
		               "set: INVALID: %zu lost, %zu unexpected, %zu recovered of %zu adds",
		               c.lost, c.unexpected, c.recovered, n_adds);
	else if (unread || n == 0)
		chk_result_set(r, CHK_UNKNOWN, "set: %s",
		               n == 0 ? "no set operations in the history"
		                      : "a key with adds has no ok final-read");
	else
		chk_result_set(
		    r, CHK_VALID,
		    "set: valid: %zu adds, %zu acknowledged reads checked, %zu recovered", n_adds,
		    c.acked, c.recovered);
	return 0;
}

/*
 * moorctl's key-value verbs: put, get, del, txn (etcdctl's stdin syntax,
 * interactive or not), watch and compaction, printed the way etcdctl
 * prints them.
 */
#include "client/moorctl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) x, strlen(x)

static int read_stdin(char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);

	while (b) {
		size_t r = fread(b + n, 1, cap - n, stdin);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
		}
	}
	if (!b)
		return -1;
	/* etcdctl drops one trailing newline of a value from stdin? no: keeps bytes as given */
	*out = b;
	*len = n;
	return 0;
}

int cmd_put(int argc, char **argv)
{
	static const char *lease;
	static bool prev_kv, ignore_value, ignore_lease;
	static const struct ctl_flag flags[] = {
	    {"lease", 0, F_STR, &lease, "lease ID (in hexadecimal) to attach to the key"},
	    {"prev-kv", 0, F_BOOL, &prev_kv,
	     "return the previous key-value pair before modification"},
	    {"ignore-value", 0, F_BOOL, &ignore_value, "update the key using its current value"},
	    {"ignore-lease", 0, F_BOOL, &ignore_lease, "update the key using its current lease"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {
	    "put",
	    "put [options] <key> [value] (value from stdin when absent)",
	    "Puts the given key into the store",
	    flags,
	    1,
	    2,
	    NULL,
	    0};
	struct moor_put_opts o = {0};
	struct moor_response *r = NULL;
	char *pos[4], *val = NULL;
	size_t val_len = 0;
	int np, rc;

	rc = ctl_parse(&v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (lease && ctl_parse_hex(lease, (uint64_t *)&o.lease) != 0)
		return ctl_usage_error(&v, "bad lease ID \"%s\", expecting ID in hexadecimal",
		                       lease);
	o.prev_kv = prev_kv;
	o.ignore_value = ignore_value;
	o.ignore_lease = ignore_lease;
	if (np == 2) {
		val = pos[1];
		val_len = strlen(val);
	} else if (!ignore_value) {
		if (read_stdin(&val, &val_len) != 0)
			return ctl_fail(MOOR_ENOMEM);
	}
	moor_client *c = ctl_client();
	rc = moor_put(c, S(pos[0]), val ? val : "", val_len, &o, &r);
	if (np != 2)
		free(val);
	if (rc) {
		rc = ctl_fail(rc);
		moor_client_close(c);
		return rc;
	}
	if (g.fmt == FMT_JSON)
		ctl_json_print(ctl_json_response(r));
	else
		ctl_print_response(r, false, false);
	moor_response_free(r);
	moor_client_close(c);
	return 0;
}

static int sort_target(const char *s, enum moor_sort_target *t)
{
	static const char *const names[] = {"KEY", "VERSION", "CREATE", "MODIFY", "VALUE"};

	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*t = (enum moor_sort_target)i;
			return 0;
		}
	return -1;
}

static void table_kvs(const struct moor_response *r)
{
	int rows = (int)r->n_kvs + 1;
	const char **cells = calloc((size_t)rows * 6, sizeof *cells);
	char(*nums)[4][24] = calloc((size_t)rows, sizeof *nums);
	char **keys = calloc((size_t)rows * 2, sizeof *keys);

	if (!cells || !nums || !keys)
		goto out;
	const char *hdr[6] = {"KEY",          "VALUE",   "CREATE REVISION",
	                      "MOD REVISION", "VERSION", "LEASE"};
	memcpy(cells, hdr, sizeof hdr);
	for (size_t i = 0; i < r->n_kvs; i++) {
		const struct moor_kv *kv = &r->kvs[i];
		keys[2 * i] = strndup((const char *)kv->key, kv->key_len);
		keys[2 * i + 1] = strndup((const char *)kv->value, kv->value_len);
		snprintf(nums[i][0], 24, "%lld", (long long)kv->create_revision);
		snprintf(nums[i][1], 24, "%lld", (long long)kv->mod_revision);
		snprintf(nums[i][2], 24, "%lld", (long long)kv->version);
		snprintf(nums[i][3], 24, "%llx", (unsigned long long)kv->lease);
		const char **row = cells + (i + 1) * 6;
		row[0] = keys[2 * i] ? keys[2 * i] : "";
		row[1] = keys[2 * i + 1] ? keys[2 * i + 1] : "";
		for (int k = 0; k < 4; k++)
			row[2 + k] = nums[i][k];
	}
	ctl_table(cells, rows, 6);
out:
	if (keys)
		for (int i = 0; i < rows * 2; i++)
			free(keys[i]);
	free(keys);
	free(nums);
	free(cells);
}

/* The keys a get or del names: <key> [range_end], --prefix or --from-key. */
static int range_args(const struct ctl_verb *v, bool prefix, bool from_key, char **pos, int np,
                      struct moor_range *r)
{
	if (prefix + from_key + (np == 2) > 1)
		return ctl_usage_error(v, "--prefix, --from-key and range_end exclude each other");
	r->prefix = prefix;
	r->from_key = from_key;
	if (np == 2) {
		r->range_end = pos[1];
		r->range_end_len = strlen(pos[1]);
	}
	return 0;
}

int cmd_get(int argc, char **argv)
{
	static bool prefix, from_key, keys_only, value_only, count_only;
	static int64_t limit, rev;
	static const char *sort_by, *order, *consistency;
	static const struct ctl_flag flags[] = {
	    {"prefix", 0, F_BOOL, &prefix, "get keys with matching prefix"},
	    {"from-key", 0, F_BOOL, &from_key,
	     "get keys that are greater than or equal to the given key"},
	    {"limit", 0, F_INT, &limit, "maximum number of results"},
	    {"rev", 0, F_INT, &rev, "specify the kv revision"},
	    {"keys-only", 0, F_BOOL, &keys_only, "get only the keys"},
	    {"print-value-only", 0, F_BOOL, &value_only,
	     "only write values when using the simple output format"},
	    {"count-only", 0, F_BOOL, &count_only, "get only the count"},
	    {"sort-by", 0, F_STR, &sort_by, "sort target: CREATE, KEY, MODIFY, VALUE or VERSION"},
	    {"order", 0, F_STR, &order, "order of results: ASCEND or DESCEND (ASCEND by default)"},
	    {"consistency", 0, F_STR, &consistency, "linearizable (l) or serializable (s)"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"get",
	                                  "get [options] <key> [range_end]",
	                                  "Gets the key or a range of keys",
	                                  flags,
	                                  1,
	                                  2,
	                                  NULL,
	                                  0};
	struct moor_get_opts o = {0};
	struct moor_response *r = NULL;
	char *pos[4];
	int np, rc;

	rc = ctl_parse(&v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = range_args(&v, prefix, from_key, pos, np, &o.range)))
		return rc;
	o.limit = limit;
	o.revision = rev;
	o.keys_only = keys_only;
	o.count_only = count_only;
	if (sort_by && sort_target(sort_by, &o.sort_target) != 0)
		return ctl_usage_error(&v, "bad --sort-by \"%s\"", sort_by);
	if (order) {
		if (strcasecmp(order, "ASCEND") == 0)
			o.sort_order = MOOR_ORDER_ASCEND;
		else if (strcasecmp(order, "DESCEND") == 0)
			o.sort_order = MOOR_ORDER_DESCEND;
		else
			return ctl_usage_error(&v, "bad --order \"%s\"", order);
	} else if (sort_by) {
		o.sort_order = MOOR_ORDER_ASCEND;
	}
	if (consistency) {
		if (strcmp(consistency, "s") == 0)
			o.read_mode = MOOR_READ_SERIALIZABLE;
		else if (strcmp(consistency, "l") == 0)
			o.read_mode = MOOR_READ_LINEARIZABLE;
		else
			return ctl_usage_error(&v, "bad --consistency \"%s\" (l or s)",
			                       consistency);
	}
	moor_client *c = ctl_client();
	rc = moor_get(c, S(pos[0]), &o, &r);
	if (rc) {
		rc = ctl_fail(rc);
		moor_client_close(c);
		return rc;
	}
	if (g.fmt == FMT_JSON)
		ctl_json_print(ctl_json_response(r));
	else if (g.fmt == FMT_TABLE)
		table_kvs(r);
	else if (count_only)
		printf("%lld\n", (long long)r->count);
	else
		ctl_print_response(r, false, value_only); /* etcdctl prints the empty value too */
	moor_response_free(r);
	moor_client_close(c);
	return 0;
}

int cmd_del(int argc, char **argv)
{
	static bool prefix, prev_kv, from_key;
	static const struct ctl_flag flags[] = {
	    {"prefix", 0, F_BOOL, &prefix, "delete keys with matching prefix"},
	    {"prev-kv", 0, F_BOOL, &prev_kv, "return deleted key-value pairs"},
	    {"from-key", 0, F_BOOL, &from_key,
	     "delete keys that are greater than or equal to the given key"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"del",
	                                  "del [options] <key> [range_end]",
	                                  "Removes the key or a range of keys",
	                                  flags,
	                                  1,
	                                  2,
	                                  NULL,
	                                  0};
	struct moor_delete_opts o = {0};
	struct moor_response *r = NULL;
	char *pos[4];
	int np, rc;

	rc = ctl_parse(&v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = range_args(&v, prefix, from_key, pos, np, &o.range)))
		return rc;
	o.prev_kv = prev_kv;
	moor_client *c = ctl_client();
	rc = moor_delete(c, S(pos[0]), &o, &r);
	if (rc) {
		rc = ctl_fail(rc);
		moor_client_close(c);
		return rc;
	}
	if (g.fmt == FMT_JSON)
		ctl_json_print(ctl_json_response(r));
	else
		ctl_print_response(r, false, false);
	moor_response_free(r);
	moor_client_close(c);
	return 0;
}

int cmd_compaction(int argc, char **argv)
{
	static bool physical;
	static const struct ctl_flag flags[] = {
	    {"physical", 0, F_BOOL, &physical, "wait until the compaction is physically applied"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"compaction",
	                                  "compaction [options] <revision>",
	                                  "Compacts the event history",
	                                  flags,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	char *pos[2], *end;
	int np, rc;
	long long rev;

	rc = ctl_parse(&v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	rev = strtoll(pos[0], &end, 10);
	if (*end || rev <= 0)
		return ctl_usage_error(&v, "bad revision \"%s\"", pos[0]);
	moor_client *c = ctl_client();
	rc = moor_compact(c, rev, physical, NULL);
	if (rc == 0)
		printf("compacted revision %lld\n", rev);
	else
		rc = ctl_fail(rc);
	moor_client_close(c);
	return rc;
}

/* ---- txn ---- */

/* Splits a line into words, honouring double quotes (with \" and \\). */
static int argify(char *line, char **words, int max)
{
	int n = 0;
	char *p = line;

	while (*p && n < max) {
		char *out;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		words[n++] = out = p;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				*out++ = *p++;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && !isspace((unsigned char)*p))
				*out++ = *p++;
		}
		if (*p)
			p++;
		*out = '\0';
	}
	return n;
}

/* `mod("key") > "5"`, `value("k") = "v"`, `ver|version|c|create|m|mod|val|value|lease`. */
static int parse_compare(char *line, moor_txn *t)
{
	static const struct {
		const char *name;
		enum moor_cmp_target t;
	} targets[] = {
	    {"ver", MOOR_CMP_VERSION},   {"version", MOOR_CMP_VERSION}, {"c", MOOR_CMP_CREATE},
	    {"create", MOOR_CMP_CREATE}, {"m", MOOR_CMP_MOD},           {"mod", MOOR_CMP_MOD},
	    {"val", MOOR_CMP_VALUE},     {"value", MOOR_CMP_VALUE},     {"lease", MOOR_CMP_LEASE}};
	struct moor_cmp cmp = {0};
	char *open = strchr(line, '('), *close, *key, *p, *val;
	bool found = false;

	if (!open)
		return -1;
	*open = '\0';
	for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
		if (strcmp(line, targets[i].name) == 0) {
			cmp.target = targets[i].t;
			found = true;
		}
	if (!found || open[1] != '"')
		return -1;
	key = open + 2;
	close = strstr(key, "\")");
	if (!close)
		return -1;
	*close = '\0';
	p = close + 2;
	while (isspace((unsigned char)*p))
		p++;
	if (strncmp(p, "!=", 2) == 0) {
		cmp.op = MOOR_CMP_NOT_EQUAL;
		p += 2;
	} else if (*p == '=' || *p == '<' || *p == '>') {
		cmp.op = *p == '=' ? MOOR_CMP_EQUAL : *p == '<' ? MOOR_CMP_LESS : MOOR_CMP_GREATER;
		p++;
	} else {
		return -1;
	}
	while (isspace((unsigned char)*p))
		p++;
	val = p;
	if (*val == '"') {
		char *q = ++val, *out = val;
		while (*q && *q != '"') {
			if (*q == '\\' && q[1])
				q++;
			*out++ = *q++;
		}
		*out = '\0';
	} else {
		char *e = val + strlen(val);
		while (e > val && isspace((unsigned char)e[-1]))
			*--e = '\0';
	}
	cmp.key = key;
	cmp.key_len = strlen(key);
	if (cmp.target == MOOR_CMP_VALUE) {
		cmp.value = val;
		cmp.value_len = strlen(val);
	} else {
		char *end;
		cmp.number =
		    strtoll(val, &end,
		            cmp.target == MOOR_CMP_LEASE && strncmp(val, "0x", 2) == 0 ? 16 : 10);
		if (*end)
			return -1;
	}
	return moor_txn_if(t, &cmp);
}

/* `put [--lease=ID] [--prev-kv] key value`, `get [opts] key [end]`, `del [opts] key [end]`. */
static int parse_op(char *line, moor_txn *t, enum moor_txn_branch b)
{
	char *w[16], *pos[3];
	int n = argify(line, w, 16), np = 0;
	struct moor_get_opts go = {0};
	struct moor_put_opts po = {0};
	struct moor_delete_opts dop = {0};

	if (n == 0)
		return -1;
	for (int i = 1; i < n; i++) {
		if (strncmp(w[i], "--", 2) != 0) {
			if (np < 3)
				pos[np++] = w[i];
			continue;
		}
		if (strcmp(w[i], "--prefix") == 0)
			go.range.prefix = dop.range.prefix = true;
		else if (strcmp(w[i], "--from-key") == 0)
			go.range.from_key = dop.range.from_key = true;
		else if (strcmp(w[i], "--prev-kv") == 0)
			po.prev_kv = dop.prev_kv = true;
		else if (strcmp(w[i], "--keys-only") == 0)
			go.keys_only = true;
		else if (strcmp(w[i], "--count-only") == 0)
			go.count_only = true;
		else if (strncmp(w[i], "--limit=", 8) == 0)
			go.limit = strtoll(w[i] + 8, NULL, 10);
		else if (strncmp(w[i], "--rev=", 6) == 0)
			go.revision = strtoll(w[i] + 6, NULL, 10);
		else if (strncmp(w[i], "--lease=", 8) == 0)
			po.lease = (int64_t)strtoull(w[i] + 8, NULL, 16);
		else
			return -1;
	}
	if (strcmp(w[0], "put") == 0 && np == 2)
		return moor_txn_put(t, b, S(pos[0]), S(pos[1]), &po);
	if (strcmp(w[0], "get") == 0 && np >= 1 && np <= 2) {
		if (np == 2) {
			go.range.range_end = pos[1];
			go.range.range_end_len = strlen(pos[1]);
		}
		return moor_txn_get(t, b, S(pos[0]), &go);
	}
	if ((strcmp(w[0], "del") == 0 || strcmp(w[0], "delete") == 0) && np >= 1 && np <= 2) {
		if (np == 2) {
			dop.range.range_end = pos[1];
			dop.range.range_end_len = strlen(pos[1]);
		}
		return moor_txn_delete(t, b, S(pos[0]), &dop);
	}
	return -1;
}

int cmd_txn(int argc, char **argv)
{
	static bool interactive;
	static const struct ctl_flag flags[] = {
	    {"interactive", 'i', F_BOOL, &interactive, "input the transaction interactively"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"txn",
	                                  "txn [options]  (compares, then success ops, then "
	                                  "failure ops; each section ends with an empty line)",
	                                  "Txn processes all the requests in one transaction",
	                                  flags,
	                                  0,
	                                  0,
	                                  NULL,
	                                  0};
	static const char *const prompts[] = {
	    "compares:", "success requests (get, put, del):", "failure requests (get, put, del):"};
	struct moor_response *r = NULL;
	moor_txn *t = NULL;
	char line[65536];
	char *pos[1];
	int np, rc, section = 0;

	rc = ctl_parse(&v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (moor_txn_new(&t) != 0)
		return ctl_fail(MOOR_ENOMEM);
	if (interactive)
		puts(prompts[0]);
	while (section < 3 && fgets(line, sizeof line, stdin)) {
		size_t n = strlen(line);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0) {
			section++;
			if (interactive && section < 3)
				printf("\n%s\n", prompts[section]);
			continue;
		}
		rc = section == 0 ? parse_compare(line, t)
		                  : parse_op(line, t, section == 1 ? MOOR_TXN_THEN : MOOR_TXN_ELSE);
		if (rc) {
			fprintf(stderr, "Error: bad %s \"%s\"\n",
			        section == 0 ? "compare" : "operation", line);
			moor_txn_free(t);
			return EXIT_BAD_ARGS;
		}
	}
	if (interactive)
		putchar('\n');
	moor_client *c = ctl_client();
	rc = moor_txn_commit(c, t, &r);
	moor_txn_free(t);
	if (rc) {
		rc = ctl_fail(rc);
		moor_client_close(c);
		return rc;
	}
	if (g.fmt == FMT_JSON)
		ctl_json_print(ctl_json_response(r));
	else
		ctl_print_response(r, false, false);
	moor_response_free(r);
	moor_client_close(c);
	return 0;
}

/* ---- watch ---- */

static json_t *json_watch(const struct moor_watch_response *r)
{
	json_t *j = json_object(), *evs = json_array();

	json_object_set_new(j, "header", ctl_json_header(&r->header));
	for (size_t i = 0; i < r->n_events; i++) {
		const struct moor_event *e = &r->events[i];
		json_t *je = json_object();
		json_object_set_new(je, "type",
		                    json_string(e->type == MOOR_EVENT_PUT ? "PUT" : "DELETE"));
		json_object_set_new(je, "kv", ctl_json_kv(&e->kv));
		if (e->has_prev_kv)
			json_object_set_new(je, "prev_kv", ctl_json_kv(&e->prev_kv));
		json_array_append_new(evs, je);
	}
	json_object_set_new(j, "events", evs);
	return j;
}

int cmd_watch(int argc, char **argv)
{
	static bool prefix, prev_kv, progress;
	static int64_t rev, max_events;
	static const struct ctl_flag flags[] = {
	    {"prefix", 0, F_BOOL, &prefix, "watch on a prefix"},
	    {"rev", 0, F_INT, &rev, "revision to start watching from"},
	    {"prev-kv", 0, F_BOOL, &prev_kv,
	     "get the previous key-value pair before the event happens"},
	    {"progress-notify", 0, F_BOOL, &progress,
	     "get periodic watch progress notifications from the server"},
	    {"max-events", 0, F_INT, &max_events,
	     "exit after this many events (moorctl only; 0: never)"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"watch",
	                                  "watch [options] <key> [range_end]",
	                                  "Watches events on a key or prefix",
	                                  flags,
	                                  1,
	                                  2,
	                                  NULL,
	                                  0};
	struct moor_watch_opts o = {0};
	moor_watch *w = NULL;
	char *pos[4];
	int np, rc;
	int64_t seen = 0;

	rc = ctl_parse(&v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (prefix && np == 2)
		return ctl_usage_error(&v, "--prefix and range_end exclude each other");
	o.range.prefix = prefix;
	if (np == 2) {
		o.range.range_end = pos[1];
		o.range.range_end_len = strlen(pos[1]);
	}
	o.start_revision = rev;
	o.prev_kv = prev_kv;
	o.progress_notify = progress;
	ctl_catch_signals();
	moor_client *c = ctl_client();
	rc = moor_watch_start(c, S(pos[0]), &o, &w);
	if (rc) {
		rc = ctl_fail(rc);
		moor_client_close(c);
		return rc;
	}
	while (!ctl_interrupted && (max_events == 0 || seen < max_events)) {
		struct moor_watch_response *r = NULL;

		if (moor_watch_next(w, 200, &r) != 0)
			continue;
		if (r->err) {
			if (r->err == MOOR_ECOMPACTED)
				fprintf(stderr,
				        "Error: watch is canceled by the server: required revision "
				        "has been compacted (compact revision %lld)\n",
				        (long long)r->compact_revision);
			else
				fprintf(stderr, "Error: watch ended: %s\n", moor_strerror(r->err));
			moor_watch_response_free(r);
			rc = EXIT_ERR;
			break;
		}
		if (g.fmt == FMT_JSON) {
			ctl_json_print(json_watch(r));
		} else {
			for (size_t i = 0;
			     i < r->n_events && (max_events == 0 || seen + (int64_t)i < max_events);
			     i++) {
				const struct moor_event *e = &r->events[i];
				puts(e->type == MOOR_EVENT_PUT ? "PUT" : "DELETE");
				if (prev_kv && e->has_prev_kv)
					ctl_print_kv(&e->prev_kv, false, false);
				ctl_print_kv(&e->kv, false, false);
			}
		}
		seen += (int64_t)r->n_events;
		fflush(stdout);
		moor_watch_response_free(r);
	}
	moor_watch_stop(w);
	moor_client_close(c);
	return rc;
}

/*
 * moorctl: the command line over libmoor, with etcdctl's verbs, flags,
 * output formats and exit codes, so that what an operator types for etcd
 * works here. Global options come from flags or from MOORCTL_* environment
 * variables (MOORCTL_ENDPOINTS, MOORCTL_DIAL_TIMEOUT,
 * MOORCTL_COMMAND_TIMEOUT, MOORCTL_CACERT, MOORCTL_CERT, MOORCTL_KEY,
 * MOORCTL_INSECURE_SKIP_TLS_VERIFY, MOORCTL_WRITE_OUT); a flag wins.
 */
#include "client/moorctl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_globals g;
volatile int ctl_interrupted;

static const struct ctl_flag global_flags[] = {
    {"endpoints", 0, F_STR, &g.endpoints, "comma-separated endpoints (default 127.0.0.1:2379)"},
    {"dial-timeout", 0, F_STR, &g.dial_timeout, "dial timeout for one endpoint (default 2s)"},
    {"command-timeout", 0, F_STR, &g.command_timeout,
     "timeout of one command, retries included (default 5s)"},
    {"cacert", 0, F_STR, &g.cacert, "verify servers with this CA bundle"},
    {"cert", 0, F_STR, &g.cert, "client TLS certificate"},
    {"key", 0, F_STR, &g.key, "client TLS key"},
    {"insecure-skip-tls-verify", 0, F_BOOL, &g.insecure, "skip server certificate verification"},
    {"write-out", 'w', F_STR, &g.write_out, "output format: simple, json or table"},
    {"debug", 0, F_BOOL, &g.debug, "log the client's retries to stderr"},
    {NULL, 0, F_BOOL, NULL, NULL},
};

static const struct ctl_verb verbs[] = {
    {"put", "put [options] <key> [value]",
     "Puts the given key into the store (value from stdin when absent)", NULL, 1, 2, cmd_put, 0},
    {"get", "get [options] <key> [range_end]", "Gets the key or a range of keys", NULL, 1, 2,
     cmd_get, 0},
    {"del", "del [options] <key> [range_end]", "Removes the key or a range of keys", NULL, 1, 2,
     cmd_del, 0},
    {"txn", "txn [options]", "Txn processes all the requests in one transaction (read from stdin)",
     NULL, 0, 0, cmd_txn, 0},
    {"watch", "watch [options] <key> [range_end]", "Watches events on a key or prefix", NULL, 1, 2,
     cmd_watch, 0},
    {"compaction", "compaction [options] <revision>", "Compacts the event history", NULL, 1, 1,
     cmd_compaction, 0},
    {"lease", "lease <grant|revoke|timetolive|list|keep-alive>", "Lease related commands", NULL, 0,
     -1, cmd_lease, 0},
    {"member", "member <list|add|remove|update|promote>", "Membership related commands", NULL, 0,
     -1, cmd_member, 0},
    {"endpoint", "endpoint <health|status|hashkv>", "Endpoint related commands", NULL, 0, -1,
     cmd_endpoint, 0},
    {"defrag", "defrag", "Defragments the storage of the members", NULL, 0, 0, cmd_defrag, 0},
    {"snapshot", "snapshot <save|restore>", "Manages snapshots", NULL, 0, -1, cmd_snapshot, 0},
    {"alarm", "alarm <list|disarm>", "Alarm related commands", NULL, 0, -1, cmd_alarm, 0},
    {"move-leader", "move-leader <transferee-member-id>", "Transfers leadership to another member",
     NULL, 1, 1, cmd_move_leader, 0},
    {"lock", "lock [options] <lockname> [exec-command arg1 arg2 ...]", "Acquires a named lock",
     NULL, 1, -1, cmd_lock, 1},
    {"elect", "elect [options] <election-name> [proposal]",
     "Observes and participates in leader election", NULL, 1, 2, cmd_elect, 0},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, 0},
};

static void print_flags(const struct ctl_flag *f)
{
	for (; f && f->name; f++) {
		char left[64];
		snprintf(left, sizeof left, "%s%c%s--%s%s", f->short_name ? "-" : "",
		         f->short_name ? f->short_name : ' ', f->short_name ? ", " : "  ", f->name,
		         f->type == F_BOOL ? "" : "=...");
		printf("  %-34s %s\n", f->short_name ? left : left + 2, f->help);
	}
}

static void verb_help(const struct ctl_verb *v)
{
	printf("NAME:\n  %s - %s\n\nUSAGE:\n  moorctl %s\n", v->name, v->about, v->usage);
	if (v->flags && v->flags->name) {
		printf("\nOPTIONS:\n");
		print_flags(v->flags);
	}
	printf("\nGLOBAL OPTIONS:\n");
	print_flags(global_flags);
}

static void main_help(void)
{
	printf(
	    "NAME:\n  moorctl - a command line client for moor (etcdctl's verbs and flags)\n\n"
	    "USAGE:\n  moorctl [global options] <command> [options] [arguments...]\n\nCOMMANDS:\n");
	for (const struct ctl_verb *v = verbs; v->name; v++)
		printf("  %-12s %s\n", v->name, v->about);
	printf("\n  moorctl <command> --help shows a command's options.\n\nGLOBAL OPTIONS:\n");
	print_flags(global_flags);
	printf(
	    "\nEvery global option may also come from MOORCTL_<NAME> (MOORCTL_ENDPOINTS, ...).\n");
}

int ctl_usage_error(const struct ctl_verb *v, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: moorctl %s (see moorctl %s --help)\n", v->usage, v->name);
	return EXIT_BAD_ARGS;
}

static const struct ctl_flag *find_flag(const struct ctl_flag *set, const char *name, size_t len,
                                        char short_name)
{
	for (; set && set->name; set++) {
		if (short_name ? set->short_name == short_name
		               : (strlen(set->name) == len && strncmp(set->name, name, len) == 0))
			return set;
	}
	return NULL;
}

static int set_flag(const struct ctl_verb *v, const struct ctl_flag *f, const char *val)
{
	char *end;

	switch (f->type) {
	case F_BOOL:
		if (!val || strcmp(val, "true") == 0)
			*(bool *)f->dst = true;
		else if (strcmp(val, "false") == 0)
			*(bool *)f->dst = false;
		else
			return ctl_usage_error(v, "--%s takes true or false, not \"%s\"", f->name,
			                       val);
		return 0;
	case F_STR:
		*(const char **)f->dst = val;
		return 0;
	case F_INT:
		errno = 0;
		*(int64_t *)f->dst = strtoll(val, &end, 10);
		if (errno || *end || end == val)
			return ctl_usage_error(v, "--%s takes a number, not \"%s\"", f->name, val);
		return 0;
	}
	return 0;
}

int ctl_parse(const struct ctl_verb *v, int argc, char **argv, char **pos, int *npos)
{
	bool only_pos = false;

	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct ctl_flag *f = NULL;
		const char *val = NULL;

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			pos[(*npos)++] = argv[i];
			if (v->stop_after && *npos >= v->stop_after)
				only_pos = true;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			verb_help(v);
			return -1;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			f = find_flag(v->flags, a + 2, len, 0);
			if (!f)
				f = find_flag(global_flags, a + 2, len, 0);
			if (eq)
				val = eq + 1;
		} else {
			f = find_flag(v->flags, NULL, 0, a[1]);
			if (!f)
				f = find_flag(global_flags, NULL, 0, a[1]);
			if (f && a[2])
				val = a[2] == '=' ? a + 3 : a + 2;
		}
		if (!f)
			return ctl_usage_error(v, "unknown flag: %s", a);
		if (f->type != F_BOOL && !val) {
			if (i + 1 >= argc)
				return ctl_usage_error(v, "flag needs an argument: %s", a);
			val = argv[++i];
		}
		if (set_flag(v, f, val))
			return EXIT_BAD_ARGS;
	}
	if (g.write_out) {
		if (strcmp(g.write_out, "simple") == 0)
			g.fmt = FMT_SIMPLE;
		else if (strcmp(g.write_out, "json") == 0)
			g.fmt = FMT_JSON;
		else if (strcmp(g.write_out, "table") == 0)
			g.fmt = FMT_TABLE;
		else
			return ctl_usage_error(
			    v, "unknown output format \"%s\" (simple, json or table)", g.write_out);
	}
	if (*npos < v->min_args || (v->max_args >= 0 && *npos > v->max_args))
		return ctl_usage_error(v, "%s takes %d%s%d argument(s), got %d", v->name,
		                       v->min_args, v->max_args < 0 ? " or more" : " to ",
		                       v->max_args < 0 ? 0 : v->max_args, *npos);
	return 0;
}

int ctl_dispatch(const char *group, const struct ctl_verb *subs, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("USAGE:\n  moorctl %s <subcommand> [options]\n\nSUBCOMMANDS:\n", group);
		for (const struct ctl_verb *s = subs; s->name; s++)
			printf("  %-12s %s\n", s->name, s->about);
		return argc < 2 ? EXIT_BAD_ARGS : 0;
	}
	for (const struct ctl_verb *s = subs; s->name; s++)
		if (strcmp(s->name, argv[1]) == 0)
			return s->run(argc - 1, argv + 1);
	fprintf(stderr, "Error: unknown command \"%s\" for \"moorctl %s\"\n", argv[1], group);
	return EXIT_BAD_ARGS;
}

/* ---- client ---- */

int ctl_parse_duration_ms(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		*ms = (int)v;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		*ms = (int)(v * 1000);
	else if (strcmp(end, "m") == 0)
		*ms = (int)(v * 60000);
	else
		return -1;
	return 0;
}

int ctl_parse_hex(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 16);
	return errno || *end || end == s ? -1 : 0;
}

int ctl_endpoints(const char ***eps)
{
	static const char *list[MOOR_MAX_ENDPOINTS];
	static char buf[4096];
	int n = 0;

	snprintf(buf, sizeof buf, "%s",
	         g.endpoints && *g.endpoints ? g.endpoints : "127.0.0.1:2379");
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < MOOR_MAX_ENDPOINTS;
	     t = strtok_r(NULL, ",", &save))
		if (*t)
			list[n++] = t;
	*eps = list;
	return n;
}

static void debug_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "moorctl: %s\n", msg);
}

static moor_client *open_on(const char *const *eps, int n)
{
	struct moor_config cfg = {0};
	moor_client *c = NULL;
	int rc;

	cfg.endpoints = eps;
	cfg.n_endpoints = (size_t)n;
	if (g.dial_timeout && ctl_parse_duration_ms(g.dial_timeout, &cfg.dial_timeout_ms) != 0) {
		fprintf(stderr, "Error: bad --dial-timeout \"%s\"\n", g.dial_timeout);
		exit(EXIT_BAD_ARGS);
	}
	if (g.command_timeout &&
	    ctl_parse_duration_ms(g.command_timeout, &cfg.request_timeout_ms) != 0) {
		fprintf(stderr, "Error: bad --command-timeout \"%s\"\n", g.command_timeout);
		exit(EXIT_BAD_ARGS);
	}
	cfg.tls_ca_file = g.cacert;
	cfg.tls_cert_file = g.cert;
	cfg.tls_key_file = g.key;
	cfg.tls_insecure_skip_verify = g.insecure;
	if (g.debug)
		cfg.log_fn = debug_log;
	rc = moor_client_open(&cfg, &c);
	if (rc) {
		fprintf(stderr, "Error: %s\n",
		        moor_error_detail()[0] ? moor_error_detail() : moor_strerror(rc));
		exit(EXIT_BAD_ARGS);
	}
	return c;
}

moor_client *ctl_client(void)
{
	const char **eps;
	int n = ctl_endpoints(&eps);

	return open_on(eps, n);
}

moor_client *ctl_client_one(const char *endpoint)
{
	return open_on(&endpoint, 1);
}

int ctl_fail(int rc)
{
	const char *d = moor_error_detail();

	fprintf(stderr, "Error: %s\n", d && *d ? d : moor_strerror(rc));
	if (rc == MOOR_ETIMEOUT || rc == MOOR_EUNAVAILABLE || rc == MOOR_ENOLEADER)
		return EXIT_BAD_CONN;
	return EXIT_ERR;
}

static void on_signal(int sig)
{
	(void)sig;
	ctl_interrupted = 1;
}

void ctl_catch_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- output ---- */

void ctl_print_kv(const struct moor_kv *kv, bool keys_only, bool value_only)
{
	if (!value_only) {
		if (kv->key_len)
			fwrite(kv->key, 1, kv->key_len, stdout);
		putchar('\n');
	}
	if (!keys_only) {
		if (kv->value_len)
			fwrite(kv->value, 1, kv->value_len, stdout);
		putchar('\n');
	}
}

static char *b64(const uint8_t *p, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		*o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tbl[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static json_t *json_bytes(const uint8_t *p, size_t n)
{
	char *s = b64(p, n);
	json_t *j = json_string(s ? s : "");

	free(s);
	return j;
}

/* uint64 ids do not fit JSON's (and jansson's) signed integers: they are
 * written as decimal strings, the way etcd's JSON gateway writes them. */
json_t *ctl_json_u64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
	return json_string(buf);
}

json_t *ctl_json_header(const struct moor_header *h)
{
	return json_pack("{s:o,s:o,s:I,s:I}", "cluster_id", ctl_json_u64(h->cluster_id),
	                 "member_id", ctl_json_u64(h->member_id), "revision",
	                 (json_int_t)h->revision, "raft_term", (json_int_t)h->raft_term);
}

json_t *ctl_json_kv(const struct moor_kv *kv)
{
	json_t *j = json_object();

	json_object_set_new(j, "key", json_bytes(kv->key, kv->key_len));
	json_object_set_new(j, "create_revision", json_integer(kv->create_revision));
	json_object_set_new(j, "mod_revision", json_integer(kv->mod_revision));
	json_object_set_new(j, "version", json_integer(kv->version));
	if (kv->value_len)
		json_object_set_new(j, "value", json_bytes(kv->value, kv->value_len));
	if (kv->lease)
		json_object_set_new(j, "lease", json_integer(kv->lease));
	return j;
}

static json_t *json_kvs(const struct moor_kv *kvs, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, ctl_json_kv(&kvs[i]));
	return a;
}

json_t *ctl_json_response(const struct moor_response *r)
{
	json_t *j = json_object();

	json_object_set_new(j, "header", ctl_json_header(&r->header));
	switch (r->type) {
	case MOOR_OP_GET:
		if (r->n_kvs)
			json_object_set_new(j, "kvs", json_kvs(r->kvs, r->n_kvs));
		if (r->more)
			json_object_set_new(j, "more", json_true());
		json_object_set_new(j, "count", json_integer(r->count));
		break;
	case MOOR_OP_PUT:
		if (r->n_prev_kvs)
			json_object_set_new(j, "prev_kv", ctl_json_kv(&r->prev_kvs[0]));
		break;
	case MOOR_OP_DELETE:
		json_object_set_new(j, "deleted", json_integer(r->deleted));
		if (r->n_prev_kvs)
			json_object_set_new(j, "prev_kvs", json_kvs(r->prev_kvs, r->n_prev_kvs));
		break;
	case MOOR_OP_TXN: {
		static const char *const names[] = {"", "response_range", "response_put",
		                                    "response_delete_range", "response_txn"};
		json_t *a = json_array();
		if (r->succeeded)
			json_object_set_new(j, "succeeded", json_true());
		for (size_t i = 0; i < r->n_responses; i++) {
			json_t *sub = ctl_json_response(&r->responses[i]);
			json_array_append_new(a,
			                      json_pack("{s:o}", names[r->responses[i].type], sub));
		}
		json_object_set_new(j, "responses", a);
		break;
	}
	}
	return j;
}

void ctl_json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s)
		puts(s);
	free(s);
	json_decref(j);
}

/* etcdctl's simple printer for each response type. */
void ctl_print_response(const struct moor_response *r, bool keys_only, bool value_only)
{
	switch (r->type) {
	case MOOR_OP_GET:
		for (size_t i = 0; i < r->n_kvs; i++)
			ctl_print_kv(&r->kvs[i], keys_only, value_only);
		break;
	case MOOR_OP_PUT:
		puts("OK");
		if (r->n_prev_kvs)
			ctl_print_kv(&r->prev_kvs[0], false, false);
		break;
	case MOOR_OP_DELETE:
		printf("%lld\n", (long long)r->deleted);
		for (size_t i = 0; i < r->n_prev_kvs; i++)
			ctl_print_kv(&r->prev_kvs[i], false, false);
		break;
	case MOOR_OP_TXN:
		puts(r->succeeded ? "SUCCESS" : "FAILURE");
		for (size_t i = 0; i < r->n_responses; i++) {
			putchar('\n');
			ctl_print_response(&r->responses[i], false, false);
		}
		break;
	}
}

void ctl_table(const char *const *cells, int nrows, int ncols)
{
	size_t w[32] = {0};

	for (int r = 0; r < nrows; r++)
		for (int c = 0; c < ncols && c < 32; c++)
			if (strlen(cells[r * ncols + c]) > w[c])
				w[c] = strlen(cells[r * ncols + c]);
	for (int r = 0; r < nrows; r++) {
		if (r <= 1) {
			for (int c = 0; c < ncols; c++) {
				putchar('+');
				for (size_t k = 0; k < w[c] + 2; k++)
					putchar('-');
			}
			puts("+");
		}
		for (int c = 0; c < ncols; c++) {
			const char *s = cells[r * ncols + c];
			size_t pad = w[c] - strlen(s);
			if (r == 0) /* headers centred, as etcdctl's tables do */
				printf("| %*s%s%*s ", (int)(pad / 2), "", s, (int)(pad - pad / 2),
				       "");
			else
				printf("| %*s%s ", (int)pad, "", s);
		}
		puts("|");
	}
	for (int c = 0; c < ncols; c++) {
		putchar('+');
		for (size_t k = 0; k < w[c] + 2; k++)
			putchar('-');
	}
	puts("+");
}

/* ---- main ---- */

static void env_default(const char **dst, const char *env)
{
	const char *v = getenv(env);

	if (v && *v)
		*dst = v;
}

int main(int argc, char **argv)
{
	const char *insecure = NULL;
	int first = 1;

	env_default(&g.endpoints, "MOORCTL_ENDPOINTS");
	env_default(&g.dial_timeout, "MOORCTL_DIAL_TIMEOUT");
	env_default(&g.command_timeout, "MOORCTL_COMMAND_TIMEOUT");
	env_default(&g.cacert, "MOORCTL_CACERT");
	env_default(&g.cert, "MOORCTL_CERT");
	env_default(&g.key, "MOORCTL_KEY");
	env_default(&g.write_out, "MOORCTL_WRITE_OUT");
	env_default(&insecure, "MOORCTL_INSECURE_SKIP_TLS_VERIFY");
	g.insecure = insecure && strcmp(insecure, "true") == 0;

	/* global flags before the verb */
	while (first < argc && argv[first][0] == '-') {
		static const struct ctl_verb top = {
		    "moorctl", "[global options] <command> ...", "", NULL, 0, -1, NULL, 0};
		const char *a = argv[first];
		char *one[2] = {argv[0], NULL};
		const struct ctl_flag *f;
		int n = 2;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			main_help();
			return 0;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
			puts("moorctl version: 0.1.0\nAPI version: 3.5");
			return 0;
		}
		/* a flag with its value as the next word? */
		f = NULL;
		if (a[1] == '-' && !strchr(a, '='))
			for (f = global_flags; f->name && strcmp(f->name, a + 2) != 0; f++)
				;
		else if (a[1] != '-' && a[2] == '\0')
			for (f = global_flags; f->name && f->short_name != a[1]; f++)
				;
		if (f && f->name && f->type != F_BOOL && first + 1 < argc) {
			char *two[3] = {argv[0], argv[first], argv[first + 1]};
			char *pos[2];
			int np;
			if (ctl_parse(&top, 3, two, pos, &np))
				return EXIT_BAD_ARGS;
			first += 2;
			continue;
		}
		one[1] = argv[first];
		{
			char *pos[2];
			int np;
			if (ctl_parse(&top, n, one, pos, &np))
				return EXIT_BAD_ARGS;
		}
		first++;
	}
	if (first >= argc) {
		main_help();
		return EXIT_BAD_ARGS;
	}
	if (strcmp(argv[first], "version") == 0) {
		puts("moorctl version: 0.1.0\nAPI version: 3.5");
		return 0;
	}
	for (const struct ctl_verb *v = verbs; v->name; v++) {
		if (strcmp(v->name, argv[first]) != 0)
			continue;
		/* every verb parses its own flags and the global ones (-w too) */
		return v->run(argc - first, argv + first);
	}
	fprintf(stderr,
	        "Error: unknown command \"%s\" for \"moorctl\"\nRun 'moorctl --help' for usage.\n",
	        argv[first]);
	return EXIT_BAD_ARGS;
}

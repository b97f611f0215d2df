/*
 * moorctl's lease, member, endpoint and maintenance verbs (defrag,
 * snapshot, alarm, move-leader), with etcdctl's messages.
 */
#include "client/moorctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PARSE(v, argc, argv, pos, np)                               \
	do {                                                        \
		int prc_ = ctl_parse(&(v), argc, argv, pos, &(np)); \
		if (prc_)                                           \
			return prc_ < 0 ? 0 : prc_;                 \
	} while (0)

static int finish(moor_client *c, int rc)
{
	if (rc)
		rc = ctl_fail(rc);
	moor_client_close(c);
	return rc;
}

static int lease_id(const struct ctl_verb *v, const char *s, int64_t *id)
{
	if (ctl_parse_hex(s, (uint64_t *)id) != 0)
		return ctl_usage_error(v, "bad lease ID \"%s\", expecting ID in hexadecimal", s);
	return 0;
}

/* ---- lease ---- */

static int lease_grant(int argc, char **argv)
{
	static const struct ctl_verb v = {
	    "lease grant", "lease grant <ttl>", "Creates leases", NULL, 1, 1, NULL, 0};
	char *pos[2], *end;
	int np, rc;
	int64_t id = 0, ttl = 0, want;

	PARSE(v, argc, argv, pos, np);
	want = strtoll(pos[0], &end, 10);
	if (*end || want <= 0)
		return ctl_usage_error(&v, "bad TTL \"%s\"", pos[0]);
	moor_client *c = ctl_client();
	rc = moor_lease_grant(c, want, 0, &id, &ttl);
	if (rc == 0) {
		if (g.fmt == FMT_JSON)
			ctl_json_print(
			    json_pack("{s:I,s:I}", "ID", (json_int_t)id, "TTL", (json_int_t)ttl));
		else
			printf("lease %016llx granted with TTL(%llds)\n", (unsigned long long)id,
			       (long long)ttl);
	}
	return finish(c, rc);
}

static int lease_revoke(int argc, char **argv)
{
	static const struct ctl_verb v = {
	    "lease revoke", "lease revoke <leaseID>", "Revokes leases", NULL, 1, 1, NULL, 0};
	char *pos[2];
	int np, rc;
	int64_t id;

	PARSE(v, argc, argv, pos, np);
	if ((rc = lease_id(&v, pos[0], &id)))
		return rc;
	moor_client *c = ctl_client();
	rc = moor_lease_revoke(c, id);
	if (rc == 0)
		printf("lease %016llx revoked\n", (unsigned long long)id);
	return finish(c, rc);
}

static int lease_ttl(int argc, char **argv)
{
	static bool keys;
	static const struct ctl_flag flags[] = {
	    {"keys", 0, F_BOOL, &keys, "get keys attached to this lease"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"lease timetolive",
	                                  "lease timetolive <leaseID> [options]",
	                                  "Get lease information",
	                                  flags,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	struct moor_lease_info *i = NULL;
	char *pos[2];
	int np, rc;
	int64_t id;

	PARSE(v, argc, argv, pos, np);
	if ((rc = lease_id(&v, pos[0], &id)))
		return rc;
	moor_client *c = ctl_client();
	rc = moor_lease_timetolive(c, id, keys, &i);
	if (rc == 0) {
		if (g.fmt == FMT_JSON) {
			json_t *ks = json_array();
			for (size_t k = 0; k < i->n_keys; k++)
				json_array_append_new(
				    ks, json_stringn((const char *)i->keys[k].key, i->keys[k].len));
			ctl_json_print(json_pack("{s:I,s:I,s:I,s:o}", "id", (json_int_t)i->id,
			                         "ttl", (json_int_t)i->ttl, "granted-ttl",
			                         (json_int_t)i->granted_ttl, "keys", ks));
		} else if (i->ttl == -1) {
			printf("lease %016llx already expired\n", (unsigned long long)id);
		} else {
			printf("lease %016llx granted with TTL(%llds), remaining(%llds)",
			       (unsigned long long)i->id, (long long)i->granted_ttl,
			       (long long)i->ttl);
			if (i->n_keys) {
				printf(", attached keys([");
				for (size_t k = 0; k < i->n_keys; k++)
					printf("%s%.*s", k ? " " : "", (int)i->keys[k].len,
					       i->keys[k].key);
				printf("])");
			}
			putchar('\n');
		}
		moor_lease_info_free(i);
	}
	return finish(c, rc);
}

static int lease_list(int argc, char **argv)
{
	static const struct ctl_verb v = {
	    "lease list", "lease list", "List all active leases", NULL, 0, 0, NULL, 0};
	char *pos[1];
	int64_t *ids = NULL;
	size_t n = 0;
	int np, rc;

	PARSE(v, argc, argv, pos, np);
	moor_client *c = ctl_client();
	rc = moor_lease_list(c, &ids, &n);
	if (rc == 0) {
		if (g.fmt == FMT_JSON) {
			json_t *a = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(a,
				                      json_pack("{s:I}", "ID", (json_int_t)ids[i]));
			ctl_json_print(json_pack("{s:o}", "leases", a));
		} else {
			printf("found %zu leases\n", n);
			for (size_t i = 0; i < n; i++)
				printf("%016llx\n", (unsigned long long)ids[i]);
		}
		free(ids);
	}
	return finish(c, rc);
}

static int lease_keepalive(int argc, char **argv)
{
	static bool once;
	static const struct ctl_flag flags[] = {
	    {"once", 0, F_BOOL, &once, "keep the lease alive once, then exit"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"lease keep-alive",
	                                  "lease keep-alive [options] <leaseID>",
	                                  "Keeps leases alive (renew)",
	                                  flags,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	char *pos[2];
	int np, rc;
	int64_t id;

	PARSE(v, argc, argv, pos, np);
	if ((rc = lease_id(&v, pos[0], &id)))
		return rc;
	ctl_catch_signals();
	moor_client *c = ctl_client();
	while (!ctl_interrupted) {
		int64_t ttl = 0;
		rc = moor_lease_keepalive_once(c, id, &ttl);
		if (rc)
			return finish(c, rc);
		if (ttl <= 0) {
			printf("lease %016llx expired or revoked.\n", (unsigned long long)id);
			return finish(c, 0);
		}
		printf("lease %016llx keepalived with TTL(%lld)\n", (unsigned long long)id,
		       (long long)ttl);
		fflush(stdout);
		if (once)
			break;
		for (int64_t waited = 0; waited < ttl * 1000 / 3 && !ctl_interrupted;
		     waited += 100) {
			struct timespec ts = {0, 100 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	return finish(c, 0);
}

int cmd_lease(int argc, char **argv)
{
	static const struct ctl_verb subs[] = {
	    {"grant", "", "Creates leases", NULL, 0, 0, lease_grant, 0},
	    {"revoke", "", "Revokes leases", NULL, 0, 0, lease_revoke, 0},
	    {"timetolive", "", "Get lease information", NULL, 0, 0, lease_ttl, 0},
	    {"list", "", "List all active leases", NULL, 0, 0, lease_list, 0},
	    {"keep-alive", "", "Keeps leases alive (renew)", NULL, 0, 0, lease_keepalive, 0},
	    {NULL, NULL, NULL, NULL, 0, 0, NULL, 0},
	};
	return ctl_dispatch("lease", subs, argc, argv);
}

/* ---- member ---- */

static void join(char *buf, size_t size, const char *const *s, size_t n, const char *sep)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? sep : "", s[i]);
}

static void print_members(const struct moor_members *m)
{
	if (g.fmt == FMT_JSON) {
		json_t *a = json_array();
		for (size_t i = 0; i < m->n_members; i++) {
			const struct moor_member *x = &m->members[i];
			json_t *pu = json_array(), *cu = json_array();
			for (size_t k = 0; k < x->n_peer_urls; k++)
				json_array_append_new(pu, json_string(x->peer_urls[k]));
			for (size_t k = 0; k < x->n_client_urls; k++)
				json_array_append_new(cu, json_string(x->client_urls[k]));
			json_array_append_new(a, json_pack("{s:o,s:s,s:o,s:o,s:b}", "ID",
			                                   ctl_json_u64(x->id), "name", x->name,
			                                   "peerURLs", pu, "clientURLs", cu,
			                                   "isLearner", x->is_learner));
		}
		ctl_json_print(
		    json_pack("{s:o,s:o}", "header", ctl_json_header(&m->header), "members", a));
		return;
	}
	size_t rows = m->n_members + 1;
	char(*cells)[6][512] = calloc(rows, sizeof *cells);
	const char **ptrs = calloc(rows * 6, sizeof *ptrs);
	if (!cells || !ptrs)
		goto out;
	const char *hdr[6] = {"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"};
	for (int k = 0; k < 6; k++)
		snprintf(cells[0][k], 512, "%s", hdr[k]);
	for (size_t i = 0; i < m->n_members; i++) {
		const struct moor_member *x = &m->members[i];
		snprintf(cells[i + 1][0], 512, "%llx", (unsigned long long)x->id);
		snprintf(cells[i + 1][1], 512, "%s", x->name[0] ? "started" : "unstarted");
		snprintf(cells[i + 1][2], 512, "%s", x->name);
		join(cells[i + 1][3], 512, x->peer_urls, x->n_peer_urls, ",");
		join(cells[i + 1][4], 512, x->client_urls, x->n_client_urls, ",");
		snprintf(cells[i + 1][5], 512, "%s", x->is_learner ? "true" : "false");
	}
	if (g.fmt == FMT_TABLE) {
		for (size_t r = 0; r < rows; r++)
			for (int k = 0; k < 6; k++)
				ptrs[r * 6 + k] = cells[r][k];
		ctl_table(ptrs, (int)rows, 6);
	} else {
		for (size_t r = 1; r < rows; r++)
			printf("%s, %s, %s, %s, %s, %s\n", cells[r][0], cells[r][1], cells[r][2],
			       cells[r][3], cells[r][4], cells[r][5]);
	}
out:
	free(cells);
	free(ptrs);
}

static int member_list(int argc, char **argv)
{
	static const struct ctl_verb v = {
	    "member list", "member list", "Lists all members in the cluster", NULL, 0, 0, NULL, 0};
	struct moor_members *m = NULL;
	char *pos[1];
	int np, rc;

	PARSE(v, argc, argv, pos, np);
	moor_client *c = ctl_client();
	rc = moor_member_list(c, &m);
	if (rc == 0) {
		print_members(m);
		moor_members_free(m);
	}
	return finish(c, rc);
}

static int split_urls(const char *s, char ***out)
{
	char *copy = strdup(s), *save = NULL;
	char **urls = calloc(16, sizeof *urls);
	int n = 0;

	if (!copy || !urls) {
		free(copy);
		free(urls);
		return -1;
	}
	for (char *t = strtok_r(copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		urls[n++] = t;
	*out = urls;
	return n;
}

static int member_add(int argc, char **argv)
{
	static const char *peer_urls;
	static bool learner;
	static const struct ctl_flag flags[] = {
	    {"peer-urls", 0, F_STR, &peer_urls, "comma-separated peer URLs for the new member"},
	    {"learner", 0, F_BOOL, &learner, "add as a learner (non-voting) member"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"member add",
	                                  "member add <memberName> [options]",
	                                  "Adds a member into the cluster",
	                                  flags,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	struct moor_members *m = NULL;
	char *pos[2], **urls = NULL;
	int np, rc, n;

	PARSE(v, argc, argv, pos, np);
	if (!peer_urls)
		return ctl_usage_error(&v, "member peer URLs not provided (--peer-urls)");
	n = split_urls(peer_urls, &urls);
	if (n <= 0)
		return ctl_usage_error(&v, "bad --peer-urls \"%s\"", peer_urls);
	moor_client *c = ctl_client();
	rc = moor_member_add(c, (const char *const *)urls, (size_t)n, learner, &m);
	if (rc == 0) {
		char cluster[4096] = "", joined[1024];
		size_t len = 0;
		printf("Member %16llx added to cluster %16llx\n\n", (unsigned long long)m->added.id,
		       (unsigned long long)m->header.cluster_id);
		for (size_t i = 0; i < m->n_members; i++) {
			const struct moor_member *x = &m->members[i];
			const char *name = x->id == m->added.id ? pos[0] : x->name;
			for (size_t k = 0; k < x->n_peer_urls && len < sizeof cluster; k++)
				len +=
				    (size_t)snprintf(cluster + len, sizeof cluster - len, "%s%s=%s",
				                     len ? "," : "", name, x->peer_urls[k]);
		}
		join(joined, sizeof joined, (const char *const *)urls, (size_t)n, ",");
		printf("MOOR_NAME=\"%s\"\nMOOR_INITIAL_CLUSTER=\"%s\"\nMOOR_INITIAL_ADVERTISE_PEER_"
		       "URLS=\"%s\"\n"
		       "MOOR_INITIAL_CLUSTER_STATE=\"existing\"\n",
		       pos[0], cluster, joined);
		moor_members_free(m);
	}
	free(urls[0]);
	free(urls);
	return finish(c, rc);
}

static int member_id(const struct ctl_verb *v, const char *s, uint64_t *id)
{
	if (ctl_parse_hex(s, id) != 0)
		return ctl_usage_error(v, "bad member ID \"%s\", expecting ID in hexadecimal", s);
	return 0;
}

/* Prints etcdctl's line for a member change that succeeded, and finishes. */
static int member_changed(moor_client *c, int rc, uint64_t id, struct moor_members *m,
                          const char *done)
{
	if (rc == 0) {
		printf("Member %16llx %s cluster %16llx\n", (unsigned long long)id, done,
		       (unsigned long long)m->header.cluster_id);
		moor_members_free(m);
	}
	return finish(c, rc);
}

static int member_remove(int argc, char **argv)
{
	static const struct ctl_verb v = {"member remove",
	                                  "member remove <memberID>",
	                                  "Removes a member from the cluster",
	                                  NULL,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	struct moor_members *m = NULL;
	char *pos[2];
	uint64_t id;
	int np, rc;

	PARSE(v, argc, argv, pos, np);
	if ((rc = member_id(&v, pos[0], &id)))
		return rc;
	moor_client *c = ctl_client();
	rc = moor_member_remove(c, id, &m);
	return member_changed(c, rc, id, m, "removed from");
}

static int member_update(int argc, char **argv)
{
	static const char *peer_urls;
	static const struct ctl_flag flags[] = {
	    {"peer-urls", 0, F_STR, &peer_urls, "comma-separated new peer URLs"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"member update",
	                                  "member update <memberID> [options]",
	                                  "Updates a member in the cluster",
	                                  flags,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	struct moor_members *m = NULL;
	char *pos[2], **urls = NULL;
	uint64_t id;
	int np, rc, n;

	PARSE(v, argc, argv, pos, np);
	if ((rc = member_id(&v, pos[0], &id)))
		return rc;
	if (!peer_urls)
		return ctl_usage_error(&v, "member peer URLs not provided (--peer-urls)");
	n = split_urls(peer_urls, &urls);
	if (n <= 0)
		return ctl_usage_error(&v, "bad --peer-urls \"%s\"", peer_urls);
	moor_client *c = ctl_client();
	rc = moor_member_update(c, id, (const char *const *)urls, (size_t)n, &m);
	free(urls[0]);
	free(urls);
	return member_changed(c, rc, id, m, "updated in");
}

static int member_promote(int argc, char **argv)
{
	static const struct ctl_verb v = {"member promote",
	                                  "member promote <memberID>",
	                                  "Promotes a non-voting member in the cluster",
	                                  NULL,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	struct moor_members *m = NULL;
	char *pos[2];
	uint64_t id;
	int np, rc;

	PARSE(v, argc, argv, pos, np);
	if ((rc = member_id(&v, pos[0], &id)))
		return rc;
	moor_client *c = ctl_client();
	rc = moor_member_promote(c, id, &m);
	return member_changed(c, rc, id, m, "promoted in");
}

int cmd_member(int argc, char **argv)
{
	static const struct ctl_verb subs[] = {
	    {"list", "", "Lists all members in the cluster", NULL, 0, 0, member_list, 0},
	    {"add", "", "Adds a member into the cluster", NULL, 0, 0, member_add, 0},
	    {"remove", "", "Removes a member from the cluster", NULL, 0, 0, member_remove, 0},
	    {"update", "", "Updates a member in the cluster", NULL, 0, 0, member_update, 0},
	    {"promote", "", "Promotes a non-voting member in the cluster", NULL, 0, 0,
	     member_promote, 0},
	    {NULL, NULL, NULL, NULL, 0, 0, NULL, 0},
	};
	return ctl_dispatch("member", subs, argc, argv);
}

/* ---- endpoint ---- */

static bool cluster_flag;
static const struct ctl_flag endpoint_flags[] = {
    {"cluster", 0, F_BOOL, &cluster_flag, "use all endpoints from the cluster member list"},
    {NULL, 0, F_BOOL, NULL, NULL},
};

/* The endpoints to visit: --endpoints, or every member's client URLs. */
static int targets(const char ***eps)
{
	static const char *list[64];
	static struct moor_members *m;
	int n = 0;

	if (!cluster_flag)
		return ctl_endpoints(eps);
	moor_client *c = ctl_client();
	int rc = moor_member_list(c, &m);
	moor_client_close(c);
	if (rc) {
		ctl_fail(rc);
		exit(EXIT_ERR);
	}
	for (size_t i = 0; i < m->n_members; i++)
		for (size_t k = 0; k < m->members[i].n_client_urls && n < 64; k++)
			list[n++] = m->members[i].client_urls[k];
	*eps = list; /* m stays until exit: the strings live in it */
	return n;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int endpoint_health(int argc, char **argv)
{
	static const struct ctl_verb v = {"endpoint health",
	                                  "endpoint health [--cluster]",
	                                  "Checks the healthiness of endpoints",
	                                  endpoint_flags,
	                                  0,
	                                  0,
	                                  NULL,
	                                  0};
	const char **eps;
	char *pos[1];
	int np, n, bad = 0;

	PARSE(v, argc, argv, pos, np);
	n = targets(&eps);
	const char **cells = calloc((size_t)(n + 1) * 4, sizeof *cells);
	char(*took)[32] = calloc((size_t)n + 1, sizeof *took);
	char(*err)[256] = calloc((size_t)n + 1, sizeof *err);
	json_t *arr = json_array();
	if (!cells || !took || !err)
		return ctl_fail(MOOR_ENOMEM);
	cells[0] = "ENDPOINT", cells[1] = "HEALTH", cells[2] = "TOOK", cells[3] = "ERROR";
	for (int i = 0; i < n; i++) {
		moor_client *c = ctl_client_one(eps[i]);
		struct moor_response *r = NULL;
		uint64_t t0 = now_us();
		/* a linearizable read goes through the leader: a quorum answers */
		int rc = moor_get(c, "health", 6, NULL, &r);
		double ms = (double)(now_us() - t0) / 1000.0;

		moor_response_free(r);
		snprintf(took[i], sizeof took[i], "%.3fms", ms);
		snprintf(err[i], sizeof err[i], "%s", rc ? moor_error_detail() : "");
		moor_client_close(c);
		bad += rc != 0;
		cells[(i + 1) * 4] = eps[i];
		cells[(i + 1) * 4 + 1] = rc ? "false" : "true";
		cells[(i + 1) * 4 + 2] = took[i];
		cells[(i + 1) * 4 + 3] = err[i];
		if (g.fmt == FMT_JSON)
			json_array_append_new(arr, json_pack("{s:s,s:b,s:s,s:s}", "endpoint",
			                                     eps[i], "health", rc == 0, "took",
			                                     took[i], "error", err[i]));
		else if (g.fmt == FMT_SIMPLE && rc == 0)
			printf("%s is healthy: successfully committed proposal: took = %s\n",
			       eps[i], took[i]);
		else if (g.fmt == FMT_SIMPLE)
			fprintf(stderr, "%s is unhealthy: failed to commit proposal: %s\n", eps[i],
			        err[i]);
	}
	if (g.fmt == FMT_JSON)
		ctl_json_print(arr);
	else
		json_decref(arr);
	if (g.fmt == FMT_TABLE)
		ctl_table(cells, n + 1, 4);
	free(cells);
	free(took);
	free(err);
	if (bad) {
		fprintf(stderr, "Error: unhealthy cluster\n");
		return EXIT_ERR;
	}
	return 0;
}

static void human_bytes(char *buf, size_t size, int64_t b)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)b;
	int u = 0;

	if (b < 1000) {
		snprintf(buf, size, "%lld B", (long long)b);
		return;
	}
	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	snprintf(buf, size, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static int endpoint_status(int argc, char **argv)
{
	static const struct ctl_verb v = {"endpoint status",
	                                  "endpoint status [--cluster]",
	                                  "Prints out the status of endpoints",
	                                  endpoint_flags,
	                                  0,
	                                  0,
	                                  NULL,
	                                  0};
	const char **eps;
	char *pos[1];
	int np, n, bad = 0;

	PARSE(v, argc, argv, pos, np);
	n = targets(&eps);
	const char **cells = calloc((size_t)(n + 1) * 10, sizeof *cells);
	char(*txt)[9][300] = calloc((size_t)n + 1, sizeof *txt);
	json_t *arr = json_array();
	if (!cells || !txt)
		return ctl_fail(MOOR_ENOMEM);
	const char *hdr[10] = {"ENDPOINT",           "ID",         "VERSION",   "DB SIZE",
	                       "IS LEADER",          "IS LEARNER", "RAFT TERM", "RAFT INDEX",
	                       "RAFT APPLIED INDEX", "ERRORS"};
	memcpy(cells, hdr, sizeof hdr);
	int rows = 1;
	for (int i = 0; i < n; i++) {
		moor_client *c = ctl_client_one(eps[i]);
		struct moor_status st;
		int rc = moor_status(c, eps[i], &st);

		if (rc) {
			fprintf(stderr, "Failed to get the status of endpoint %s (%s)\n", eps[i],
			        moor_error_detail());
			moor_client_close(c);
			bad++;
			continue;
		}
		moor_client_close(c);
		char(*t)[300] = txt[i];
		snprintf(t[0], 300, "%llx", (unsigned long long)st.header.member_id);
		snprintf(t[1], 300, "%s", st.version);
		human_bytes(t[2], 300, st.db_size);
		snprintf(t[3], 300, "%s", st.leader == st.header.member_id ? "true" : "false");
		snprintf(t[4], 300, "%s", st.is_learner ? "true" : "false");
		snprintf(t[5], 300, "%llu", (unsigned long long)st.raft_term);
		snprintf(t[6], 300, "%llu", (unsigned long long)st.raft_index);
		snprintf(t[7], 300, "%llu", (unsigned long long)st.raft_applied_index);
		snprintf(t[8], 300, "%s", st.errors);
		cells[rows * 10] = eps[i];
		for (int k = 0; k < 9; k++)
			cells[rows * 10 + 1 + k] = t[k];
		rows++;
		if (g.fmt == FMT_SIMPLE)
			printf("%s, %s, %s, %s, %s, %s, %s, %s, %s, %s\n", eps[i], t[0], t[1], t[2],
			       t[3], t[4], t[5], t[6], t[7], t[8]);
		else if (g.fmt == FMT_JSON)
			json_array_append_new(
			    arr,
			    json_pack(
			        "{s:s,s:{s:o,s:s,s:I,s:I,s:o,s:I,s:I,s:I,s:b}}", "Endpoint", eps[i],
			        "Status", "header", ctl_json_header(&st.header), "version",
			        st.version, "dbSize", (json_int_t)st.db_size, "dbSizeInUse",
			        (json_int_t)st.db_size_in_use, "leader", ctl_json_u64(st.leader),
			        "raftIndex", (json_int_t)st.raft_index, "raftTerm",
			        (json_int_t)st.raft_term, "raftAppliedIndex",
			        (json_int_t)st.raft_applied_index, "isLearner", st.is_learner));
	}
	if (g.fmt == FMT_TABLE)
		ctl_table(cells, rows, 10);
	if (g.fmt == FMT_JSON)
		ctl_json_print(arr);
	else
		json_decref(arr);
	free(cells);
	free(txt);
	return bad ? EXIT_ERR : 0;
}

static int endpoint_hashkv(int argc, char **argv)
{
	static int64_t rev;
	static const struct ctl_flag flags[] = {
	    {"cluster", 0, F_BOOL, &cluster_flag, "use all endpoints from the cluster member list"},
	    {"rev", 0, F_INT, &rev, "maximum revision to hash (default: latest)"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"endpoint hashkv",
	                                  "endpoint hashkv [--cluster] [--rev=N]",
	                                  "Prints the KV history hash of each endpoint",
	                                  flags,
	                                  0,
	                                  0,
	                                  NULL,
	                                  0};
	const char **eps;
	char *pos[1];
	int np, n, bad = 0;

	PARSE(v, argc, argv, pos, np);
	n = targets(&eps);
	for (int i = 0; i < n; i++) {
		moor_client *c = ctl_client_one(eps[i]);
		uint32_t hash = 0;
		int64_t hrev = 0;
		int rc = moor_hashkv(c, eps[i], rev, &hash, &hrev, NULL);
		if (rc == 0)
			printf("%s, %u, %lld\n", eps[i], hash, (long long)hrev);
		else
			fprintf(stderr, "Failed to get the hash of endpoint %s (%s)\n", eps[i],
			        moor_error_detail());
		bad += rc != 0;
		moor_client_close(c);
	}
	return bad ? EXIT_ERR : 0;
}

int cmd_endpoint(int argc, char **argv)
{
	static const struct ctl_verb subs[] = {
	    {"health", "", "Checks the healthiness of endpoints", NULL, 0, 0, endpoint_health, 0},
	    {"status", "", "Prints out the status of endpoints", NULL, 0, 0, endpoint_status, 0},
	    {"hashkv", "", "Prints the KV history hash of each endpoint", NULL, 0, 0,
	     endpoint_hashkv, 0},
	    {NULL, NULL, NULL, NULL, 0, 0, NULL, 0},
	};
	return ctl_dispatch("endpoint", subs, argc, argv);
}

/* ---- maintenance ---- */

int cmd_defrag(int argc, char **argv)
{
	static const struct ctl_verb v = {"defrag",
	                                  "defrag [--cluster]",
	                                  "Defragments the storage of the members",
	                                  endpoint_flags,
	                                  0,
	                                  0,
	                                  NULL,
	                                  0};
	const char **eps;
	char *pos[1];
	int np, n, bad = 0;

	PARSE(v, argc, argv, pos, np);
	n = targets(&eps);
	for (int i = 0; i < n; i++) {
		moor_client *c = ctl_client_one(eps[i]);
		int rc = moor_defragment(c, eps[i]);
		if (rc == 0)
			printf("Finished defragmenting etcd member[%s]\n", eps[i]);
		else
			fprintf(stderr, "Failed to defragment etcd member[%s] (%s)\n", eps[i],
			        moor_error_detail());
		bad += rc != 0;
		moor_client_close(c);
	}
	return bad ? EXIT_ERR : 0;
}

static int snapshot_save(int argc, char **argv)
{
	static const struct ctl_verb v = {"snapshot save",
	                                  "snapshot save <filename>",
	                                  "Stores a snapshot of one member's store to a file",
	                                  NULL,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	const char **eps;
	char *pos[2], part[4096];
	uint64_t bytes = 0;
	int np, rc, fd;

	PARSE(v, argc, argv, pos, np);
	if (ctl_endpoints(&eps) != 1)
		return ctl_usage_error(
		    &v, "snapshot must be requested to one selected node, not multiple");
	snprintf(part, sizeof part, "%s.part", pos[0]);
	fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "Error: could not open %s (%s)\n", part, strerror(errno));
		return EXIT_IO;
	}
	moor_client *c = ctl_client();
	rc = moor_snapshot(c, fd, &bytes);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(part, pos[0]) != 0)
		rc = -errno;
	if (rc) {
		unlink(part);
		return finish(c, rc);
	}
	printf("Snapshot saved at %s\n", pos[0]);
	return finish(c, 0);
}

/* Restoring builds a data directory in moord's own format, so moorctl hands
 * the work to moord (etcd has etcdutl for it): `moord --restore-snapshot
 * FILE` with the flags given here (--data-dir, --name, --initial-cluster,
 * --initial-cluster-token, --initial-advertise-peer-urls). moord is found as
 * $MOORD, next to moorctl, or on the PATH. */
static int snapshot_restore(int argc, char **argv)
{
	const char *file = NULL;
	char self[4096], moord[4200];
	char **args;
	int k = 0;
	ssize_t n;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf(
			    "NAME:\n\tsnapshot restore - Restores a member's data directory from a "
			    "snapshot\n\nUSAGE:\n\tmoorctl snapshot restore <filename> "
			    "--data-dir=DIR --name=NAME --initial-cluster=NAME=URL,... "
			    "[--initial-cluster-token=TOKEN] "
			    "[--initial-advertise-peer-urls=URL]\n\n"
			    "Builds a new, empty data directory from a file written by 'moorctl "
			    "snapshot save' (run by moord --restore-snapshot). Restore every "
			    "member "
			    "of the new cluster from the same file, then start them with "
			    "--initial-cluster-state new.\n");
			return 0;
		}
		if (argv[i][0] != '-' && !file)
			file = argv[i];
	}
	if (!file) {
		fprintf(stderr, "Error: snapshot restore needs a snapshot file\n");
		return EXIT_BAD_ARGS;
	}
	int has_dir = 0;
	for (int i = 1; i < argc; i++)
		has_dir |= strncmp(argv[i], "--data-dir", 10) == 0;
	if (!has_dir) {
		fprintf(stderr,
		        "Error: snapshot restore needs --data-dir (a new, empty directory)\n");
		return EXIT_BAD_ARGS;
	}
	args = calloc((size_t)argc + 4, sizeof *args);
	if (!args)
		return EXIT_ERR;
	if (getenv("MOORD")) {
		snprintf(moord, sizeof moord, "%s", getenv("MOORD"));
	} else if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		snprintf(moord, sizeof moord, "%s/moord", self);
		if (access(moord, X_OK) != 0)
			snprintf(moord, sizeof moord, "moord");
	} else {
		snprintf(moord, sizeof moord, "moord");
	}
	args[k++] = moord;
	args[k++] = (char *)"--restore-snapshot";
	args[k++] = (char *)file;
	for (int i = 1; i < argc; i++)
		if (argv[i] != file)
			args[k++] = argv[i];
	args[k] = NULL;
	execvp(moord, args);
	fprintf(stderr, "Error: cannot run %s: %s\n", moord, strerror(errno));
	free(args);
	return EXIT_ERR;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct ctl_verb subs[] = {
	    {"save", "", "Stores a snapshot of one member's store to a file", NULL, 0, 0,
	     snapshot_save, 0},
	    {"restore", "", "Restores a data directory from a snapshot", NULL, 0, 0,
	     snapshot_restore, 0},
	    {NULL, NULL, NULL, NULL, 0, 0, NULL, 0},
	};
	return ctl_dispatch("snapshot", subs, argc, argv);
}

static const char *alarm_name(int t)
{
	return t == 1 ? "NOSPACE" : t == 2 ? "CORRUPT" : "NONE";
}

static int alarm_run(int argc, char **argv, bool disarm)
{
	static const struct ctl_verb lv = {
	    "alarm list", "alarm list", "Lists all alarms", NULL, 0, 0, NULL, 0};
	static const struct ctl_verb dv = {
	    "alarm disarm", "alarm disarm", "Disarms all alarms", NULL, 0, 0, NULL, 0};
	struct moor_alarm *a = NULL;
	char *pos[1];
	size_t n = 0;
	int np, rc;

	const struct ctl_verb *v = disarm ? &dv : &lv;

	rc = ctl_parse(v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	moor_client *c = ctl_client();
	rc = moor_alarm(c, MOOR_ALARM_GET, 0, 0, &a, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (disarm) {
			struct moor_alarm *tmp = NULL;
			size_t tn = 0;
			rc = moor_alarm(c, MOOR_ALARM_DEACTIVATE, a[i].member_id, a[i].type, &tmp,
			                &tn);
			free(tmp);
		}
		if (rc == 0)
			printf("memberID:%llu alarm:%s\n", (unsigned long long)a[i].member_id,
			       alarm_name(a[i].type));
	}
	free(a);
	return finish(c, rc);
}

static int alarm_list(int argc, char **argv)
{
	return alarm_run(argc, argv, false);
}

static int alarm_disarm(int argc, char **argv)
{
	return alarm_run(argc, argv, true);
}

int cmd_alarm(int argc, char **argv)
{
	static const struct ctl_verb subs[] = {
	    {"list", "", "Lists all alarms", NULL, 0, 0, alarm_list, 0},
	    {"disarm", "", "Disarms all alarms", NULL, 0, 0, alarm_disarm, 0},
	    {NULL, NULL, NULL, NULL, 0, 0, NULL, 0},
	};
	return ctl_dispatch("alarm", subs, argc, argv);
}

int cmd_move_leader(int argc, char **argv)
{
	static const struct ctl_verb v = {"move-leader",
	                                  "move-leader <transferee-member-id>",
	                                  "Transfers leadership to another member",
	                                  NULL,
	                                  1,
	                                  1,
	                                  NULL,
	                                  0};
	struct moor_status st;
	char *pos[2];
	uint64_t target;
	int np, rc;

	PARSE(v, argc, argv, pos, np);
	if (ctl_parse_hex(pos[0], &target) != 0)
		return ctl_usage_error(&v, "bad member ID \"%s\", expecting ID in hexadecimal",
		                       pos[0]);
	moor_client *c = ctl_client();
	rc = moor_status(c, NULL, &st);
	if (rc == 0)
		rc = moor_move_leader(c, target);
	if (rc == 0)
		printf("Leadership transferred from %llx to %llx\n", (unsigned long long)st.leader,
		       (unsigned long long)target);
	return finish(c, rc);
}

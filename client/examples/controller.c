/*
 * An example controller on libmoor: what a user copies to start.
 *
 * Several copies run; a leader election makes one of them active. The
 * active copy lists a prefix of objects, watches it from the listed
 * revision, and reconciles: for every object <objects>/<name> it writes
 * <status>/<name> = "observed <value> at <mod_revision>", and removes the
 * status of objects that are gone. Every status write is a txn guarded by
 * leadership (the election key must still have our create_revision) and by
 * optimistic concurrency (the status key's mod_revision must be what we
 * read), so a copy that lost leadership without knowing it yet can never
 * overwrite the new leader's work.
 *
 * It survives:
 * - the death of the member it talks to: libmoor fails over and the watch
 *   resumes from the next revision;
 * - the death of the active copy: its session lease expires (TTL seconds)
 *   and the next candidate's campaign returns;
 * - a compacted watch: it lists again.
 *
 *   moor-example-controller --endpoints=h1:2379,h2:2379 --name=a \
 *       [--objects=objects/] [--status=status/] [--ttl=5]
 */
#include "client/moor.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop, leading;

/* A standby blocked in its campaign just exits (its candidacy goes with
 * its lease); the active copy finishes its step and resigns. */
static void on_signal(int sig)
{
	(void)sig;
	if (!leading)
		_exit(0);
	stop = 1;
}

struct ctl {
	moor_client *c;
	moor_election *e;
	const char *name;
	const char *objects; /* prefix of the watched objects */
	const char *status;  /* prefix of the status keys we write */
};

static void say(const struct ctl *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct ctl *x, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "controller %s: ", x->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Writes (or with value NULL deletes) the status of one object, guarded by
 * leadership and by the status key's mod_revision. MOOR_ENOTLEADER when we
 * no longer lead. */
static int status_write(struct ctl *x, const char *obj, size_t obj_len, const char *value)
{
	char key[512];
	int64_t lead_rev = 0;
	const char *lead_key = moor_election_key(x->e, &lead_rev);

	if (!lead_key)
		return MOOR_ENOTLEADER;
	snprintf(key, sizeof key, "%s%.*s", x->status, (int)obj_len, obj);
	for (int attempt = 0; attempt < 10; attempt++) {
		struct moor_response *cur = NULL, *r = NULL;
		moor_txn *t = NULL;
		int64_t mod = 0;
		int rc = moor_get(x->c, key, strlen(key), NULL, &cur);

		if (rc)
			return rc;
		if (cur->n_kvs == 1) {
			mod = cur->kvs[0].mod_revision;
			if (value && cur->kvs[0].value_len == strlen(value) &&
			    memcmp(cur->kvs[0].value, value, strlen(value)) == 0) {
				moor_response_free(cur);
				return 0; /* already as it should be */
			}
		} else if (!value) {
			moor_response_free(cur);
			return 0; /* already gone */
		}
		moor_response_free(cur);

		struct moor_cmp leader = {.key = lead_key,
		                          .key_len = strlen(lead_key),
		                          .target = MOOR_CMP_CREATE,
		                          .op = MOOR_CMP_EQUAL,
		                          .number = lead_rev};
		struct moor_cmp unchanged = {.key = key,
		                             .key_len = strlen(key),
		                             .target = MOOR_CMP_MOD,
		                             .op = MOOR_CMP_EQUAL,
		                             .number = mod};
		rc = moor_txn_new(&t);
		if (rc == 0)
			rc = moor_txn_if(t, &leader);
		if (rc == 0)
			rc = moor_txn_if(t, &unchanged);
		if (rc == 0)
			rc = value ? moor_txn_put(t, MOOR_TXN_THEN, key, strlen(key), value,
			                          strlen(value), NULL)
			           : moor_txn_delete(t, MOOR_TXN_THEN, key, strlen(key), NULL);
		if (rc == 0)
			rc = moor_txn_get(t, MOOR_TXN_ELSE, lead_key, strlen(lead_key), NULL);
		if (rc == 0)
			rc = moor_txn_commit(x->c, t, &r);
		moor_txn_free(t);
		if (rc == MOOR_EINDETERMINATE)
			continue; /* read again: the next round sees whether it applied */
		if (rc)
			return rc;
		bool ok = r->succeeded;
		bool lost = !ok && (r->n_responses != 1 || r->responses[0].n_kvs == 0 ||
		                    r->responses[0].kvs[0].create_revision != lead_rev);
		moor_response_free(r);
		if (ok)
			return 0;
		if (lost)
			return MOOR_ENOTLEADER;
		/* someone else changed the status key: read it again */
	}
	return MOOR_EBUSY;
}

static int reconcile_kv(struct ctl *x, const struct moor_kv *kv)
{
	char value[600];
	size_t plen = strlen(x->objects);

	snprintf(value, sizeof value, "observed %.*s at %lld",
	         (int)(kv->value_len > 500 ? 500 : kv->value_len), kv->value,
	         (long long)kv->mod_revision);
	return status_write(x, (const char *)kv->key + plen, kv->key_len - plen, value);
}

/* Removes statuses whose object is not in the list. */
static int sweep(struct ctl *x, const struct moor_response *list)
{
	struct moor_get_opts o = {.range.prefix = true, .keys_only = true};
	struct moor_response *st = NULL;
	size_t splen = strlen(x->status), oplen = strlen(x->objects);
	int rc = moor_get(x->c, x->status, splen, &o, &st);

	for (size_t i = 0; rc == 0 && i < st->n_kvs; i++) {
		const char *name = (const char *)st->kvs[i].key + splen;
		size_t len = st->kvs[i].key_len - splen;
		bool present = false;
		for (size_t k = 0; k < list->n_kvs && !present; k++)
			present = list->kvs[k].key_len - oplen == len &&
			          memcmp(list->kvs[k].key + oplen, name, len) == 0;
		if (!present)
			rc = status_write(x, name, len, NULL);
	}
	moor_response_free(st);
	return rc;
}

/* The active copy's work: list, watch from the list's revision, reconcile,
 * until leadership or the session is lost or we are told to stop. */
static int lead(struct ctl *x, moor_session *s)
{
	struct moor_watch_opts o = {.range.prefix = true};
	struct moor_response *list = NULL;
	moor_watch *w = NULL;
	int rc;

relist:
	rc = moor_list_watch(x->c, x->objects, strlen(x->objects), &o, &list, &w);
	if (rc)
		return rc;
	say(x, "listed %s at revision %lld", x->objects, (long long)list->header.revision);
	for (size_t i = 0; rc == 0 && i < list->n_kvs; i++)
		rc = reconcile_kv(x, &list->kvs[i]);
	if (rc == 0)
		rc = sweep(x, list);
	moor_response_free(list);
	while (rc == 0 && !stop) {
		struct moor_watch_response *r = NULL;

		if (moor_session_status(s) != 0) {
			rc = MOOR_ELEASEEXPIRED;
			break;
		}
		if (moor_watch_next(w, 500, &r) != 0)
			continue;
		if (r->err == MOOR_ECOMPACTED) {
			moor_watch_response_free(r);
			moor_watch_stop(w);
			say(x, "watch compacted; listing again");
			goto relist;
		}
		rc = r->err;
		for (size_t i = 0; rc == 0 && i < r->n_events; i++) {
			const struct moor_event *e = &r->events[i];
			if (e->type == MOOR_EVENT_PUT) {
				rc = reconcile_kv(x, &e->kv);
			} else {
				size_t plen = strlen(x->objects);
				rc = status_write(x, (const char *)e->kv.key + plen,
				                  e->kv.key_len - plen, NULL);
			}
		}
		moor_watch_response_free(r);
	}
	moor_watch_stop(w);
	return rc;
}

int main(int argc, char **argv)
{
	const char *endpoints = "127.0.0.1:2379";
	struct ctl x = {.name = "controller", .objects = "objects/", .status = "status/"};
	int ttl = 5;
	char *eps_copy;
	const char *eps[32];
	size_t n = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--endpoints=", 12) == 0)
			endpoints = argv[i] + 12;
		else if (strncmp(argv[i], "--name=", 7) == 0)
			x.name = argv[i] + 7;
		else if (strncmp(argv[i], "--objects=", 10) == 0)
			x.objects = argv[i] + 10;
		else if (strncmp(argv[i], "--status=", 9) == 0)
			x.status = argv[i] + 9;
		else if (strncmp(argv[i], "--ttl=", 6) == 0)
			ttl = atoi(argv[i] + 6);
		else {
			fprintf(stderr,
			        "usage: %s --endpoints=h:p,... --name=N [--objects=P] [--status=P] "
			        "[--ttl=S]\n",
			        argv[0]);
			return 2;
		}
	}
	eps_copy = strdup(endpoints);
	for (char *save = NULL, *t = strtok_r(eps_copy, ",", &save); t && n < 32;
	     t = strtok_r(NULL, ",", &save))
		eps[n++] = t;
	struct moor_config cfg = {.endpoints = eps, .n_endpoints = n, .dial_timeout_ms = 500};
	rc = moor_client_open(&cfg, &x.c);
	if (rc) {
		fprintf(stderr, "controller: %s\n", moor_error_detail());
		free(eps_copy);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	while (!stop) {
		moor_session *s = NULL;

		/* a fresh session per term: a lost lease means a lost leadership */
		rc = moor_session_open(x.c, ttl, &s);
		if (rc == 0)
			rc = moor_election_new(s, "controller-leader", &x.e);
		if (rc == 0)
			rc = moor_election_campaign(x.e, x.name, strlen(x.name), -1);
		if (rc == 0 && !stop) {
			leading = 1;
			say(&x, "active (lease %llx)", (unsigned long long)moor_session_lease(s));
			rc = lead(&x, s);
			say(&x, "stepping down: %s", rc ? moor_strerror(rc) : "asked to stop");
			moor_election_resign(x.e);
			leading = 0;
		}
		if (rc)
			say(&x, "%s (%s); starting over", moor_strerror(rc), moor_error_detail());
		moor_election_free(x.e);
		x.e = NULL;
		moor_session_close(s);
	}
	moor_client_close(x.c);
	free(eps_copy);
	return 0;
}

/*
 * moorctl lock and elect: the mutex and election recipes of libmoor, held
 * until SIGINT/SIGTERM (or, for lock with a command, while the command
 * runs), as etcdctl's lock and elect do.
 */
#include "client/moorctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void wait_signal(moor_session *s)
{
	while (!ctl_interrupted && moor_session_status(s) == 0) {
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

int cmd_lock(int argc, char **argv)
{
	static int64_t ttl = 10;
	static const struct ctl_flag flags[] = {
	    {"ttl", 0, F_INT, &ttl, "timeout for the session (seconds)"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"lock",
	                                  "lock [options] <lockname> [exec-command arg1 arg2 ...]",
	                                  "Acquires a named lock",
	                                  flags,
	                                  1,
	                                  -1,
	                                  NULL,
	                                  1};
	char *pos[256];
	moor_session *s = NULL;
	moor_mutex *m = NULL;
	int np, rc;

	rc = ctl_parse(&v, argc > 250 ? 250 : argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	ctl_catch_signals();
	moor_client *c = ctl_client();
	rc = moor_session_open(c, (int)ttl, &s);
	if (rc == 0)
		rc = moor_mutex_new(s, pos[0], &m);
	if (rc == 0)
		rc = moor_mutex_lock(m, -1);
	if (rc) {
		rc = ctl_fail(rc);
		goto out;
	}
	if (np > 1) {
		/* run the command while holding the lock; its exit code is ours */
		pid_t pid;
		int status = 0;

		setenv("MOOR_LOCK_KEY", moor_mutex_key(m), 1);
		setenv("ETCD_LOCK_KEY", moor_mutex_key(m), 1);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			pos[np] = NULL;
			execvp(pos[1], pos + 1);
			fprintf(stderr, "Error: cannot run %s: %s\n", pos[1], strerror(errno));
			_exit(127);
		}
		while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		rc = pid < 0 ? EXIT_ERR : WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_ERR;
	} else {
		puts(moor_mutex_key(m));
		fflush(stdout);
		wait_signal(s);
		if (moor_session_status(s) != 0) {
			fprintf(stderr, "Error: session expired; the lock is lost\n");
			rc = EXIT_ERR;
		}
	}
	moor_mutex_unlock(m);
out:
	moor_mutex_free(m);
	moor_session_close(s);
	moor_client_close(c);
	return rc;
}

/* Prints the leader whenever it changes, until a signal. */
static int observe(moor_client *c, const char *name)
{
	struct moor_watch_opts o = {.range.prefix = true};
	char pfx[256], last[1024] = "";
	moor_watch *w = NULL;
	int rc;

	snprintf(pfx, sizeof pfx, "%s/", name);
	rc = moor_watch_start(c, pfx, strlen(pfx), &o, &w);
	if (rc)
		return ctl_fail(rc);
	while (!ctl_interrupted) {
		struct moor_response *r = NULL;
		struct moor_watch_response *wr = NULL;

		rc = moor_election_leader(c, name, &r);
		if (rc == 0) {
			char now[1024];
			snprintf(now, sizeof now, "%.*s\n%.*s", (int)r->kvs[0].key_len,
			         r->kvs[0].key, (int)r->kvs[0].value_len, r->kvs[0].value);
			if (strcmp(now, last) != 0) {
				puts(now);
				fflush(stdout);
				snprintf(last, sizeof last, "%s", now);
			}
			moor_response_free(r);
		} else if (rc != MOOR_ENOTFOUND) {
			rc = ctl_fail(rc);
			break;
		}
		/* wait for any change under the election's prefix */
		while (!ctl_interrupted && moor_watch_next(w, 200, &wr) != 0)
			;
		if (wr && wr->err) {
			moor_watch_response_free(wr);
			rc = ctl_fail(MOOR_EWATCHCANCELED);
			break;
		}
		moor_watch_response_free(wr);
		rc = 0;
	}
	moor_watch_stop(w);
	return rc;
}

int cmd_elect(int argc, char **argv)
{
	static bool listen;
	static int64_t ttl = 10;
	static const struct ctl_flag flags[] = {
	    {"listen", 'l', F_BOOL, &listen, "observation mode: print the leader as it changes"},
	    {"ttl", 0, F_INT, &ttl, "timeout for the session (seconds)"},
	    {NULL, 0, F_BOOL, NULL, NULL},
	};
	static const struct ctl_verb v = {"elect",
	                                  "elect [options] <election-name> [proposal]",
	                                  "Observes and participates in leader election",
	                                  flags,
	                                  1,
	                                  2,
	                                  NULL,
	                                  0};
	char *pos[4];
	moor_session *s = NULL;
	moor_election *e = NULL;
	int np, rc;

	rc = ctl_parse(&v, argc, argv, pos, &np);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (listen == (np == 2))
		return ctl_usage_error(&v, "give either --listen or a proposal");
	ctl_catch_signals();
	moor_client *c = ctl_client();
	if (listen) {
		rc = observe(c, pos[0]);
		moor_client_close(c);
		return rc;
	}
	rc = moor_session_open(c, (int)ttl, &s);
	if (rc == 0)
		rc = moor_election_new(s, pos[0], &e);
	if (rc == 0)
		rc = moor_election_campaign(e, pos[1], strlen(pos[1]), -1);
	if (rc) {
		rc = ctl_fail(rc);
		goto out;
	}
	{
		struct moor_response *r = NULL;
		if (moor_election_leader(c, pos[0], &r) == 0) {
			printf("%.*s\n%.*s\n", (int)r->kvs[0].key_len, r->kvs[0].key,
			       (int)r->kvs[0].value_len, r->kvs[0].value);
			fflush(stdout);
			moor_response_free(r);
		}
	}
	wait_signal(s);
	if (moor_session_status(s) != 0) {
		fprintf(stderr, "Error: session expired; leadership lost\n");
		rc = EXIT_ERR;
	}
	moor_election_resign(e);
out:
	moor_election_free(e);
	moor_session_close(s);
	moor_client_close(c);
	return rc;
}

/*
 * libmoor's failover against a real 3-member moord cluster: the member in
 * use is killed while the client reads, writes, watches and keeps a lease
 * alive; a watch across a leader change delivers each revision once; the
 * mutex excludes and the election elects one under member kills; and the
 * list-then-watch helper gives a snapshot plus every later change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/moor.h"
#include "tests/client/fixture.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fx_cluster fx;

#define S(x) x, strlen(x)

/* Kills the member c talks to; returns its index. */
static int kill_in_use(moor_client *c)
{
	char ep[128];
	int i;

	moor_client_endpoint(c, ep, sizeof ep);
	i = fx_index_of(&fx, ep);
	assert_true(i >= 0);
	fx_member_kill(&fx, i);
	return i;
}

static void restart(int i)
{
	assert_int_equal(fx_member_start(&fx, i), 0);
	assert_true(fx_wait_leader(&fx, 20000) >= 0);
}

static void reads_go_on_when_the_member_in_use_is_killed(void **state)
{
	moor_client *c = fx_client(&fx, 0, 15000);
	struct moor_response *r = NULL;
	int dead;

	(void)state;
	assert_int_equal(moor_put(c, S("fo/r"), S("v"), NULL, NULL), 0);
	dead = kill_in_use(c);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(moor_get(c, S("fo/r"), NULL, &r), 0);
		assert_int_equal(r->n_kvs, 1);
		moor_response_free(r);
	}
	char ep[128];
	moor_client_endpoint(c, ep, sizeof ep);
	assert_int_not_equal(fx_index_of(&fx, ep), dead);
	moor_client_close(c);
	restart(dead);
}

static void reads_go_on_when_the_member_in_use_is_frozen(void **state)
{
	moor_client *c = fx_client(&fx, 2, 15000);
	struct moor_response *r = NULL;
	int frozen = 2, rc;

	(void)state;
	assert_int_equal(moor_put(c, S("fo/frozen"), S("v"), NULL, NULL), 0);
	kill(fx.pid[frozen], SIGSTOP);
	rc = moor_get(c, S("fo/frozen"), NULL, &r);
	kill(fx.pid[frozen], SIGCONT);
	assert_int_equal(rc, 0);
	assert_int_equal(r->n_kvs, 1);
	moor_response_free(r);
	moor_client_close(c);
	assert_true(fx_wait_leader(&fx, 20000) >= 0);
}

static void writes_through_a_killed_member_succeed_elsewhere_or_say_indeterminate(void **state)
{
	int leader = fx_wait_leader(&fx, 10000);
	moor_client *c = fx_client(&fx, leader, 15000);
	struct moor_response *r = NULL;
	struct moor_get_opts go = {.range.prefix = true, .count_only = true};
	int ok = 0, indeterminate = 0, dead = -1;

	(void)state;
	for (int i = 0; i < 60; i++) {
		char k[32];
		int rc;

		if (i == 20)
			dead = kill_in_use(c); /* the leader itself */
		snprintf(k, sizeof k, "fo/w/%03d", i);
		rc = moor_put(c, S(k), S("v"), NULL, NULL);
		if (rc == MOOR_EINDETERMINATE)
			indeterminate++;
		else if (rc == 0)
			ok++;
		else
			fail_msg("put %s: %s (%s)", k, moor_strerror(rc), moor_error_detail());
	}
	assert_int_equal(moor_get(c, S("fo/w/"), &go, &r), 0);
	/* every acknowledged write is there; indeterminate ones may be */
	assert_true(r->count >= ok && r->count <= ok + indeterminate);
	assert_true(ok >= 59 - indeterminate);
	moor_response_free(r);
	moor_client_close(c);
	restart(dead);
}

struct seen {
	pthread_mutex_t mu;
	int64_t revs[4096];
	int n;
	int err;
};

static void seen_cb(void *ctx, const struct moor_watch_response *r)
{
	struct seen *s = ctx;

	pthread_mutex_lock(&s->mu);
	if (r->err)
		s->err = r->err;
	for (size_t i = 0; i < r->n_events && s->n < 4096; i++)
		s->revs[s->n++] = r->events[i].kv.mod_revision;
	pthread_mutex_unlock(&s->mu);
}

static atomic_int resumes;

static void count_resumes(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	if (strstr(msg, "watch: stream from") && strstr(msg, "resuming at revision"))
		atomic_fetch_add(&resumes, 1);
}

static void a_watch_across_a_leader_kill_delivers_each_revision_exactly_once(void **state)
{
	int leader = fx_wait_leader(&fx, 10000);
	moor_client *c;

	fx_log_fn = count_resumes;
	c = fx_client(&fx, leader, 15000);
	fx_log_fn = NULL;
	static struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct moor_watch_opts o = {.range.prefix = true, .cb = seen_cb, .cb_ctx = &s};
	struct moor_response *r = NULL;
	int64_t acked[200];
	int n_acked = 0, dead = -1;
	moor_watch *w = NULL;
	int64_t start = 0;

	(void)state;
	assert_int_equal(moor_put(c, S("lw/start"), S("0"), NULL, &r), 0);
	start = r->header.revision;
	moor_response_free(r);
	o.start_revision = start + 1;
	assert_int_equal(moor_watch_start(c, S("lw/"), &o, &w), 0);
	for (int i = 0; i < 200; i++) {
		char k[32];
		int rc;

		if (i == 60)
			dead = kill_in_use(c); /* the leader, which serves the watch */
		snprintf(k, sizeof k, "lw/%03d", i);
		rc = moor_put(c, S(k), S("v"), NULL, &r);
		if (rc == 0) {
			acked[n_acked++] = r->header.revision;
			moor_response_free(r);
		} else {
			assert_int_equal(rc, MOOR_EINDETERMINATE);
		}
	}
	/* the last revision of the prefix, then wait for the watch to reach it */
	struct moor_get_opts go = {
	    .range.prefix = true, .sort_target = MOOR_SORT_MOD, .sort_order = MOOR_ORDER_DESCEND};
	assert_int_equal(moor_get(c, S("lw/"), &go, &r), 0);
	int64_t last = r->kvs[0].mod_revision;
	size_t expect = r->n_kvs - 1; /* keys written after the watch started */
	moor_response_free(r);
	uint64_t deadline = fx_now_ms() + 15000;
	for (;;) {
		pthread_mutex_lock(&s.mu);
		bool done = s.n > 0 && s.revs[s.n - 1] >= last;
		pthread_mutex_unlock(&s.mu);
		if (done || fx_now_ms() > deadline)
			break;
		fx_sleep_ms(10);
	}
	moor_watch_stop(w);
	assert_int_equal(s.err, 0);
	/* the stream from the killed leader broke and the watch resumed */
	assert_true(atomic_load(&resumes) >= 1);
	/* strictly increasing: no repeat; one per key: no loss */
	for (int i = 1; i < s.n; i++)
		assert_true(s.revs[i] > s.revs[i - 1]);
	assert_int_equal((size_t)s.n, expect);
	for (int i = 0, j = 0; i < n_acked; i++) {
		while (j < s.n && s.revs[j] < acked[i])
			j++;
		assert_true(j < s.n && s.revs[j] == acked[i]);
	}
	moor_client_close(c);
	restart(dead);
}

static void a_watch_on_a_frozen_member_moves_to_another_and_misses_nothing(void **state)
{
	static struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct moor_watch_opts o = {.range.prefix = true, .cb = seen_cb, .cb_ctx = &s};
	struct moor_get_opts go = {
	    .range.prefix = true, .sort_target = MOOR_SORT_MOD, .sort_order = MOOR_ORDER_DESCEND};
	struct moor_response *r = NULL;
	moor_client *wc, *writer;
	moor_watch *w = NULL;
	int frozen = fx_wait_leader(&fx, 10000); /* the leader: the hardest member to lose */

	(void)state;
	assert_true(frozen >= 0);
	atomic_store(&resumes, 0);
	fx_log_fn = count_resumes;
	wc = fx_client(&fx, frozen, 5000);
	fx_log_fn = NULL;
	/* a write sent to the frozen leader waits out the whole timeout: keep it short */
	writer = fx_client(&fx, (frozen + 1) % fx.n, 8000);
	assert_int_equal(moor_put(writer, S("fz/0"), S("v"), NULL, &r), 0);
	o.start_revision = r->header.revision + 1;
	moor_response_free(r);
	assert_int_equal(moor_watch_start(wc, S("fz/"), &o, &w), 0);
	assert_int_equal(moor_put(writer, S("fz/1"), S("v"), NULL, NULL), 0);
	for (uint64_t until = fx_now_ms() + 10000; fx_now_ms() < until;) {
		pthread_mutex_lock(&s.mu);
		int n = s.n;
		pthread_mutex_unlock(&s.mu);
		if (n == 1)
			break;
		fx_sleep_ms(10);
	}
	assert_int_equal(s.n, 1);
	/* frozen: its sockets stay open and say nothing */
	kill(fx.pid[frozen], SIGSTOP);
	int unknown = 0;
	for (int i = 2; i < 12; i++) {
		char k[16];
		snprintf(k, sizeof k, "fz/%d", i);
		int rc = moor_put(writer, S(k), S("v"), NULL, NULL);
		if (rc == MOOR_EINDETERMINATE)
			unknown++;
		else if (rc != 0)
			fail_msg("put %s: %s (%s)", k, moor_strerror(rc), moor_error_detail());
	}
	/* a write whose outcome was lost moves the client on: the next ones succeed */
	assert_true(unknown <= 3);
	assert_int_equal(moor_get(writer, S("fz/"), &go, &r), 0);
	int64_t last = r->kvs[0].mod_revision;
	size_t expect = r->n_kvs - 1;
	moor_response_free(r);
	bool done = false;
	for (uint64_t until = fx_now_ms() + 20000; !done && fx_now_ms() < until;) {
		pthread_mutex_lock(&s.mu);
		done = s.n > 0 && s.revs[s.n - 1] >= last;
		pthread_mutex_unlock(&s.mu);
		fx_sleep_ms(10);
	}
	kill(fx.pid[frozen], SIGCONT);
	moor_watch_stop(w);
	assert_true(done);
	assert_int_equal((size_t)s.n, expect);
	for (int i = 1; i < s.n; i++)
		assert_true(s.revs[i] > s.revs[i - 1]);
	assert_true(atomic_load(&resumes) >= 1);
	moor_client_close(wc);
	moor_client_close(writer);
	assert_true(fx_wait_leader(&fx, 20000) >= 0);
}

static void a_kept_alive_lease_survives_the_death_of_the_member_in_use(void **state)
{
	moor_client *c = fx_client(&fx, 1, 4000);
	moor_keepalive *k = NULL;
	int64_t id = 0, ttl = 0;
	int rc, dead;

	(void)state;
	assert_int_equal(moor_lease_grant(c, 3, 0, &id, NULL), 0);
	rc = moor_lease_keepalive_once(c, id, &ttl);
	if (rc == MOOR_EUNSUPPORTED) {
		moor_lease_revoke(c, id);
		moor_client_close(c);
		printf("SKIP lease keep-alive: the server answers Unimplemented (code 12)\n");
		skip();
	}
	assert_int_equal(moor_keepalive_start(c, id, NULL, NULL, &k), 0);
	dead = kill_in_use(c);
	uint64_t until = fx_now_ms() + 7000;
	while (fx_now_ms() < until) {
		struct moor_lease_info *info = NULL;
		assert_int_equal(moor_lease_timetolive(c, id, false, &info), 0);
		assert_true(info->ttl > 0);
		moor_lease_info_free(info);
		fx_sleep_ms(250);
	}
	assert_int_equal(moor_keepalive_status(k), 0);
	moor_keepalive_stop(k);
	assert_int_equal(moor_lease_revoke(c, id), 0);
	moor_client_close(c);
	restart(dead);
}

static void a_kept_alive_lease_survives_a_frozen_member_in_use(void **state)
{
	moor_client *c = fx_client(&fx, 0, 5000);
	moor_client *checker = fx_client(&fx, 1, 5000);
	moor_keepalive *k = NULL;
	int64_t id = 0;

	(void)state;
	assert_int_equal(moor_lease_grant(c, 3, 0, &id, NULL), 0);
	assert_int_equal(moor_keepalive_start(c, id, NULL, NULL, &k), 0);
	kill(fx.pid[0], SIGSTOP);
	/* two TTLs with the member in use frozen: a round that hangs must not
	 * use up the lease */
	bool alive = true;
	for (uint64_t until = fx_now_ms() + 7000; alive && fx_now_ms() < until;) {
		struct moor_lease_info *info = NULL;
		if (moor_lease_timetolive(checker, id, false, &info) == 0) {
			alive = info->ttl > 0;
			moor_lease_info_free(info);
		}
		fx_sleep_ms(250);
	}
	kill(fx.pid[0], SIGCONT);
	assert_true(alive);
	assert_int_equal(moor_keepalive_status(k), 0);
	moor_keepalive_stop(k);
	moor_lease_revoke(checker, id);
	moor_client_close(c);
	moor_client_close(checker);
}

/* ---- mutex and election under kills ---- */

struct contest {
	atomic_int inside;
	atomic_int violations;
	atomic_int entries;
	atomic_int errors;
	int rounds;
	int first;
};

static void *mutex_worker(void *arg)
{
	struct contest *ct = arg;
	moor_client *c = fx_client(&fx, ct->first, 15000);
	moor_session *s = NULL;
	moor_mutex *m = NULL;

	if (!c || moor_session_open(c, 10, &s) != 0 || moor_mutex_new(s, "mx", &m) != 0) {
		atomic_fetch_add(&ct->errors, 1);
		goto out;
	}
	for (int i = 0; i < ct->rounds; i++) {
		int rc = moor_mutex_lock(m, 20000);
		if (rc) {
			fprintf(stderr, "lock: %s (%s)\n", moor_strerror(rc), moor_error_detail());
			atomic_fetch_add(&ct->errors, 1);
			continue;
		}
		if (atomic_fetch_add(&ct->inside, 1) != 0)
			atomic_fetch_add(&ct->violations, 1);
		atomic_fetch_add(&ct->entries, 1);
		fx_sleep_ms(5); /* hold it a little, so overlaps would show */
		atomic_fetch_sub(&ct->inside, 1);
		while ((rc = moor_mutex_unlock(m)) == MOOR_EINDETERMINATE)
			;
		if (rc)
			atomic_fetch_add(&ct->errors, 1);
	}
out:
	moor_mutex_free(m);
	moor_session_close(s);
	moor_client_close(c);
	return NULL;
}

static void the_mutex_excludes_while_a_member_dies(void **state)
{
	static struct contest shared;
	pthread_t th[3];
	int dead;

	(void)state;
	memset(&shared, 0, sizeof shared);
	shared.rounds = 8;
	shared.first = -1;
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, mutex_worker, &shared), 0);
	fx_sleep_ms(300);
	dead = fx_wait_leader(&fx, 10000);
	fx_member_kill(&fx, dead);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&shared.violations), 0);
	assert_int_equal(atomic_load(&shared.errors), 0);
	assert_int_equal(atomic_load(&shared.entries), 24);
	restart(dead);
}

static void trylock_is_busy_while_another_holds_the_mutex(void **state)
{
	moor_client *c = fx_client(&fx, -1, 5000);
	moor_session *s1 = NULL, *s2 = NULL;
	moor_mutex *m1 = NULL, *m2 = NULL;
	struct moor_response *r = NULL;

	(void)state;
	assert_int_equal(moor_session_open(c, 10, &s1), 0);
	assert_int_equal(moor_session_open(c, 10, &s2), 0);
	assert_int_equal(moor_mutex_new(s1, "tl", &m1), 0);
	assert_int_equal(moor_mutex_new(s2, "tl", &m2), 0);
	assert_int_equal(moor_mutex_lock(m1, 5000), 0);
	assert_non_null(moor_mutex_key(m1));
	assert_int_equal(moor_mutex_trylock(m2), MOOR_EBUSY);
	assert_null(moor_mutex_key(m2));
	assert_int_equal(moor_mutex_lock(m2, 300), MOOR_ETIMEOUT);
	/* the waiter left no key behind */
	struct moor_get_opts go = {.range.prefix = true, .count_only = true};
	assert_int_equal(moor_get(c, S("tl/"), &go, &r), 0);
	assert_int_equal(r->count, 1);
	moor_response_free(r);
	/* a holder whose session ends releases the mutex */
	moor_session_close(s1);
	assert_int_equal(moor_mutex_lock(m2, 5000), 0);
	assert_int_equal(moor_mutex_unlock(m2), 0);
	moor_mutex_free(m1);
	moor_mutex_free(m2);
	moor_session_close(s2);
	moor_client_close(c);
}

struct candidate {
	int idx;
	atomic_int *leaders;
	atomic_int *violations;
	atomic_int *terms;
	atomic_int *errors;
};

static void *candidate_main(void *arg)
{
	struct candidate *cd = arg;
	moor_client *c = fx_client(&fx, cd->idx % fx.n, 15000);
	moor_session *s = NULL;
	moor_election *e = NULL;
	char val[16];

	snprintf(val, sizeof val, "cand-%d", cd->idx);
	if (!c || moor_session_open(c, 10, &s) != 0 || moor_election_new(s, "el", &e) != 0) {
		atomic_fetch_add(cd->errors, 1);
		goto out;
	}
	for (int round = 0; round < 3; round++) {
		struct moor_response *r = NULL;
		int rc = moor_election_campaign(e, S(val), 30000);
		if (rc) {
			fprintf(stderr, "campaign: %s (%s)\n", moor_strerror(rc),
			        moor_error_detail());
			atomic_fetch_add(cd->errors, 1);
			continue;
		}
		if (atomic_fetch_add(cd->leaders, 1) != 0)
			atomic_fetch_add(cd->violations, 1);
		atomic_fetch_add(cd->terms, 1);
		/* the cluster names us */
		rc = moor_election_leader(c, "el", &r);
		if (rc != 0 || r->kvs[0].value_len != strlen(val) ||
		    memcmp(r->kvs[0].value, val, strlen(val)) != 0)
			atomic_fetch_add(cd->violations, 1);
		moor_response_free(r);
		fx_sleep_ms(20);
		atomic_fetch_sub(cd->leaders, 1);
		while ((rc = moor_election_resign(e)) == MOOR_EINDETERMINATE)
			;
		if (rc)
			atomic_fetch_add(cd->errors, 1);
	}
out:
	moor_election_free(e);
	moor_session_close(s);
	moor_client_close(c);
	return NULL;
}

static void the_election_elects_exactly_one_while_a_member_dies(void **state)
{
	static atomic_int leaders, violations, terms, errors;
	struct candidate cd[3];
	pthread_t th[3];
	int dead;

	(void)state;
	for (int i = 0; i < 3; i++) {
		cd[i] = (struct candidate){i, &leaders, &violations, &terms, &errors};
		assert_int_equal(pthread_create(&th[i], NULL, candidate_main, &cd[i]), 0);
	}
	fx_sleep_ms(200);
	dead = fx_wait_leader(&fx, 10000);
	fx_member_kill(&fx, dead);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&violations), 0);
	assert_int_equal(atomic_load(&errors), 0);
	assert_int_equal(atomic_load(&terms), 9);
	restart(dead);
}

static void list_then_watch_gives_a_snapshot_and_every_change_after_it(void **state)
{
	moor_client *c = fx_client(&fx, -1, 5000);
	struct moor_watch_opts o = {.range.prefix = true};
	struct moor_response *list = NULL;
	moor_watch *w = NULL;
	int64_t revs[3];

	(void)state;
	for (int i = 0; i < 5; i++) {
		char k[16];
		snprintf(k, sizeof k, "lt/%d", i);
		assert_int_equal(moor_put(c, S(k), S("a"), NULL, NULL), 0);
	}
	assert_int_equal(moor_list_watch(c, S("lt/"), &o, &list, &w), 0);
	assert_int_equal(list->n_kvs, 5);
	for (int i = 0; i < 3; i++) {
		struct moor_response *r = NULL;
		char k[16];
		snprintf(k, sizeof k, "lt/new%d", i);
		assert_int_equal(moor_put(c, S(k), S("b"), NULL, &r), 0);
		revs[i] = r->header.revision;
		moor_response_free(r);
	}
	int got = 0;
	while (got < 3) {
		struct moor_watch_response *r = NULL;
		assert_int_equal(moor_watch_next(w, 10000, &r), 0);
		assert_int_equal(r->err, 0);
		for (size_t i = 0; i < r->n_events; i++, got++)
			assert_int_equal(r->events[i].kv.mod_revision, revs[got]);
		moor_watch_response_free(r);
	}
	assert_int_equal(moor_watch_next_revision(w), revs[2] + 1);
	moor_watch_stop(w);
	moor_response_free(list);
	moor_client_close(c);
}

/* After each test, whatever it did: every member running and a leader, so
 * that one failure does not cascade into the next tests. */
static int heal(void **state)
{
	(void)state;
	for (int i = 0; i < fx.n; i++) {
		if (fx.pid[i] > 0)
			kill(fx.pid[i], SIGCONT);
		else if (fx_member_start(&fx, i) != 0)
			return -1;
	}
	return fx_wait_leader(&fx, 30000) >= 0 ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	if (fx_cluster_start(&fx, 3) != 0) {
		fprintf(stderr, "cannot start a 3-member cluster of %s\n", fx.moord);
		fx_cluster_stop(&fx);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_cluster_stop(&fx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(reads_go_on_when_the_member_in_use_is_killed, heal),
	    cmocka_unit_test_teardown(reads_go_on_when_the_member_in_use_is_frozen, heal),
	    cmocka_unit_test_teardown(
	        writes_through_a_killed_member_succeed_elsewhere_or_say_indeterminate, heal),
	    cmocka_unit_test_teardown(
	        a_watch_across_a_leader_kill_delivers_each_revision_exactly_once, heal),
	    cmocka_unit_test_teardown(
	        a_watch_on_a_frozen_member_moves_to_another_and_misses_nothing, heal),
	    cmocka_unit_test_teardown(a_kept_alive_lease_survives_the_death_of_the_member_in_use,
	                              heal),
	    cmocka_unit_test_teardown(a_kept_alive_lease_survives_a_frozen_member_in_use, heal),
	    cmocka_unit_test_teardown(trylock_is_busy_while_another_holds_the_mutex, heal),
	    cmocka_unit_test_teardown(the_mutex_excludes_while_a_member_dies, heal),
	    cmocka_unit_test_teardown(the_election_elects_exactly_one_while_a_member_dies, heal),
	    cmocka_unit_test_teardown(list_then_watch_gives_a_snapshot_and_every_change_after_it,
	                              heal),
	};
	return cmocka_run_group_tests_name("libmoor failover", tests, setup, teardown);
}

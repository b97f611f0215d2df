/*
 * Swarm mode: what happens to the cluster at random, all drawn from the one
 * seed. Each step may bring client writes and reads, a crash (sometimes
 * between a leader's sending and its persisting), a restart, a new network
 * partition (a member cut off, a one-way cut, a split in two), healing, a
 * leadership transfer, or a membership change; clients retry writes that
 * were not acknowledged in time, as real ones do. Then sim_heal() removes
 * every fault and sim_settle() demands liveness: a leader, and every write
 * acknowledged, within a bounded number of ticks.
 */
#include "tests/sim/sim.h"

#include "common/error.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

int sim_repropose(struct sim *s, uint64_t node, struct sim_prop *p);

#define SIM_RETRY_TICKS 40
#define SWARM_STEPS 2000
#define SWARM_SETTLE_TICKS 1500

static uint64_t random_up(struct sim *s)
{
	uint64_t ids[SIM_MAX_NODES];
	unsigned n = 0;

	for (unsigned i = 1; i <= SIM_MAX_NODES; i++)
		if (s->nodes[i].up)
			ids[n++] = i;
	return n ? ids[sim_below(s, n)] : 0;
}

static uint64_t random_existing(struct sim *s)
{
	uint64_t ids[SIM_MAX_NODES];
	unsigned n = 0;

	for (unsigned i = 1; i <= SIM_MAX_NODES; i++)
		if (s->nodes[i].exists)
			ids[n++] = i;
	return n ? ids[sim_below(s, n)] : 0;
}

static void retry_writes(struct sim *s)
{
	uint64_t l = sim_leader(s);

	for (size_t i = 0; i < s->n_props; i++) {
		struct sim_prop *p = &s->props[i];
		uint64_t to;

		unsigned backoff = SIM_RETRY_TICKS << (p->attempts < 3 ? p->attempts : 3);

		if (p->acked || s->now - p->proposed_at < backoff)
			continue;
		p->attempts++;
		/* a client that fails over ends up at the leader, mostly */
		to = l && sim_below(s, 4) ? l : random_up(s);
		/* told "no leader", a client tries the next endpoint at once */
		if (to && sim_repropose(s, to, p) == MOOR_ENOLEADER && l && l != to &&
		    s->nodes[l].up)
			sim_repropose(s, l, p);
		else if (!to)
			p->proposed_at = s->now;
	}
}

/*
 * A member whose removal committed (some member applied it) shuts down, as
 * an operator or moord does, once it no longer leads: a removed leader
 * first hands over.
 */
static void retire_removed(struct sim *s)
{
	for (unsigned i = 1; i <= SIM_MAX_NODES; i++) {
		struct sim_node *n = &s->nodes[i];
		struct raft_status st;

		if (!n->exists || !n->removed)
			continue;
		if (n->up) {
			raft_status(n->r, &st);
			if (st.role == RAFT_LEADER)
				continue;
		}
		sim_tracef(s, "n%u retired (its removal committed)", i);
		sim_crash(s, i);
		n->exists = false;
	}
}

static void membership_change(struct sim *s)
{
	uint64_t l = sim_leader(s);
	struct raft_conf_state cs;
	unsigned pick;

	if (!l)
		return;
	raft_conf_state(s->nodes[l].r, &cs);
	pick = sim_below(s, 4);
	if (pick == 0 && cs.n_voters + cs.n_learners < 7 && s->next_new_id <= SIM_MAX_NODES) {
		sim_conf_change(s, RAFT_CONF_ADD_LEARNER, s->next_new_id++);
	} else if (pick == 1 && cs.n_learners) {
		sim_conf_change(s, RAFT_CONF_PROMOTE, cs.learners[sim_below(s, cs.n_learners)]);
	} else if (pick == 2 && cs.n_voters > 3) {
		sim_conf_change(s, RAFT_CONF_REMOVE, cs.voters[sim_below(s, cs.n_voters)]);
	} else if (pick == 3 && cs.n_voters < 5 && s->next_new_id <= SIM_MAX_NODES) {
		sim_conf_change(s, RAFT_CONF_ADD_VOTER, s->next_new_id++);
	}
}

static void partition(struct sim *s)
{
	unsigned kind = sim_below(s, 4);

	if (kind == 0) {
		uint64_t x = random_existing(s);
		if (x)
			sim_isolate(s, x);
	} else if (kind == 1) {
		uint64_t a = random_existing(s), b = random_existing(s);
		if (a && b && a != b)
			sim_cut(s, a, b);
	} else if (kind == 2) {
		bool side[SIM_MAX_NODES + 1];

		for (unsigned i = 1; i <= SIM_MAX_NODES; i++)
			side[i] = sim_below(s, 2);
		for (unsigned i = 1; i <= SIM_MAX_NODES; i++)
			for (unsigned j = 1; j <= SIM_MAX_NODES; j++)
				s->cut[i][j] = side[i] != side[j];
		sim_tracef(s, "split network");
	} else {
		sim_heal_net(s);
	}
}

void sim_chaos(struct sim *s)
{
	unsigned r = sim_below(s, 1000);
	unsigned f = s->o.fault_level ? s->o.fault_level : 1; /* scales fault rates */
	uint64_t x;

	if (r < 130) {
		if ((x = random_up(s)))
			sim_propose(s, x);
	} else if (r < 150) {
		if ((x = random_up(s)))
			sim_propose_batch(s, x, 2 + sim_below(s, 6));
	} else if (r < 200) {
		if ((x = random_up(s)))
			sim_read(s, x);
	} else if (s->o.faults && r < 200 + 3 * f) {
		if ((x = random_up(s))) {
			unsigned how = sim_below(s, 3);

			if (how) {
				s->nodes[x].crash_mid_ready = (int)how;
				sim_tracef(s, "n%llu will crash in its next write (%s)",
				           (unsigned long long)x,
				           how == 1 ? "before it"
				                    : "between entries and hard state");
			} else {
				sim_crash(s, x);
			}
		}
	} else if (s->o.faults && r < 230 + 3 * f) {
		for (unsigned i = 1; i <= SIM_MAX_NODES; i++)
			if (s->nodes[i].exists && !s->nodes[i].up) {
				sim_restart(s, i);
				break;
			}
	} else if (s->o.faults && r < 230 + 6 * f) {
		partition(s);
	} else if (s->o.faults && r < 240 + 6 * f) {
		sim_heal_net(s);
	} else if (s->o.faults && r < 240 + 8 * f) {
		if ((x = random_existing(s)))
			sim_transfer(s, x);
	} else if (s->o.membership && r < 245 + 8 * f) {
		membership_change(s);
	} else if (s->o.faults && r < 246 + 8 * f) {
		if ((x = random_up(s)))
			sim_disk_fail(s, x, 1 + (int)sim_below(s, 60));
	}
	retry_writes(s);
	retire_removed(s);
}

void sim_heal(struct sim *s)
{
	sim_tracef(s, "heal everything");
	memset(s->cut, 0, sizeof s->cut);
	s->o.drop_pct = 0;
	s->o.dup_pct = 0;
	s->o.skew_pct = 0;
	for (unsigned i = 1; i <= SIM_MAX_NODES; i++) {
		struct sim_node *n = &s->nodes[i];

		n->crash_mid_ready = 0;
		n->disk_fail_in = 0; /* a failure still to come does not come */
		if (n->up && n->disk_failed)
			sim_crash(s, i); /* stopped by its disk, not yet noticed */
		if (n->exists && !n->up)
			sim_restart(s, i);
	}
}

/*
 * Liveness after healing: a leader, every write acknowledged, and then a
 * linearizable read on every running member answered, all within max_ticks.
 * Reads lost to a leader change are asked again, as a client would.
 */
bool sim_settle(struct sim *s, unsigned max_ticks)
{
	uint64_t start = s->now;
	uint64_t asked[SIM_MAX_NODES + 1] = {0}; /* read id per member, 0: none yet */
	uint64_t asked_at[SIM_MAX_NODES + 1] = {0};
	bool writes_done = false;
	size_t reads_pending = 0;

	while (!s->failed && s->now - start < max_ticks) {
		bool all = sim_leader(s) != 0;

		for (size_t i = 0; all && i < s->n_props; i++)
			all = s->props[i].acked;
		writes_done = all;
		if (all) {
			struct raft_conf_state cs;
			bool member[SIM_MAX_NODES + 1] = {false};

			/* members only: one whose addition was lost is nobody's follower */
			raft_conf_state(s->nodes[sim_leader(s)].r, &cs);
			for (uint32_t k = 0; k < cs.n_voters; k++)
				if (cs.voters[k] <= SIM_MAX_NODES)
					member[cs.voters[k]] = true;
			for (uint32_t k = 0; k < cs.n_learners; k++)
				if (cs.learners[k] <= SIM_MAX_NODES)
					member[cs.learners[k]] = true;
			reads_pending = 0;
			for (unsigned i = 1; i <= SIM_MAX_NODES; i++) {
				struct sim_read *rd = asked[i] ? &s->reads[asked[i] - 1] : NULL;

				if (!s->nodes[i].up || !member[i] || (rd && rd->done && rd->index))
					continue;
				reads_pending++;
				if (!rd || rd->done || s->now - asked_at[i] >= SIM_RETRY_TICKS) {
					sim_read(s, i);
					asked[i] = s->n_reads;
					asked_at[i] = s->now;
				}
			}
			if (!reads_pending)
				return true;
		}
		sim_step(s);
		retry_writes(s);
		retire_removed(s);
	}
	if (!s->failed) {
		size_t pending = 0;

		for (size_t i = 0; i < s->n_props; i++)
			pending += !s->props[i].acked;
		if (writes_done)
			sim_fail(
			    s,
			    "liveness: after healing, %zu members' reads unanswered after %u ticks",
			    reads_pending, max_ticks);
		else
			sim_fail(s,
			         "liveness: after healing, %s and %zu writes unacknowledged after "
			         "%u ticks",
			         sim_leader(s) ? "a leader" : "no leader", pending, max_ticks);
	}
	return false;
}

/*
 * A failed MOOR_ASSERT inside the core aborts the process: the seed and the
 * trace must still come out, so a handler for SIGABRT and SIGSEGV prints
 * the report of the run in progress before dying. (Not async-signal-safe;
 * this is a test harness on its way out.)
 */
static struct sim *g_running;
static const char *g_replay = "sim_swarm";

static void on_fatal_signal(int sig)
{
	if (g_running) {
		sim_fail(g_running, "crashed with signal %d (a failed assertion aborts)", sig);
		sim_report(g_running, stdout, g_replay);
		fflush(stdout);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

uint64_t sim_swarm_run(uint64_t seed, bool verbose, const char *replay, bool *ok)
{
	struct sim *s = calloc(1, sizeof *s);
	struct sim_opts o = {0};
	uint64_t pick = seed * 0x9E3779B97F4A7C15ull, h;

	if (!s)
		abort();
	g_running = s;
	g_replay = replay;
	signal(SIGABRT, on_fatal_signal);
	signal(SIGSEGV, on_fatal_signal);
	pick ^= pick >> 29;
	o.n_voters = pick % 3 == 0 ? 5 : 3;
	o.drop_pct = (unsigned)(pick >> 8) % 11;
	o.dup_pct = (unsigned)(pick >> 16) % 6;
	o.max_delay = (unsigned)(pick >> 24) % 5;
	o.faults = true;
	o.membership = (pick >> 32) % 2 == 0;
	o.compact_every = (pick >> 40) % 3 == 0 ? 0 : 20 + (unsigned)(pick >> 44) % 80;
	o.fault_level = 1 + (unsigned)(pick >> 56) % 4;
	{
		uint64_t q = pick * 0xD1B54A32D192ED03ull;

		q ^= q >> 31;
		o.no_pre_vote = q % 4 == 0;
		o.no_check_quorum = (q >> 2) % 4 == 0;
		/* Without both, a member that appended its own addition, which the
		 * cluster then discarded, campaigns forever and disrupts every
		 * leader (dissertation 4.2.3): moord runs with at least one. */
		if (o.membership && o.no_pre_vote && o.no_check_quorum)
			o.no_check_quorum = false;
		/* Raft needs broadcast time << election timeout: at least four
		 * worst-case one-way delays */
		o.election_ticks = 5 + (unsigned)(q >> 4) % 16;
		if (o.election_ticks < 4 * (o.max_delay + 1))
			o.election_ticks = 4 * (o.max_delay + 1);
		o.max_inflight = 2 + (unsigned)(q >> 12) % 31;
		o.max_msg_bytes = 192 + (unsigned)(q >> 20) % 8000; /* 8 entries or more */
	}
	o.skew_pct = (pick >> 48) % 4 == 0 ? 20 + (unsigned)(pick >> 52) % 30 : 0;
	o.verbose = verbose;
	sim_init(s, seed, &o);
	if (verbose) {
		s->trace_out = stdout;
		printf("%s\n", s->trace[0]); /* the options drawn */
	}
	for (unsigned i = 0; i < SWARM_STEPS && !s->failed; i++) {
		sim_chaos(s);
		sim_step(s);
	}
	if (!s->failed) {
		sim_heal(s);
		sim_settle(s, SWARM_SETTLE_TICKS);
	}
	*ok = !s->failed;
	if (s->failed)
		sim_report(s, stdout, replay);
	else if (verbose)
		printf("seed %llu ok: %llu writes acknowledged, %llu reads, trace hash %016llx\n",
		       (unsigned long long)seed, (unsigned long long)s->acked,
		       (unsigned long long)s->reads_ok, (unsigned long long)s->trace_hash);
	h = s->trace_hash;
	g_running = NULL;
	sim_free(s);
	free(s);
	return h;
}

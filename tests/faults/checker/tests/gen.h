/*
 * A generator of register histories for the checker's tests: a simulated
 * register store with random concurrency whose every operation takes effect
 * at one instant between its invocation and its completion, so that the
 * histories it records are linearizable by construction. Deterministic for
 * a seed (xorshift, no libc rand).
 */
#ifndef MOOR_TESTS_FAULTS_CHECKER_GEN_H
#define MOOR_TESTS_FAULTS_CHECKER_GEN_H

#include <stddef.h>
#include <stdint.h>

struct gen_cfg {
	uint64_t seed;
	int processes; /* concurrent clients */
	int ops;       /* operations to invoke */
	int keys;      /* registers "k0".."kN-1" */
	int values;    /* values written are drawn from 1..values */
	int read_pct;  /* the rest split between write and cas */
	int cas_pct;
	int info_pct;      /* ops that end indeterminate */
	int info_lost_pct; /* of those, the share that never takes effect */
};

enum gen_kind { GEN_READ, GEN_WRITE, GEN_CAS };

/* One recorded event; a history is an array of them in time order. */
struct gen_event {
	int64_t process;
	int type; /* 0 invoke, 1 ok, 2 fail, 3 info */
	enum gen_kind kind;
	int key;
	int value;  /* read result / written value; 0 = null */
	int expect; /* cas */
	int op;     /* the op's number, shared by invoke and completion */
};

struct gen_history {
	struct gen_event *ev;
	size_t n;
};

/* Simulates; returns 0 or -1 on OOM. Free with gen_free. */
int gen_register(const struct gen_cfg *cfg, struct gen_history *out);
void gen_free(struct gen_history *g);

/* The history as JSON lines (time_ns = event index), malloc'd; NULL on OOM. */
char *gen_to_jsonl(const struct gen_history *g);

uint64_t gen_rand(uint64_t *s);

#endif

/*
 * The simulated register store behind the generated histories (see gen.h).
 *
 * Each step picks a random client: an idle one invokes a new operation, a
 * pending one has its operation take effect on the registers now (or, for
 * an indeterminate op chosen to be lost, never), an applied one receives its
 * completion. The instant of effect therefore lies between invocation and
 * completion, which is exactly linearizability; a client whose operation
 * ended "info" is replaced by a fresh process id, as the format demands.
 */
#include "tests/faults/checker/tests/gen.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t gen_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static bool pct(uint64_t *s, int p)
{
	return (int)(gen_rand(s) % 100) < p;
}

enum pstate { P_IDLE, P_PENDING, P_APPLIED };

struct proc {
	enum pstate st;
	struct gen_event call;
	int done_type; /* 1 ok, 2 fail, 3 info */
	int result;
	bool lost; /* an info op that never takes effect */
};

static int push(struct gen_history *g, size_t *cap, const struct gen_event *e)
{
	if (g->n == *cap) {
		size_t c2 = *cap ? *cap * 2 : 256;
		struct gen_event *e2 = realloc(g->ev, c2 * sizeof *e2);

		if (!e2)
			return -1;
		g->ev = e2;
		*cap = c2;
	}
	g->ev[g->n++] = *e;
	return 0;
}

static void apply(struct proc *p, int *reg)
{
	struct gen_event *c = &p->call;
	int *v = &reg[c->key];

	p->done_type = 1;
	switch (c->kind) {
	case GEN_READ:
		p->result = *v;
		break;
	case GEN_WRITE:
		*v = c->value;
		p->result = c->value;
		break;
	case GEN_CAS:
		if (*v == c->expect)
			*v = c->value;
		else
			p->done_type = 2;
		p->result = c->value;
		break;
	}
}

int gen_register(const struct gen_cfg *cfg, struct gen_history *out)
{
	uint64_t s = cfg->seed * 2 + 1;
	struct proc *procs = calloc((size_t)cfg->processes, sizeof *procs);
	int64_t *ids = calloc((size_t)cfg->processes, sizeof *ids);
	int *reg = calloc((size_t)cfg->keys, sizeof *reg);
	int64_t next_id = cfg->processes;
	int issued = 0, busy = 0, rc = 0;
	size_t cap = 0;

	memset(out, 0, sizeof *out);
	if (!procs || !ids || !reg)
		rc = -1;
	for (int i = 0; i < cfg->processes && rc == 0; i++)
		ids[i] = i;
	while (rc == 0 && (issued < cfg->ops || busy > 0)) {
		int i = (int)(gen_rand(&s) % (uint64_t)cfg->processes);
		struct proc *p = &procs[i];
		struct gen_event e;

		switch (p->st) {
		case P_IDLE: {
			int r = (int)(gen_rand(&s) % 100);

			if (issued == cfg->ops)
				continue;
			memset(&e, 0, sizeof e);
			e.process = ids[i];
			e.type = 0;
			e.kind = r < cfg->read_pct                  ? GEN_READ
			         : r < cfg->read_pct + cfg->cas_pct ? GEN_CAS
			                                            : GEN_WRITE;
			e.key = (int)(gen_rand(&s) % (uint64_t)cfg->keys);
			if (e.kind != GEN_READ)
				e.value = 1 + (int)(gen_rand(&s) % (uint64_t)cfg->values);
			if (e.kind == GEN_CAS)
				e.expect = (int)(gen_rand(&s) % (uint64_t)(cfg->values + 1));
			e.op = issued++;
			p->call = e;
			p->lost = false;
			p->st = P_PENDING;
			busy++;
			rc = push(out, &cap, &e);
			break;
		}
		case P_PENDING:
			if (pct(&s, cfg->info_pct)) {
				p->lost = pct(&s, cfg->info_lost_pct);
				if (!p->lost)
					apply(p, reg);
				p->done_type = 3;
			} else {
				apply(p, reg);
			}
			p->st = P_APPLIED;
			break;
		case P_APPLIED:
			e = p->call;
			e.type = p->done_type;
			e.value = p->call.kind == GEN_READ ? p->result : p->call.value;
			rc = push(out, &cap, &e);
			if (p->done_type == 3)
				ids[i] = next_id++;
			p->st = P_IDLE;
			busy--;
			break;
		}
	}
	free(procs);
	free(ids);
	free(reg);
	if (rc != 0)
		gen_free(out);
	return rc;
}

void gen_free(struct gen_history *g)
{
	free(g->ev);
	g->ev = NULL;
	g->n = 0;
}

static const char *const kind_name[] = {"read", "write", "cas"};
static const char *const type_name[] = {"invoke", "ok", "fail", "info"};

char *gen_to_jsonl(const struct gen_history *g)
{
	size_t cap = g->n * 256 + 1, len = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	for (size_t i = 0; i < g->n; i++) {
		const struct gen_event *e = &g->ev[i];
		char val[24], exp[40] = "";

		if (e->value)
			snprintf(val, sizeof val, "%d", e->value);
		else
			snprintf(val, sizeof val, "null");
		if (e->kind == GEN_CAS && e->expect)
			snprintf(exp, sizeof exp, ",\"expect\":%d", e->expect);
		else if (e->kind == GEN_CAS)
			snprintf(exp, sizeof exp, ",\"expect\":null");
		/* A read's invocation and an info read carry no value. */
		if (e->kind == GEN_READ && (e->type == 0 || e->type == 3))
			snprintf(val, sizeof val, "null");
		len += (size_t)snprintf(out + len, cap - len,
		                        "{\"process\":%" PRId64 ",\"type\":\"%s\",\"f\":\"%s\","
		                        "\"key\":\"k%d\",\"value\":%s%s,\"time_ns\":%zu}\n",
		                        e->process, type_name[e->type], kind_name[e->kind], e->key,
		                        val, exp, i);
	}
	out[len] = '\0';
	return out;
}

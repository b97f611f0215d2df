/*
 * The search of the linearizability checker (see linear.c for the model).
 *
 * Wing & Gong's search with Lowe's memoization, as Porcupine and Knossos
 * use it: the call and return entries of completed ops in one doubly-linked
 * list ordered by time; repeatedly linearize a call the model accepts
 * (unlinking the call and its return, dancing-links style), backtrack when a
 * return is reached whose call is still pending, and never enter the same
 * configuration (set of linearized ops, register value) twice. The set has
 * an incrementally maintained Zobrist hash. Indeterminate ops have no return
 * to respect, so they live apart in call order and are tried only where the
 * list is stuck. Three sound reductions (find_forced, dominated,
 * after_info_write) keep the search near-linear on real histories.
 */
#include "tests/faults/checker/linear.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool model_step(const struct lin_op *op, int32_t state, int32_t *next)
{
	switch (op->kind) {
	case LIN_READ:
		*next = state;
		return state == op->arg;
	case LIN_WRITE:
		*next = op->arg;
		return true;
	case LIN_CAS:
		*next = op->arg;
		return state == op->expect;
	case LIN_CAS_FAIL:
		*next = state;
		return state != op->expect;
	}
	return false;
}

struct entry {
	int64_t time;
	uint32_t op;
	bool is_call;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	/* At equal times a call sorts first: the two ops count as concurrent. */
	if (x->is_call != y->is_call)
		return x->is_call ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/*
 * The memo of visited (linearized set, state): open addressing over an
 * arena of records [state, hash, words...]. In exact mode the words are the
 * bitset of linearized ops; in fingerprint mode one word, a second
 * independent 64-bit hash of the set, stands in for it (see lin_check_key).
 */
struct cache {
	uint64_t *arena;
	size_t stride, n, cap_records;
	uint32_t *table; /* record index + 1; 0 = empty */
	size_t table_cap;
	size_t bytes;
};

static int cache_grow_table(struct cache *c)
{
	size_t cap = c->table_cap ? c->table_cap * 2 : 1024;
	uint32_t *t = calloc(cap, sizeof *t);

	if (!t)
		return MOOR_ENOMEM;
	for (size_t i = 0; i < c->n; i++) {
		uint64_t h = c->arena[i * c->stride + 1];
		size_t j = (size_t)h & (cap - 1);

		while (t[j])
			j = (j + 1) & (cap - 1);
		t[j] = (uint32_t)(i + 1);
	}
	free(c->table);
	c->bytes += (cap - c->table_cap) * sizeof *t;
	c->table = t;
	c->table_cap = cap;
	return 0;
}

/* 1 if (bits, state) was new and is now stored, 0 if seen, or MOOR_ENOMEM. */
static int cache_insert(struct cache *c, const uint64_t *bits, uint64_t state, uint64_t h)
{
	size_t words = c->stride - 2, j;

	if ((c->n + 1) * 2 > c->table_cap && cache_grow_table(c) != 0)
		return MOOR_ENOMEM;
	for (j = (size_t)h & (c->table_cap - 1); c->table[j]; j = (j + 1) & (c->table_cap - 1)) {
		const uint64_t *r = &c->arena[(c->table[j] - 1) * c->stride];

		if (r[1] == h && r[0] == state && memcmp(r + 2, bits, words * sizeof *bits) == 0)
			return 0;
	}
	if (c->n == c->cap_records) {
		size_t cap = c->cap_records ? c->cap_records * 2 : 1024;
		uint64_t *a;

		if (cap > UINT32_MAX - 1)
			return MOOR_ENOMEM;
		a = realloc(c->arena, cap * c->stride * sizeof *a);
		if (!a)
			return MOOR_ENOMEM;
		c->bytes += (cap - c->cap_records) * c->stride * sizeof *a;
		c->arena = a;
		c->cap_records = cap;
	}
	uint64_t *r = &c->arena[c->n * c->stride];

	r[0] = state;
	r[1] = h;
	memcpy(r + 2, bits, words * sizeof *bits);
	c->table[j] = (uint32_t)++c->n;
	return 1;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * A choice on the stack: a completed op's call node in the entry list
 * (info = false) or an indeterminate op (info = true, node = the op, and the
 * return node at which the choice was made with the cursor to resume from).
 */
struct frame {
	uint32_t node;
	bool info;
	bool forced; /* a read-only op taken as the only choice (see find_forced) */
	uint32_t at_ret;
	size_t cursor;
	int32_t state;
	uint64_t hash, hash2;
};

/*
 * Completed ops live in the entry list; indeterminate ops, which have no
 * return to respect, live apart in call order (info_order) and are tried
 * only when the list is stuck at a return: a valid history is mostly
 * explained by completed ops, so trying the timed-out ones last finds it
 * sooner, and they stay eligible at every later point anyway.
 */
struct search {
	const struct lin_key *k;
	size_t n;         /* ops */
	size_t n_entries; /* entries of completed ops: 2 per op */
	struct entry *e;  /* node i (1-based) = e[i - 1] */
	uint32_t *next, *prev, *match;
	uint32_t *info_order;
	size_t n_info;
	uint64_t *bits, *zob, *zob2;
	bool exact; /* the cache compares whole bitsets, not fingerprints */
	struct frame *stack;
	size_t depth;
	struct cache cache;
	/* The deepest partial linearization seen, for the explanation. */
	uint32_t *best_seq;
	long best_depth;
	uint32_t best_block;
	int32_t best_state;
	uint32_t best_pending[8];
	size_t n_best_pending;
};

static void lift(struct search *s, uint32_t c)
{
	uint32_t r = s->match[c];

	s->next[s->prev[c]] = s->next[c];
	s->prev[s->next[c]] = s->prev[c];
	s->next[s->prev[r]] = s->next[r];
	s->prev[s->next[r]] = s->prev[r];
}

static void unlift(struct search *s, uint32_t c)
{
	uint32_t r = s->match[c];

	s->prev[s->next[r]] = r;
	s->next[s->prev[r]] = r;
	s->prev[s->next[c]] = c;
	s->next[s->prev[c]] = c;
}

static uint32_t frame_op(const struct search *s, const struct frame *f)
{
	return f->info ? f->node : s->e[f->node - 1].op;
}

static void note_stuck(struct search *s, uint32_t node, int32_t state)
{
	if ((long)s->depth <= s->best_depth || !node)
		return;
	s->best_depth = (long)s->depth;
	for (size_t i = 0; i < s->depth; i++)
		s->best_seq[i] = frame_op(s, &s->stack[i]);
	s->best_block = s->e[node - 1].op;
	s->best_state = state;
	s->n_best_pending = 0;
	for (uint32_t x = s->next[0]; x && x != node && s->n_best_pending < 8; x = s->next[x])
		if (s->e[x - 1].is_call && s->e[x - 1].op != s->best_block)
			s->best_pending[s->n_best_pending++] = s->e[x - 1].op;
}

static int by_call_time(const void *a, const void *b, void *arg)
{
	return lin_by_call(a, b, arg);
}

static int search_init(struct search *s, const struct lin_key *k, bool exact, uint64_t seed)
{
	size_t n = k->n, words = (n + 63) / 64, m = 0;

	memset(s, 0, sizeof *s);
	s->k = k;
	s->n = n;
	s->best_depth = -1;
	s->e = malloc(2 * n * sizeof *s->e + 1);
	s->next = calloc(2 * n + 1, sizeof *s->next);
	s->prev = calloc(2 * n + 1, sizeof *s->prev);
	s->match = calloc(2 * n + 1, sizeof *s->match);
	s->info_order = malloc(n * sizeof *s->info_order + 1);
	s->bits = calloc(words ? words : 1, sizeof *s->bits);
	s->zob = malloc(n * sizeof *s->zob + 1);
	s->zob2 = malloc(n * sizeof *s->zob2 + 1);
	s->stack = malloc(n * sizeof *s->stack + 1);
	s->best_seq = malloc(n * sizeof *s->best_seq + 1);
	if (!s->e || !s->next || !s->prev || !s->match || !s->info_order || !s->bits || !s->zob ||
	    !s->zob2 || !s->stack || !s->best_seq)
		return MOOR_ENOMEM;
	s->exact = exact;
	s->cache.stride = exact ? words + 2 : 3;
	for (size_t i = 0; i < n; i++) {
		s->zob[i] = mix64((i * 2 + 1) ^ (seed * 0xD6E8FEB86659FD93ull));
		s->zob2[i] =
		    mix64((i * 2 + 0x51ED270B27ull * (i + 1)) ^ (seed * 0xA0761D6478BD642Full));
		if (k->ops[i].info) {
			s->info_order[s->n_info++] = (uint32_t)i;
			continue;
		}
		s->e[m++] = (struct entry){k->ops[i].call, (uint32_t)i, true};
		s->e[m++] = (struct entry){k->ops[i].ret, (uint32_t)i, false};
	}
	s->n_entries = m;
	qsort(s->e, m, sizeof *s->e, entry_cmp);
	qsort_r(s->info_order, s->n_info, sizeof *s->info_order, by_call_time, (void *)k->ops);
	{
		uint32_t *call_node = calloc(n + 1, sizeof *call_node);

		if (!call_node)
			return MOOR_ENOMEM;
		for (uint32_t i = 1; i <= m; i++) {
			s->prev[i] = i - 1;
			s->next[i - 1] = i;
			if (s->e[i - 1].is_call)
				call_node[s->e[i - 1].op] = i;
			else
				s->match[call_node[s->e[i - 1].op]] = i;
		}
		s->next[m] = 0;
		s->prev[0] = (uint32_t)m;
		free(call_node);
	}
	return 0;
}

static void search_free(struct search *s)
{
	free(s->e);
	free(s->next);
	free(s->prev);
	free(s->match);
	free(s->info_order);
	free(s->bits);
	free(s->zob);
	free(s->zob2);
	free(s->stack);
	free(s->best_seq);
	free(s->cache.arena);
	free(s->cache.table);
}

static bool is_set(const struct search *s, uint32_t id)
{
	return s->bits[id / 64] & (1ull << (id % 64));
}

/*
 * Tries op id from state/hash: 1 if it was linearized (bit set, pushed on
 * the stack as *fr with the old state), 0 if the model refused it, 2 if the
 * cache had seen the result (a dead end), negative on OOM.
 */
/*
 * Whether the last op linearized was an indeterminate write or cas. A write
 * right after it would overwrite its value unseen, so a linearization with
 * that pair stays valid without the indeterminate op (which may never take
 * effect); the search only explores the version without it. The flag is
 * part of the cached configuration, since it restricts what may come next.
 */
static bool after_info_write(const struct search *s)
{
	const struct lin_op *top;

	if (s->depth == 0 || !s->stack[s->depth - 1].info)
		return false;
	top = &s->k->ops[s->stack[s->depth - 1].node];
	return top->kind == LIN_WRITE || top->kind == LIN_CAS;
}

/*
 * Whether an identical op that returns earlier could go next instead of id
 * (see link_twins). first_ret is the time of the first pending return: an
 * op may go next iff invoked by then, and every op returning before it is
 * already linearized, which ends the walk down the chain.
 */
static bool dominated(const struct search *s, uint32_t id, int64_t first_ret)
{
	for (int64_t y = s->k->ops[id].twin; y >= 0; y = s->k->ops[y].twin) {
		const struct lin_op *o = &s->k->ops[y];

		if (o->ret < first_ret)
			return false;
		if (!is_set(s, (uint32_t)y) && o->call <= first_ret)
			return true;
	}
	return false;
}

static int try_op(struct search *s, uint32_t id, int32_t *state, uint64_t hash[2], struct frame fr,
                  int64_t first_ret)
{
	const struct lin_op *op = &s->k->ops[id];
	int32_t ns;
	uint64_t h2, h3, key;
	int rc;

	if (dominated(s, id, first_ret))
		return 0;
	if (op->kind == LIN_WRITE && after_info_write(s))
		return 0;
	if (!model_step(op, *state, &ns))
		return 0;
	h2 = hash[0] ^ s->zob[id];
	h3 = hash[1] ^ s->zob2[id];
	s->bits[id / 64] |= 1ull << (id % 64);
	/* The configuration: linearized set, value, and whether an info write just ran. */
	key = (uint64_t)(uint32_t)ns |
	      (uint64_t)(op->info && op->kind != LIN_READ && op->kind != LIN_CAS_FAIL) << 32;
	rc = cache_insert(&s->cache, s->exact ? s->bits : &h3, key, h2 ^ mix64(key + 7));
	if (rc != 1) {
		s->bits[id / 64] &= ~(1ull << (id % 64));
		return rc == 0 ? 2 : rc;
	}
	fr.state = *state;
	fr.hash = hash[0];
	fr.hash2 = hash[1];
	s->stack[s->depth++] = fr;
	*state = ns;
	hash[0] = h2;
	hash[1] = h3;
	return 1;
}

static bool read_only(const struct lin_op *op)
{
	return op->kind == LIN_READ || op->kind == LIN_CAS_FAIL;
}

/*
 * A read-only op (a read, a cas whose compare failed) that may come next and
 * that the current value satisfies can be linearized next without losing
 * any solution: in any linearization from here, moving it to the front
 * changes no other op's view (it changes no state), and nothing remaining
 * must precede it (its call is before every remaining return). So it is
 * taken as the only choice, and if that fails, this configuration fails.
 * Without this, every subset of commuting reads is a separate cache entry
 * and the search grows exponentially with concurrency.
 */
static uint32_t find_forced(const struct search *s, int32_t state, int64_t first_ret)
{
	for (uint32_t x = s->next[0]; x && s->e[x - 1].is_call; x = s->next[x]) {
		const struct lin_op *op = &s->k->ops[s->e[x - 1].op];
		int32_t ns;

		if (read_only(op) && model_step(op, state, &ns) &&
		    !dominated(s, s->e[x - 1].op, first_ret))
			return x;
	}
	return 0;
}

/* The time of the first return in the list: ops invoked by then may go next. */
static int64_t first_return(const struct search *s)
{
	uint32_t x = s->next[0];

	while (x && s->e[x - 1].is_call)
		x = s->next[x];
	return x ? s->e[x - 1].time : HIST_TIME_INF;
}

/* CHK_VALID, CHK_INVALID or CHK_UNKNOWN (why in *why); negative on OOM. */
static int search_run(struct search *s, const struct chk_budget *b, uint64_t *steps_out,
                      const char **why)
{
	size_t remaining = s->n_entries / 2, cursor = 0;
	int32_t state = 0;
	uint64_t hash[2] = {mix64(0), mix64(1)}, steps = 0;
	uint32_t node = s->next[0], forced;
	int64_t first_ret = first_return(s);
	bool fresh = true, dead = false;
	int verdict = CHK_VALID, rc = 0;

	while (remaining > 0) {
		if (++steps > b->max_steps && b->max_steps) {
			*why = "step budget exhausted";
			verdict = CHK_UNKNOWN;
			break;
		}
		if ((steps & 4095) == 0 && b->deadline_ns && now_ns() > b->deadline_ns) {
			*why = "time budget exhausted";
			verdict = CHK_UNKNOWN;
			break;
		}
		if (b->max_bytes && s->cache.bytes > b->max_bytes) {
			*why = "memory budget exhausted";
			verdict = CHK_UNKNOWN;
			break;
		}
		if (fresh && !dead && (forced = find_forced(s, state, first_ret)) != 0) {
			rc = try_op(s, s->e[forced - 1].op, &state, hash,
			            (struct frame){.node = forced, .info = false, .forced = true},
			            first_ret);
			if (rc < 0)
				break;
			MOOR_ASSERT(rc != 0); /* find_forced checked model and dominance */
			if (rc == 1) {
				lift(s, forced);
				first_ret = first_return(s);
				remaining--;
				node = s->next[0];
				cursor = 0;
			} else {
				dead = true; /* seen before, and it was the only choice */
			}
			continue;
		}
		fresh = false;
		if (!dead && node && s->e[node - 1].is_call) {
			rc = try_op(s, s->e[node - 1].op, &state, hash,
			            (struct frame){.node = node, .info = false}, first_ret);
			if (rc < 0)
				break;
			if (rc == 1) {
				lift(s, node);
				first_ret = first_return(s);
				remaining--;
				node = s->next[0];
				cursor = 0;
				fresh = true;
			} else {
				node = s->next[node];
			}
			continue;
		}
		/* Stuck at a return: an indeterminate op invoked before it may unblock it. */
		int64_t limit = node ? s->e[node - 1].time : HIST_TIME_INF;
		bool moved = false;

		while (!dead && cursor < s->n_info &&
		       s->k->ops[s->info_order[cursor]].call <= limit) {
			uint32_t id = s->info_order[cursor++];

			if (is_set(s, id))
				continue;
			rc = try_op(s, id, &state, hash,
			            (struct frame){
			                .node = id, .info = true, .at_ret = node, .cursor = cursor},
			            first_ret);
			if (rc < 0)
				break;
			if (rc == 1) {
				moved = true;
				break;
			}
		}
		if (rc < 0)
			break;
		if (moved) {
			node = s->next[0];
			cursor = 0;
			fresh = true;
			continue;
		}
		if (!dead)
			note_stuck(s, node, state);
		if (s->depth == 0) {
			verdict = CHK_INVALID;
			break;
		}
		struct frame fr = s->stack[--s->depth];
		uint32_t id = frame_op(s, &fr);

		state = fr.state;
		hash[0] = fr.hash;
		hash[1] = fr.hash2;
		s->bits[id / 64] &= ~(1ull << (id % 64));
		dead = fr.forced;
		fresh = false; /* this configuration's forced choice, if any, was made */
		if (fr.info) {
			node = fr.at_ret;
			cursor = fr.cursor;
		} else {
			unlift(s, fr.node);
			first_ret = first_return(s);
			remaining++;
			node = s->next[fr.node];
			cursor = 0;
		}
	}
	*steps_out = steps;
	return rc < 0 ? rc : verdict;
}

int lin_search(const struct lin_key *k, const struct chk_budget *b, bool exact, uint64_t seed,
               struct lin_outcome *out)
{
	struct search s;
	int rc;

	memset(out, 0, sizeof *out);
	out->best_depth = -1;
	rc = search_init(&s, k, exact, seed);
	if (rc == 0)
		rc = search_run(&s, b, &out->steps, &out->why);
	if (rc == CHK_INVALID) {
		out->best_seq = s.best_seq;
		s.best_seq = NULL;
		out->best_depth = s.best_depth;
		out->best_block = s.best_block;
		memcpy(out->best_pending, s.best_pending, sizeof out->best_pending);
		out->n_best_pending = s.n_best_pending;
	}
	search_free(&s);
	return rc;
}

void lin_outcome_free(struct lin_outcome *out)
{
	free(out->best_seq);
	out->best_seq = NULL;
}

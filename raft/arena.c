/*
 * The per-ready arena: a bump allocator for everything a ready batch hands
 * out that does not already live in the log's unstable tail — the entries
 * and snapshots inside outgoing messages, and copies of committed entries.
 * It is reset by raft_advance(), which is exactly the lifetime the contract
 * in raft.h promises, so the hot path allocates nothing once the arena has
 * grown to the working size. One chunk is kept across resets; larger bursts
 * get extra chunks that are freed on reset.
 */
#include "raft/raft_int.h"

#include "common/alloc.h"

#include <stdint.h>
#include <string.h>

#define RAFT_ARENA_CHUNK (256u * 1024u)

void raft_arena_init(struct raft_arena *a, const struct moor_alloc *alloc)
{
	memset(a, 0, sizeof *a);
	a->alloc = alloc;
}

void *raft_arena_alloc(struct raft_arena *a, size_t n)
{
	struct raft_arena_chunk *c = a->head;
	size_t need = (n + 15) & ~(size_t)15;

	if (need < n)
		return NULL;
	if (!c || c->cap - c->used < need) {
		size_t cap = need > RAFT_ARENA_CHUNK ? need : RAFT_ARENA_CHUNK;

		if (!c && a->spare && a->spare->cap >= need) {
			c = a->spare;
			a->spare = NULL;
		} else {
			c = moor_malloc(a->alloc, sizeof *c + cap);
			if (!c)
				return NULL;
			c->cap = cap;
		}
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->mem + c->used;
	c->used += need;
	return p;
}

void raft_arena_reset(struct raft_arena *a)
{
	struct raft_arena_chunk *c = a->head, *keep = NULL;

	while (c) {
		struct raft_arena_chunk *next = c->next;

		if (!keep && !a->spare && c->cap == RAFT_ARENA_CHUNK)
			keep = c;
		else
			moor_free(a->alloc, c);
		c = next;
	}
	if (keep)
		a->spare = keep;
	a->head = NULL;
}

void raft_arena_free(struct raft_arena *a)
{
	raft_arena_reset(a);
	moor_free(a->alloc, a->spare);
	a->spare = NULL;
}

/*
 * Allocation arenas for responses, history reads and a batch's events.
 *
 * A range answer of a thousand keys would be three thousand mallocs if each
 * KeyValue, key and value were allocated on its own; an arena makes it a few
 * chunk allocations and one free. A response root is the arena header
 * followed by the message, so kv_response_free finds the arena from the
 * message pointer alone.
 */
#include "kv/kv_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdalign.h>
#include <string.h>

#define KV_ARENA_CHUNK 1024u
#define KV_ARENA_MAGIC 0x6b76617265u

struct kv_arena_chunk {
	struct kv_arena_chunk *next;
	size_t cap, used;
	alignas(max_align_t) unsigned char data[];
};

struct kv_root {
	struct kv_arena arena;
	uint64_t magic;
	alignas(max_align_t) unsigned char msg[];
};

static size_t align_up(size_t n)
{
	size_t al = alignof(max_align_t);

	return (n + al - 1) & ~(al - 1);
}

void *kv_arena_alloc(struct kv_arena *ar, size_t n)
{
	struct kv_arena_chunk *c = ar->head;
	size_t need = align_up(n ? n : 1);

	if (!c || c->cap - c->used < need) {
		size_t cap = need > ar->chunk_bytes ? need : ar->chunk_bytes;

		if (cap > SIZE_MAX - sizeof *c)
			return NULL;
		c = moor_malloc(ar->alloc, sizeof *c + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* A big one-off allocation goes behind the head so the head's
		 * free space stays usable. */
		if (ar->head && need > ar->chunk_bytes) {
			c->next = ar->head->next;
			ar->head->next = c;
		} else {
			c->next = ar->head;
			ar->head = c;
		}
		if (ar->chunk_bytes < 65536)
			ar->chunk_bytes *= 2;
	}
	void *p = c->data + c->used;

	c->used += need;
	return p;
}

void *kv_arena_dup(struct kv_arena *ar, const void *p, size_t n)
{
	void *q = kv_arena_alloc(ar, n);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

void *kv_arena_new_root(const struct moor_alloc *a, size_t msg_size, struct kv_arena **arena)
{
	struct kv_arena tmp = {
	    .alloc = moor_alloc_or_default(a), .head = NULL, .chunk_bytes = KV_ARENA_CHUNK};
	struct kv_root *r = kv_arena_alloc(&tmp, sizeof *r + msg_size);

	if (!r)
		return NULL;
	r->arena = tmp;
	r->magic = KV_ARENA_MAGIC;
	memset(r->msg, 0, msg_size);
	*arena = &r->arena;
	return r->msg;
}

void kv_arena_destroy(struct kv_arena *ar)
{
	struct kv_arena_chunk *c = ar->head;
	const struct moor_alloc *a = ar->alloc;

	/* The arena itself may live inside one of its chunks: read all first. */
	while (c) {
		struct kv_arena_chunk *next = c->next;

		moor_free(a, c);
		c = next;
	}
}

void kv_response_free(void *response)
{
	struct kv_root *r;

	if (!response)
		return;
	r = (struct kv_root *)((unsigned char *)response - offsetof(struct kv_root, msg));
	MOOR_ASSERT(r->magic == KV_ARENA_MAGIC);
	r->magic = 0;
	kv_arena_destroy(&r->arena);
}

Mvccpb__KeyValue *kv_arena_kv(struct kv_arena *ar, const struct kv_rec *r, bool keys_only)
{
	Mvccpb__KeyValue *kv = kv_arena_alloc(ar, sizeof *kv);

	if (!kv)
		return NULL;
	mvccpb__key_value__init(kv);
	kv->key.data = kv_arena_dup(ar, r->key, r->key_len);
	kv->key.len = r->key_len;
	if (!kv->key.data)
		return NULL;
	if (!(r->flags & KV_REC_TOMB)) {
		kv->create_revision = r->create_rev;
		kv->version = r->version;
		kv->lease = r->lease;
		if (!keys_only && r->value_len) {
			kv->value.data = kv_arena_dup(ar, r->value, r->value_len);
			if (!kv->value.data)
				return NULL;
			kv->value.len = r->value_len;
		}
	}
	kv->mod_revision = r->mod.main;
	return kv;
}

Etcdserverpb__ResponseHeader *kv_arena_header(struct kv_arena *ar, int64_t rev)
{
	Etcdserverpb__ResponseHeader *h = kv_arena_alloc(ar, sizeof *h);

	if (!h)
		return NULL;
	etcdserverpb__response_header__init(h);
	h->revision = rev;
	return h;
}

/*
 * Matching an event's key to the live watchers, in time that depends on the
 * watchers that match, not on the others:
 *   - single-key watchers sit in a hash table of key groups (one group per
 *     distinct key, holding an array of its watchers): one lookup per event;
 *   - range and prefix watchers sit in an interval treap ordered by start
 *     key, each node knowing the largest end in its subtree, so that a
 *     stabbing query visits O(log n + matches) nodes (expected).
 * Only SYNCED watchers are indexed. Removals never happen during a match
 * (apply defers them), so the visitors need no protection against it.
 * The treap's priorities come from the hub's seed and the watcher's
 * creation number: the same operations give the same shape.
 */
#include "watch/watch_int.h"

#include "common/error.h"

#include <string.h>

struct keygroup {
	struct keygroup *next;
	uint64_t hash;
	struct watcher **w;
	uint32_t n, cap;
	uint32_t key_len;
	uint8_t key[];
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t wkey_hash(uint64_t seed, const uint8_t *p, size_t n)
{
	uint64_t h = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
	uint64_t v;

	while (n >= 8) {
		memcpy(&v, p, 8);
		h = mix64(h ^ v);
		p += 8;
		n -= 8;
	}
	v = 0;
	if (n)
		memcpy(&v, p, n);
	return mix64(h ^ v ^ ((uint64_t)n << 59));
}

int wkey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t m = alen < blen ? alen : blen;
	int c = m ? memcmp(a, b, m) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* key < w's end: w's range does not end at or before key */
static bool key_below_end(const struct watcher *w, const uint8_t *key, size_t key_len)
{
	return w->end_inf || wkey_cmp(key, key_len, w->end, w->end_len) < 0;
}

bool wkey_in_range(const struct watcher *w, const uint8_t *key, size_t key_len)
{
	int c = wkey_cmp(key, key_len, w->key, w->key_len);

	if (!w->end_inf && w->end_len == 0)
		return c == 0;
	return c >= 0 && key_below_end(w, key, key_len);
}

static bool is_range(const struct watcher *w)
{
	return w->end_inf || w->end_len > 0;
}

/* ---- single keys ---- */

static int kgroups_grow(struct watch_hub *hub)
{
	uint32_t nsize = (hub->kmask + 1) * 2;
	struct keygroup **nb = moor_calloc(hub->alloc, nsize, sizeof *nb);

	if (!nb)
		return MOOR_ENOMEM;
	for (uint32_t i = 0; i <= hub->kmask; i++) {
		struct keygroup *g = hub->kbuckets[i], *next;
		for (; g; g = next) {
			next = g->next;
			g->next = nb[g->hash & (nsize - 1)];
			nb[g->hash & (nsize - 1)] = g;
		}
	}
	moor_free(hub->alloc, hub->kbuckets);
	hub->kbuckets = nb;
	hub->kmask = nsize - 1;
	return 0;
}

static struct keygroup *kgroup_find(struct watch_hub *hub, uint64_t h, const uint8_t *key,
                                    size_t len)
{
	struct keygroup *g = hub->kbuckets[h & hub->kmask];

	for (; g; g = g->next)
		if (g->hash == h && g->key_len == len && (len == 0 || !memcmp(g->key, key, len)))
			return g;
	return NULL;
}

static void kgroup_unlink_free(struct watch_hub *hub, struct keygroup *g)
{
	struct keygroup **pp = &hub->kbuckets[g->hash & hub->kmask];

	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	hub->kgroups--;
	moor_free(hub->alloc, g->w);
	moor_free(hub->alloc, g);
}

static int key_insert(struct watch_hub *hub, struct watcher *w)
{
	uint64_t h = wkey_hash(hub->cfg.seed, w->key, w->key_len);
	struct keygroup *g = kgroup_find(hub, h, w->key, w->key_len);
	bool fresh = false;

	if (!g) {
		/* A failed table growth only makes chains longer. */
		if (hub->kgroups >= hub->kmask + 1)
			(void)kgroups_grow(hub);
		g = moor_malloc(hub->alloc, sizeof *g + w->key_len);
		if (!g)
			return MOOR_ENOMEM;
		memset(g, 0, sizeof *g);
		g->hash = h;
		g->key_len = w->key_len;
		if (w->key_len)
			memcpy(g->key, w->key, w->key_len);
		g->next = hub->kbuckets[h & hub->kmask];
		hub->kbuckets[h & hub->kmask] = g;
		hub->kgroups++;
		fresh = true;
	}
	if (g->n == g->cap) {
		uint32_t ncap = g->cap ? g->cap * 2 : 2;
		struct watcher **nw = moor_realloc(hub->alloc, g->w, ncap * sizeof *nw);
		if (!nw) {
			if (fresh)
				kgroup_unlink_free(hub, g);
			return MOOR_ENOMEM;
		}
		g->w = nw;
		g->cap = ncap;
	}
	w->ix.k.g = g;
	w->ix.k.slot = g->n;
	g->w[g->n++] = w;
	return 0;
}

static void key_remove(struct watch_hub *hub, struct watcher *w)
{
	struct keygroup *g = w->ix.k.g;
	uint32_t slot = w->ix.k.slot;

	MOOR_ASSERT(slot < g->n && g->w[slot] == w);
	g->w[slot] = g->w[--g->n];
	g->w[slot]->ix.k.slot = slot;
	w->ix.k.g = NULL;
	if (g->n == 0)
		kgroup_unlink_free(hub, g);
}

/* ---- ranges: the interval treap ---- */

static struct watcher *itw(struct itnode *n)
{
	return WCONTAINER(n, struct watcher, ix.t);
}

/* a's end < b's end */
static bool end_less(const struct watcher *a, const struct watcher *b)
{
	if (a->end_inf)
		return false;
	if (b->end_inf)
		return true;
	return wkey_cmp(a->end, a->end_len, b->end, b->end_len) < 0;
}

static void it_fix(struct itnode *n)
{
	n->maxend = n;
	if (n->left && end_less(itw(n->maxend), itw(n->left->maxend)))
		n->maxend = n->left->maxend;
	if (n->right && end_less(itw(n->maxend), itw(n->right->maxend)))
		n->maxend = n->right->maxend;
}

/* Order by start key, then creation number. */
static bool it_less(struct itnode *a, struct itnode *b)
{
	struct watcher *wa = itw(a), *wb = itw(b);
	int c = wkey_cmp(wa->key, wa->key_len, wb->key, wb->key_len);

	return c < 0 || (c == 0 && wa->seq < wb->seq);
}

static struct itnode *rot_right(struct itnode *r)
{
	struct itnode *l = r->left;

	r->left = l->right;
	l->right = r;
	it_fix(r);
	it_fix(l);
	return l;
}

static struct itnode *rot_left(struct itnode *r)
{
	struct itnode *x = r->right;

	r->right = x->left;
	x->left = r;
	it_fix(r);
	it_fix(x);
	return x;
}

static struct itnode *it_insert(struct itnode *root, struct itnode *n)
{
	if (!root)
		return n;
	if (it_less(n, root)) {
		root->left = it_insert(root->left, n);
		if (root->left->prio > root->prio)
			return rot_right(root);
	} else {
		root->right = it_insert(root->right, n);
		if (root->right->prio > root->prio)
			return rot_left(root);
	}
	it_fix(root);
	return root;
}

static struct itnode *it_merge(struct itnode *a, struct itnode *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (a->prio > b->prio) {
		a->right = it_merge(a->right, b);
		it_fix(a);
		return a;
	}
	b->left = it_merge(a, b->left);
	it_fix(b);
	return b;
}

static struct itnode *it_remove(struct itnode *root, struct itnode *n)
{
	MOOR_ASSERT(root != NULL);
	if (root == n)
		return it_merge(n->left, n->right);
	if (it_less(n, root))
		root->left = it_remove(root->left, n);
	else
		root->right = it_remove(root->right, n);
	it_fix(root);
	return root;
}

/* A key's first 8 bytes, big-endian, zero-padded. Comparing two of these
 * orders the keys whenever they differ: the first differing byte decides, and
 * a padding 0 against a real byte means the shorter key, which sorts first.
 * Equal prefixes decide nothing. */
static uint64_t key_prefix(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 8; i++)
		v = v << 8 | (i < n ? p[i] : 0);
	return v;
}

struct stab {
	const uint8_t *key;
	size_t key_len;
	uint64_t pre;
	struct watch_batch *b;
	size_t idx;
};

/* key < n's end */
static bool stab_below_end(const struct stab *q, const struct itnode *n)
{
	const struct watcher *w = itw((struct itnode *)n);

	if (w->end_inf)
		return true;
	if (q->pre != n->epre)
		return q->pre < n->epre;
	return wkey_cmp(q->key, q->key_len, w->end, w->end_len) < 0;
}

/* n's start > key */
static bool stab_starts_after(const struct stab *q, const struct itnode *n)
{
	const struct watcher *w = itw((struct itnode *)n);

	if (q->pre != n->kpre)
		return n->kpre > q->pre;
	return wkey_cmp(w->key, w->key_len, q->key, q->key_len) > 0;
}

static void it_stab(struct watch_hub *hub, struct itnode *n, const struct stab *q)
{
	while (n) {
		/* Every interval below ends at or before key. */
		if (!stab_below_end(q, n->maxend))
			return;
		it_stab(hub, n->left, q);
		/* This node and its right subtree start after key. */
		if (stab_starts_after(q, n))
			return;
		if (stab_below_end(q, n))
			wdeliver(hub, itw(n), q->b, q->idx);
		n = n->right;
	}
}

/* ---- the index ---- */

int windex_insert(struct watch_hub *hub, struct watcher *w)
{
	if (!is_range(w))
		return key_insert(hub, w);
	memset(&w->ix.t, 0, sizeof w->ix.t);
	w->ix.t.prio = mix64(hub->cfg.seed ^ mix64(w->seq + 1));
	w->ix.t.maxend = &w->ix.t;
	w->ix.t.kpre = key_prefix(w->key, w->key_len);
	w->ix.t.epre = key_prefix(w->end, w->end_len);
	hub->itroot = it_insert(hub->itroot, &w->ix.t);
	return 0;
}

void windex_remove(struct watch_hub *hub, struct watcher *w)
{
	if (!is_range(w)) {
		key_remove(hub, w);
		return;
	}
	hub->itroot = it_remove(hub->itroot, &w->ix.t);
	memset(&w->ix.t, 0, sizeof w->ix.t);
}

void windex_match(struct watch_hub *hub, const uint8_t *key, size_t key_len, struct watch_batch *b,
                  size_t idx)
{
	if (hub->kgroups) {
		uint64_t h = wkey_hash(hub->cfg.seed, key, key_len);
		struct keygroup *g = kgroup_find(hub, h, key, key_len);
		if (g)
			for (uint32_t i = 0; i < g->n; i++)
				wdeliver(hub, g->w[i], b, idx);
	}
	if (hub->itroot) {
		struct stab q = {key, key_len, key_prefix(key, key_len), b, idx};
		it_stab(hub, hub->itroot, &q);
	}
}

int windex_init(struct watch_hub *hub)
{
	hub->kbuckets = moor_calloc(hub->alloc, 16, sizeof *hub->kbuckets);
	if (!hub->kbuckets)
		return MOOR_ENOMEM;
	hub->kmask = 15;
	return 0;
}

void windex_free(struct watch_hub *hub)
{
	MOOR_ASSERT(hub->kgroups == 0 && hub->itroot == NULL);
	moor_free(hub->alloc, hub->kbuckets);
	hub->kbuckets = NULL;
}

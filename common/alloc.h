/*
 * An injectable allocator.
 *
 * Library handles (raft, wal, kv, watch) take a `const struct moor_alloc *`
 * in their configuration; NULL means the C library's. Tests pass a failing
 * allocator (moor_alloc_failing) to make the Nth allocation fail and check
 * that every failure is a clean MOOR_ENOMEM with nothing leaked.
 */
#ifndef MOOR_COMMON_ALLOC_H
#define MOOR_COMMON_ALLOC_H

#include <stddef.h>

struct moor_alloc {
	void *(*malloc)(void *ctx, size_t size);
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void (*free)(void *ctx, void *ptr);
	void *ctx;
};

/* The C library's allocator, static storage. */
const struct moor_alloc *moor_alloc_default(void);

static inline const struct moor_alloc *moor_alloc_or_default(const struct moor_alloc *a)
{
	return a ? a : moor_alloc_default();
}

void *moor_malloc(const struct moor_alloc *a, size_t size);
void *moor_calloc(const struct moor_alloc *a, size_t n, size_t size); /* overflow-checked */
void *moor_realloc(const struct moor_alloc *a, void *ptr, size_t size);
void moor_free(const struct moor_alloc *a, void *ptr);
/* A copy of `len` bytes plus a NUL, or NULL. */
char *moor_memdup(const struct moor_alloc *a, const void *p, size_t len);

/*
 * A test allocator that succeeds `fail_after` times, then fails every
 * allocation (fail_after < 0: never fails). Counts live allocations so a test
 * can assert that nothing leaked. Not thread-safe.
 */
struct moor_alloc_failing {
	struct moor_alloc alloc; /* pass &f.alloc to the library */
	long fail_after;
	long calls;
	long live;
	long failures;
};

void moor_alloc_failing_init(struct moor_alloc_failing *f, long fail_after);

#endif

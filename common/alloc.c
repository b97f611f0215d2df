/* The default allocator and the failing one used by allocation-failure tests. */
#include "common/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *libc_malloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size ? size : 1);
}

static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	return realloc(ptr, size ? size : 1);
}

static void libc_free(void *ctx, void *ptr)
{
	(void)ctx;
	free(ptr);
}

static const struct moor_alloc libc_alloc = {libc_malloc, libc_realloc, libc_free, NULL};

const struct moor_alloc *moor_alloc_default(void)
{
	return &libc_alloc;
}

void *moor_malloc(const struct moor_alloc *a, size_t size)
{
	a = moor_alloc_or_default(a);
	return a->malloc(a->ctx, size);
}

void *moor_calloc(const struct moor_alloc *a, size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = moor_malloc(a, n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *moor_realloc(const struct moor_alloc *a, void *ptr, size_t size)
{
	a = moor_alloc_or_default(a);
	return a->realloc(a->ctx, ptr, size);
}

void moor_free(const struct moor_alloc *a, void *ptr)
{
	if (!ptr)
		return;
	a = moor_alloc_or_default(a);
	a->free(a->ctx, ptr);
}

char *moor_memdup(const struct moor_alloc *a, const void *p, size_t len)
{
	char *c = moor_malloc(a, len + 1);

	if (!c)
		return NULL;
	if (len)
		memcpy(c, p, len);
	c[len] = '\0';
	return c;
}

static int failing_should_fail(struct moor_alloc_failing *f)
{
	f->calls++;
	if (f->fail_after >= 0 && f->calls > f->fail_after) {
		f->failures++;
		return 1;
	}
	return 0;
}

static void *failing_malloc(void *ctx, size_t size)
{
	struct moor_alloc_failing *f = ctx;
	void *p;

	if (failing_should_fail(f))
		return NULL;
	p = malloc(size ? size : 1);
	if (p)
		f->live++;
	return p;
}

static void *failing_realloc(void *ctx, void *ptr, size_t size)
{
	struct moor_alloc_failing *f = ctx;
	void *p;

	if (failing_should_fail(f))
		return NULL;
	p = realloc(ptr, size ? size : 1);
	if (p && !ptr)
		f->live++;
	return p;
}

static void failing_free(void *ctx, void *ptr)
{
	struct moor_alloc_failing *f = ctx;

	if (ptr)
		f->live--;
	free(ptr);
}

void moor_alloc_failing_init(struct moor_alloc_failing *f, long fail_after)
{
	memset(f, 0, sizeof *f);
	f->alloc.malloc = failing_malloc;
	f->alloc.realloc = failing_realloc;
	f->alloc.free = failing_free;
	f->alloc.ctx = f;
	f->fail_after = fail_after;
}

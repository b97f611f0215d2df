/* The growable byte buffer behind every encoder. */
#include "common/buf.h"

#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void moor_buf_init(struct moor_buf *b, const struct moor_alloc *alloc)
{
	memset(b, 0, sizeof *b);
	b->alloc = alloc;
}

void moor_buf_free(struct moor_buf *b)
{
	moor_free(b->alloc, b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int moor_buf_reserve(struct moor_buf *b, size_t extra)
{
	size_t need, cap;
	unsigned char *p;

	if (extra > SIZE_MAX - b->len)
		return MOOR_ETOOLARGE;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	if (b->max_bytes && need > b->max_bytes)
		return MOOR_ETOOLARGE;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (b->max_bytes && cap > b->max_bytes)
		cap = b->max_bytes;
	p = moor_realloc(b->alloc, b->data, cap);
	if (!p)
		return MOOR_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int moor_buf_append(struct moor_buf *b, const void *p, size_t n)
{
	int rc = moor_buf_reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int moor_buf_append_u8(struct moor_buf *b, uint8_t v)
{
	return moor_buf_append(b, &v, 1);
}

int moor_buf_append_be32(struct moor_buf *b, uint32_t v)
{
	unsigned char x[4];
	moor_put_be32(x, v);
	return moor_buf_append(b, x, 4);
}

int moor_buf_append_be64(struct moor_buf *b, uint64_t v)
{
	unsigned char x[8];
	moor_put_be64(x, v);
	return moor_buf_append(b, x, 8);
}

int moor_buf_append_le32(struct moor_buf *b, uint32_t v)
{
	unsigned char x[4];
	moor_put_le32(x, v);
	return moor_buf_append(b, x, 4);
}

int moor_buf_append_le64(struct moor_buf *b, uint64_t v)
{
	unsigned char x[8];
	moor_put_le64(x, v);
	return moor_buf_append(b, x, 8);
}

int moor_buf_printf(struct moor_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return MOOR_EINVAL;
	rc = moor_buf_reserve(b, (size_t)n + 1);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

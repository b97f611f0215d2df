/*
 * A growable byte buffer, for encoders: append, reserve, reset, take.
 * Grows geometrically; every append can fail with MOOR_ENOMEM and then
 * leaves the buffer as it was. A buffer may be capped (max_bytes) so that an
 * encoder fed by a peer can never grow without bound: growing past the cap
 * fails with MOOR_ETOOLARGE.
 */
#ifndef MOOR_COMMON_BUF_H
#define MOOR_COMMON_BUF_H

#include "common/alloc.h"

#include <stddef.h>
#include <stdint.h>

struct moor_buf {
	unsigned char *data;
	size_t len;
	size_t cap;
	size_t max_bytes; /* 0: no cap */
	const struct moor_alloc *alloc;
};

void moor_buf_init(struct moor_buf *b, const struct moor_alloc *alloc);
void moor_buf_free(struct moor_buf *b);
/* Make room for `extra` more bytes beyond len. */
int moor_buf_reserve(struct moor_buf *b, size_t extra);
int moor_buf_append(struct moor_buf *b, const void *p, size_t n);
int moor_buf_append_u8(struct moor_buf *b, uint8_t v);
int moor_buf_append_be32(struct moor_buf *b, uint32_t v);
int moor_buf_append_be64(struct moor_buf *b, uint64_t v);
int moor_buf_append_le32(struct moor_buf *b, uint32_t v);
int moor_buf_append_le64(struct moor_buf *b, uint64_t v);
int moor_buf_printf(struct moor_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void moor_buf_reset(struct moor_buf *b)
{
	b->len = 0;
}

/* Byte-order helpers for fixed-width fields in disk and wire formats. */
static inline void moor_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}
static inline uint64_t moor_get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
static inline void moor_put_be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}
static inline uint32_t moor_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void moor_put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (unsigned char)v;
}
static inline uint32_t moor_get_le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static inline void moor_put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}
static inline uint64_t moor_get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif

/*
 * The byte layout of kv's RocksDB keys and records (docs/kv-layout.md).
 *
 * One column family, one-byte prefixes per table. Index keys escape the user
 * key (0x00 -> 00 FF, terminated by 00 01) so that (key, revision) pairs sort
 * by key first for keys of any bytes; revisions are big-endian so they sort
 * numerically. Records carry a format version and are validated on decode:
 * a record that does not parse is corruption, never a crash.
 */
#include "kv/kv_int.h"

#include "common/buf.h"
#include "common/error.h"

#include <string.h>

void kv_kbuf_init(struct kv_kbuf *b)
{
	b->p = b->inl;
	b->len = 0;
	b->cap = sizeof b->inl;
}

void kv_kbuf_free(const struct moor_alloc *a, struct kv_kbuf *b)
{
	if (b->p != b->inl)
		moor_free(a, b->p);
	kv_kbuf_init(b);
}

int kv_kbuf_add(const struct moor_alloc *a, struct kv_kbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap * 2;
		unsigned char *q;

		while (cap < b->len + n)
			cap *= 2;
		if (b->p == b->inl) {
			q = moor_malloc(a, cap);
			if (q)
				memcpy(q, b->p, b->len);
		} else {
			q = moor_realloc(a, b->p, cap);
		}
		if (!q)
			return MOOR_ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

int kv_kbuf_add_be64(const struct moor_alloc *a, struct kv_kbuf *b, uint64_t v)
{
	unsigned char x[8];

	moor_put_be64(x, v);
	return kv_kbuf_add(a, b, x, 8);
}

static int add_u8(const struct moor_alloc *a, struct kv_kbuf *b, unsigned char c)
{
	return kv_kbuf_add(a, b, &c, 1);
}

static int add_rev(const struct moor_alloc *a, struct kv_kbuf *b, struct kv_rev r)
{
	int rc = kv_kbuf_add_be64(a, b, (uint64_t)r.main);

	return rc ? rc : kv_kbuf_add_be64(a, b, (uint64_t)r.sub);
}

int kv_key_latest(const struct moor_alloc *a, struct kv_kbuf *b, const void *key, size_t len)
{
	b->len = 0;
	int rc = add_u8(a, b, KV_P_LATEST);

	return rc ? rc : kv_kbuf_add(a, b, key, len);
}

int kv_key_hist(const struct moor_alloc *a, struct kv_kbuf *b, struct kv_rev r)
{
	b->len = 0;
	int rc = add_u8(a, b, KV_P_HIST);

	return rc ? rc : add_rev(a, b, r);
}

int kv_key_index_prefix(const struct moor_alloc *a, struct kv_kbuf *b, const void *key, size_t len)
{
	const unsigned char *k = key, *run = key;
	static const unsigned char esc[2] = {0x00, 0xFF}, term[2] = {0x00, 0x01};
	int rc;

	b->len = 0;
	rc = add_u8(a, b, KV_P_INDEX);
	for (size_t i = 0; rc == 0 && i < len; i++) {
		if (k[i] != 0)
			continue;
		rc = kv_kbuf_add(a, b, run, (size_t)(k + i - run));
		if (rc == 0)
			rc = kv_kbuf_add(a, b, esc, 2);
		run = k + i + 1;
	}
	if (rc == 0)
		rc = kv_kbuf_add(a, b, run, (size_t)(k + len - run));
	return rc ? rc : kv_kbuf_add(a, b, term, 2);
}

int kv_key_index(const struct moor_alloc *a, struct kv_kbuf *b, const void *key, size_t len,
                 struct kv_rev r)
{
	int rc = kv_key_index_prefix(a, b, key, len);

	return rc ? rc : add_rev(a, b, r);
}

int kv_key_index_parse(const struct moor_alloc *a, const unsigned char *k, size_t len,
                       struct kv_kbuf *key, struct kv_rev *r)
{
	size_t i = 1, end;
	int rc = 0;

	if (len < 1 + 2 + 16 || k[0] != KV_P_INDEX)
		return MOOR_ECORRUPT;
	end = len - 16;
	if (k[end - 2] != 0x00 || k[end - 1] != 0x01)
		return MOOR_ECORRUPT;
	key->len = 0;
	while (i < end - 2 && rc == 0) {
		if (k[i] == 0x00) {
			if (i + 1 >= end - 2 || k[i + 1] != 0xFF)
				return MOOR_ECORRUPT;
			rc = add_u8(a, key, 0);
			i += 2;
		} else {
			rc = add_u8(a, key, k[i]);
			i++;
		}
	}
	if (rc)
		return rc;
	r->main = (int64_t)moor_get_be64(k + end);
	r->sub = (int64_t)moor_get_be64(k + end + 8);
	return 0;
}

int kv_key_garbage(const struct moor_alloc *a, struct kv_kbuf *b, struct kv_rev at,
                   struct kv_rev victim)
{
	b->len = 0;
	int rc = add_u8(a, b, KV_P_GARBAGE);

	if (rc == 0)
		rc = add_rev(a, b, at);
	return rc ? rc : add_rev(a, b, victim);
}

uint64_t kv_lease_enc(int64_t id)
{
	return (uint64_t)id ^ (1ull << 63);
}

int64_t kv_lease_dec(uint64_t v)
{
	return (int64_t)(v ^ (1ull << 63));
}

int kv_key_lease(const struct moor_alloc *a, struct kv_kbuf *b, int64_t id)
{
	b->len = 0;
	int rc = add_u8(a, b, KV_P_LEASE);

	return rc ? rc : kv_kbuf_add_be64(a, b, kv_lease_enc(id));
}

int kv_key_attach(const struct moor_alloc *a, struct kv_kbuf *b, int64_t id, const void *key,
                  size_t len)
{
	b->len = 0;
	int rc = add_u8(a, b, KV_P_ATTACH);

	if (rc == 0)
		rc = kv_kbuf_add_be64(a, b, kv_lease_enc(id));
	return rc ? rc : kv_kbuf_add(a, b, key, len);
}

int kv_key_meta(const struct moor_alloc *a, struct kv_kbuf *b, const char *name)
{
	b->len = 0;
	int rc = add_u8(a, b, KV_P_META);

	return rc ? rc : kv_kbuf_add(a, b, name, strlen(name));
}

int kv_rec_encode(const struct moor_alloc *a, struct kv_kbuf *b, const struct kv_rec *r)
{
	unsigned char h[KV_REC_HDR];

	h[0] = KV_REC_VERSION;
	h[1] = (unsigned char)r->flags;
	moor_put_be64(h + 2, (uint64_t)r->create_rev);
	moor_put_be64(h + 10, (uint64_t)r->mod.main);
	moor_put_be64(h + 18, (uint64_t)r->mod.sub);
	moor_put_be64(h + 26, (uint64_t)r->version);
	moor_put_be64(h + 34, (uint64_t)r->lease);
	moor_put_be32(h + 42, (uint32_t)r->key_len);
	b->len = 0;
	int rc = kv_kbuf_add(a, b, h, sizeof h);

	if (rc == 0)
		rc = kv_kbuf_add(a, b, r->key, r->key_len);
	return rc ? rc : kv_kbuf_add(a, b, r->value, r->value_len);
}

int kv_rec_decode(const void *p, size_t len, struct kv_rec *out)
{
	const unsigned char *h = p;
	size_t klen;

	if (len < KV_REC_HDR || h[0] != KV_REC_VERSION || (h[1] & ~KV_REC_TOMB) != 0)
		return MOOR_ECORRUPT;
	out->flags = h[1];
	out->create_rev = (int64_t)moor_get_be64(h + 2);
	out->mod.main = (int64_t)moor_get_be64(h + 10);
	out->mod.sub = (int64_t)moor_get_be64(h + 18);
	out->version = (int64_t)moor_get_be64(h + 26);
	out->lease = (int64_t)moor_get_be64(h + 34);
	klen = moor_get_be32(h + 42);
	if (klen == 0 || klen > len - KV_REC_HDR)
		return MOOR_ECORRUPT;
	if (out->mod.main <= 0 || out->mod.sub < 0 || out->create_rev < 0 || out->version < 0)
		return MOOR_ECORRUPT;
	if (out->flags & KV_REC_TOMB) {
		if (len != KV_REC_HDR + klen || out->version != 0)
			return MOOR_ECORRUPT;
	} else if (out->version <= 0 || out->create_rev <= 0 || out->create_rev > out->mod.main) {
		return MOOR_ECORRUPT;
	}
	out->key = h + KV_REC_HDR;
	out->key_len = klen;
	out->value = h + KV_REC_HDR + klen;
	out->value_len = len - KV_REC_HDR - klen;
	return 0;
}

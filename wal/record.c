/*
 * Records and segment headers: encoding, and the checks every byte read
 * from disk passes before the WAL believes it. Nothing here does I/O; the
 * fuzz target drives these checks through recovery.
 */
#include "wal/format.h"

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

uint32_t wal_seg_seed(uint64_t seq, uint64_t first_index)
{
	unsigned char b[24];

	memcpy(b, WAL_MAGIC, 8);
	moor_put_le64(b + 8, seq);
	moor_put_le64(b + 16, first_index);
	return moor_crc32c(0, b, sizeof b);
}

void wal_seg_header_encode(unsigned char out[WAL_SEG_HDR_BYTES], uint64_t seq, uint64_t first_index,
                           uint64_t prev_end, uint32_t *seed)
{
	uint32_t crc;

	memset(out, 0, WAL_SEG_HDR_BYTES);
	memcpy(out, WAL_MAGIC, 8);
	moor_put_le32(out + 8, WAL_FORMAT_VERSION);
	moor_put_le64(out + 16, seq);
	moor_put_le64(out + 24, first_index);
	moor_put_le64(out + 32, prev_end);
	crc = moor_crc32c(0, out, 40);
	moor_put_le32(out + 40, crc);
	*seed = wal_seg_seed(seq, first_index);
}

int wal_seg_header_decode(const unsigned char *p, size_t len, struct wal_seg_header *h,
                          const char **why)
{
	if (len < WAL_SEG_HDR_BYTES) {
		*why = "segment shorter than its header";
		return MOOR_ECORRUPT;
	}
	if (memcmp(p, WAL_MAGIC, 8) != 0) {
		*why = "bad segment magic";
		return MOOR_ECORRUPT;
	}
	if (moor_get_le32(p + 40) != moor_crc32c(0, p, 40)) {
		*why = "segment header crc mismatch";
		return MOOR_ECORRUPT;
	}
	if (moor_get_le32(p + 8) != WAL_FORMAT_VERSION) {
		*why = "unsupported segment format version";
		return MOOR_ECORRUPT;
	}
	if (moor_get_le32(p + 12) != 0 || moor_get_le32(p + 44) != 0) {
		*why = "reserved segment header bytes not zero";
		return MOOR_ECORRUPT;
	}
	h->seq = moor_get_le64(p + 16);
	h->first_index = moor_get_le64(p + 24);
	h->prev_end = moor_get_le64(p + 32);
	h->seed = wal_seg_seed(h->seq, h->first_index);
	return 0;
}

void wal_seg_name(char out[WAL_NAME_MAX], uint64_t seq, uint64_t first_index)
{
	snprintf(out, WAL_NAME_MAX, "%016" PRIx64 "-%016" PRIx64 ".wal", seq, first_index);
}

static int parse_hex16(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	for (int i = 0; i < 16; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return -1;
		x = x << 4 | d;
	}
	*v = x;
	return 0;
}

int wal_seg_name_parse(const char *name, uint64_t *seq, uint64_t *first_index)
{
	if (strlen(name) != 37 || name[16] != '-' || strcmp(name + 33, ".wal") != 0)
		return -1;
	if (parse_hex16(name, seq) != 0 || parse_hex16(name + 17, first_index) != 0)
		return -1;
	return 0;
}

void wal_seg_tmp_name(char out[WAL_NAME_MAX], uint64_t seq)
{
	snprintf(out, WAL_NAME_MAX, "%016" PRIx64 ".wal.tmp", seq);
}

int wal_seg_tmp_name_is(const char *name)
{
	size_t n = strlen(name);

	return n > 8 && strcmp(name + n - 8, ".wal.tmp") == 0;
}

static uint32_t rec_crc(const unsigned char *rec, uint32_t len, uint64_t off, uint32_t seed)
{
	unsigned char o[8];

	moor_put_le64(o, off);
	return moor_crc32c(moor_crc32c(seed, o, 8), rec + 4, WAL_REC_HDR_BYTES - 4 + (size_t)len);
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int wal_rec_check(const unsigned char *p, size_t avail, uint64_t off, uint32_t seed,
                  struct wal_rec *r, const char **why)
{
	uint64_t size;

	if (avail < WAL_REC_HDR_BYTES) {
		if (all_zero(p, avail))
			return WAL_REC_ZERO;
		*why = "record header runs past the end of the segment";
		return WAL_REC_INVALID;
	}
	if (all_zero(p, WAL_REC_HDR_BYTES))
		return WAL_REC_ZERO;
	r->len = moor_get_le32(p + 4);
	r->type = p[8];
	r->flags = p[9];
	r->synced = moor_get_le64(p + 16);
	r->payload = p + WAL_REC_HDR_BYTES;
	if (r->type < WAL_REC_ENTRIES || r->type > WAL_REC_SNAPSHOT) {
		*why = "unknown record type";
		return WAL_REC_INVALID;
	}
	if ((r->flags & ~WAL_REC_F_BATCH_END) != 0 || p[10] || p[11] || moor_get_le32(p + 12)) {
		*why = "reserved record header bits set";
		return WAL_REC_INVALID;
	}
	size = wal_rec_size(r->len);
	if (r->len > WAL_REC_MAX_LEN || size > avail) {
		*why = "record length runs past the end of the segment";
		return WAL_REC_INVALID;
	}
	if (r->synced < WAL_SEG_HDR_BYTES || r->synced > off) {
		*why = "record's synced offset out of range";
		return WAL_REC_INVALID;
	}
	if (moor_get_le32(p) != rec_crc(p, r->len, off, seed)) {
		*why = "record crc mismatch";
		return WAL_REC_INVALID;
	}
	if (!all_zero(p + WAL_REC_HDR_BYTES + r->len, size - WAL_REC_HDR_BYTES - r->len)) {
		*why = "record padding not zero";
		return WAL_REC_INVALID;
	}
	return WAL_REC_VALID;
}

size_t wal_rec_begin(struct moor_buf *b)
{
	size_t start = b->len;

	MOOR_ASSERT(b->cap - b->len >= WAL_REC_HDR_BYTES);
	memset(b->data + b->len, 0, WAL_REC_HDR_BYTES);
	b->len += WAL_REC_HDR_BYTES;
	return start;
}

void wal_rec_end(struct moor_buf *b, size_t start, uint64_t base, uint32_t seed, uint8_t type,
                 uint8_t flags, uint64_t synced)
{
	unsigned char *h = b->data + start;
	size_t len = b->len - start - WAL_REC_HDR_BYTES;
	size_t pad = (size_t)(wal_rec_size(len) - WAL_REC_HDR_BYTES - len);
	uint64_t off = base + start;

	MOOR_ASSERT(len <= WAL_REC_MAX_LEN);
	MOOR_ASSERT(b->cap - b->len >= pad);
	MOOR_ASSERT(off % WAL_ALIGN == 0 && synced >= WAL_SEG_HDR_BYTES && synced <= off);
	memset(b->data + b->len, 0, pad);
	b->len += pad;
	moor_put_le32(h + 4, (uint32_t)len);
	h[8] = type;
	h[9] = flags;
	moor_put_le64(h + 16, synced);
	moor_put_le32(h, rec_crc(h, (uint32_t)len, off, seed));
}

uint64_t wal_entries_payload_bytes(const struct wal_entry *e, size_t n)
{
	uint64_t sum = WAL_ENTRIES_HDR_BYTES;

	for (size_t i = 0; i < n; i++)
		sum += WAL_ENTRY_HDR_BYTES + e[i].len;
	return sum;
}

static void put_raw(struct moor_buf *b, const void *p, size_t n)
{
	MOOR_ASSERT(b->cap - b->len >= n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void wal_entries_encode(struct moor_buf *b, const struct wal_entry *e, size_t n)
{
	unsigned char h[WAL_ENTRIES_HDR_BYTES];

	MOOR_ASSERT(n > 0 && n <= UINT32_MAX);
	memset(h, 0, sizeof h);
	moor_put_le64(h, e[0].index);
	moor_put_le32(h + 8, (uint32_t)n);
	put_raw(b, h, sizeof h);
	for (size_t i = 0; i < n; i++) {
		unsigned char eh[WAL_ENTRY_HDR_BYTES];
		MOOR_ASSERT(e[i].index == e[0].index + i && e[i].len <= UINT32_MAX);
		moor_put_le64(eh, e[i].term);
		moor_put_le32(eh + 8, e[i].type);
		moor_put_le32(eh + 12, (uint32_t)e[i].len);
		put_raw(b, eh, sizeof eh);
		put_raw(b, e[i].data, e[i].len);
	}
}

void wal_hard_state_encode(struct moor_buf *b, const struct wal_hard_state *hs)
{
	unsigned char p[WAL_HARD_STATE_BYTES];

	moor_put_le64(p, hs->term);
	moor_put_le64(p + 8, hs->vote);
	moor_put_le64(p + 16, hs->commit);
	put_raw(b, p, sizeof p);
}

void wal_snapshot_encode(struct moor_buf *b, const struct wal_snapshot *s)
{
	unsigned char p[WAL_SNAPSHOT_BYTES];

	moor_put_le64(p, s->index);
	moor_put_le64(p + 8, s->term);
	put_raw(b, p, sizeof p);
}

int wal_entries_decode(const unsigned char *p, size_t len, uint64_t *first, uint32_t *count,
                       struct wal_entry *v, const char **why)
{
	size_t off = WAL_ENTRIES_HDR_BYTES;
	uint32_t n;
	uint64_t f;

	if (len < WAL_ENTRIES_HDR_BYTES || moor_get_le32(p + 12) != 0) {
		*why = "malformed entries record header";
		return MOOR_ECORRUPT;
	}
	f = moor_get_le64(p);
	n = moor_get_le32(p + 8);
	if (n == 0 || f == 0 || f > UINT64_MAX - n) {
		*why = "entries record with a bad index range";
		return MOOR_ECORRUPT;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t dlen;
		if (len - off < WAL_ENTRY_HDR_BYTES) {
			*why = "entry header runs past its record";
			return MOOR_ECORRUPT;
		}
		dlen = moor_get_le32(p + off + 12);
		if (len - off - WAL_ENTRY_HDR_BYTES < dlen) {
			*why = "entry data runs past its record";
			return MOOR_ECORRUPT;
		}
		if (v) {
			v[i].index = f + i;
			v[i].term = moor_get_le64(p + off);
			v[i].type = moor_get_le32(p + off + 8);
			v[i].len = dlen;
			v[i].data = p + off + WAL_ENTRY_HDR_BYTES;
		}
		off += WAL_ENTRY_HDR_BYTES + dlen;
	}
	if (off != len) {
		*why = "entries record has trailing bytes";
		return MOOR_ECORRUPT;
	}
	*first = f;
	*count = n;
	return 0;
}

int wal_hard_state_decode(const struct wal_rec *r, struct wal_hard_state *hs)
{
	if (r->len != WAL_HARD_STATE_BYTES)
		return MOOR_ECORRUPT;
	hs->term = moor_get_le64(r->payload);
	hs->vote = moor_get_le64(r->payload + 8);
	hs->commit = moor_get_le64(r->payload + 16);
	return 0;
}

int wal_snapshot_decode(const struct wal_rec *r, struct wal_snapshot *s)
{
	if (r->len != WAL_SNAPSHOT_BYTES)
		return MOOR_ECORRUPT;
	s->index = moor_get_le64(r->payload);
	s->term = moor_get_le64(r->payload + 8);
	return 0;
}

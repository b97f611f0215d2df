/*
 * The WAL's on-disk format (private to wal/; the reference is
 * docs/wal-format.md, which changes only with WAL_FORMAT_VERSION).
 *
 * A segment file starts with a 48-byte header; records follow at 8-byte
 * aligned offsets. Every record has a 24-byte header, then its payload, then
 * zero padding to the next multiple of 8. All integers are little-endian.
 *
 *   segment header: magic "MOORWAL\0" | u32 version | u32 0 | u64 seq |
 *                   u64 first_index | u64 prev_end | u32 crc32c(bytes 0..40) |
 *                   u32 0
 *
 * prev_end is where the records of the previous segment end: that segment
 * must end exactly there (it was made durable before this one was created),
 * so no seal record is needed and no extra fdatasync when it was synced.
 *   record header:  u32 crc | u32 len | u8 type | u8 flags | u16 0 | u32 0 |
 *                   u64 synced
 *
 * A record's crc is CRC32C over bytes 4..(24 + len) of the record, started
 * from the segment's seed (CRC32C of magic, seq, first_index) extended over
 * the record's offset (u64), so a record is valid only in the segment and at
 * the place it was written.
 * `synced` is the offset in the segment known durable when the record was
 * written: recovery uses it to tell a torn tail (cut) from damage to data
 * that had been made durable (corruption).
 */
#ifndef MOOR_WAL_FORMAT_H
#define MOOR_WAL_FORMAT_H

#include "common/buf.h"
#include "wal/wal.h"

#include <stddef.h>
#include <stdint.h>

#define WAL_FORMAT_VERSION 1u
#define WAL_MAGIC "MOORWAL" /* plus its NUL: 8 bytes */
#define WAL_SEG_HDR_BYTES 48u
#define WAL_REC_HDR_BYTES 24u
#define WAL_ALIGN 8u
#define WAL_ENTRIES_HDR_BYTES 16u /* u64 first_index | u32 count | u32 0 */
#define WAL_ENTRY_HDR_BYTES 16u   /* u64 term | u32 type | u32 len, then data */
#define WAL_HARD_STATE_BYTES 24u  /* u64 term | u64 vote | u64 commit */
#define WAL_SNAPSHOT_BYTES 16u    /* u64 index | u64 term */
#define WAL_REC_MAX_LEN (UINT32_MAX - 64u)
#define WAL_NAME_MAX 48

enum wal_rec_type {
	WAL_REC_ENTRIES = 1,
	WAL_REC_HARD_STATE = 2,
	WAL_REC_SNAPSHOT = 3,
};

#define WAL_REC_F_BATCH_END 0x01u

static inline uint64_t wal_align_up(uint64_t n)
{
	return (n + WAL_ALIGN - 1) & ~(uint64_t)(WAL_ALIGN - 1);
}

/* Bytes a record with a payload of `len` occupies. */
static inline uint64_t wal_rec_size(uint64_t len)
{
	return wal_align_up(WAL_REC_HDR_BYTES + len);
}

struct wal_seg_header {
	uint64_t seq;
	uint64_t first_index;
	uint64_t prev_end; /* end of the previous segment's records (0 for seq 0) */
	uint32_t seed;     /* wal_seg_seed(seq, first_index) */
};

/* The seed of every record crc in a segment: CRC32C of the magic, seq and
 * first index — known from the file name alone, so records can be checked
 * even when the header is damaged. */
uint32_t wal_seg_seed(uint64_t seq, uint64_t first_index);
void wal_seg_header_encode(unsigned char out[WAL_SEG_HDR_BYTES], uint64_t seq, uint64_t first_index,
                           uint64_t prev_end, uint32_t *seed);
/* 0, or MOOR_ECORRUPT with *why set (static string). */
int wal_seg_header_decode(const unsigned char *p, size_t len, struct wal_seg_header *h,
                          const char **why);

/* "%016x-%016x.wal" and its parser (0 or -1). */
void wal_seg_name(char out[WAL_NAME_MAX], uint64_t seq, uint64_t first_index);
int wal_seg_name_parse(const char *name, uint64_t *seq, uint64_t *first_index);
void wal_seg_tmp_name(char out[WAL_NAME_MAX], uint64_t seq);
int wal_seg_tmp_name_is(const char *name);

struct wal_rec {
	uint8_t type;
	uint8_t flags;
	uint32_t len;
	uint64_t synced;
	const unsigned char *payload;
};

enum {
	WAL_REC_VALID = 0,
	WAL_REC_ZERO = 1,    /* an all-zero header: no record here */
	WAL_REC_INVALID = 2, /* *why says what is wrong */
};

/* Check the record at segment offset `off`, `avail` bytes available from p. */
int wal_rec_check(const unsigned char *p, size_t avail, uint64_t off, uint32_t seed,
                  struct wal_rec *r, const char **why);

/*
 * Encoding into a buffer that will be written at segment offset `base`:
 * wal_rec_begin appends a blank header and returns its position in the
 * buffer; the caller appends the payload; wal_rec_end pads and fills in the
 * header and crc. The buffer must have room reserved (they do not fail).
 */
size_t wal_rec_begin(struct moor_buf *b);
void wal_rec_end(struct moor_buf *b, size_t start, uint64_t base, uint32_t seed, uint8_t type,
                 uint8_t flags, uint64_t synced);

/* Payload sizes and encoders (into reserved room). */
uint64_t wal_entries_payload_bytes(const struct wal_entry *e, size_t n);
void wal_entries_encode(struct moor_buf *b, const struct wal_entry *e, size_t n);
void wal_hard_state_encode(struct moor_buf *b, const struct wal_hard_state *hs);
void wal_snapshot_encode(struct moor_buf *b, const struct wal_snapshot *s);

/*
 * Decode an entries payload. With v == NULL only validates and returns the
 * first index and count; otherwise fills v[0..count) (data pointing into p).
 * 0 or MOOR_ECORRUPT with *why.
 */
int wal_entries_decode(const unsigned char *p, size_t len, uint64_t *first, uint32_t *count,
                       struct wal_entry *v, const char **why);
int wal_hard_state_decode(const struct wal_rec *r, struct wal_hard_state *hs);
int wal_snapshot_decode(const struct wal_rec *r, struct wal_snapshot *s);

#endif

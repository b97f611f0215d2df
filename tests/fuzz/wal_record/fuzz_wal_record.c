/*
 * Fuzz target over the WAL's record reader: the input becomes the body of a
 * segment file (after a valid header) in memfs, and the WAL is opened
 * (recovery: scan, verify, decode, rebuild the index), read back in full,
 * and appended to (which cuts any torn tail). Nothing may crash, leak or
 * trip a sanitizer, whatever the bytes.
 *
 * Input byte 0 is a mode: bit 0 set means "fix up the CRCs" — every
 * plausible record header gets its correct crc before recovery — so the
 * fuzzer reaches payload decoding and the index rules instead of stopping
 * at checksum mismatches. The rest of the input follows the 40-byte header.
 */
#include "common/buf.h"
#include "common/crc32c.h"
#include "tests/wal/memfs.h"
#include "wal/format.h"
#include "wal/wal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "0000000000000000-0000000000000001.wal"
#define MAX_INPUT (1u << 20)

static void fix_crcs(unsigned char *img, size_t len, uint32_t seed)
{
	uint64_t off = WAL_SEG_HDR_BYTES;

	while (off + WAL_REC_HDR_BYTES <= len) {
		uint32_t rlen = moor_get_le32(img + off + 4);
		unsigned char o[8];
		uint32_t crc;
		if (rlen > len - off - WAL_REC_HDR_BYTES)
			break;
		moor_put_le64(o, off);
		crc = moor_crc32c(moor_crc32c(seed, o, 8), img + off + 4,
		                  WAL_REC_HDR_BYTES - 4 + (size_t)rlen);
		moor_put_le32(img + off, crc);
		off += wal_rec_size(rlen);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct memfs *fs;
	struct wal_config cfg = {.dir = "fuzz", .segment_bytes = 4096};
	struct wal *w = NULL;
	struct wal_recovered rec;
	struct wal_entries es;
	unsigned char *img;
	size_t len;
	uint32_t seed;
	int fd;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	len = WAL_SEG_HDR_BYTES + size - 1;
	if (!(img = malloc(len)))
		return 0;
	wal_seg_header_encode(img, 0, 1, 0, &seed);
	memcpy(img + WAL_SEG_HDR_BYTES, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(img, len, seed);
	fs = memfs_new();
	cfg.fs = memfs_fs(fs);
	if (cfg.fs->open(cfg.fs->ctx, "fuzz", NAME, WAL_FS_RDWR | WAL_FS_CREATE, &fd) == 0) {
		cfg.fs->close(cfg.fs->ctx, fd);
		memfs_write_file(fs, NAME, img, len);
	}
	if (wal_open(&cfg, &w, &rec, NULL, 0) == 0) {
		if (rec.first_index <= rec.last_index &&
		    wal_read(w, rec.first_index, rec.last_index + 1, 0, &es) == 0)
			wal_entries_free(&es);
		if (rec.last_index < UINT64_MAX - 2) {
			struct wal_entry e = {rec.last_index + 1, 1, 0, "fuzz", 4};
			struct wal_batch b = {NULL, &e, 1, NULL};
			if (wal_append(w, &b) == 0)
				wal_sync(w, NULL);
		}
		wal_close(w);
	}
	memfs_free(fs);
	free(img);
	return 0;
}

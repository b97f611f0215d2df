/*
 * Reading entries back from the segment files, for followers that are
 * behind: find the records covering [lo, hi) in the index, read them with
 * the mutex released (so a slow read never holds up appends and group
 * commit), verify each record's crc at its place, and decode.
 *
 * Records are immutable once written (an overwrite appends new records; a
 * cut only zeroes bytes past the indexed ones), so reading them without the
 * mutex is safe as long as their descriptors stay open: closing or deleting a
 * segment file waits until no read is in progress (wal_wait_readers).
 */
#include "wal/internal.h"

#include "common/assert.h"
#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

struct rd {
	struct wal_loc l;
	int fd;
	uint32_t seed;
};

/* Read and verify the records; on failure *bad is the failing one and *why
 * says what is wrong (NULL: an I/O error). */
static int read_records(struct wal *w, const struct rd *rd, size_t n, unsigned char *buf,
                        size_t *nent, size_t *bad, const char **why)
{
	size_t pos = 0;

	*nent = 0;
	for (size_t i = 0; i < n; i++) {
		size_t size = (size_t)wal_rec_size(rd[i].l.len), got = 0;
		struct wal_rec r;
		*bad = i;
		*why = NULL;
		while (got < size) {
			size_t k = 0;
			int rc = w->fs->pread(w->fs->ctx, rd[i].fd, buf + pos + got, size - got,
			                      rd[i].l.offset + got, &k);
			if (rc == 0 && k == 0)
				rc = -EIO; /* the file is shorter than the index says */
			if (rc != 0)
				return rc;
			got += k;
		}
		*why = "record changed since it was written";
		if (wal_rec_check(buf + pos, size, rd[i].l.offset, rd[i].seed, &r, why) !=
		        WAL_REC_VALID ||
		    r.type != WAL_REC_ENTRIES || r.len != rd[i].l.len ||
		    r.len < WAL_ENTRIES_HDR_BYTES ||
		    moor_get_le64(r.payload) != rd[i].l.first_index ||
		    moor_get_le32(r.payload + 8) < rd[i].l.count)
			return MOOR_ECORRUPT;
		*nent += moor_get_le32(r.payload + 8);
		pos += size;
	}
	return 0;
}

/* Decode the records into v, keeping entries in [lo, hi) that are still
 * current, within max_bytes (at least one). */
static int decode_records(const struct rd *rd, size_t n, const unsigned char *buf, uint64_t lo,
                          uint64_t hi, size_t max_bytes, struct wal_entry *v, size_t *out_n,
                          size_t *bad, const char **why)
{
	size_t pos = 0, cnt_out = 0;
	uint64_t pay = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t f, end = rd[i].l.first_index + rd[i].l.count;
		uint32_t cnt;
		*bad = i;
		if (wal_entries_decode(buf + pos + WAL_REC_HDR_BYTES, rd[i].l.len, &f, &cnt,
		                       v + cnt_out, why) != 0)
			return MOOR_ECORRUPT;
		pos += (size_t)wal_rec_size(rd[i].l.len);
		for (size_t k = 0, base = cnt_out; k < cnt; k++) {
			const struct wal_entry *e = &v[base + k];
			if (e->index < lo || e->index >= end || e->index >= hi)
				continue;
			if (cnt_out && max_bytes && pay + e->len > max_bytes)
				goto done;
			pay += e->len;
			v[cnt_out++] = *e;
		}
	}
done:
	*out_n = cnt_out;
	return 0;
}

int wal_read(struct wal *w, uint64_t lo, uint64_t hi, size_t max_bytes, struct wal_entries *out)
{
	size_t i0, i1, n = 0, rbytes = 0, nent = 0, bad = 0;
	uint64_t first, pay = 0;
	unsigned char *buf = NULL;
	struct wal_entry *v = NULL;
	struct rd *rd = NULL;
	const char *why = NULL;
	int rc = 0;

	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&w->mu);
	first = w->nlocs ? w->locs[0].first_index : w->last_index + 1;
	if (w->err)
		rc = w->err;
	else if (lo < first)
		rc = MOOR_ECOMPACTEDLOG;
	else if (hi > w->last_index + 1 || (hi > lo && w->nlocs == 0))
		rc = MOOR_EUNAVAILLOG;
	if (rc != 0 || lo >= hi) {
		pthread_mutex_unlock(&w->mu);
		return rc;
	}
	/* Which records, within max_bytes (at least one). */
	i0 = wal_locs_find(w, lo);
	for (i1 = i0; i1 < w->nlocs && w->locs[i1].first_index < hi; i1++) {
		if (i1 > i0 && max_bytes && pay > max_bytes)
			break;
		rbytes += (size_t)wal_rec_size(w->locs[i1].len);
		pay += w->locs[i1].len;
	}
	n = i1 - i0;
	if (!(rd = moor_calloc(w->alloc, n, sizeof *rd))) {
		pthread_mutex_unlock(&w->mu);
		return MOOR_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct wal_seg *s = wal_seg_by_seq(w, w->locs[i0 + i].seq);
		MOOR_ASSERT(s && s->fd >= 0);
		rd[i] = (struct rd){w->locs[i0 + i], s->fd, s->seed};
	}
	w->readers++;
	pthread_mutex_unlock(&w->mu);

	if (!(buf = moor_malloc(w->alloc, rbytes)))
		rc = MOOR_ENOMEM;
	else if ((rc = read_records(w, rd, n, buf, &nent, &bad, &why)) == 0 &&
	         !(v = moor_calloc(w->alloc, nent, sizeof *v)))
		rc = MOOR_ENOMEM;
	else if (rc == 0)
		rc = decode_records(rd, n, buf, lo, hi, max_bytes, v, &out->n, &bad, &why);

	pthread_mutex_lock(&w->mu);
	if (rc != 0 && rc != MOOR_ENOMEM) {
		const struct wal_seg *s = wal_seg_by_seq(w, rd[bad].l.seq);
		MOOR_ASSERT(s); /* not released while we read */
		if (why)
			wal_fail(w, rc, "wal: %s/%s: offset %" PRIu64 ": %s", w->dir, s->name,
			         rd[bad].l.offset, why);
		else
			wal_fail(w, rc, "wal: read %s/%s at offset %" PRIu64, w->dir, s->name,
			         rd[bad].l.offset);
	}
	if (--w->readers == 0)
		pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	if (rc == 0) {
		out->v = v;
		out->mem = buf;
		out->alloc = w->alloc;
	} else {
		out->n = 0;
		moor_free(w->alloc, v);
		moor_free(w->alloc, buf);
	}
	moor_free(w->alloc, rd);
	return rc;
}

void wal_entries_free(struct wal_entries *e)
{
	if (!e)
		return;
	moor_free(e->alloc, e->v);
	moor_free(e->alloc, e->mem);
	memset(e, 0, sizeof *e);
}

void wal_index_range(struct wal *w, uint64_t *first, uint64_t *last)
{
	pthread_mutex_lock(&w->mu);
	*first = w->nlocs ? w->locs[0].first_index : w->last_index + 1;
	*last = w->last_index;
	pthread_mutex_unlock(&w->mu);
}

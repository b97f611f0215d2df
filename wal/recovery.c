/*
 * Recovery: list the segments, read each one whole, verify its header and
 * every record, and rebuild the in-memory view from complete batches only.
 *
 * Deciding between a torn tail and corruption. Every record carries the
 * offset of its segment that was durable when it was written (`synced`). A
 * crash can tear or lose only writes that no completed fdatasync covered, so
 * records written after them carry a `synced` at or below where the damage
 * starts. When the last segment has a bad record (or nonzero bytes after its
 * end), the bytes beyond are searched for any valid record whose `synced` lies
 * beyond the end of the good data: if one exists, the damaged bytes had been
 * durable and this is corruption; otherwise the tail is torn and is cut. Any
 * damage in a segment other than the last (each is synced before the next
 * one is created, whose header records where it ends) is corruption.
 *
 * Nothing is written here: the cut happens in wal_writer_start.
 */
#include "wal/internal.h"

#include "common/assert.h"
#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX_RECS 3 /* snapshot, entries, hard state */

int wal_scan_segment(struct wal_scan *s,
                     int (*on_rec)(void *arg, uint64_t off, const struct wal_rec *r), void *arg)
{
	struct wal_rec recs[BATCH_MAX_RECS];
	uint64_t offs[BATCH_MAX_RECS];
	unsigned nrec = 0;
	uint64_t off = WAL_SEG_HDR_BYTES, bstart = off;
	int rc;

	s->bad_off = UINT64_MAX;
	s->why = NULL;
	s->durable_after = 0;
	MOOR_ASSERT(s->len >= WAL_SEG_HDR_BYTES);
	for (;;) {
		struct wal_rec r;
		if (off >= s->len) {
			if (bstart != off) {
				s->bad_off = off;
				s->why = "batch cut short by the end of the segment";
			}
			break;
		}
		rc = wal_rec_check(s->buf + off, s->len - off, off, s->seed, &r, &s->why);
		if (rc == WAL_REC_ZERO) {
			if (bstart != off) {
				s->bad_off = off;
				s->why = "batch incomplete: its last record is missing";
			}
			break;
		}
		if (rc == WAL_REC_VALID && nrec == BATCH_MAX_RECS) {
			rc = WAL_REC_INVALID;
			s->why = "batch has too many records";
		}
		if (rc != WAL_REC_VALID) {
			s->bad_off = off;
			break;
		}
		recs[nrec] = r;
		offs[nrec++] = off;
		off += wal_rec_size(r.len);
		if (!(r.flags & WAL_REC_F_BATCH_END))
			continue;
		for (unsigned i = 0; i < nrec; i++)
			if (on_rec && (rc = on_rec(arg, offs[i], &recs[i])) != 0)
				return rc;
		nrec = 0;
		bstart = off;
	}
	s->end = bstart;
	s->dirty = s->end;
	/* The last nonzero byte at or after the end: whole words first (a
	 * preallocated segment is mostly zeros), then bytes. */
	uint64_t nz = s->len;
	while (nz >= s->end + 8 && nz % 8 == 0) {
		uint64_t word;
		memcpy(&word, s->buf + nz - 8, 8);
		if (word)
			break;
		nz -= 8;
	}
	for (; nz > s->end; nz--) {
		if (s->buf[nz - 1]) {
			s->dirty = wal_align_up(nz);
			if (s->dirty > s->len)
				s->dirty = s->len;
			break;
		}
	}
	if (s->bad_off == UINT64_MAX && s->dirty > s->end) {
		s->bad_off = s->end;
		s->why = "nonzero bytes after the last record";
	}
	if (s->bad_off == UINT64_MAX)
		return 0;
	for (uint64_t p = s->end; p + WAL_REC_HDR_BYTES <= s->dirty; p += WAL_ALIGN) {
		struct wal_rec r;
		const char *why;
		if (wal_rec_check(s->buf + p, s->len - p, p, s->seed, &r, &why) == WAL_REC_VALID &&
		    r.synced > s->end) {
			s->durable_after = p;
			break;
		}
	}
	return 0;
}

struct rec_ctx {
	struct wal *w;
	struct wal_seg *seg;
};

static int apply_rec(void *arg, uint64_t off, const struct wal_rec *r)
{
	struct rec_ctx *c = arg;
	struct wal *w = c->w;
	uint64_t snap_index = w->has_snap ? w->snap.index : 0;
	const char *why = NULL;
	int rc = 0;

	switch (r->type) {
	case WAL_REC_ENTRIES: {
		uint64_t f;
		uint32_t n;
		if ((rc = wal_entries_decode(r->payload, r->len, &f, &n, NULL, &why)) != 0)
			break;
		if (f > w->last_index + 1 || f <= snap_index) {
			rc = MOOR_ECORRUPT;
			why = f > w->last_index + 1 ? "entries leave a gap after the last index"
			                            : "entries at or below the snapshot index";
			break;
		}
		if ((rc = wal_locs_reserve(w, 1)) != 0)
			return wal_fail(w, rc, "wal: recovering %s", c->seg->name);
		wal_state_entries(w, f, n, c->seg->seq, off, r->len);
		break;
	}
	case WAL_REC_HARD_STATE:
		if ((rc = wal_hard_state_decode(r, &w->hs)) != 0) {
			why = "malformed hard state record";
			break;
		}
		w->has_hs = true;
		break;
	case WAL_REC_SNAPSHOT: {
		struct wal_snapshot s;
		if ((rc = wal_snapshot_decode(r, &s)) != 0) {
			why = "malformed snapshot record";
			break;
		}
		if (w->has_snap && s.index < w->snap.index) {
			rc = MOOR_ECORRUPT;
			why = "snapshot marker below an earlier one";
			break;
		}
		wal_state_snapshot(w, &s);
		break;
	}
	default:
		MOOR_ASSERT(0 && "record type checked by wal_rec_check");
	}
	if (rc != 0)
		return wal_fail(w, MOOR_ECORRUPT, "wal: %s/%s: offset %" PRIu64 ": %s", w->dir,
		                c->seg->name, off, why);
	return 0;
}

struct listing {
	struct wal *w;
	struct wal_seg *v;
	size_t n, cap;
	int rc;
};

static int list_one(void *arg, const char *name)
{
	struct listing *l = arg;
	struct wal *w = l->w;
	uint64_t seq, first;

	if (wal_seg_name_parse(name, &seq, &first) == 0) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 8;
			struct wal_seg *p = moor_realloc(w->alloc, l->v, cap * sizeof *p);
			if (!p)
				return MOOR_ENOMEM;
			l->v = p;
			l->cap = cap;
		}
		memset(&l->v[l->n], 0, sizeof l->v[l->n]);
		l->v[l->n].seq = seq;
		l->v[l->n].first_index = first;
		l->v[l->n].fd = -1;
		memcpy(l->v[l->n].name, name, strlen(name) + 1);
		l->n++;
	} else if (wal_seg_tmp_name_is(name)) {
		char **p = moor_realloc(w->alloc, w->tmp_names, (w->ntmp + 1) * sizeof *p);
		if (!p)
			return MOOR_ENOMEM;
		w->tmp_names = p;
		if (!(p[w->ntmp] = moor_memdup(w->alloc, name, strlen(name))))
			return MOOR_ENOMEM;
		w->ntmp++;
	}
	return 0;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct wal_seg *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int read_whole(struct wal *w, int fd, unsigned char **out, size_t *len)
{
	uint64_t size, got = 0;
	unsigned char *buf;
	int rc;

	if ((rc = w->fs->size(w->fs->ctx, fd, &size)) != 0)
		return rc;
	if (size > WAL_SEGMENT_BYTES_MAX)
		return MOOR_ECORRUPT;
	if (!(buf = moor_malloc(w->alloc, size ? (size_t)size : 1)))
		return MOOR_ENOMEM;
	while (got < size) {
		size_t n = 0;
		rc = w->fs->pread(w->fs->ctx, fd, buf + got, (size_t)(size - got), got, &n);
		if (rc == 0 && n == 0)
			rc = -EIO; /* the file shrank under us */
		if (rc != 0) {
			moor_free(w->alloc, buf);
			return rc;
		}
		got += n;
	}
	*out = buf;
	*len = (size_t)size;
	return 0;
}

/*
 * The last segment's header is invalid. Segments are created without an
 * fdatasync of their header (it becomes durable with the segment's first
 * sync), so this is a crash during creation, before anything in the segment
 * was made durable — unless some record in it, checked with the seed the name
 * gives, says a sync had completed (synced beyond the header): then the
 * header was durable and is damaged. A torn creation holds nothing recovery
 * returns; the writer replaces the file when it starts.
 */
static int torn_creation(struct wal *w, struct wal_seg *seg, const unsigned char *buf, size_t len,
                         const char *why)
{
	uint32_t seed = wal_seg_seed(seg->seq, seg->first_index);

	if (seg != &w->segs[0] && seg->first_index != w->last_index + 1)
		return wal_fail(w, MOOR_ECORRUPT,
		                "wal: %s/%s: offset 0: segment starts at index %" PRIu64
		                " but the previous one ends at %" PRIu64,
		                w->dir, seg->name, seg->first_index, w->last_index);
	for (uint64_t p = WAL_SEG_HDR_BYTES; p + WAL_REC_HDR_BYTES <= len; p += WAL_ALIGN) {
		struct wal_rec r;
		const char *ignored;
		if (wal_rec_check(buf + p, len - p, p, seed, &r, &ignored) == WAL_REC_VALID &&
		    r.synced > WAL_SEG_HDR_BYTES)
			return wal_fail(
			    w, MOOR_ECORRUPT,
			    "wal: %s/%s: offset 0: %s, but the record at offset %" PRIu64
			    " was written after the segment was made durable",
			    w->dir, seg->name, why ? why : "header disagrees with the name", p);
	}
	moor_log(w->logger, MOOR_LOG_WARN, "wal",
	         "torn segment creation file=%s/%s reason=\"%s\": it will be replaced", w->dir,
	         seg->name, why ? why : "header disagrees with the name");
	seg->seed = seed;
	w->rec_torn = true;
	w->rec_prev_end = seg == &w->segs[0] ? 0 : w->rec_end;
	w->rec_end = WAL_SEG_HDR_BYTES;
	w->rec_dirty = WAL_SEG_HDR_BYTES;
	return 0;
}

static int recover_segment(struct wal *w, struct wal_seg *seg, bool last)
{
	struct wal_seg_header h;
	struct wal_scan s;
	struct rec_ctx c = {w, seg};
	unsigned char *buf;
	size_t len;
	const char *why;
	int rc;

	if ((rc = w->fs->open(w->fs->ctx, w->dir, seg->name, WAL_FS_RDONLY, &seg->fd)) != 0) {
		seg->fd = -1;
		return wal_fail(w, rc, "wal: open %s/%s", w->dir, seg->name);
	}
	if ((rc = read_whole(w, seg->fd, &buf, &len)) != 0)
		return wal_fail(w, rc, "wal: read %s/%s", w->dir, seg->name);
	why = NULL;
	if (seg->first_index == 0) {
		rc = wal_fail(w, MOOR_ECORRUPT, "wal: %s/%s: offset 0: segment with index 0",
		              w->dir, seg->name);
		goto out;
	}
	if (seg == &w->segs[0])
		w->last_index = seg->first_index - 1;
	if (wal_seg_header_decode(buf, len, &h, &why) != 0 || h.seq != seg->seq ||
	    h.first_index != seg->first_index) {
		if (last) {
			rc = torn_creation(w, seg, buf, len, why);
			goto out;
		}
		rc = wal_fail(w, MOOR_ECORRUPT, "wal: %s/%s: offset 0: %s", w->dir, seg->name,
		              why ? why : "segment header disagrees with the file name");
		goto out;
	}
	if (seg == &w->segs[0]) {
		/* last_index set above */
	} else if (h.prev_end != w->rec_end) {
		rc = wal_fail(w, MOOR_ECORRUPT,
		              "wal: %s/%s: offset %" PRIu64 ": its records end here but the next "
		              "segment %s says they end at offset %" PRIu64,
		              w->dir, (seg - 1)->name, w->rec_end, seg->name, h.prev_end);
		goto out;
	} else if (seg->first_index != w->last_index + 1) {
		rc = wal_fail(w, MOOR_ECORRUPT,
		              "wal: %s/%s: offset 0: segment starts at index %" PRIu64
		              " but the previous one ends at %" PRIu64,
		              w->dir, seg->name, seg->first_index, w->last_index);
		goto out;
	}
	seg->seed = h.seed;
	s.buf = buf;
	s.len = len;
	s.seed = h.seed;
	if ((rc = wal_scan_segment(&s, apply_rec, &c)) != 0)
		goto out;
	if (!last && s.bad_off != UINT64_MAX) {
		rc = wal_fail(w, MOOR_ECORRUPT, "wal: %s/%s: offset %" PRIu64 ": %s", w->dir,
		              seg->name, s.bad_off, s.why);
		goto out;
	}
	if (last && s.bad_off != UINT64_MAX) {
		if (s.durable_after) {
			rc = wal_fail(w, MOOR_ECORRUPT,
			              "wal: %s/%s: offset %" PRIu64
			              ": %s (the record at offset %" PRIu64
			              " was written after it was made durable)",
			              w->dir, seg->name, s.bad_off, s.why, s.durable_after);
			goto out;
		}
		moor_log(w->logger, MOOR_LOG_WARN, "wal",
		         "torn tail file=%s/%s offset=%" PRIu64 " bytes=%" PRIu64 " reason=\"%s\"",
		         w->dir, seg->name, s.end, s.dirty - s.end, s.why);
	}
	if (last) {
		/* A process crash leaves written but unsynced data in the page
		 * cache, where recovery reads it. Whoever acts on what recovery
		 * returns (raft counts it as stable and acknowledges it) needs
		 * it durable: sync it now. This changes no byte. */
		if ((rc = w->fs->fdatasync(w->fs->ctx, seg->fd)) != 0) {
			rc = wal_fail(w, rc, "wal: fdatasync %s/%s", w->dir, seg->name);
			goto out;
		}
		w->stats.fdatasyncs++;
	}
	w->rec_end = s.end;
	w->rec_dirty = s.dirty;
out:
	moor_free(w->alloc, buf);
	return rc;
}

int wal_recover(struct wal *w)
{
	struct listing l = {w, NULL, 0, 0, 0};
	uint64_t snap_index, first;
	int rc;

	if ((rc = w->fs->dir_list(w->fs->ctx, w->dir, list_one, &l)) != 0) {
		moor_free(w->alloc, l.v);
		return wal_fail(w, rc, "wal: list %s", w->dir);
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof *l.v, cmp_seq);
	for (size_t i = 1; i < l.n; i++) {
		if (l.v[i].seq != l.v[i - 1].seq + 1) {
			rc = wal_fail(
			    w, MOOR_ECORRUPT,
			    "wal: %s/%s: offset 0: segment missing before it (previous is %s)",
			    w->dir, l.v[i].name, l.v[i - 1].name);
			moor_free(w->alloc, l.v);
			return rc;
		}
	}
	w->segs = l.v;
	w->nsegs = l.n;
	w->segcap = l.cap;
	for (size_t i = 0; i < w->nsegs; i++)
		if ((rc = recover_segment(w, &w->segs[i], i + 1 == w->nsegs)) != 0)
			return rc;
	snap_index = w->has_snap ? w->snap.index : 0;
	first = w->nlocs ? w->locs[0].first_index : w->last_index + 1;
	if (w->nsegs && first > snap_index + 1)
		return wal_fail(w, MOOR_ECORRUPT,
		                "wal: %s/%s: offset 0: entries %" PRIu64 "..%" PRIu64
		                " are missing (neither in a segment nor below the snapshot)",
		                w->dir, w->segs[0].name, snap_index + 1, first - 1);
	return 0;
}

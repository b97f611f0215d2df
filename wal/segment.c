/*
 * Segment files: creating one (preallocate, header, rename into place, fsync
 * the directory), syncing a full one (if it holds unsynced
 * batches) before the next is created, starting the writer after recovery (cut the torn tail by
 * zeroing it, sync, remove leftover temporary files) and releasing old
 * segments. All with the handle's mutex held and no fdatasync in flight.
 */
#include "wal/internal.h"

#include "common/assert.h"
#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define ZERO_CHUNK (64u << 10)

int wal_write_all(struct wal *w, int fd, const void *p, size_t n, uint64_t off)
{
	const unsigned char *c = p;

	while (n > 0) {
		size_t done = 0;
		int rc = w->fs->pwrite(w->fs->ctx, fd, c, n, off, &done);
		if (rc == 0 && done == 0)
			rc = -EIO;
		if (rc != 0)
			return rc;
		MOOR_ASSERT(done <= n);
		c += done;
		off += done;
		n -= done;
	}
	return 0;
}

static int seg_sync(struct wal *w, int fd)
{
	int rc = w->fs->fdatasync(w->fs->ctx, fd);

	w->stats.fdatasyncs++;
	return rc;
}

/* Create segment `seq` whose first entry will be `first_index`; on success
 * it is the last segment and the writer's tail is after its header. */
static int create_segment(struct wal *w, uint64_t seq, uint64_t first_index, uint64_t prev_end)
{
	unsigned char hdr[WAL_SEG_HDR_BYTES];
	struct wal_seg s;
	char tmp[WAL_NAME_MAX];
	int rc, fd;

	memset(&s, 0, sizeof s);
	s.seq = seq;
	s.first_index = first_index;
	wal_seg_name(s.name, seq, first_index);
	wal_seg_tmp_name(tmp, seq);
	if ((rc = wal_segs_reserve(w)) != 0)
		return rc;
	if ((rc = w->fs->open(w->fs->ctx, w->dir, tmp, WAL_FS_RDWR | WAL_FS_CREATE, &fd)) != 0)
		return wal_fail(w, rc, "wal: create %s/%s", w->dir, tmp);
	rc = w->fs->fallocate(w->fs->ctx, fd, w->segment_bytes);
	if (rc == -EOPNOTSUPP)
		rc = w->fs->ftruncate(w->fs->ctx, fd, w->segment_bytes);
	if (rc != 0) {
		wal_fail(w, rc, "wal: preallocate %s/%s", w->dir, tmp);
		goto err_after_open;
	}
	/* No fdatasync of the header here: it becomes durable with the
	 * segment's first sync, and recovery treats an invalid header in the
	 * last segment with nothing synced after it as a torn creation. */
	wal_seg_header_encode(hdr, seq, first_index, prev_end, &s.seed);
	if ((rc = wal_write_all(w, fd, hdr, sizeof hdr, 0)) != 0) {
		wal_fail(w, rc, "wal: write header of %s/%s", w->dir, tmp);
		goto err_after_open;
	}
	if ((rc = w->fs->rename(w->fs->ctx, w->dir, tmp, s.name)) != 0) {
		wal_fail(w, rc, "wal: rename %s/%s", w->dir, tmp);
		goto err_after_open;
	}
	s.fd = fd;
	rc = wal_segs_push(w, &s);
	MOOR_ASSERT(rc == 0); /* room was made above */
	if ((rc = w->fs->dir_sync(w->fs->ctx, w->dir)) != 0)
		return wal_fail(w, rc, "wal: fsync directory %s", w->dir);
	w->tail = WAL_SEG_HDR_BYTES;
	w->synced_off = WAL_SEG_HDR_BYTES;
	w->stats.segments_created++;
	moor_log(w->logger, MOOR_LOG_INFO, "wal", "new segment file=%s/%s index=%" PRIu64, w->dir,
	         s.name, first_index);
	return 0;
err_after_open:
	w->fs->close(w->fs->ctx, fd);
	return rc;
}

/* Write the snapshot marker and hard state at the start of a new segment, so
 * that the older segments can be released without losing them. */
static int write_state_copy(struct wal *w)
{
	size_t start;
	int rc;

	if (!w->has_snap && !w->has_hs)
		return 0;
	MOOR_ASSERT(w->wbuf.len == 0);
	if ((rc = moor_buf_reserve(&w->wbuf, 2 * WAL_REC_HDR_BYTES + WAL_SNAPSHOT_BYTES +
	                                         WAL_HARD_STATE_BYTES)) != 0)
		return rc;
	if (w->has_snap) {
		start = wal_rec_begin(&w->wbuf);
		wal_snapshot_encode(&w->wbuf, &w->snap);
		wal_rec_end(&w->wbuf, start, w->tail, w->segs[w->nsegs - 1].seed, WAL_REC_SNAPSHOT,
		            w->has_hs ? 0 : WAL_REC_F_BATCH_END, w->synced_off);
	}
	if (w->has_hs) {
		start = wal_rec_begin(&w->wbuf);
		wal_hard_state_encode(&w->wbuf, &w->hs);
		wal_rec_end(&w->wbuf, start, w->tail, w->segs[w->nsegs - 1].seed,
		            WAL_REC_HARD_STATE, WAL_REC_F_BATCH_END, w->synced_off);
	}
	rc = wal_write_all(w, w->segs[w->nsegs - 1].fd, w->wbuf.data, w->wbuf.len, w->tail);
	if (rc == 0) {
		w->tail += w->wbuf.len;
		w->stats.writes++;
		w->stats.bytes += w->wbuf.len;
	}
	moor_buf_reset(&w->wbuf);
	return rc;
}

static int next_segment(struct wal *w, uint64_t prev_end)
{
	uint64_t seq = w->nsegs ? w->segs[w->nsegs - 1].seq + 1 : 0;
	int rc;

	if ((rc = create_segment(w, seq, w->last_index + 1, prev_end)) != 0)
		return rc;
	if ((rc = write_state_copy(w)) != 0)
		return wal_fail(w, rc, "wal: write %s/%s", w->dir, w->segs[w->nsegs - 1].name);
	return 0;
}

int wal_rotate(struct wal *w)
{
	struct wal_seg *cur = &w->segs[w->nsegs - 1];
	int rc;

	MOOR_ASSERT(w->writing && !w->syncing && w->wbuf.len == 0);
	/* The next segment's header says where this one ends, and recovery
	 * insists on it: everything here must be durable before it exists. */
	if (w->synced_off < w->tail) {
		if ((rc = seg_sync(w, cur->fd)) != 0)
			return wal_fail(w, rc, "wal: fdatasync %s/%s", w->dir, cur->name);
		w->synced_off = w->tail;
	}
	w->durable_seq = w->written_seq;
	w->durable_index = w->last_index;
	return next_segment(w, w->tail);
}

static int zero_range(struct wal *w, int fd, uint64_t from, uint64_t to)
{
	unsigned char *z = moor_calloc(w->alloc, 1, ZERO_CHUNK);
	int rc = 0;

	if (!z)
		return MOOR_ENOMEM;
	while (from < to && rc == 0) {
		size_t n = to - from < ZERO_CHUNK ? (size_t)(to - from) : ZERO_CHUNK;
		rc = wal_write_all(w, fd, z, n, from);
		from += n;
	}
	moor_free(w->alloc, z);
	return rc;
}

int wal_writer_start(struct wal *w)
{
	struct wal_seg *last;
	int rc, fd;

	if (w->writing)
		return 0;
	if (w->err)
		return w->err;
	/* The last segment's read-only descriptor is about to be replaced. */
	wal_wait_readers(w);
	if (w->writing || w->err)
		return w->err;
	if (w->rec_torn) {
		/* Replace the segment whose creation a crash tore (same name:
		 * the rename in create_segment replaces it atomically). */
		struct wal_seg *torn = &w->segs[w->nsegs - 1];
		if (torn->fd >= 0)
			w->fs->close(w->fs->ctx, torn->fd);
		w->nsegs--;
		w->rec_torn = false;
		w->writing = true;
		if ((rc = next_segment(w, w->rec_prev_end)) != 0)
			goto err;
		goto tmp_files;
	}
	if (w->nsegs == 0) {
		w->writing = true;
		if ((rc = next_segment(w, 0)) != 0)
			goto err;
		goto tmp_files;
	}
	last = &w->segs[w->nsegs - 1];
	if ((rc = w->fs->open(w->fs->ctx, w->dir, last->name, WAL_FS_RDWR, &fd)) != 0)
		return wal_fail(w, rc, "wal: open %s/%s for writing", w->dir, last->name);
	w->fs->close(w->fs->ctx, last->fd);
	last->fd = fd;
	w->writing = true;
	if (w->rec_dirty > w->rec_end) {
		/* Cut the torn tail: zero it so no stale record can ever follow
		 * what we write next, and make the cut durable before writing
		 * anything (else a crash could tear the new bytes into the old
		 * ones and bring back a batch recovery had cut). */
		if ((rc = zero_range(w, fd, w->rec_end, w->rec_dirty)) != 0 ||
		    (rc = seg_sync(w, fd)) != 0) {
			wal_fail(w, rc, "wal: cut the tail of %s/%s at offset %" PRIu64, w->dir,
			         last->name, w->rec_end);
			goto err;
		}
		moor_log(w->logger, MOOR_LOG_WARN, "wal",
		         "cut torn tail file=%s/%s offset=%" PRIu64 " bytes=%" PRIu64, w->dir,
		         last->name, w->rec_end, w->rec_dirty - w->rec_end);
	}
	w->tail = w->rec_end;
	w->synced_off = w->rec_end;
	w->rec_dirty = w->rec_end;
	/* Every segment starts with a copy of the snapshot marker and hard
	 * state, so older ones can be released; a crash may have cut it. */
	if (w->tail == WAL_SEG_HDR_BYTES && (w->has_snap || w->has_hs)) {
		if ((rc = write_state_copy(w)) != 0 || (rc = seg_sync(w, fd)) != 0) {
			wal_fail(w, rc, "wal: write %s/%s", w->dir, last->name);
			goto err;
		}
		w->synced_off = w->tail;
	}
tmp_files:
	for (size_t i = 0; i < w->ntmp; i++) {
		rc = w->fs->unlink(w->fs->ctx, w->dir, w->tmp_names[i]);
		if (rc != 0 && rc != -ENOENT) {
			wal_fail(w, rc, "wal: unlink %s/%s", w->dir, w->tmp_names[i]);
			goto err;
		}
		moor_free(w->alloc, w->tmp_names[i]);
		w->tmp_names[i] = NULL;
	}
	if (w->ntmp && (rc = w->fs->dir_sync(w->fs->ctx, w->dir)) != 0) {
		wal_fail(w, rc, "wal: fsync directory %s", w->dir);
		goto err;
	}
	w->ntmp = 0;
	w->durable_index = w->last_index;
	return 0;
err:
	w->err = rc;
	return rc;
}

int wal_release_locked(struct wal *w, uint64_t index, unsigned *released)
{
	unsigned n = 0;
	int rc = 0;

	if (index > (w->has_snap ? w->snap.index : 0))
		return wal_fail(w, MOOR_EINVAL,
		                "wal: release up to index %" PRIu64 " not covered by a snapshot",
		                index);
	wal_wait_readers(w);
	/* Oldest first, never the last, and the directory synced after each
	 * unlink: a crash leaves a prefix deleted, never a hole. */
	while (n + 1 < w->nsegs && w->segs[n].max_index <= index) {
		struct wal_seg *s = &w->segs[n];
		if ((rc = w->fs->unlink(w->fs->ctx, w->dir, s->name)) != 0) {
			wal_fail(w, rc, "wal: unlink %s/%s", w->dir, s->name);
			break;
		}
		if (s->fd >= 0)
			w->fs->close(w->fs->ctx, s->fd);
		s->fd = -1;
		n++;
		if ((rc = w->fs->dir_sync(w->fs->ctx, w->dir)) != 0) {
			wal_fail(w, rc, "wal: fsync directory %s", w->dir);
			break;
		}
		moor_log(w->logger, MOOR_LOG_INFO, "wal", "released segment file=%s/%s", w->dir,
		         s->name);
	}
	if (n)
		wal_state_drop_segs_before(w, w->segs[n].seq);
	if (released)
		*released = n;
	return rc;
}

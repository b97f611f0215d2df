/*
 * The WAL handle: open and close, append (encode a batch into the write
 * buffer, write it with one call), sync (one fdatasync outside the mutex,
 * never two in flight) and the group-commit front. Reading back is in read.c.
 *
 * Invariant: the write buffer is empty whenever the mutex is released, so a
 * thread that waits on the condition variable never leaves half an append
 * behind, and every locator points at bytes already written.
 */
#include "wal/internal.h"

#include "common/assert.h"
#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void lock(struct wal *w)
{
	int rc = pthread_mutex_lock(&w->mu);

	MOOR_ASSERT(rc == 0);
}

static void unlock(struct wal *w)
{
	MOOR_ASSERT(w->wbuf.len == 0);
	pthread_mutex_unlock(&w->mu);
}

static void wait_cond(struct wal *w)
{
	MOOR_ASSERT(w->wbuf.len == 0);
	pthread_cond_wait(&w->cond, &w->mu);
}

void wal_wait_readers(struct wal *w)
{
	while (w->readers)
		wait_cond(w);
}

/* Fail every queued group-commit caller with the sticky error. */
static void fail_queue(struct wal *w)
{
	for (struct wal_req *q = w->qhead; q; q = q->next) {
		q->done = 1;
		q->rc = w->err;
	}
	w->qhead = w->qtail = NULL;
	w->queued = 0;
}

/* Stop the log: record the first I/O error for good. */
static int stop(struct wal *w, int rc)
{
	MOOR_ASSERT(rc != 0);
	if (!w->err)
		w->err = rc;
	moor_buf_reset(&w->wbuf);
	fail_queue(w);
	pthread_cond_broadcast(&w->cond);
	return w->err;
}

static struct wal_seg *cur_seg(struct wal *w)
{
	MOOR_ASSERT(w->nsegs > 0);
	return &w->segs[w->nsegs - 1];
}

uint64_t wal_batch_max_bytes(uint64_t segment_bytes)
{
	uint64_t reserved = WAL_SEG_HDR_BYTES + wal_rec_size(WAL_SNAPSHOT_BYTES) +
	                    wal_rec_size(WAL_HARD_STATE_BYTES);

	return segment_bytes > reserved ? segment_bytes - reserved : 0;
}

static uint64_t batch_bytes(const struct wal_batch *b)
{
	uint64_t n = 0;

	if (b->snapshot)
		n += wal_rec_size(WAL_SNAPSHOT_BYTES);
	if (b->n_entries)
		n += wal_rec_size(wal_entries_payload_bytes(b->entries, b->n_entries));
	if (b->hard_state)
		n += wal_rec_size(WAL_HARD_STATE_BYTES);
	return n;
}

static int flush(struct wal *w)
{
	struct wal_seg *s;
	int rc;

	if (w->wbuf.len == 0)
		return 0;
	s = cur_seg(w);
	rc = wal_write_all(w, s->fd, w->wbuf.data, w->wbuf.len, w->tail);
	if (rc != 0) {
		wal_fail(w, rc, "wal: write %s/%s at offset %" PRIu64, w->dir, s->name, w->tail);
		return stop(w, rc);
	}
	w->tail += w->wbuf.len;
	w->stats.writes++;
	w->stats.bytes += w->wbuf.len;
	moor_buf_reset(&w->wbuf);
	return 0;
}

/* Encode one batch into the write buffer (rotating first if it does not fit)
 * and apply it to the in-memory view. Errors before encoding leave the log
 * unchanged; I/O errors stop it. */
static int append_locked(struct wal *w, const struct wal_batch *b)
{
	uint64_t size, base, synced;
	uint32_t seed;
	size_t start;
	int rc;

	if (w->err)
		return w->err;
	if ((rc = wal_writer_start(w)) != 0)
		return stop(w, rc);
	if ((rc = wal_batch_check(w, b)) != 0)
		return rc;
	size = batch_bytes(b);
	if (size > wal_batch_max_bytes(w->segment_bytes))
		return MOOR_ETOOLARGE;
	while (w->tail + w->wbuf.len + size > w->segment_bytes) {
		if ((rc = flush(w)) != 0)
			return rc;
		if (w->syncing) {
			/* Never two fdatasyncs in flight: let the running one end. */
			wait_cond(w);
			if (w->err)
				return w->err;
			continue;
		}
		if ((rc = wal_rotate(w)) != 0)
			return stop(w, rc);
	}
	/* Reserved after any wait above, which may have let other appends in. */
	if ((rc = wal_locs_reserve(w, 1)) != 0 ||
	    (rc = moor_buf_reserve(&w->wbuf, (size_t)size)) != 0)
		return rc;
	/* Re-checked for the same reason. */
	if ((rc = wal_batch_check(w, b)) != 0)
		return rc;
	base = w->tail;
	synced = w->synced_off;
	seed = cur_seg(w)->seed;
	if (b->snapshot) {
		start = wal_rec_begin(&w->wbuf);
		wal_snapshot_encode(&w->wbuf, b->snapshot);
		wal_rec_end(&w->wbuf, start, base, seed, WAL_REC_SNAPSHOT,
		            b->n_entries || b->hard_state ? 0 : WAL_REC_F_BATCH_END, synced);
		wal_state_snapshot(w, b->snapshot);
	}
	if (b->n_entries) {
		start = wal_rec_begin(&w->wbuf);
		wal_entries_encode(&w->wbuf, b->entries, b->n_entries);
		wal_state_entries(w, b->entries[0].index, (uint32_t)b->n_entries, cur_seg(w)->seq,
		                  base + start,
		                  (uint32_t)(w->wbuf.len - start - WAL_REC_HDR_BYTES));
		wal_rec_end(&w->wbuf, start, base, seed, WAL_REC_ENTRIES,
		            b->hard_state ? 0 : WAL_REC_F_BATCH_END, synced);
	}
	if (b->hard_state) {
		start = wal_rec_begin(&w->wbuf);
		wal_hard_state_encode(&w->wbuf, b->hard_state);
		wal_rec_end(&w->wbuf, start, base, seed, WAL_REC_HARD_STATE, WAL_REC_F_BATCH_END,
		            synced);
		w->hs = *b->hard_state;
		w->has_hs = true;
	}
	w->written_seq++;
	w->stats.batches++;
	return 0;
}

/* Make batches up to `target` durable; the mutex is released during the
 * fdatasync. */
static int sync_locked(struct wal *w, uint64_t target)
{
	uint64_t seq, index, off, segseq;
	int fd, rc;

	if ((rc = flush(w)) != 0)
		return rc;
	for (;;) {
		if (w->err)
			return w->err;
		/* Done when the batches are durable and so is everything else
		 * written to the segment (a copy of the state after a rotation). */
		if (w->durable_seq >= target && (!w->writing || w->synced_off >= w->tail))
			return 0;
		if (!w->syncing)
			break;
		wait_cond(w);
	}
	seq = w->written_seq;
	index = w->last_index;
	off = w->tail;
	segseq = cur_seg(w)->seq;
	fd = cur_seg(w)->fd;
	w->syncing = true;
	unlock(w);
	rc = w->fs->fdatasync(w->fs->ctx, fd);
	lock(w);
	w->syncing = false;
	w->stats.fdatasyncs++;
	if (rc != 0) {
		wal_fail(w, rc, "wal: fdatasync %s/%s", w->dir, cur_seg(w)->name);
		return stop(w, rc);
	}
	if (seq > w->durable_seq) {
		w->durable_seq = seq;
		w->durable_index = index;
	}
	if (cur_seg(w)->seq == segseq && off > w->synced_off)
		w->synced_off = off;
	pthread_cond_broadcast(&w->cond);
	return 0;
}

int wal_append(struct wal *w, const struct wal_batch *b)
{
	int rc;

	lock(w);
	rc = append_locked(w, b);
	if (rc == 0)
		rc = flush(w);
	moor_buf_reset(&w->wbuf); /* nothing of a failed append stays behind */
	unlock(w);
	return rc;
}

int wal_sync(struct wal *w, uint64_t *durable_index)
{
	int rc;

	lock(w);
	rc = sync_locked(w, w->written_seq);
	if (rc == 0 && durable_index)
		*durable_index = w->durable_index;
	unlock(w);
	return rc;
}

/* Take every queued caller, write their batches with one write call, and
 * make them durable with one fdatasync. */
static void lead(struct wal *w)
{
	struct wal_req *list = w->qhead, *q;
	int rc = 0;

	/* One leader at a time, even while it waits (for readers, or for an
	 * fdatasync before a rotation): the batches it drained must be encoded
	 * before any submitted after them. */
	w->leading = true;
	w->qhead = w->qtail = NULL;
	w->queued = 0;
	for (q = list; q; q = q->next)
		q->drained = 1;
	/* Encoded batches accumulate in the write buffer for one write call;
	 * a batch that fails validation fails alone and leaves it as it was. */
	for (q = list; q && !w->err; q = q->next)
		q->rc = append_locked(w, q->batch);
	rc = w->err ? w->err : sync_locked(w, w->written_seq);
	for (q = list; q; q = q->next) {
		if (rc != 0)
			q->rc = rc;
		q->durable_index = w->durable_index;
		q->done = 1;
	}
	w->leading = false;
	pthread_cond_broadcast(&w->cond);
}

int wal_submit(struct wal *w, struct wal_req *req, const struct wal_batch *b)
{
	int rc = 0;

	memset(req, 0, sizeof *req);
	req->batch = b;
	lock(w);
	if (w->err) {
		rc = w->err;
	} else {
		if (w->qtail)
			w->qtail->next = req;
		else
			w->qhead = req;
		w->qtail = req;
		w->queued++;
	}
	unlock(w);
	return rc;
}

int wal_wait(struct wal *w, struct wal_req *req, uint64_t *durable_index)
{
	int rc;

	lock(w);
	while (!req->done) {
		if (w->err && !req->drained)
			fail_queue(w);
		else if (!req->drained && !w->syncing && !w->leading)
			lead(w);
		else
			wait_cond(w);
	}
	rc = req->rc;
	if (rc == 0 && durable_index)
		*durable_index = req->durable_index;
	unlock(w);
	return rc;
}

int wal_append_sync(struct wal *w, const struct wal_batch *b, uint64_t *durable_index)
{
	struct wal_req req;
	int rc = wal_submit(w, &req, b);

	return rc != 0 ? rc : wal_wait(w, &req, durable_index);
}

int wal_release(struct wal *w, uint64_t index, unsigned *released)
{
	int rc;

	if (released)
		*released = 0;
	lock(w);
	/* The snapshot marker that covers `index` (and the copies of it at the
	 * start of newer segments) must be durable before anything it covers
	 * is deleted, or a crash could leave a hole. */
	rc = w->err ? w->err : wal_writer_start(w); /* restores a cut copy of the state */
	if (rc == 0)
		rc = sync_locked(w, w->written_seq);
	if (rc == 0)
		rc = wal_release_locked(w, index, released);
	unlock(w);
	return rc;
}

const char *wal_errmsg(struct wal *w)
{
	return w->errmsg;
}

void wal_stats_get(struct wal *w, struct wal_stats *st)
{
	lock(w);
	*st = w->stats;
	st->durable_index = w->durable_index;
	st->queued = w->queued;
	st->syncing = w->syncing;
	st->error = w->err;
	unlock(w);
}

void wal_close(struct wal *w)
{
	if (!w)
		return;
	MOOR_ASSERT(!w->syncing && !w->qhead && !w->readers);
	for (size_t i = 0; i < w->nsegs; i++)
		if (w->segs[i].fd >= 0)
			w->fs->close(w->fs->ctx, w->segs[i].fd);
	for (size_t i = 0; i < w->ntmp; i++)
		moor_free(w->alloc, w->tmp_names[i]);
	moor_free(w->alloc, w->tmp_names);
	moor_free(w->alloc, w->segs);
	moor_free(w->alloc, w->locs);
	moor_buf_free(&w->wbuf);
	moor_free(w->alloc, w->dir);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	moor_free(w->alloc, w);
}

int wal_open(const struct wal_config *cfg, struct wal **out, struct wal_recovered *rec,
             char *errbuf, size_t errlen)
{
	const struct moor_alloc *a = cfg ? moor_alloc_or_default(cfg->alloc) : NULL;
	uint64_t seg_bytes =
	    cfg && cfg->segment_bytes ? cfg->segment_bytes : WAL_SEGMENT_BYTES_DEFAULT;
	struct wal *w;
	int rc;

	*out = NULL;
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!cfg || !cfg->dir || seg_bytes < WAL_SEGMENT_BYTES_MIN ||
	    seg_bytes > WAL_SEGMENT_BYTES_MAX || seg_bytes % WAL_ALIGN) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "wal: bad configuration (dir or segment_bytes)");
		return MOOR_EINVAL;
	}
	if (!(w = moor_calloc(a, 1, sizeof *w)))
		goto nomem;
	w->alloc = a;
	if (!(w->dir = moor_memdup(a, cfg->dir, strlen(cfg->dir)))) {
		moor_free(a, w);
		goto nomem;
	}
	w->fs = cfg->fs ? cfg->fs : wal_fs_posix();
	w->logger = cfg->logger;
	w->segment_bytes = seg_bytes;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	moor_buf_init(&w->wbuf, a);
	if ((rc = wal_recover(w)) != 0) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s", w->errmsg);
		wal_close(w);
		return rc;
	}
	if (rec) {
		memset(rec, 0, sizeof *rec);
		rec->has_hard_state = w->has_hs;
		rec->hard_state = w->hs;
		rec->has_snapshot = w->has_snap;
		rec->snapshot = w->snap;
		rec->first_index = w->nlocs ? w->locs[0].first_index : w->last_index + 1;
		rec->last_index = w->last_index;
		rec->segments = w->nsegs;
		rec->tail_cut_bytes = w->rec_dirty - w->rec_end;
	}
	w->durable_index = w->last_index;
	moor_log(w->logger, MOOR_LOG_INFO, "wal",
	         "recovered dir=%s segments=%zu index=%" PRIu64 "..%" PRIu64, w->dir, w->nsegs,
	         w->nlocs ? w->locs[0].first_index : w->last_index + 1, w->last_index);
	*out = w;
	return 0;
nomem:
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "wal: out of memory");
	return MOOR_ENOMEM;
}

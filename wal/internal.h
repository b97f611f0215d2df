/*
 * The WAL handle and the helpers its files share (private to wal/).
 *
 * Files: record.c (format), state.c (the in-memory index of entries and the
 * rules an append must obey), recovery.c (open: scan and verify), segment.c
 * (create, rotate, cut the torn tail, release), wal.c (append, sync,
 * group commit), read.c (entries back from the files).
 */
#ifndef MOOR_WAL_INTERNAL_H
#define MOOR_WAL_INTERNAL_H

#include "common/buf.h"
#include "wal/format.h"
#include "wal/wal.h"

#include <pthread.h>
#include <stdbool.h>

struct wal_seg {
	uint64_t seq;
	uint64_t first_index; /* from the name and header */
	uint64_t max_index;   /* highest entry index in it (0: none) */
	uint32_t seed;
	int fd; /* -1: not open */
	char name[WAL_NAME_MAX];
};

/* Where one entries record lives; entries [first_index, first_index+count)
 * are still current (count shrinks when a later batch overwrites). */
struct wal_loc {
	uint64_t first_index;
	uint64_t seq;
	uint64_t offset;
	uint32_t count;
	uint32_t len; /* payload length of the record */
};

struct wal {
	char *dir;
	const struct wal_fs *fs;
	const struct moor_alloc *alloc;
	const struct moor_logger *logger;
	uint64_t segment_bytes;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	int err; /* sticky: the error that stopped the log */
	char errmsg[320];

	/* Segments, oldest first, consecutive seqs; the last is written. */
	struct wal_seg *segs;
	size_t nsegs, segcap;
	/* Entries index, ascending, contiguous. */
	struct wal_loc *locs;
	size_t nlocs, loccap;

	uint64_t last_index; /* last entry, or the snapshot index if above */
	bool has_hs, has_snap;
	struct wal_hard_state hs;
	struct wal_snapshot snap;

	/* Recovery's findings about the last segment, used when writing starts. */
	uint64_t rec_end;      /* end of the last complete batch */
	uint64_t rec_dirty;    /* end of nonzero bytes beyond it */
	bool rec_torn;         /* the last segment's creation was torn: replace it */
	uint64_t rec_prev_end; /* then: where the segment before it ends */
	char **tmp_names;
	size_t ntmp;

	/* Writer. */
	bool writing;                      /* writer started: tail cut, last segment open rw */
	uint64_t tail;                     /* next write offset in the last segment */
	uint64_t synced_off;               /* durable prefix of the last segment */
	struct moor_buf wbuf;              /* encoded, not yet written; base offset = tail */
	uint64_t written_seq, durable_seq; /* batches */
	uint64_t durable_index;
	bool syncing;     /* an fdatasync is in flight (the mutex is not held) */
	unsigned readers; /* wal_read calls reading files without the mutex */
	bool leading;     /* a group-commit leader is encoding or syncing */
	struct wal_req *qhead, *qtail;
	unsigned queued;

	struct wal_stats stats;
};

/* errmsg helpers (return rc for chaining). */
int wal_fail(struct wal *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* state.c */
int wal_batch_check(const struct wal *w, const struct wal_batch *b);
int wal_locs_reserve(struct wal *w, size_t extra);
void wal_state_entries(struct wal *w, uint64_t first, uint32_t count, uint64_t seq, uint64_t offset,
                       uint32_t len);
void wal_state_snapshot(struct wal *w, const struct wal_snapshot *s);
void wal_state_drop_segs_before(struct wal *w, uint64_t seq);
size_t wal_locs_find(const struct wal *w, uint64_t index);
struct wal_seg *wal_seg_by_seq(struct wal *w, uint64_t seq);
int wal_segs_reserve(struct wal *w);
int wal_segs_push(struct wal *w, const struct wal_seg *s);

/* wal.c: wait (releasing the mutex) until no wal_read is reading files:
 * before closing or deleting a segment file. */
void wal_wait_readers(struct wal *w);

/* segment.c (mutex held) */
int wal_writer_start(struct wal *w);
int wal_rotate(struct wal *w);
int wal_write_all(struct wal *w, int fd, const void *p, size_t n, uint64_t off);
int wal_release_locked(struct wal *w, uint64_t index, unsigned *released);

/* recovery.c */
int wal_recover(struct wal *w);

/*
 * The segment scanner shared by recovery and wal-dump: walks the records of
 * one segment image, hands each complete batch's records to `on_rec` in
 * order, and reports where valid data ends and what follows it.
 */
struct wal_scan {
	/* in */
	const unsigned char *buf;
	size_t len;
	uint32_t seed;
	/* out */
	uint64_t end;     /* offset after the last complete batch */
	uint64_t bad_off; /* first invalid record or incomplete batch; UINT64_MAX: none */
	const char *why;
	uint64_t dirty;         /* end (8-aligned) of nonzero bytes at or after `end` */
	uint64_t durable_after; /* a valid record beyond `end` proving `end` was durable; 0: none */
};
int wal_scan_segment(struct wal_scan *s,
                     int (*on_rec)(void *arg, uint64_t off, const struct wal_rec *r), void *arg);

#endif

/*
 * wal — moor's write-ahead log.
 *
 * The WAL stores what the raft core asks to persist: log entries, the hard
 * state (term, vote, commit) and snapshot markers (index, term). It knows
 * nothing of raft's logic: it defines its own record payloads below and
 * server/ converts from raft's structs.
 *
 * On disk a WAL is a directory of segment files of a fixed, preallocated size
 * (default 64 MiB), named "<seq>-<first index>.wal" in hex. Each append is a
 * batch of records written with one write call; each record carries its
 * length, type and a CRC32C salted with the segment and the record's offset,
 * so stale bytes can never pass as current. The byte layout and its version
 * are in docs/wal-format.md.
 *
 * Durability: wal_append writes and returns; wal_sync issues one fdatasync
 * and reports the last index now durable. wal_append_sync is the group-commit
 * front: batches of callers arriving while an fdatasync is in flight are
 * written together (one write) and synced together by the next fdatasync, so
 * at most one fdatasync is ever in flight.
 *
 * Failure: a failed write or fdatasync stops the log for good (a failed
 * fsync is never retried: the kernel may already have dropped the dirty
 * pages). Every later call that writes, syncs or reads returns the first
 * error (an -errno), and nothing unsynced is ever reported durable.
 *
 * Recovery (wal_open) reads every segment in order and verifies every record.
 * A torn or zeroed tail of the last segment — a crash in the middle of a
 * write — is cut off; a bad record anywhere else, a missing segment or a gap
 * in the entries is corruption: wal_open fails with MOOR_ECORRUPT and an
 * error message naming the file and byte offset. Recovery modifies nothing:
 * the cut is made (the tail zeroed and synced) only when the caller first
 * appends.
 *
 * Threading: every function on a handle may be called from any thread; the
 * handle has its own mutex. Writes are done under it; fdatasync and the
 * reads of wal_read are done without it, so neither holds up appends.
 * wal_close must not race with any other call. When several threads use a
 * handle, its allocator must be thread-safe.
 *
 * All file operations go through struct wal_fs, so tests can inject write and
 * fsync failures, short writes and power loss.
 */
#ifndef MOOR_WAL_WAL_H
#define MOOR_WAL_WAL_H

#include "common/alloc.h"
#include "common/log.h"

#include <stddef.h>
#include <stdint.h>

/* ---- File-system interface ------------------------------------------------
 *
 * Every function returns 0 or a negative errno. Names are plain file names
 * inside `dir` (no slashes). File handles are small non-negative ints chosen
 * by the implementation. The WAL calls these from whatever thread calls it,
 * at most one fdatasync at a time.
 */
enum {
	WAL_FS_RDONLY = 0,
	WAL_FS_RDWR = 1,
	WAL_FS_CREATE = 2, /* with RDWR: create, or truncate an existing file */
};

struct wal_fs {
	int (*open)(void *ctx, const char *dir, const char *name, int flags, int *fd);
	int (*close)(void *ctx, int fd);
	/* pread/pwrite semantics; *n may be short (the WAL loops). */
	int (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off, size_t *n);
	int (*pwrite)(void *ctx, int fd, const void *buf, size_t len, uint64_t off, size_t *n);
	int (*fdatasync)(void *ctx, int fd);
	/* Allocate [0, len) and make the file that long; -EOPNOTSUPP where the
	 * file system cannot (the WAL then falls back to ftruncate). */
	int (*fallocate)(void *ctx, int fd, uint64_t len);
	int (*ftruncate)(void *ctx, int fd, uint64_t len);
	int (*size)(void *ctx, int fd, uint64_t *len);
	int (*rename)(void *ctx, const char *dir, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *dir, const char *name);
	/* fsync the directory itself, making creates, renames, unlinks durable. */
	int (*dir_sync)(void *ctx, const char *dir);
	/* Call fn for every entry of dir except "." and ".."; a non-zero return
	 * from fn stops the listing and is returned. */
	int (*dir_list)(void *ctx, const char *dir, int (*fn)(void *arg, const char *name),
	                void *arg);
	void *ctx;
};

/* The POSIX implementation (static storage, thread-safe). */
const struct wal_fs *wal_fs_posix(void);

/* ---- Records ------------------------------------------------------------- */

/* One log entry. `data` is borrowed: the WAL copies it during the call. */
struct wal_entry {
	uint64_t index;
	uint64_t term;
	uint32_t type; /* opaque to the WAL (raft's entry type) */
	const void *data;
	size_t len;
};

struct wal_hard_state {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
};

/* A snapshot was taken or installed at (index, term). */
struct wal_snapshot {
	uint64_t index;
	uint64_t term;
};

/*
 * What one append persists, written in this order: the snapshot marker, the
 * entries, the hard state. Any part may be absent (NULL / n_entries 0), but
 * not all. Entries must have consecutive indexes; the first one may be at
 * most last_index + 1 (no gap) and must be above the last snapshot marker's
 * index. A first index at or below the last one truncates the log logically
 * from there (a new leader's conflicting suffix); recovery returns only the
 * surviving version. A snapshot marker above the last index drops every entry
 * (they are all covered) and makes it the last index.
 */
struct wal_batch {
	const struct wal_snapshot *snapshot;
	const struct wal_entry *entries;
	size_t n_entries;
	const struct wal_hard_state *hard_state;
};

/* ---- Configuration and recovery ------------------------------------------- */

#define WAL_SEGMENT_BYTES_DEFAULT (64u << 20)
#define WAL_SEGMENT_BYTES_MIN 4096u
#define WAL_SEGMENT_BYTES_MAX (1u << 30)

struct wal_config {
	const char *dir;                  /* must exist; copied */
	const struct wal_fs *fs;          /* NULL: wal_fs_posix(); must outlive the handle */
	const struct moor_alloc *alloc;   /* NULL: libc; must outlive the handle */
	const struct moor_logger *logger; /* NULL: silent; must outlive the handle */
	/* Size of every segment file; 0: WAL_SEGMENT_BYTES_DEFAULT. A batch
	 * whose records do not fit in an empty segment fails with
	 * MOOR_ETOOLARGE (see wal_batch_max_bytes). */
	uint64_t segment_bytes;
};

/* What recovery found. */
struct wal_recovered {
	int has_hard_state;
	struct wal_hard_state hard_state; /* the last one written */
	int has_snapshot;
	struct wal_snapshot snapshot; /* the last marker written */
	/* Entries readable with wal_read: [first_index, last_index]; empty when
	 * first_index > last_index. Every entry above the snapshot is in it. */
	uint64_t first_index;
	uint64_t last_index;
	uint64_t segments;
	uint64_t tail_cut_bytes; /* torn tail that the first append will cut */
};

/*
 * Open the WAL in cfg->dir (an empty directory is a new, empty WAL) and
 * recover it. Nothing is written, created or removed until the first
 * wal_append / wal_append_sync / wal_submit / wal_release; the last segment
 * is fdatasynced (no byte changes), so that what recovery returns — which
 * may have been in the page cache only after a process crash — is durable
 * before the caller acts on it. Entries are loaded with wal_read. Memory:
 * recovery holds one whole segment in memory at a time (segment_bytes), and
 * keeps 32 bytes per entries record (not per entry) for the index.
 *
 * On success *out is a handle the caller frees with wal_close and *rec (if
 * not NULL) is filled. On failure returns MOOR_ECORRUPT (with the file and
 * byte offset in errbuf), MOOR_ENOMEM, MOOR_EINVAL or a -errno; errbuf (may
 * be NULL) receives a one-line message either way (empty on success).
 */
struct wal;
int wal_open(const struct wal_config *cfg, struct wal **out, struct wal_recovered *rec,
             char *errbuf, size_t errlen);

/* Close every file and free the handle. Does not sync: what was not synced
 * may or may not survive. NULL is a no-op. */
void wal_close(struct wal *w);

/* ---- Writing ----------------------------------------------------------------*/

/* Largest encoded batch (bytes on disk) a segment of this size can hold. */
uint64_t wal_batch_max_bytes(uint64_t segment_bytes);

/*
 * Validate, encode and write the batch with one write call (two when it
 * opens a new segment, whose first write copies the snapshot marker and hard
 * state; the old segment is synced first if it holds unsynced batches). Returns without syncing.
 * Errors: MOOR_EINVAL (batch breaks the rules above; the log is unchanged), MOOR_ETOOLARGE,
 * MOOR_ENOMEM (log unchanged), or an I/O error, which stops the log.
 */
int wal_append(struct wal *w, const struct wal_batch *b);

/*
 * Make everything appended so far durable with one fdatasync (waiting for an
 * fdatasync in flight first; if that one covered everything, none is issued).
 * *durable_index (may be NULL) receives the last entry index durable.
 */
int wal_sync(struct wal *w, uint64_t *durable_index);

/*
 * Group commit: append the batch and return once it is durable. Concurrent
 * callers' batches that arrive while an fdatasync is in flight are encoded
 * into one buffer, written with one write call and made durable with one
 * fdatasync by whichever caller finds no fdatasync in flight. The batch's
 * memory must stay valid until the call returns. Errors as wal_append and
 * wal_sync; a batch that fails validation fails alone.
 */
int wal_append_sync(struct wal *w, const struct wal_batch *b, uint64_t *durable_index);

/*
 * The same in two steps, so that a caller can fix the order of batches and
 * wait elsewhere: wal_submit queues the batch (in call order; it is encoded
 * when a wal_wait leads the next group) and returns at once; wal_wait waits
 * until it is durable, leading the group itself when no fdatasync is in
 * flight. `req` is caller-allocated and, with the batch, must stay valid until
 * wal_wait returns; every successful wal_submit needs its wal_wait before
 * wal_close. Batches that break the rules fail in wal_wait.
 */
struct wal_req {
	/* private to the WAL */
	const struct wal_batch *batch;
	struct wal_req *next;
	int drained, done, rc;
	uint64_t durable_index;
};
int wal_submit(struct wal *w, struct wal_req *req, const struct wal_batch *b);
int wal_wait(struct wal *w, struct wal_req *req, uint64_t *durable_index);

/* ---- Reading and releasing ------------------------------------------------ */

/* Entries read back from the files. `v[i].data` points into memory owned by
 * the struct; valid until wal_entries_free. */
struct wal_entries {
	struct wal_entry *v;
	size_t n;
	void *mem;
	const struct moor_alloc *alloc;
};

/*
 * Read entries [lo, hi) from the segment files, verifying every record's CRC.
 * Stops early once the entries' data exceeds max_bytes (0: no limit), always
 * returning at least one entry when lo < hi. Errors: MOOR_ECOMPACTEDLOG
 * (lo below the first readable index), MOOR_EUNAVAILLOG (hi beyond
 * last_index + 1), MOOR_ECORRUPT (with file and offset in wal_errmsg),
 * MOOR_ENOMEM, -errno. On error *out holds nothing to free.
 */
int wal_read(struct wal *w, uint64_t lo, uint64_t hi, size_t max_bytes, struct wal_entries *out);
void wal_entries_free(struct wal_entries *e);

/* [first, last] readable index range now (empty when first > last). */
void wal_index_range(struct wal *w, uint64_t *first, uint64_t *last);

/*
 * Delete every segment, oldest first, whose entries all lie at or below
 * `index` and which is not the segment being written, fsyncing the
 * directory after each. Syncs first if anything appended is not yet durable
 * (the covering snapshot marker must be). `index` must be covered by the last snapshot marker (at
 * most its index) — the caller also guarantees the store has flushed it — else MOOR_EINVAL.
 * *released (may be NULL) receives the number deleted.
 */
int wal_release(struct wal *w, uint64_t index, unsigned *released);

/* The last error's message ("" if none); valid until the next call. */
const char *wal_errmsg(struct wal *w);

/* Counters, for tests, benchmarks and /metrics. */
struct wal_stats {
	uint64_t batches;    /* batches appended */
	uint64_t writes;     /* write calls that carried batches */
	uint64_t fdatasyncs; /* of segment files */
	uint64_t bytes;      /* bytes of records written */
	uint64_t segments_created;
	uint64_t durable_index;
	unsigned queued; /* group-commit callers waiting now */
	int syncing;     /* an fdatasync is in flight now */
	int error;       /* the error that stopped the log, 0 if none */
};
void wal_stats_get(struct wal *w, struct wal_stats *st);

#endif

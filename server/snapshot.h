/*
 * Snapshots: log compaction, and the store's state shipped to a member
 * that is too far behind (or new).
 *
 * Compaction: every --snapshot-count applied entries the store is flushed
 * (its state is then durable up to the flushed index D), the WAL gets a
 * snapshot marker at D and releases the segments below it, and the
 * in-memory raft log drops the entries of the previous interval, so a
 * follower that lags by less than one interval still catches up from the
 * log.
 *
 * Transfer: when the raft core wants to send a snapshot, the leader takes a
 * RocksDB checkpoint of the store, packs its files into one archive
 * (magic "MOORSNAP1\n", then per file: u16 BE name length, name, u64 BE
 * size, bytes; a zero name length ends it), and streams it over the peer
 * connection in 1 MiB SnapshotChunk frames, never more than 8 MiB queued.
 * The last chunk carries the CRC32C of the archive and the raft message. The
 * follower writes the chunks to disk, checks size and CRC, unpacks the
 * archive into a directory, and only then steps the raft message; when the
 * core hands the snapshot back in a ready batch, the store is replaced by
 * the checkpoint atomically (kv_snapshot_restore).
 */
#ifndef MOOR_SERVER_SNAPSHOT_H
#define MOOR_SERVER_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#define SRV_SNAP_CHUNK_BYTES (1u << 20)
#define SRV_SNAP_MAX_QUEUED (8u << 20)
#define SRV_SNAP_MAGIC "MOORSNAP1\n"

/* Packs every regular file of `dir` into the archive at `path`. */
int srv_snap_pack(const char *dir, const char *path, uint64_t *total, uint32_t *crc, char *err,
                  size_t errlen);
/* Unpacks the archive into `dir` (created), each file fsynced. Refuses
 * names with '/' or "..", sizes beyond the archive, trailing bytes. */
int srv_snap_unpack(const char *path, const char *dir, char *err, size_t errlen);
/* Removes a directory of plain files, then the directory. */
void srv_snap_rmdir(const char *dir);
/* Makes `to` a directory holding hard links to every file of `from`. */
int srv_snap_link(const char *from, const char *to);

#endif

/*
 * memfs: an in-memory struct wal_fs for the WAL's tests and fuzz target, with
 * fault injection in the manner of SQLite's test VFS.
 *
 * One directory (the `dir` argument is ignored). Each file keeps its current
 * bytes and its durable bytes (as of its last successful fdatasync), and the
 * list of writes since then; the directory keeps its current names and its
 * durable names (as of the last dir_sync). A simulated power loss returns to
 * the durable state, optionally tearing every unsynced write: each 512-byte
 * sector of it survives or not by a seeded coin.
 *
 * Faults: the Nth pwrite / fdatasync / dir_sync from now fails with a given
 * errno; short writes (at most K bytes per call); a gate that holds every
 * fdatasync until the test opens it (to test group commit deterministically).
 * Thread-safe (one mutex).
 */
#ifndef MOOR_TESTS_WAL_MEMFS_H
#define MOOR_TESTS_WAL_MEMFS_H

#include "wal/wal.h"

#include <stddef.h>
#include <stdint.h>

struct memfs;

struct memfs *memfs_new(void);
void memfs_free(struct memfs *m);
/* A copy of the durable and current state (no faults, no open files). */
struct memfs *memfs_clone(const struct memfs *m);
const struct wal_fs *memfs_fs(struct memfs *m);

/* Fail the nth call from now (1 = the next one) with -err; 0 disarms. */
void memfs_fail_write(struct memfs *m, long nth, int err);
void memfs_fail_sync(struct memfs *m, long nth, int err);
void memfs_fail_dir_sync(struct memfs *m, long nth, int err);
/* Each pwrite writes at most max bytes (0: no limit). */
void memfs_short_writes(struct memfs *m, size_t max);

enum memfs_loss { MEMFS_DROP_UNSYNCED, MEMFS_TEAR_UNSYNCED };
void memfs_power_loss(struct memfs *m, enum memfs_loss how, uint64_t seed);

/* Hold every fdatasync until memfs_gate_open; memfs_gate_wait blocks until
 * n fdatasyncs are held. */
void memfs_gate_close(struct memfs *m);
void memfs_gate_open(struct memfs *m);
void memfs_gate_wait(struct memfs *m, unsigned n);

/* Files by name: current contents (copied out; caller frees) and a way to
 * replace a file's contents (durably). Return 0 or -ENOENT. */
int memfs_read_file(struct memfs *m, const char *name, unsigned char **data, size_t *len);
int memfs_write_file(struct memfs *m, const char *name, const void *data, size_t len);
int memfs_remove_file(struct memfs *m, const char *name);
/* Names currently in the directory, sorted; returns how many (at most max). */
size_t memfs_list(struct memfs *m, char (*names)[64], size_t max);

struct memfs_counts {
	unsigned long writes, syncs, dir_syncs, opens;
	unsigned syncs_in_flight, max_syncs_in_flight;
	unsigned open_files;
};
void memfs_counts(struct memfs *m, struct memfs_counts *c);

#endif

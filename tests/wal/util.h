/*
 * Helpers shared by the WAL test suites: a model of what the log must hold
 * (terms per index, hard state, snapshot), deterministic entry contents, and
 * checks that a recovered WAL matches the model byte for byte.
 */
#ifndef MOOR_TESTS_WAL_UTIL_H
#define MOOR_TESTS_WAL_UTIL_H

#include "tests/wal/memfs.h"
#include "wal/wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_MAX 4096

struct model {
	uint64_t last;            /* last index */
	uint64_t first;           /* first readable index */
	uint64_t term[MODEL_MAX]; /* term of each index (data derives from it) */
	bool has_hs, has_snap;
	struct wal_hard_state hs;
	struct wal_snapshot snap;
};

/* The data of entry (index, term): length and bytes both derived from them. */
size_t entry_len(uint64_t index, uint64_t term);
void entry_fill(unsigned char *out, uint64_t index, uint64_t term);

void model_init(struct model *m);

/* Build and apply a batch of `n` entries from `first` with `term`, plus an
 * optional hard state and snapshot marker; appends to the WAL (with
 * wal_append) and, when that succeeds, to the model. Returns wal_append's rc. */
int append_entries(struct wal *w, struct model *m, uint64_t first, size_t n, uint64_t term,
                   const struct wal_hard_state *hs, const struct wal_snapshot *snap);

/* cmocka checks: the recovered info and every readable entry match. */
void check_recovered(const struct wal_recovered *rec, const struct model *m);
void check_entries(struct wal *w, const struct model *m);

/* Open a WAL on memfs with the given segment size; asserts success. */
struct wal *open_mem(struct memfs *fs, uint64_t seg_bytes, struct wal_recovered *rec);
/* Same, returning rc and filling errbuf. */
int try_open_mem(struct memfs *fs, uint64_t seg_bytes, struct wal **w, struct wal_recovered *rec,
                 char *err, size_t errlen);

#endif

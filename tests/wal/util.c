/* Helpers shared by the WAL test suites (see util.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/wal/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t entry_len(uint64_t index, uint64_t term)
{
	return (size_t)((index * 7 + term * 13) % 61);
}

void entry_fill(unsigned char *out, uint64_t index, uint64_t term)
{
	size_t n = entry_len(index, term);
	uint64_t x = index * 0x9E3779B97F4A7C15ull ^ term;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		out[i] = (unsigned char)x;
	}
}

void model_init(struct model *m)
{
	memset(m, 0, sizeof *m);
	m->first = 1;
}

int append_entries(struct wal *w, struct model *m, uint64_t first, size_t n, uint64_t term,
                   const struct wal_hard_state *hs, const struct wal_snapshot *snap)
{
	struct wal_entry *e = calloc(n ? n : 1, sizeof *e);
	unsigned char *data = malloc(n * 64 + 1);
	struct wal_batch b = {snap, e, n, hs};
	int rc;

	assert_non_null(e);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++) {
		e[i].index = first + i;
		e[i].term = term;
		e[i].type = (uint32_t)((first + i) % 3);
		e[i].data = data + i * 64;
		e[i].len = entry_len(first + i, term);
		entry_fill(data + i * 64, first + i, term);
	}
	rc = wal_append(w, &b);
	if (rc == 0) {
		if (snap) {
			if (snap->index > m->last) {
				m->last = snap->index;
				m->first = snap->index + 1;
			}
			m->snap = *snap;
			m->has_snap = true;
		}
		for (size_t i = 0; i < n; i++) {
			assert_true(first + i < MODEL_MAX);
			m->term[first + i] = term;
		}
		if (n)
			m->last = first + n - 1;
		if (hs) {
			m->hs = *hs;
			m->has_hs = true;
		}
	}
	free(e);
	free(data);
	return rc;
}

void check_recovered(const struct wal_recovered *rec, const struct model *m)
{
	assert_int_equal(rec->last_index, m->last);
	assert_int_equal(rec->has_hard_state, m->has_hs);
	if (m->has_hs) {
		assert_int_equal(rec->hard_state.term, m->hs.term);
		assert_int_equal(rec->hard_state.vote, m->hs.vote);
		assert_int_equal(rec->hard_state.commit, m->hs.commit);
	}
	assert_int_equal(rec->has_snapshot, m->has_snap);
	if (m->has_snap) {
		assert_int_equal(rec->snapshot.index, m->snap.index);
		assert_int_equal(rec->snapshot.term, m->snap.term);
	}
	/* Every entry above the snapshot is readable. */
	assert_true(rec->first_index <= (m->has_snap ? m->snap.index : 0) + 1);
}

void check_entries(struct wal *w, const struct model *m)
{
	uint64_t first, last;
	struct wal_entries es;
	unsigned char buf[64];

	wal_index_range(w, &first, &last);
	assert_int_equal(last, m->last);
	if (first > last)
		return;
	assert_int_equal(wal_read(w, first, last + 1, 0, &es), 0);
	assert_int_equal(es.n, last - first + 1);
	for (size_t i = 0; i < es.n; i++) {
		const struct wal_entry *e = &es.v[i];
		assert_int_equal(e->index, first + i);
		assert_int_equal(e->term, m->term[e->index]);
		assert_int_equal(e->type, e->index % 3);
		assert_int_equal(e->len, entry_len(e->index, e->term));
		entry_fill(buf, e->index, e->term);
		assert_memory_equal(e->data, buf, e->len);
	}
	wal_entries_free(&es);
}

int try_open_mem(struct memfs *fs, uint64_t seg_bytes, struct wal **w, struct wal_recovered *rec,
                 char *err, size_t errlen)
{
	struct wal_config cfg = {.dir = "mem", .fs = memfs_fs(fs), .segment_bytes = seg_bytes};

	return wal_open(&cfg, w, rec, err, errlen);
}

struct wal *open_mem(struct memfs *fs, uint64_t seg_bytes, struct wal_recovered *rec)
{
	struct wal *w = NULL;
	char err[512];
	int rc = try_open_mem(fs, seg_bytes, &w, rec, err, sizeof err);

	if (rc != 0)
		fprintf(stderr, "open: %s\n", err);
	assert_int_equal(rc, 0);
	return w;
}

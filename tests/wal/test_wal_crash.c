/*
 * Crashes and damage: a crash at every byte offset of the last segment (with
 * zeros or garbage after it), power loss that tears unsynced writes, and bit
 * flips everywhere in the last segment and through an older one. Recovery
 * must return exactly whole batches, never a partial one; damage to data that
 * had been made durable must be reported with the file and offset; and
 * recovery itself must write nothing.
 *
 * White-box where it must be: the test reads the writer's tail (wal/internal.h)
 * to know where each batch ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "tests/wal/util.h"
#include "wal/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSEG 8192u

#ifdef MOOR_SAN
#define STEP 3
#else
#define STEP 1
#endif

struct point {
	char seg[WAL_NAME_MAX];
	uint64_t end;
	bool durable;
	struct model m;
};

struct history {
	struct memfs *fs;
	struct point *p;
	size_t n;
	char last_seg[WAL_NAME_MAX];
	uint64_t tail;
};

static void record(struct history *h, struct wal *w, const struct model *m, bool durable)
{
	struct point *p;

	h->p = realloc(h->p, (h->n + 1) * sizeof *h->p);
	assert_non_null(h->p);
	p = &h->p[h->n++];
	memcpy(p->seg, w->segs[w->nsegs - 1].name, WAL_NAME_MAX);
	p->end = w->tail;
	p->durable = durable;
	p->m = *m;
	if (durable)
		for (size_t i = 0; i + 1 < h->n; i++)
			h->p[i].durable = true;
}

/* A log of many batches over three segments: entries of varied sizes, hard
 * states, a snapshot marker, overwrites of a conflicting suffix. */
static void build(struct history *h, bool overwrite, int sync_every)
{
	struct wal *w;
	struct model m;
	int i = 0;

	memset(h, 0, sizeof *h);
	h->fs = memfs_new();
	w = open_mem(h->fs, CSEG, NULL);
	model_init(&m);
	while (w->nsegs < 3 || w->tail < CSEG / 2) {
		struct wal_hard_state hs = {1 + (uint64_t)i / 8, (uint64_t)i % 3, m.last};
		struct wal_snapshot snap = {m.last > 3 ? m.last - 3 : 0, 1};
		uint64_t term = 1 + (uint64_t)i / 8, first = m.last + 1;
		if (overwrite && i % 7 == 6 && m.last > 12)
			first = m.last - 2;
		assert_int_equal(append_entries(w, &m, first, 1 + (size_t)i % 4, term,
		                                i % 2 ? &hs : NULL, i == 10 ? &snap : NULL),
		                 0);
		if (i % sync_every == 0)
			assert_int_equal(wal_sync(w, NULL), 0);
		record(h, w, &m, i % sync_every == 0);
		i++;
	}
	memcpy(h->last_seg, w->segs[w->nsegs - 1].name, WAL_NAME_MAX);
	h->tail = w->tail;
	wal_close(w);
}

static void history_free(struct history *h)
{
	memfs_free(h->fs);
	free(h->p);
}

/* The state after the last batch that ends at or before `t` in the last
 * segment (or before the last segment began). */
static const struct point *expected_at(const struct history *h, uint64_t t)
{
	const struct point *best = NULL;

	for (size_t i = 0; i < h->n; i++) {
		if (strcmp(h->p[i].seg, h->last_seg) != 0 || h->p[i].end <= t)
			best = &h->p[i];
	}
	assert_non_null(best);
	return best;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return *s;
}

static void check_open_matches(struct memfs *fs, const struct model *m, const unsigned char *img,
                               size_t len, const char *name)
{
	struct wal_recovered rec;
	struct wal *w = open_mem(fs, CSEG, &rec);
	unsigned char *now;
	size_t nlen;

	check_recovered(&rec, m);
	check_entries(w, m);
	/* Recovery wrote nothing. */
	assert_int_equal(memfs_read_file(fs, name, &now, &nlen), 0);
	assert_int_equal(nlen, len);
	assert_memory_equal(now, img, len);
	free(now);
	wal_close(w);
}

static void crash_at_every_offset(bool garbage)
{
	struct history h;
	unsigned char *img;
	size_t len;
	uint64_t rs = 42;

	build(&h, true, 1);
	assert_int_equal(memfs_read_file(h.fs, h.last_seg, &img, &len), 0);
	for (uint64_t t = 0; t < h.tail + 64; t += STEP) {
		struct memfs *c = memfs_clone(h.fs);
		uint64_t eff = t;
		const struct point *p;
		unsigned char *cut = malloc(len);
		struct model m;
		/* Cutting where the bytes were zeros anyway cuts nothing. */
		while (!garbage && eff < h.tail && img[eff] == 0)
			eff++;
		p = expected_at(&h, eff);
		m = p->m;
		memcpy(cut, img, len);
		for (uint64_t j = t; j < len && j < h.tail + 512; j++)
			cut[j] = garbage ? (unsigned char)xs(&rs) : 0;
		if (!garbage)
			memset(cut + t, 0, len - t);
		assert_int_equal(memfs_write_file(c, h.last_seg, cut, len), 0);
		check_open_matches(c, &m, cut, len, h.last_seg);
		if (t % 16 == 0) {
			/* The cut holds: what is appended next is all that follows. */
			struct wal_recovered rec;
			struct wal *w = open_mem(c, CSEG, NULL);
			assert_int_equal(append_entries(w, &m, m.last + 1, 2, 99, NULL, NULL), 0);
			assert_int_equal(wal_sync(w, NULL), 0);
			wal_close(w);
			w = open_mem(c, CSEG, &rec);
			check_recovered(&rec, &m);
			assert_int_equal(rec.tail_cut_bytes, 0);
			check_entries(w, &m);
			wal_close(w);
		}
		free(cut);
		memfs_free(c);
	}
	free(img);
	history_free(&h);
}

static void a_crash_at_any_byte_with_zeros_after_it_recovers_whole_batches(void **state)
{
	(void)state;
	crash_at_every_offset(false);
}

static void a_crash_at_any_byte_with_garbage_after_it_recovers_whole_batches(void **state)
{
	(void)state;
	crash_at_every_offset(true);
}

static void power_loss_tearing_unsynced_writes_keeps_every_synced_batch(void **state)
{
	struct history h;
	size_t kd = 0;

	(void)state;
	build(&h, false, 3);
	for (size_t i = 0; i < h.n; i++)
		if (h.p[i].durable)
			kd = i;
	for (uint64_t seed = 1; seed <= 300; seed++) {
		struct memfs *c = memfs_clone(h.fs);
		struct wal_recovered rec;
		struct wal *w;
		size_t k;
		memfs_power_loss(c, MEMFS_TEAR_UNSYNCED, seed);
		w = open_mem(c, CSEG, &rec);
		for (k = kd; k < h.n && h.p[k].m.last != rec.last_index; k++)
			;
		assert_true(k < h.n); /* a whole batch at or after the last synced one */
		check_recovered(&rec, &h.p[k].m);
		check_entries(w, &h.p[k].m);
		wal_close(w);
		memfs_free(c);
	}
	history_free(&h);
}

static uint64_t reported_offset(const char *err)
{
	const char *p = strstr(err, "offset ");

	assert_non_null(p);
	return strtoull(p + 7, NULL, 10);
}

static void bit_flips_are_corruption_before_the_last_batch_and_cut_within_it(void **state)
{
	struct history h;
	unsigned char *img;
	size_t len, n = 0;
	uint64_t last_start = 0;
	const struct point *before_last = NULL;

	(void)state;
	build(&h, true, 1);
	for (size_t i = 0; i + 1 < h.n; i++)
		if (strcmp(h.p[i + 1].seg, h.last_seg) == 0) {
			before_last = &h.p[i];
			last_start = h.p[i].end;
		}
	assert_non_null(before_last);
	assert_string_equal(before_last->seg, h.last_seg);
	assert_int_equal(memfs_read_file(h.fs, h.last_seg, &img, &len), 0);
	for (uint64_t off = 0; off < h.tail + 128; off += STEP) {
		struct memfs *c = memfs_clone(h.fs);
		unsigned char *bad = malloc(len);
		struct wal *w = NULL;
		char err[512];
		int rc;
		memcpy(bad, img, len);
		bad[off] ^= (unsigned char)(1u << (off % 8));
		assert_int_equal(memfs_write_file(c, h.last_seg, bad, len), 0);
		rc = try_open_mem(c, CSEG, &w, NULL, err, sizeof err);
		if (off < last_start) {
			unsigned char *now;
			size_t nlen;
			assert_int_equal(rc, MOOR_ECORRUPT);
			assert_non_null(strstr(err, h.last_seg));
			assert_true(reported_offset(err) <= off);
			assert_true(reported_offset(err) + 2 * CSEG / 3 > off);
			assert_int_equal(memfs_read_file(c, h.last_seg, &now, &nlen), 0);
			assert_memory_equal(now, bad, len); /* nothing modified */
			free(now);
			n++;
		} else {
			struct model m = off < h.tail ? before_last->m : h.p[h.n - 1].m;
			assert_int_equal(rc, 0);
			wal_close(w);
			check_open_matches(c, &m, bad, len, h.last_seg);
		}
		free(bad);
		memfs_free(c);
	}
	assert_true(n > 100);
	free(img);
	history_free(&h);
}

static void bit_flips_in_an_older_segment_are_corruption_naming_file_and_offset(void **state)
{
	struct history h;
	char names[16][64];
	unsigned char *img;
	size_t len;
	uint64_t end0 = 0;

	(void)state;
	build(&h, true, 1);
	assert_true(memfs_list(h.fs, names, 16) >= 3);
	for (size_t i = 0; i < h.n; i++)
		if (strcmp(h.p[i].seg, names[0]) == 0)
			end0 = h.p[i].end;
	assert_int_equal(memfs_read_file(h.fs, names[0], &img, &len), 0);
	/* Through the last batch and a little after it. */
	for (uint64_t off = 0; off < end0 + 64; off += 7) {
		struct memfs *c = memfs_clone(h.fs);
		struct wal *w = NULL;
		char err[512];
		img[off] ^= 0x10;
		assert_int_equal(memfs_write_file(c, names[0], img, len), 0);
		img[off] ^= 0x10;
		assert_int_equal(try_open_mem(c, CSEG, &w, NULL, err, sizeof err), MOOR_ECORRUPT);
		assert_non_null(strstr(err, names[0]));
		assert_true(reported_offset(err) <= off);
		memfs_free(c);
	}
	free(img);
	history_free(&h);
}

static void an_older_segment_that_lost_its_last_batch_is_corruption(void **state)
{
	struct history h;
	char names[16][64], err[512];
	unsigned char *img;
	size_t len;
	uint64_t end0 = 0, start0 = 0;
	struct wal *w = NULL;

	(void)state;
	build(&h, false, 1);
	assert_true(memfs_list(h.fs, names, 16) >= 3);
	for (size_t i = 0; i < h.n; i++)
		if (strcmp(h.p[i].seg, names[0]) == 0) {
			start0 = end0;
			end0 = h.p[i].end;
		}
	assert_true(start0 > 0 && start0 < end0);
	assert_int_equal(memfs_read_file(h.fs, names[0], &img, &len), 0);
	memset(img + start0, 0, end0 - start0); /* whole records gone, no bad one */
	assert_int_equal(memfs_write_file(h.fs, names[0], img, len), 0);
	assert_int_equal(try_open_mem(h.fs, CSEG, &w, NULL, err, sizeof err), MOOR_ECORRUPT);
	assert_non_null(strstr(err, names[0]));
	assert_int_equal(reported_offset(err), start0);
	free(img);
	history_free(&h);
}

static void entries_of_a_cut_tail_never_reappear_after_new_appends(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, CSEG, NULL);
	struct wal_recovered rec;
	struct model m, after_a;
	char name[WAL_NAME_MAX];
	unsigned char *img;
	size_t len;
	uint64_t b_start;

	(void)state;
	model_init(&m);
	assert_int_equal(append_entries(w, &m, 1, 3, 1, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	after_a = m;
	b_start = w->tail;
	memcpy(name, w->segs[w->nsegs - 1].name, WAL_NAME_MAX);
	assert_int_equal(append_entries(w, &m, 4, 3, 1, NULL, NULL), 0); /* B, unsynced */
	assert_int_equal(append_entries(w, &m, 7, 3, 1, NULL, NULL), 0); /* C, unsynced */
	wal_close(w);
	/* Power loss: B's first sector is lost, C reached the disk. */
	assert_int_equal(memfs_read_file(fs, name, &img, &len), 0);
	memset(img + b_start, 0, 16);
	assert_int_equal(memfs_write_file(fs, name, img, len), 0);
	w = open_mem(fs, CSEG, &rec);
	check_recovered(&rec, &after_a);
	/* D has B's indexes and byte length (term + 61 keeps every length), so
	 * C's old bytes sit right where a next batch would be. */
	m = after_a;
	assert_int_equal(append_entries(w, &m, 4, 3, 62, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	w = open_mem(fs, CSEG, &rec);
	check_recovered(&rec, &m);
	assert_int_equal(rec.last_index, 6);
	check_entries(w, &m);
	wal_close(w);
	free(img);
	memfs_free(fs);
}

static void a_segment_created_but_never_synced_is_replaced_after_power_loss(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, CSEG, NULL);
	struct wal_recovered rec;
	struct model m, synced;
	char names[8][64];
	uint64_t i = 1;

	(void)state;
	model_init(&m);
	while (w->nsegs < 2) {
		synced = m;
		assert_int_equal(wal_sync(w, NULL), 0);
		assert_int_equal(append_entries(w, &m, i, 4, 1, NULL, NULL), 0);
		i += 4;
	}
	/* The batch that opened segment 1 was never synced, nor its header. */
	wal_close(w);
	memfs_power_loss(fs, MEMFS_DROP_UNSYNCED, 7);
	assert_int_equal(memfs_list(fs, names, 8), 2);
	w = open_mem(fs, CSEG, &rec);
	check_recovered(&rec, &synced);
	check_entries(w, &synced);
	m = synced;
	assert_int_equal(append_entries(w, &m, m.last + 1, 3, 2, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	w = open_mem(fs, CSEG, &rec);
	check_recovered(&rec, &m);
	check_entries(w, &m);
	assert_int_equal(rec.segments, 2);
	wal_close(w);
	memfs_free(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_crash_at_any_byte_with_zeros_after_it_recovers_whole_batches),
	    cmocka_unit_test(a_crash_at_any_byte_with_garbage_after_it_recovers_whole_batches),
	    cmocka_unit_test(power_loss_tearing_unsynced_writes_keeps_every_synced_batch),
	    cmocka_unit_test(bit_flips_are_corruption_before_the_last_batch_and_cut_within_it),
	    cmocka_unit_test(bit_flips_in_an_older_segment_are_corruption_naming_file_and_offset),
	    cmocka_unit_test(an_older_segment_that_lost_its_last_batch_is_corruption),
	    cmocka_unit_test(entries_of_a_cut_tail_never_reappear_after_new_appends),
	    cmocka_unit_test(a_segment_created_but_never_synced_is_replaced_after_power_loss),
	};

	return cmocka_run_group_tests_name("wal_crash", tests, NULL, NULL);
}

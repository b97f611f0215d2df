/*
 * The WAL's behaviour without faults: appending, syncing, recovering,
 * overwriting a conflicting suffix, snapshot markers, reading back by index
 * range, releasing old segments, the rules a batch must obey, allocation
 * failures, and a round trip through the real POSIX file system.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/error.h"
#include "tests/wal/util.h"
#include "wal/dump.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEG 4096u

static void opening_an_empty_directory_gives_an_empty_log_and_writes_nothing(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal_recovered rec;
	struct wal *w = open_mem(fs, SEG, &rec);
	struct memfs_counts c;
	char names[8][64];

	(void)state;
	assert_int_equal(rec.last_index, 0);
	assert_int_equal(rec.first_index, 1);
	assert_false(rec.has_hard_state);
	assert_false(rec.has_snapshot);
	wal_close(w);
	memfs_counts(fs, &c);
	assert_int_equal(c.writes, 0);
	assert_int_equal(memfs_list(fs, names, 8), 0);
	memfs_free(fs);
}

static void synced_entries_and_hard_state_survive_reopen(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal_recovered rec;
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;
	uint64_t durable = 0;

	(void)state;
	model_init(&m);
	for (uint64_t i = 1; i <= 300; i += 3) {
		struct wal_hard_state hs = {i, i % 3, i - 1};
		assert_int_equal(append_entries(w, &m, i, 3, 1 + i / 50, &hs, NULL), 0);
		if (i % 30 == 1) {
			assert_int_equal(wal_sync(w, &durable), 0);
			assert_int_equal(durable, m.last);
		}
	}
	assert_int_equal(wal_sync(w, &durable), 0);
	assert_int_equal(durable, 300);
	check_entries(w, &m);
	wal_close(w);

	w = open_mem(fs, SEG, &rec);
	check_recovered(&rec, &m);
	assert_true(rec.segments > 2);
	check_entries(w, &m);
	/* And the log goes on from there. */
	assert_int_equal(append_entries(w, &m, 301, 5, 9, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	w = open_mem(fs, SEG, &rec);
	check_recovered(&rec, &m);
	check_entries(w, &m);
	wal_close(w);
	memfs_free(fs);
}

static void a_conflicting_suffix_is_overwritten_and_only_the_new_version_survives(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal_recovered rec;
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;

	(void)state;
	model_init(&m);
	assert_int_equal(append_entries(w, &m, 1, 10, 1, NULL, NULL), 0);
	/* A new leader at term 2 replaces 6..10 with 6..8. */
	assert_int_equal(append_entries(w, &m, 6, 3, 2, NULL, NULL), 0);
	m.last = 8;
	/* Fill a few segments, then overwrite across a segment boundary. */
	for (uint64_t i = 9; i < 400; i += 10)
		assert_int_equal(append_entries(w, &m, i, 10, 3, NULL, NULL), 0);
	assert_int_equal(append_entries(w, &m, 150, 2, 4, NULL, NULL), 0);
	m.last = 151;
	assert_int_equal(wal_sync(w, NULL), 0);
	check_entries(w, &m);
	wal_close(w);

	w = open_mem(fs, SEG, &rec);
	check_recovered(&rec, &m);
	assert_int_equal(rec.last_index, 151);
	check_entries(w, &m);
	assert_int_equal(append_entries(w, &m, 152, 1, 4, NULL, NULL), 0);
	wal_close(w);
	memfs_free(fs);
}

static void batches_that_break_the_rules_are_refused_and_leave_the_log_usable(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;
	struct wal_snapshot snap = {5, 1}, old = {3, 1};
	struct wal_entry e[2] = {{7, 1, 0, "a", 1}, {9, 1, 0, "b", 1}};
	struct wal_batch b = {NULL, e, 2, NULL}, empty = {NULL, NULL, 0, NULL};
	static unsigned char big[SEG];
	struct wal_entry huge = {11, 1, 0, big, sizeof big};
	struct wal_batch bb = {NULL, &huge, 1, NULL};

	(void)state;
	model_init(&m);
	assert_int_equal(append_entries(w, &m, 1, 10, 1, NULL, NULL), 0);
	assert_int_equal(append_entries(w, &m, 12, 1, 1, NULL, NULL), MOOR_EINVAL); /* gap */
	assert_int_equal(append_entries(w, &m, 0, 1, 1, NULL, NULL), MOOR_EINVAL);
	assert_int_equal(wal_append(w, &b), MOOR_EINVAL); /* not consecutive */
	assert_int_equal(wal_append(w, &empty), MOOR_EINVAL);
	assert_int_equal(wal_append(w, &bb), MOOR_ETOOLARGE);
	assert_int_equal(append_entries(w, &m, 11, 0, 1, NULL, &snap), 0);
	assert_int_equal(append_entries(w, &m, 11, 0, 1, NULL, &old), MOOR_EINVAL);
	assert_int_equal(append_entries(w, &m, 5, 1, 2, NULL, NULL), MOOR_EINVAL); /* <= snap */
	assert_int_equal(append_entries(w, &m, 6, 1, 2, NULL, NULL), 0);
	m.last = 6;
	assert_int_equal(wal_sync(w, NULL), 0);
	check_entries(w, &m);
	wal_close(w);
	memfs_free(fs);
}

static void a_snapshot_above_the_last_index_drops_the_entries_it_covers(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal_recovered rec;
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;
	struct wal_snapshot snap = {100, 3};
	struct wal_hard_state hs = {3, 2, 100};
	struct wal_entries es;

	(void)state;
	model_init(&m);
	assert_int_equal(append_entries(w, &m, 1, 10, 1, NULL, NULL), 0);
	assert_int_equal(append_entries(w, &m, 0, 0, 0, &hs, &snap), 0);
	assert_int_equal(append_entries(w, &m, 50, 1, 3, NULL, NULL), MOOR_EINVAL);
	assert_int_equal(append_entries(w, &m, 101, 4, 3, NULL, NULL), 0);
	assert_int_equal(wal_read(w, 5, 6, 0, &es), MOOR_ECOMPACTEDLOG);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	w = open_mem(fs, SEG, &rec);
	check_recovered(&rec, &m);
	assert_int_equal(rec.first_index, 101);
	assert_int_equal(rec.last_index, 104);
	check_entries(w, &m);
	wal_close(w);
	memfs_free(fs);
}

static void reads_serve_any_range_from_the_files_and_respect_max_bytes(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;
	struct wal_entries es;
	size_t sum = 0;

	(void)state;
	model_init(&m);
	for (uint64_t i = 1; i <= 500; i += 5)
		assert_int_equal(append_entries(w, &m, i, 5, 1 + i / 100, NULL, NULL), 0);
	for (uint64_t lo = 1; lo <= 500; lo += 37) {
		for (uint64_t hi = lo + 1; hi <= 501; hi += 53) {
			assert_int_equal(wal_read(w, lo, hi, 0, &es), 0);
			assert_int_equal(es.n, hi - lo);
			for (size_t i = 0; i < es.n; i++) {
				assert_int_equal(es.v[i].index, lo + i);
				assert_int_equal(es.v[i].term, m.term[lo + i]);
			}
			wal_entries_free(&es);
		}
	}
	assert_int_equal(wal_read(w, 10, 400, 200, &es), 0);
	assert_true(es.n >= 1 && es.n < 390);
	for (size_t i = 0; i < es.n; i++)
		sum += es.v[i].len;
	assert_true(sum <= 200 || es.n == 1);
	wal_entries_free(&es);
	assert_int_equal(wal_read(w, 10, 10, 0, &es), 0);
	assert_int_equal(es.n, 0);
	assert_int_equal(wal_read(w, 0, 10, 0, &es), MOOR_ECOMPACTEDLOG);
	assert_int_equal(wal_read(w, 10, 502, 0, &es), MOOR_EUNAVAILLOG);
	wal_close(w);
	memfs_free(fs);
}

static void reads_verify_every_record_and_report_damage_with_file_and_offset(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;
	struct wal_entries es;
	char names[16][64];
	unsigned char *img;
	size_t len;

	(void)state;
	model_init(&m);
	for (uint64_t i = 1; i <= 200; i += 5)
		assert_int_equal(append_entries(w, &m, i, 5, 1, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	assert_true(memfs_list(fs, names, 16) >= 2);
	/* Damage the first entries record of the first segment under the WAL. */
	assert_int_equal(memfs_read_file(fs, names[0], &img, &len), 0);
	img[48 + 24 + 20] ^= 0x40;
	assert_int_equal(memfs_write_file(fs, names[0], img, len), 0);
	assert_int_equal(wal_read(w, 1, 3, 0, &es), MOOR_ECORRUPT);
	assert_non_null(strstr(wal_errmsg(w), names[0]));
	assert_non_null(strstr(wal_errmsg(w), "offset 48"));
	/* Entries elsewhere still read. */
	assert_int_equal(wal_read(w, 150, 201, 0, &es), 0);
	assert_int_equal(es.n, 51);
	wal_entries_free(&es);
	free(img);
	wal_close(w);
	memfs_free(fs);
}

static void release_deletes_only_whole_segments_covered_by_the_snapshot(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal_recovered rec;
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;
	struct wal_snapshot snap = {600, 2};
	struct wal_hard_state hs = {2, 1, 600};
	char names[64][64];
	size_t before, after;
	unsigned released;
	struct wal_entries es;
	uint64_t first, last;

	(void)state;
	model_init(&m);
	for (uint64_t i = 1; i <= 1000; i += 10)
		assert_int_equal(append_entries(w, &m, i, 10, 2, NULL, NULL), 0);
	assert_int_equal(wal_release(w, 600, &released), MOOR_EINVAL); /* no snapshot yet */
	assert_int_equal(append_entries(w, &m, 1001, 1, 2, &hs, &snap), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	before = memfs_list(fs, names, 64);
	assert_int_equal(wal_release(w, 601, &released), MOOR_EINVAL);
	assert_int_equal(wal_release(w, 600, &released), 0);
	after = memfs_list(fs, names, 64);
	assert_true(released > 0);
	assert_int_equal(before - after, released);
	wal_index_range(w, &first, &last);
	assert_true(first > 1 && first <= 601);
	assert_int_equal(last, 1001);
	assert_int_equal(wal_read(w, first - 1, first, 0, &es), MOOR_ECOMPACTEDLOG);
	m.first = first;
	check_entries(w, &m);
	wal_close(w);

	w = open_mem(fs, SEG, &rec);
	check_recovered(&rec, &m);
	assert_int_equal(rec.first_index, first);
	check_entries(w, &m);
	wal_close(w);
	memfs_free(fs);
}

static void a_missing_segment_is_corruption_naming_the_file(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct model m;
	char names[64][64], err[512];
	struct memfs *c1, *c2;

	(void)state;
	model_init(&m);
	for (uint64_t i = 1; i <= 600; i += 10)
		assert_int_equal(append_entries(w, &m, i, 10, 1, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	assert_true(memfs_list(fs, names, 64) >= 4);
	c1 = memfs_clone(fs);
	assert_int_equal(memfs_remove_file(c1, names[1]), 0);
	assert_int_equal(try_open_mem(c1, SEG, &w, NULL, err, sizeof err), MOOR_ECORRUPT);
	assert_non_null(strstr(err, names[2]));
	assert_null(w);
	/* The first one gone with no snapshot to cover it: entries are missing. */
	c2 = memfs_clone(fs);
	assert_int_equal(memfs_remove_file(c2, names[0]), 0);
	assert_int_equal(try_open_mem(c2, SEG, &w, NULL, err, sizeof err), MOOR_ECORRUPT);
	assert_non_null(strstr(err, "missing"));
	memfs_free(c1);
	memfs_free(c2);
	memfs_free(fs);
}

static void every_allocation_failure_is_a_clean_enomem(void **state)
{
	struct memfs *base = memfs_new();
	struct wal *w = open_mem(base, 4096, NULL);
	struct model m;
	long n;

	(void)state;
	model_init(&m);
	for (uint64_t i = 1; i <= 100; i += 4)
		assert_int_equal(append_entries(w, &m, i, 4, 1, NULL, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	for (n = 0;; n++) {
		struct moor_alloc_failing fa;
		struct memfs *fs = memfs_clone(base);
		struct wal_config cfg = {.dir = "mem", .fs = memfs_fs(fs), .segment_bytes = 4096};
		struct wal_entries es;
		struct model m2 = m;
		int rc, ok = 0;
		moor_alloc_failing_init(&fa, n);
		cfg.alloc = &fa.alloc;
		rc = wal_open(&cfg, &w, NULL, NULL, 0);
		if (rc == 0) {
			rc = append_entries(w, &m2, 101, 30, 2, NULL, NULL);
			if (rc == 0)
				rc = wal_read(w, 1, 131, 0, &es);
			if (rc == 0) {
				assert_int_equal(es.n, 130);
				wal_entries_free(&es);
				ok = 1;
			}
			wal_close(w);
		}
		if (!ok)
			assert_int_equal(rc, MOOR_ENOMEM);
		assert_int_equal(fa.live, 0);
		memfs_free(fs);
		if (ok)
			break;
	}
	assert_true(n > 5);
	memfs_free(base);
}

static int rm_one(const char *dir, const char *name)
{
	char p[4096];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	return unlink(p);
}

static void a_log_on_the_real_file_system_round_trips_and_releases(void **state)
{
	char dir[] = "/tmp/moor-wal-test-XXXXXX";
	struct wal_config cfg = {.segment_bytes = 64u << 10};
	struct wal_recovered rec;
	struct wal *w;
	struct model m;
	struct wal_snapshot snap = {1500, 1};
	unsigned released;
	char err[512];
	DIR *d;
	struct dirent *e;
	int files = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	cfg.dir = dir;
	model_init(&m);
	assert_int_equal(wal_open(&cfg, &w, &rec, err, sizeof err), 0);
	for (uint64_t i = 1; i <= 2000; i += 20)
		assert_int_equal(append_entries(w, &m, i, 20, 1, NULL, NULL), 0);
	assert_int_equal(append_entries(w, &m, 2001, 1, 1, NULL, &snap), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	assert_int_equal(wal_open(&cfg, &w, &rec, err, sizeof err), 0);
	check_recovered(&rec, &m);
	check_entries(w, &m);
	assert_int_equal(wal_release(w, 1500, &released), 0);
	assert_true(released > 0);
	wal_close(w);
	assert_int_equal(wal_open(&cfg, &w, &rec, err, sizeof err), 0);
	check_recovered(&rec, &m);
	assert_true(rec.first_index > 1 && rec.first_index <= 1501);
	wal_close(w);
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		assert_int_equal(rm_one(dir, e->d_name), 0);
		files++;
	}
	closedir(d);
	assert_true(files >= 1);
	assert_int_equal(rmdir(dir), 0);
}

static void submitted_batches_are_written_in_submission_order(void **state)
{
	struct memfs *fs = memfs_new();
	struct wal *w = open_mem(fs, SEG, NULL);
	struct wal_recovered rec;
	struct wal_entry e[40];
	struct wal_batch b[40];
	struct wal_req req[40];
	struct model m;
	uint64_t durable = 0;

	(void)state;
	model_init(&m);
	for (int i = 0; i < 40; i++) {
		e[i] = (struct wal_entry){(uint64_t)i + 1, 1, (uint32_t)(i + 1) % 3, NULL, 0};
		b[i] = (struct wal_batch){NULL, &e[i], 1, NULL};
		m.term[i + 1] = 1;
		assert_int_equal(wal_submit(w, &req[i], &b[i]), 0);
	}
	m.last = 40;
	/* The first wait leads: all forty go out together, in order. */
	for (int i = 39; i >= 0; i--) {
		assert_int_equal(wal_wait(w, &req[i], &durable), 0);
		assert_int_equal(durable, 40);
	}
	wal_close(w);
	w = open_mem(fs, SEG, &rec);
	assert_int_equal(rec.last_index, 40);
	wal_close(w);
	memfs_free(fs);
}

static int dump_to_string(const char *dir, char **text)
{
	size_t len;
	FILE *f = open_memstream(text, &len);
	int st;

	assert_non_null(f);
	st = wal_dump_dir(f, dir, 1);
	fclose(f);
	return st;
}

static void wal_dump_prints_records_and_tells_a_torn_tail_from_corruption(void **state)
{
	char dir[] = "/tmp/moor-wal-dump-XXXXXX", path[4096], names[3][64];
	struct wal_config cfg = {.segment_bytes = 4096};
	struct wal_hard_state hs = {3, 2, 40};
	struct wal *w;
	struct model m;
	char *text;
	DIR *d;
	struct dirent *de;
	int fd, n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	cfg.dir = dir;
	model_init(&m);
	assert_int_equal(wal_open(&cfg, &w, NULL, NULL, 0), 0);
	for (uint64_t i = 1; i <= 200; i += 10)
		assert_int_equal(append_entries(w, &m, i, 10, 3, &hs, NULL), 0);
	assert_int_equal(wal_sync(w, NULL), 0);
	wal_close(w);
	assert_int_equal(dump_to_string(dir, &text), 0);
	assert_non_null(strstr(text, "records end at offset"));
	assert_non_null(strstr(text, "hard-state  term=3 vote=2 commit=40"));
	assert_non_null(strstr(text, "entry index=200 term=3"));
	free(text);

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && n < 3 && strlen(de->d_name) < 64)
			memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
	closedir(d);
	assert_true(n >= 2);
	qsort(names, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
	/* Garbage after the end of the last segment: a torn tail. */
	snprintf(path, sizeof path, "%s/%s", dir, names[n - 1]);
	assert_true((fd = open(path, O_WRONLY)) >= 0);
	assert_int_equal(pwrite(fd, "garbage!", 8, 4000), 8);
	close(fd);
	assert_int_equal(dump_to_string(dir, &text), 0);
	assert_non_null(strstr(text, "torn tail, recovery cuts it"));
	free(text);
	/* A flipped byte in the first segment: corruption. */
	snprintf(path, sizeof path, "%s/%s", dir, names[0]);
	assert_true((fd = open(path, O_WRONLY)) >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, 100), 1);
	close(fd);
	assert_int_equal(dump_to_string(dir, &text), 1);
	assert_non_null(strstr(text, "corruption"));
	free(text);

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_int_equal(rm_one(dir, de->d_name), 0);
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(opening_an_empty_directory_gives_an_empty_log_and_writes_nothing),
	    cmocka_unit_test(synced_entries_and_hard_state_survive_reopen),
	    cmocka_unit_test(a_conflicting_suffix_is_overwritten_and_only_the_new_version_survives),
	    cmocka_unit_test(batches_that_break_the_rules_are_refused_and_leave_the_log_usable),
	    cmocka_unit_test(a_snapshot_above_the_last_index_drops_the_entries_it_covers),
	    cmocka_unit_test(reads_serve_any_range_from_the_files_and_respect_max_bytes),
	    cmocka_unit_test(reads_verify_every_record_and_report_damage_with_file_and_offset),
	    cmocka_unit_test(release_deletes_only_whole_segments_covered_by_the_snapshot),
	    cmocka_unit_test(a_missing_segment_is_corruption_naming_the_file),
	    cmocka_unit_test(every_allocation_failure_is_a_clean_enomem),
	    cmocka_unit_test(a_log_on_the_real_file_system_round_trips_and_releases),
	    cmocka_unit_test(submitted_batches_are_written_in_submission_order),
	    cmocka_unit_test(wal_dump_prints_records_and_tells_a_torn_tail_from_corruption),
	};

	return cmocka_run_group_tests_name("wal_basic", tests, NULL, NULL);
}

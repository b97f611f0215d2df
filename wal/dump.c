/*
 * wal-dump: print a WAL directory's segments and records, for operators.
 *
 *   wal-dump [-v] DIR
 *
 * For each segment: its name, header and every record of every complete
 * batch (offset, type, length, synced offset, and the entries' index range,
 * the hard state or the snapshot marker); with -v every entry too. Then how
 * the segment ends: a clean end (checked against the next segment's header),
 * or the offset and reason of the first
 * bad record and whether recovery would cut it (torn tail) or refuse it
 * (corruption). Reads only; exit status 0 when recovery would succeed, 1 when
 * it would report corruption, 2 on usage or I/O errors. The tool's main is in
 * dump_main.c; this file is linked into the tests too.
 */
#include "wal/dump.h"

#include "common/error.h"
#include "wal/internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int verbose;
static FILE *out;

static int print_rec(void *arg, uint64_t off, const struct wal_rec *r)
{
	const char *why = NULL;

	(void)arg;
	fprintf(out, "  %10" PRIu64 "  ", off);
	switch (r->type) {
	case WAL_REC_ENTRIES: {
		uint64_t f;
		uint32_t n;
		struct wal_entry *v = NULL;
		if (wal_entries_decode(r->payload, r->len, &f, &n, NULL, &why) != 0) {
			fprintf(out, "entries     len=%u malformed: %s\n", r->len, why);
			break;
		}
		fprintf(out, "entries     len=%u index=%" PRIu64 "..%" PRIu64 " count=%u", r->len,
		        f, f + n - 1, n);
		if (verbose && (v = calloc(n, sizeof *v)) &&
		    wal_entries_decode(r->payload, r->len, &f, &n, v, &why) == 0)
			for (uint32_t i = 0; i < n; i++)
				fprintf(out,
				        "\n              entry index=%" PRIu64 " term=%" PRIu64
				        " type=%u len=%zu",
				        v[i].index, v[i].term, v[i].type, v[i].len);
		free(v);
		break;
	}
	case WAL_REC_HARD_STATE: {
		struct wal_hard_state hs;
		if (wal_hard_state_decode(r, &hs) == 0)
			fprintf(out,
			        "hard-state  term=%" PRIu64 " vote=%" PRIu64 " commit=%" PRIu64,
			        hs.term, hs.vote, hs.commit);
		else
			fprintf(out, "hard-state  malformed");
		break;
	}
	case WAL_REC_SNAPSHOT: {
		struct wal_snapshot s;
		if (wal_snapshot_decode(r, &s) == 0)
			fprintf(out, "snapshot    index=%" PRIu64 " term=%" PRIu64, s.index,
			        s.term);
		else
			fprintf(out, "snapshot    malformed");
		break;
	}
	}
	fprintf(out, "%s synced=%" PRIu64 "\n", r->flags & WAL_REC_F_BATCH_END ? " [end]" : "",
	        r->synced);
	return 0;
}

struct names {
	char **v;
	size_t n;
};

static int add_name(void *arg, const char *name)
{
	struct names *ns = arg;
	uint64_t a, b;
	char **p;

	if (wal_seg_name_parse(name, &a, &b) != 0)
		return 0;
	if (!(p = realloc(ns->v, (ns->n + 1) * sizeof *p)) || !(p[ns->n] = strdup(name)))
		return MOOR_ENOMEM;
	ns->v = p;
	ns->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* *prev_end: in, where the previous segment's records end (UINT64_MAX:
 * none seen); out, where this one's end. */
static int dump_segment(const char *dir, const char *name, int last, uint64_t *prev_end)
{
	char path[4096];
	struct stat st;
	struct wal_seg_header h;
	struct wal_scan s;
	unsigned char *buf;
	const char *why;
	int fd, status = 0;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
		perror(path);
		if (fd >= 0)
			close(fd);
		return 2;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(buf);
		close(fd);
		return 2;
	}
	close(fd);
	fprintf(out, "%s  size=%lld\n", name, (long long)st.st_size);
	if (wal_seg_header_decode(buf, (size_t)st.st_size, &h, &why) != 0) {
		uint64_t seq = 0, first = 0, durable = 0;
		wal_seg_name_parse(name, &seq, &first);
		for (uint64_t p = WAL_SEG_HDR_BYTES; p + WAL_REC_HDR_BYTES <= (uint64_t)st.st_size;
		     p += WAL_ALIGN) {
			struct wal_rec r;
			const char *ignored;
			if (wal_rec_check(buf + p, (size_t)st.st_size - p, p,
			                  wal_seg_seed(seq, first), &r,
			                  &ignored) == WAL_REC_VALID &&
			    r.synced > WAL_SEG_HDR_BYTES) {
				durable = p;
				break;
			}
		}
		if (last && !durable) {
			fprintf(out,
			        "  offset 0: %s; torn creation, nothing in it was synced: "
			        "the writer replaces it\n",
			        why);
			free(buf);
			return 0;
		}
		fprintf(out, "  offset 0: %s: corruption\n", why);
		free(buf);
		return 1;
	}
	fprintf(out,
	        "  header: version=%u seq=%" PRIu64 " first_index=%" PRIu64 " prev_end=%" PRIu64
	        "\n",
	        WAL_FORMAT_VERSION, h.seq, h.first_index, h.prev_end);
	if (*prev_end != UINT64_MAX && h.prev_end != *prev_end) {
		fprintf(out,
		        "  the previous segment's records end at offset %" PRIu64 ", not %" PRIu64
		        ": corruption\n",
		        *prev_end, h.prev_end);
		status = 1;
	}
	s.buf = buf;
	s.len = (size_t)st.st_size;
	s.seed = h.seed;
	wal_scan_segment(&s, print_rec, NULL);
	*prev_end = s.end;
	if (s.bad_off == UINT64_MAX) {
		fprintf(out, "  records end at offset %" PRIu64 "\n", s.end);
	} else {
		int corrupt = !last || s.durable_after;
		fprintf(out, "  offset %" PRIu64 ": %s; %s\n", s.bad_off, s.why,
		        corrupt ? "corruption" : "torn tail, recovery cuts it");
		if (s.durable_after)
			fprintf(out,
			        "  (the valid record at offset %" PRIu64
			        " was written after that data was durable)\n",
			        s.durable_after);
		if (!corrupt)
			fprintf(out, "  tail to cut: offsets %" PRIu64 "..%" PRIu64 "\n", s.end,
			        s.dirty);
		if (corrupt)
			status = 1;
	}
	free(buf);
	return status;
}

int wal_dump_dir(FILE *to, const char *dir, int verbose_entries)
{
	struct names ns = {NULL, 0};
	uint64_t prev_end = UINT64_MAX;
	int rc, status = 0;

	out = to;
	verbose = verbose_entries;
	rc = wal_fs_posix()->dir_list(NULL, dir, add_name, &ns);
	if (rc != 0) {
		fprintf(stderr, "wal-dump: %s: %s\n", dir, moor_strerror(rc));
		for (size_t i = 0; i < ns.n; i++)
			free(ns.v[i]);
		free(ns.v);
		return 2;
	}
	if (ns.n > 1)
		qsort(ns.v, ns.n, sizeof *ns.v, cmp_str);
	if (ns.n == 0)
		fprintf(out, "%s: no segments\n", dir);
	for (size_t i = 0; i < ns.n; i++) {
		int st = dump_segment(dir, ns.v[i], i + 1 == ns.n, &prev_end);
		if (st > status)
			status = st;
		free(ns.v[i]);
	}
	free(ns.v);
	return status;
}

/*
 * memfs: the in-memory, fault-injecting file system of the WAL tests (see
 * memfs.h). Small fixed tables: tests never hold many files. Inodes are
 * freed only with the memfs, which keeps unlinking and power loss simple.
 */
#include "tests/wal/memfs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INODES 512
#define MAX_NAMES 128
#define MAX_FDS 128
#define SECTOR 512

struct pending {
	uint64_t off, len;
};

struct inode {
	unsigned char *data, *dur;
	size_t len, cap, dur_len;
	struct pending *pend;
	size_t npend, pendcap;
};

struct dname {
	char name[64];
	int ino; /* -1: free slot */
};

struct memfs {
	struct wal_fs fs;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct inode ino[MAX_INODES];
	int nino;
	struct dname cur[MAX_NAMES], dur[MAX_NAMES];
	int fds[MAX_FDS]; /* inode or -1 */
	long fail_write_n, fail_sync_n, fail_dsync_n;
	int fail_write_err, fail_sync_err, fail_dsync_err;
	size_t short_max;
	int gate_closed;
	unsigned gate_held;
	struct memfs_counts c;
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		abort(); /* test infrastructure: out of memory is fatal */
	return q;
}

static int find_name(struct dname *t, const char *name)
{
	for (int i = 0; i < MAX_NAMES; i++)
		if (t[i].ino >= 0 && strcmp(t[i].name, name) == 0)
			return i;
	return -1;
}

static int free_name(struct dname *t)
{
	for (int i = 0; i < MAX_NAMES; i++)
		if (t[i].ino < 0)
			return i;
	abort();
}

static int new_inode(struct memfs *m)
{
	if (m->nino == MAX_INODES)
		abort();
	memset(&m->ino[m->nino], 0, sizeof m->ino[0]);
	return m->nino++;
}

static void set_len(struct inode *in, size_t len)
{
	if (len > in->cap) {
		size_t cap = in->cap ? in->cap : 4096;
		while (cap < len)
			cap *= 2;
		in->data = xrealloc(in->data, cap);
		in->cap = cap;
	}
	if (len > in->len)
		memset(in->data + in->len, 0, len - in->len);
	in->len = len;
}

static int take(long *n)
{
	if (*n <= 0)
		return 0;
	return --*n == 0;
}

static int m_open(void *ctx, const char *dir, const char *name, int flags, int *fd)
{
	struct memfs *m = ctx;
	int rc = 0;

	(void)dir;
	pthread_mutex_lock(&m->mu);
	do {
		int n = find_name(m->cur, name), ino, f;
		if (n < 0 && !(flags & WAL_FS_CREATE)) {
			rc = -ENOENT;
			break;
		}
		if (n < 0) {
			n = free_name(m->cur);
			ino = new_inode(m);
			strcpy(m->cur[n].name, name);
			m->cur[n].ino = ino;
		} else {
			ino = m->cur[n].ino;
			if (flags & WAL_FS_CREATE)
				set_len(&m->ino[ino], 0);
		}
		for (f = 0; f < MAX_FDS && m->fds[f] >= 0; f++)
			;
		if (f == MAX_FDS)
			abort();
		m->fds[f] = ino;
		*fd = f;
		m->c.opens++;
		m->c.open_files++;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int m_close(void *ctx, int fd)
{
	struct memfs *m = ctx;

	pthread_mutex_lock(&m->mu);
	do {
		if (fd < 0 || fd >= MAX_FDS || m->fds[fd] < 0)
			abort(); /* the WAL closed a file it does not hold */
		m->fds[fd] = -1;
		m->c.open_files--;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int m_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off, size_t *n)
{
	struct memfs *m = ctx;

	pthread_mutex_lock(&m->mu);
	do {
		struct inode *in = &m->ino[m->fds[fd]];
		size_t k = off >= in->len ? 0 : in->len - (size_t)off;
		if (k > len)
			k = len;
		if (k)
			memcpy(buf, in->data + off, k);
		*n = k;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int m_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off, size_t *n)
{
	struct memfs *m = ctx;
	int rc = 0;

	pthread_mutex_lock(&m->mu);
	do {
		struct inode *in = &m->ino[m->fds[fd]];
		m->c.writes++;
		if (take(&m->fail_write_n)) {
			rc = -m->fail_write_err;
			break;
		}
		if (m->short_max && len > m->short_max)
			len = m->short_max;
		if (off + len > in->len)
			set_len(in, (size_t)(off + len));
		memcpy(in->data + off, buf, len);
		if (in->npend == in->pendcap) {
			in->pendcap = in->pendcap ? in->pendcap * 2 : 16;
			in->pend = xrealloc(in->pend, in->pendcap * sizeof *in->pend);
		}
		in->pend[in->npend++] = (struct pending){off, len};
		*n = len;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int m_fdatasync(void *ctx, int fd)
{
	struct memfs *m = ctx;
	int rc = 0;

	pthread_mutex_lock(&m->mu);
	do {
		struct inode *in = &m->ino[m->fds[fd]];
		m->c.syncs++;
		if (++m->c.syncs_in_flight > m->c.max_syncs_in_flight)
			m->c.max_syncs_in_flight = m->c.syncs_in_flight;
		m->gate_held++;
		pthread_cond_broadcast(&m->cond);
		while (m->gate_closed)
			pthread_cond_wait(&m->cond, &m->mu);
		m->gate_held--;
		m->c.syncs_in_flight--;
		if (take(&m->fail_sync_n)) {
			rc = -m->fail_sync_err;
			break;
		}
		in->dur = xrealloc(in->dur, in->len);
		if (in->len)
			memcpy(in->dur, in->data, in->len);
		in->dur_len = in->len;
		in->npend = 0;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int m_fallocate(void *ctx, int fd, uint64_t len)
{
	struct memfs *m = ctx;

	pthread_mutex_lock(&m->mu);
	do {
		struct inode *in = &m->ino[m->fds[fd]];
		if (len > in->len)
			set_len(in, (size_t)len);
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int m_ftruncate(void *ctx, int fd, uint64_t len)
{
	struct memfs *m = ctx;

	pthread_mutex_lock(&m->mu);
	do {
		set_len(&m->ino[m->fds[fd]], (size_t)len);
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int m_size(void *ctx, int fd, uint64_t *len)
{
	struct memfs *m = ctx;

	pthread_mutex_lock(&m->mu);
	do {
		*len = m->ino[m->fds[fd]].len;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int m_rename(void *ctx, const char *dir, const char *from, const char *to)
{
	struct memfs *m = ctx;
	int rc = 0;

	(void)dir;
	pthread_mutex_lock(&m->mu);
	do {
		int a = find_name(m->cur, from), b = find_name(m->cur, to);
		if (a < 0) {
			rc = -ENOENT;
			break;
		}
		if (b >= 0)
			m->cur[b].ino = -1;
		strcpy(m->cur[a].name, to);
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int m_unlink(void *ctx, const char *dir, const char *name)
{
	struct memfs *m = ctx;
	int rc = 0;

	(void)dir;
	pthread_mutex_lock(&m->mu);
	do {
		int a = find_name(m->cur, name);
		if (a < 0)
			rc = -ENOENT;
		else
			m->cur[a].ino = -1;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int m_dir_sync(void *ctx, const char *dir)
{
	struct memfs *m = ctx;
	int rc = 0;

	(void)dir;
	pthread_mutex_lock(&m->mu);
	do {
		m->c.dir_syncs++;
		if (take(&m->fail_dsync_n)) {
			rc = -m->fail_dsync_err;
			break;
		}
		memcpy(m->dur, m->cur, sizeof m->cur);
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int m_dir_list(void *ctx, const char *dir, int (*fn)(void *arg, const char *name), void *arg)
{
	struct memfs *m = ctx;
	char names[MAX_NAMES][64];
	size_t n = memfs_list(m, names, MAX_NAMES);
	int rc;

	(void)dir;
	for (size_t i = 0; i < n; i++)
		if ((rc = fn(arg, names[i])) != 0)
			return rc;
	return 0;
}

struct memfs *memfs_new(void)
{
	struct memfs *m = calloc(1, sizeof *m);

	if (!m)
		abort();
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cond, NULL);
	for (int i = 0; i < MAX_NAMES; i++)
		m->cur[i].ino = m->dur[i].ino = -1;
	for (int i = 0; i < MAX_FDS; i++)
		m->fds[i] = -1;
	m->fs = (struct wal_fs){m_open,      m_close,     m_pread, m_pwrite, m_fdatasync,
	                        m_fallocate, m_ftruncate, m_size,  m_rename, m_unlink,
	                        m_dir_sync,  m_dir_list,  m};
	return m;
}

void memfs_free(struct memfs *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nino; i++) {
		free(m->ino[i].data);
		free(m->ino[i].dur);
		free(m->ino[i].pend);
	}
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
	unsigned char *q = xrealloc(NULL, n);

	if (n)
		memcpy(q, p, n);
	return q;
}

struct memfs *memfs_clone(const struct memfs *src)
{
	struct memfs *m = memfs_new();

	m->nino = src->nino;
	for (int i = 0; i < src->nino; i++) {
		const struct inode *a = &src->ino[i];
		struct inode *b = &m->ino[i];
		b->data = dup_bytes(a->data, a->len);
		b->len = b->cap = a->len;
		b->dur = dup_bytes(a->dur, a->dur_len);
		b->dur_len = a->dur_len;
		b->pend = a->npend
		              ? (void *)dup_bytes((const void *)a->pend, a->npend * sizeof *a->pend)
		              : NULL;
		b->npend = b->pendcap = a->npend;
	}
	memcpy(m->cur, src->cur, sizeof m->cur);
	memcpy(m->dur, src->dur, sizeof m->dur);
	return m;
}

const struct wal_fs *memfs_fs(struct memfs *m)
{
	return &m->fs;
}

void memfs_fail_write(struct memfs *m, long nth, int err)
{
	pthread_mutex_lock(&m->mu);
	do {
		m->fail_write_n = nth;
		m->fail_write_err = err;
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

void memfs_fail_sync(struct memfs *m, long nth, int err)
{
	pthread_mutex_lock(&m->mu);
	do {
		m->fail_sync_n = nth;
		m->fail_sync_err = err;
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

void memfs_fail_dir_sync(struct memfs *m, long nth, int err)
{
	pthread_mutex_lock(&m->mu);
	do {
		m->fail_dsync_n = nth;
		m->fail_dsync_err = err;
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

void memfs_short_writes(struct memfs *m, size_t max)
{
	pthread_mutex_lock(&m->mu);
	do {
		m->short_max = max;
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void memfs_power_loss(struct memfs *m, enum memfs_loss how, uint64_t seed)
{
	uint64_t rs = seed * 2654435761u + 1;

	pthread_mutex_lock(&m->mu);
	do {
		for (int i = 0; i < m->nino; i++) {
			struct inode *in = &m->ino[i];
			unsigned char *img = dup_bytes(in->dur, in->dur_len);
			size_t len = in->dur_len;
			for (size_t p = 0; how == MEMFS_TEAR_UNSYNCED && p < in->npend; p++) {
				uint64_t off = in->pend[p].off, end = off + in->pend[p].len;
				for (uint64_t s = off - off % SECTOR; s < end; s += SECTOR) {
					uint64_t a = s < off ? off : s;
					uint64_t b = s + SECTOR < end ? s + SECTOR : end;
					if (b > in->len)
						b = in->len;
					if (a >= b || !(next_rand(&rs) & 1))
						continue;
					if (b > len) {
						img = xrealloc(img, (size_t)b);
						memset(img + len, 0, (size_t)b - len);
						len = (size_t)b;
					}
					memcpy(img + a, in->data + a, (size_t)(b - a));
				}
			}
			free(in->data);
			in->data = img;
			in->len = in->cap = len;
			in->npend = 0;
			in->dur = xrealloc(in->dur, len);
			if (len)
				memcpy(in->dur, img, len);
			in->dur_len = len;
		}
		memcpy(m->cur, m->dur, sizeof m->cur);
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

void memfs_gate_close(struct memfs *m)
{
	pthread_mutex_lock(&m->mu);
	do {
		m->gate_closed = 1;
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

void memfs_gate_open(struct memfs *m)
{
	pthread_mutex_lock(&m->mu);
	do {
		m->gate_closed = 0;
		pthread_cond_broadcast(&m->cond);
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

void memfs_gate_wait(struct memfs *m, unsigned n)
{
	pthread_mutex_lock(&m->mu);
	do {
		while (m->gate_held < n)
			pthread_cond_wait(&m->cond, &m->mu);
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

int memfs_read_file(struct memfs *m, const char *name, unsigned char **data, size_t *len)
{
	int rc = 0;

	pthread_mutex_lock(&m->mu);
	do {
		int n = find_name(m->cur, name);
		if (n < 0) {
			rc = -ENOENT;
			break;
		}
		*len = m->ino[m->cur[n].ino].len;
		*data = dup_bytes(m->ino[m->cur[n].ino].data, *len);
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int memfs_write_file(struct memfs *m, const char *name, const void *data, size_t len)
{
	int rc = 0;

	pthread_mutex_lock(&m->mu);
	do {
		int n = find_name(m->cur, name);
		struct inode *in;
		if (n < 0) {
			rc = -ENOENT;
			break;
		}
		in = &m->ino[m->cur[n].ino];
		set_len(in, len);
		memcpy(in->data, data, len);
		in->dur = xrealloc(in->dur, len);
		memcpy(in->dur, data, len);
		in->dur_len = len;
		in->npend = 0;
	} while (0);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int memfs_remove_file(struct memfs *m, const char *name)
{
	int rc = m_unlink(m, NULL, name);

	if (rc == 0)
		m_dir_sync(m, NULL);
	return rc;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

size_t memfs_list(struct memfs *m, char (*names)[64], size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&m->mu);
	do {
		for (int i = 0; i < MAX_NAMES && n < max; i++)
			if (m->cur[i].ino >= 0)
				memcpy(names[n++], m->cur[i].name, 64);
	} while (0);
	pthread_mutex_unlock(&m->mu);
	qsort(names, n, 64, cmp_name);
	return n;
}

void memfs_counts(struct memfs *m, struct memfs_counts *c)
{
	pthread_mutex_lock(&m->mu);
	do {
		*c = m->c;
	} while (0);
	pthread_mutex_unlock(&m->mu);
}

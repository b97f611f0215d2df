/*
 * The POSIX implementation of struct wal_fs: the real file operations behind
 * the WAL. Paths are joined as dir/name; every call retries on EINTR and
 * reports failures as -errno. fallocate uses the Linux call (mode 0, so the
 * file becomes `len` long with its blocks reserved) and reports EOPNOTSUPP
 * where the file system has none, so the WAL can fall back to ftruncate.
 */
#include "wal/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int px_open(void *ctx, const char *dir, const char *name, int flags, int *fd)
{
	char path[PATH_MAX];
	int of = O_CLOEXEC, rc;

	(void)ctx;
	if ((rc = join(path, sizeof path, dir, name)) != 0)
		return rc;
	if (flags & WAL_FS_RDWR)
		of |= O_RDWR;
	else
		of |= O_RDONLY;
	if (flags & WAL_FS_CREATE)
		of |= O_CREAT | O_TRUNC;
	do {
		rc = open(path, of, 0644);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	*fd = rc;
	return 0;
}

static int px_close(void *ctx, int fd)
{
	(void)ctx;
	/* Never retry close on EINTR: the descriptor is gone either way. */
	return close(fd) == 0 ? 0 : -errno;
}

static int px_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off, size_t *n)
{
	ssize_t r;

	(void)ctx;
	do {
		r = pread(fd, buf, len, (off_t)off);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	*n = (size_t)r;
	return 0;
}

static int px_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off, size_t *n)
{
	ssize_t r;

	(void)ctx;
	do {
		r = pwrite(fd, buf, len, (off_t)off);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	*n = (size_t)r;
	return 0;
}

static int px_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	/* Not retried on EINTR either: fdatasync is not interrupted by signals on
	 * Linux, and a failed one is fatal to the WAL by design. */
	return fdatasync(fd) == 0 ? 0 : -errno;
}

static int px_fallocate(void *ctx, int fd, uint64_t len)
{
	int rc;

	(void)ctx;
	do {
		rc = fallocate(fd, 0, 0, (off_t)len);
	} while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return 0;
	return errno == ENOSYS ? -EOPNOTSUPP : -errno;
}

static int px_ftruncate(void *ctx, int fd, uint64_t len)
{
	int rc;

	(void)ctx;
	do {
		rc = ftruncate(fd, (off_t)len);
	} while (rc < 0 && errno == EINTR);
	return rc == 0 ? 0 : -errno;
}

static int px_size(void *ctx, int fd, uint64_t *len)
{
	struct stat st;

	(void)ctx;
	if (fstat(fd, &st) != 0)
		return -errno;
	*len = (uint64_t)st.st_size;
	return 0;
}

static int px_rename(void *ctx, const char *dir, const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];
	int rc;

	(void)ctx;
	if ((rc = join(a, sizeof a, dir, from)) != 0 || (rc = join(b, sizeof b, dir, to)) != 0)
		return rc;
	return rename(a, b) == 0 ? 0 : -errno;
}

static int px_unlink(void *ctx, const char *dir, const char *name)
{
	char path[PATH_MAX];
	int rc;

	(void)ctx;
	if ((rc = join(path, sizeof path, dir, name)) != 0)
		return rc;
	return unlink(path) == 0 ? 0 : -errno;
}

static int px_dir_sync(void *ctx, const char *dir)
{
	int fd, rc = 0;

	(void)ctx;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int px_dir_list(void *ctx, const char *dir, int (*fn)(void *arg, const char *name),
                       void *arg)
{
	DIR *d;
	struct dirent *e;
	int rc = 0;

	(void)ctx;
	d = opendir(dir);
	if (!d)
		return -errno;
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e) {
			rc = errno ? -errno : 0;
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((rc = fn(arg, e->d_name)) != 0)
			break;
	}
	closedir(d);
	return rc;
}

static const struct wal_fs posix_fs = {
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .fdatasync = px_fdatasync,
    .fallocate = px_fallocate,
    .ftruncate = px_ftruncate,
    .size = px_size,
    .rename = px_rename,
    .unlink = px_unlink,
    .dir_sync = px_dir_sync,
    .dir_list = px_dir_list,
    .ctx = NULL,
};

const struct wal_fs *wal_fs_posix(void)
{
	return &posix_fs;
}

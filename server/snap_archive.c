/* The snapshot archive (see snapshot.h): pack, unpack, remove. */
#include "server/snapshot.h"

#include "common/buf.h"
#include "common/crc32c.h"
#include "common/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_BUF (256 * 1024)

static int write_all(int fd, const void *p, size_t n, uint32_t *crc)
{
	const unsigned char *b = p;

	if (crc)
		*crc = moor_crc32c(*crc, p, n);
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	unsigned char *b = p;

	while (n) {
		ssize_t r = read(fd, b, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return MOOR_ECORRUPT;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int srv_snap_pack(const char *dir, const char *path, uint64_t *total, uint32_t *crc, char *err,
                  size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned char *buf = malloc(IO_BUF);
	int out = -1, rc = 0;
	uint64_t n = 0;

	*crc = 0;
	if (!d || !buf) {
		rc = d ? MOOR_ENOMEM : -errno;
		snprintf(err, errlen, "cannot read checkpoint %s: %s", dir, moor_strerror(rc));
		goto done;
	}
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(-rc));
		goto done;
	}
	rc = write_all(out, SRV_SNAP_MAGIC, strlen(SRV_SNAP_MAGIC), crc);
	n += strlen(SRV_SNAP_MAGIC);
	while (rc == 0 && (e = readdir(d)) != NULL) {
		char fpath[1200];
		struct stat st;
		unsigned char hdr[2 + 255 + 8];
		size_t nl = strlen(e->d_name);
		int in;

		snprintf(fpath, sizeof fpath, "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || stat(fpath, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (nl > 255) {
			rc = MOOR_EINVAL;
			break;
		}
		hdr[0] = (unsigned char)(nl >> 8);
		hdr[1] = (unsigned char)nl;
		memcpy(hdr + 2, e->d_name, nl);
		moor_put_be64(hdr + 2 + nl, (uint64_t)st.st_size);
		rc = write_all(out, hdr, 2 + nl + 8, crc);
		n += 2 + nl + 8;
		in = open(fpath, O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			rc = -errno;
			break;
		}
		for (uint64_t left = (uint64_t)st.st_size; rc == 0 && left;) {
			size_t k = left < IO_BUF ? (size_t)left : IO_BUF;
			rc = read_all(in, buf, k);
			if (rc == 0)
				rc = write_all(out, buf, k, crc);
			left -= k;
			n += k;
		}
		close(in);
	}
	if (rc == 0) {
		unsigned char end[2] = {0, 0};
		rc = write_all(out, end, 2, crc);
		n += 2;
	}
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
	if (rc)
		snprintf(err, errlen, "cannot pack %s into %s: %s", dir, path, moor_strerror(rc));
	*total = n;
done:
	if (out >= 0)
		close(out);
	if (d)
		closedir(d);
	free(buf);
	return rc;
}

int srv_snap_unpack(const char *path, const char *dir, char *err, size_t errlen)
{
	int in = open(path, O_RDONLY | O_CLOEXEC), rc = 0, dfd;
	unsigned char *buf = malloc(IO_BUF);
	char magic[16];
	struct stat st;
	uint64_t left;

	if (in < 0 || !buf) {
		rc = in < 0 ? -errno : MOOR_ENOMEM;
		snprintf(err, errlen, "cannot read %s: %s", path, moor_strerror(rc));
		goto done;
	}
	fstat(in, &st);
	left = (uint64_t)st.st_size;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
		goto done;
	}
	rc = read_all(in, magic, strlen(SRV_SNAP_MAGIC));
	if (rc || memcmp(magic, SRV_SNAP_MAGIC, strlen(SRV_SNAP_MAGIC)) != 0) {
		rc = MOOR_ECORRUPT;
		snprintf(err, errlen, "%s is not a moor snapshot archive", path);
		goto done;
	}
	left -= strlen(SRV_SNAP_MAGIC);
	for (;;) {
		unsigned char h[2], sz[8];
		char name[256], fpath[1300];
		size_t nl;
		uint64_t size;
		int out;

		if (left < 2 || read_all(in, h, 2) != 0)
			goto corrupt;
		left -= 2;
		nl = (size_t)h[0] << 8 | h[1];
		if (nl == 0)
			break;
		if (nl > 255 || left < nl + 8 || read_all(in, name, nl) != 0 ||
		    read_all(in, sz, 8) != 0)
			goto corrupt;
		name[nl] = '\0';
		left -= nl + 8;
		size = moor_get_be64(sz);
		if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
		    strlen(name) != nl || size > left)
			goto corrupt;
		snprintf(fpath, sizeof fpath, "%s/%s", dir, name);
		out = open(fpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot create %s: %s", fpath, strerror(-rc));
			goto done;
		}
		for (uint64_t r = size; rc == 0 && r;) {
			size_t k = r < IO_BUF ? (size_t)r : IO_BUF;
			rc = read_all(in, buf, k);
			if (rc == 0)
				rc = write_all(out, buf, k, NULL);
			r -= k;
		}
		if (rc == 0 && fsync(out) != 0)
			rc = -errno;
		close(out);
		if (rc) {
			snprintf(err, errlen, "cannot write %s: %s", fpath, moor_strerror(rc));
			goto done;
		}
		left -= size;
	}
	if (left != 0)
		goto corrupt;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	goto done;
corrupt:
	rc = MOOR_ECORRUPT;
	snprintf(err, errlen, "snapshot archive %s is corrupt near byte %llu", path,
	         (unsigned long long)((uint64_t)st.st_size - left));
done:
	if (in >= 0)
		close(in);
	free(buf);
	return rc;
}

void srv_snap_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[1300];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

int srv_snap_link(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *e;
	char a[1300], b[1300];
	int rc = 0;

	if (!d)
		return -errno;
	if (mkdir(to, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		closedir(d);
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(a, sizeof a, "%s/%s", from, e->d_name);
		snprintf(b, sizeof b, "%s/%s", to, e->d_name);
		if (link(a, b) != 0)
			rc = -errno;
	}
	closedir(d);
	if (rc == 0) {
		int fd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return rc;
}

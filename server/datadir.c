/*
 * The member's data directory: created if missing, checked to be a writable
 * directory, and locked with flock so that two moord processes can never
 * write the same WAL and store (the second refuses to start, naming the dir).
 */
#include "server/server.h"

#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *dir)
{
	char tmp[1024];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof tmp)
		return -ENAMETOOLONG;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int srv_data_dir_open(const char *dir, int *lock_fd, char *err, size_t errlen)
{
	struct stat st;
	char path[1100];
	int fd, rc;

	rc = mkdir_p(dir);
	if (rc) {
		snprintf(err, errlen, "data directory %s cannot be created: %s", dir,
		         strerror(-rc));
		return rc;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "data directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (access(dir, R_OK | W_OK | X_OK) != 0) {
		rc = -errno;
		snprintf(err, errlen, "data directory %s is not writable: %s", dir, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof path, "%s/moord.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "data directory %s: cannot open %s: %s", dir, path,
		         strerror(-rc));
		return rc;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		snprintf(err, errlen, "data directory %s is in use by another moord (%s)", dir,
		         rc == -EWOULDBLOCK ? "locked" : strerror(-rc));
		close(fd);
		return rc == -EWOULDBLOCK ? MOOR_EBUSY : rc;
	}
	*lock_fd = fd;
	return 0;
}

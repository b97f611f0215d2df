/*
 * A preloaded shim (LD_PRELOAD) that makes one moord member's disk slow or
 * failing, switched at run time by a control file named in the environment
 * variable MOORJ_DISK_CTL: absent or empty, the disk is healthy; "slow MS",
 * every fsync/fdatasync first sleeps MS milliseconds; "fail", every
 * fsync/fdatasync returns -1 with errno EIO (after which the member's WAL
 * must stop: a failed fsync is never retried). The file is read at every
 * sync (an open and a read, small next to the sync itself).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);

/* 0 healthy, -1 fail, else the delay in ms. */
static long disk_mode(void)
{
	const char *path = getenv("MOORJ_DISK_CTL");
	char buf[32];
	if (!path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (!strncmp(buf, "fail", 4))
		return -1;
	if (!strncmp(buf, "slow ", 5))
		return strtol(buf + 5, NULL, 10);
	return 0;
}

static int apply(long mode)
{
	if (mode < 0) {
		errno = EIO;
		return -1;
	}
	if (mode > 0) {
		struct timespec ts = {mode / 1000, (mode % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return 0;
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fsync");
	if (apply(disk_mode()) != 0)
		return -1;
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
	if (apply(disk_mode()) != 0)
		return -1;
	return real(fd);
}

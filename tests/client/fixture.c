/* The moord cluster fixture of libmoor's tests (see fixture.h). */
#include "tests/client/fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

moor_client_log_fn fx_log_fn;
void *fx_log_ctx;

uint64_t fx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void fx_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Ports from the kernel; the sockets stay open until all are chosen so no
 * two are equal. */
static int free_ports(int *ports, int n)
{
	int fds[2 * FX_MAX];

	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t len = sizeof a;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
		    getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
			return -1;
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

int fx_member_start(struct fx_cluster *fx, int i)
{
	char name[16], data[128], curl[64], purl[64], log[128];
	pid_t pid;

	snprintf(name, sizeof name, "m%d", i + 1);
	snprintf(data, sizeof data, "%s/%s", fx->dir, name);
	snprintf(curl, sizeof curl, "http://127.0.0.1:%d", fx->cport[i]);
	snprintf(purl, sizeof purl, "http://127.0.0.1:%d", fx->pport[i]);
	snprintf(log, sizeof log, "%s/%s.log", fx->dir, name);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(fx->moord, fx->moord, "--name", name, "--data-dir", data,
		      "--listen-client-urls", curl, "--listen-peer-urls", purl, "--initial-cluster",
		      fx->initial, (char *)NULL);
		_exit(127);
	}
	fx->pid[i] = pid;
	return 0;
}

void fx_member_kill(struct fx_cluster *fx, int i)
{
	if (fx->pid[i] <= 0)
		return;
	kill(fx->pid[i], SIGKILL);
	waitpid(fx->pid[i], NULL, 0);
	fx->pid[i] = 0;
}

int fx_index_of(struct fx_cluster *fx, const char *url)
{
	for (int i = 0; i < fx->n; i++)
		if (strcmp(fx->url[i], url) == 0)
			return i;
	return -1;
}

moor_client *fx_client(struct fx_cluster *fx, int first, int request_timeout_ms)
{
	const char *eps[FX_MAX];
	struct moor_config cfg = {0};
	moor_client *c = NULL;
	int k = 0;

	if (first >= 0)
		eps[k++] = fx->url[first];
	for (int i = 0; i < fx->n; i++)
		if (i != first)
			eps[k++] = fx->url[i];
	cfg.endpoints = eps;
	cfg.n_endpoints = (size_t)k;
	cfg.dial_timeout_ms = 500;
	cfg.request_timeout_ms = request_timeout_ms;
	cfg.log_fn = fx_log_fn;
	cfg.log_ctx = fx_log_ctx;
	if (moor_client_open(&cfg, &c) != 0)
		return NULL;
	return c;
}

int fx_wait_leader(struct fx_cluster *fx, int timeout_ms)
{
	uint64_t deadline = fx_now_ms() + (uint64_t)timeout_ms;
	moor_client *c = fx_client(fx, -1, 1000);
	int found = -1;

	if (!c)
		return -1;
	while (found < 0 && fx_now_ms() < deadline) {
		uint64_t leader = 0;
		bool agree = true;

		for (int i = 0; i < fx->n && agree; i++) {
			struct moor_status st;
			if (fx->pid[i] <= 0)
				continue;
			if (moor_status(c, fx->url[i], &st) != 0 || st.leader == 0 ||
			    (leader && st.leader != leader)) {
				agree = false;
				break;
			}
			leader = st.leader;
			fx->id[i] = st.header.member_id;
		}
		if (agree && leader)
			for (int i = 0; i < fx->n; i++)
				if (fx->pid[i] > 0 && fx->id[i] == leader)
					found = i;
		if (found < 0)
			fx_sleep_ms(50);
	}
	moor_client_close(c);
	return found;
}

/* Copies src to dir/name (executable) and names the copy in out. */
static int copy_file(const char *src, const char *dir, const char *name, char *out, size_t size)
{
	char dst[256], buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), o;
	ssize_t r;

	snprintf(dst, sizeof dst, "%s/%s", dir, name);
	o = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (in < 0 || o < 0) {
		if (in >= 0)
			close(in);
		if (o >= 0)
			close(o);
		return -1;
	}
	while ((r = read(in, buf, sizeof buf)) > 0)
		if (write(o, buf, (size_t)r) != r)
			r = -1;
	close(in);
	if (close(o) != 0 || r < 0)
		return -1;
	snprintf(out, size, "%s", dst);
	return 0;
}

int fx_cluster_start(struct fx_cluster *fx, int n)
{
	int ports[2 * FX_MAX];
	const char *build = getenv("BUILD");
	size_t len = 0;

	memset(fx, 0, sizeof *fx);
	fx->n = n;
	snprintf(fx->moord, sizeof fx->moord, "%s/bin/moord", build ? build : "build");
	if (getenv("MOORD"))
		snprintf(fx->moord, sizeof fx->moord, "%s", getenv("MOORD"));
	snprintf(fx->dir, sizeof fx->dir, "/tmp/moor-client.XXXXXX");
	if (!mkdtemp(fx->dir) || free_ports(ports, 2 * n) != 0)
		return -1;
	/* run a private copy: a concurrent build may relink build/bin/moord
	 * while a test restarts a member */
	if (copy_file(fx->moord, fx->dir, "moord", fx->moord, sizeof fx->moord) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		fx->cport[i] = ports[2 * i];
		fx->pport[i] = ports[2 * i + 1];
		snprintf(fx->url[i], sizeof fx->url[i], "http://127.0.0.1:%d", fx->cport[i]);
		fx->urls[i] = fx->url[i];
		len += (size_t)snprintf(fx->initial + len, sizeof fx->initial - len,
		                        "%sm%d=http://127.0.0.1:%d", i ? "," : "", i + 1,
		                        fx->pport[i]);
	}
	for (int i = 0; i < n; i++)
		if (fx_member_start(fx, i) != 0)
			return -1;
	return fx_wait_leader(fx, 20000) >= 0 ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void fx_cluster_stop(struct fx_cluster *fx)
{
	for (int i = 0; i < fx->n; i++)
		fx_member_kill(fx, i);
	if (getenv("T_KEEP")) /* as tests/cluster/lib.sh: keep the logs to read */
		fprintf(stderr, "kept %s\n", fx->dir);
	else if (fx->dir[0] && strncmp(fx->dir, "/tmp/moor-client.", 17) == 0)
		nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	fx->dir[0] = '\0';
}

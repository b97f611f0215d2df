/*
 * History recorder (see history.h). Lines are buffered by stdio and flushed
 * every second by whoever writes then, and at close: a worker killed by the
 * harness's time limit loses at most the last second, which the checkers
 * treat as operations never completed (indeterminate).
 */
#include "tests/faults/harness/history.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t hist_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *hist_f;
static FILE *hist_lat;
static uint64_t hist_t0;
static uint64_t hist_last_flush;

uint64_t hist_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hist_open(const char *path, const char *latency_path)
{
	hist_f = fopen(path, "w");
	if (!hist_f)
		return -errno;
	hist_lat = fopen(latency_path, "w");
	if (!hist_lat) {
		int e = -errno;
		fclose(hist_f);
		hist_f = NULL;
		return e;
	}
	hist_t0 = hist_now_ns();
	hist_last_flush = hist_t0;
	/* The harness maps its wall-clock fault timeline onto the history's
	 * monotonic clock with these two anchors. */
	fprintf(hist_f, "# moor-jepsen-client history v1 monotonic_ns=%llu realtime_ns=%llu\n",
	        (unsigned long long)hist_t0, (unsigned long long)realtime_ns());
	fprintf(hist_lat, "# t_s latency_ms f type (t0 realtime_ns=%llu)\n",
	        (unsigned long long)realtime_ns());
	return 0;
}

void hist_close(void)
{
	if (hist_f)
		fclose(hist_f);
	if (hist_lat)
		fclose(hist_lat);
	hist_f = hist_lat = NULL;
}

static void maybe_flush_locked(void)
{
	uint64_t now = hist_now_ns();
	if (now - hist_last_flush > 1000000000u) {
		fflush(hist_f);
		fflush(hist_lat);
		hist_last_flush = now;
	}
}

void hist_linef(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&hist_mu);
	va_start(ap, fmt);
	vfprintf(hist_f, fmt, ap);
	va_end(ap);
	fputc('\n', hist_f);
	maybe_flush_locked();
	pthread_mutex_unlock(&hist_mu);
}

void hist_latency(uint64_t invoke_ns, uint64_t done_ns, const char *f, const char *type)
{
	pthread_mutex_lock(&hist_mu);
	fprintf(hist_lat, "%.3f %.3f %s %s\n", (double)(invoke_ns - hist_t0) / 1e9,
	        (double)(done_ns - invoke_ns) / 1e6, f, type);
	maybe_flush_locked();
	pthread_mutex_unlock(&hist_mu);
}

char *hist_quote(const void *s, size_t len, char *buf, size_t size)
{
	const unsigned char *p = s;
	size_t o = 0;
	if (size < 3)
		return strcpy(buf, "");
	buf[o++] = '"';
	for (size_t i = 0; i < len && o + 8 < size; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\u%04x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

char *hist_value(const void *v, size_t len, char *buf, size_t size)
{
	const char *p = v;
	int digits = len > 0 && len < 19;
	for (size_t i = 0; digits && i < len; i++)
		digits = p[i] >= '0' && p[i] <= '9' && !(i == 0 && p[i] == '0' && len > 1);
	if (digits && len + 1 <= size) {
		memcpy(buf, p, len);
		buf[len] = '\0';
		return buf;
	}
	return hist_quote(v, len, buf, size);
}

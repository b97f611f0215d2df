/*
 * The stderr sink behind moord's logger. Each event is formatted into one
 * buffer and written with one fputs on an unbuffered-per-line stream, so that
 * lines from the loop and the worker threads never interleave mid-line.
 */
#include "server/log_sink.h"

#include <string.h>
#include <sys/time.h>
#include <time.h>

static void timestamp(char *buf, size_t n)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

static size_t json_escape(char *dst, size_t n, const char *src)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)src; *p && o + 7 < n; p++) {
		if (*p == '"' || *p == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)snprintf(dst + o, n - o, "\\u%04x", *p);
		} else {
			dst[o++] = (char)*p;
		}
	}
	dst[o] = '\0';
	return o;
}

static void sink(void *ctx, enum moor_log_level level, const char *module, const char *msg)
{
	struct srv_log_sink *s = ctx;
	char ts[40], line[2600], esc[2200];

	timestamp(ts, sizeof ts);
	if (s->format == SRV_LOG_JSON) {
		json_escape(esc, sizeof esc, msg);
		snprintf(line, sizeof line,
		         "{\"ts\":\"%s\",\"level\":\"%s\",\"member\":\"%s\",\"module\":\"%s\","
		         "\"msg\":\"%s\"}\n",
		         ts, moor_log_level_name(level), s->member, module ? module : "", esc);
	} else {
		snprintf(line, sizeof line, "%s %-5s member=%s module=%s %s\n", ts,
		         moor_log_level_name(level), s->member, module ? module : "", msg);
	}
	fputs(line, s->out);
	fflush(s->out);
}

void srv_log_sink_init(struct srv_log_sink *s, const char *member, enum srv_log_format format,
                       enum moor_log_level min_level, FILE *out)
{
	memset(s, 0, sizeof *s);
	snprintf(s->member, sizeof s->member, "%s", member);
	s->format = format;
	s->out = out;
	s->logger.fn = sink;
	s->logger.ctx = s;
	s->logger.min_level = min_level;
}

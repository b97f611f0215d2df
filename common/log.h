/*
 * Logging for libraries: they never print, they call the logger they were
 * given. A logger is a callback plus a context and a minimum level; a NULL
 * logger (or a NULL callback) drops everything.
 *
 * Messages are one line, with key=value fields for what an operator needs
 * (term=, index=, revision=, key=, file=, offset=). moord's sink
 * (server/) adds the time and the member name and writes text or JSON lines.
 */
#ifndef MOOR_COMMON_LOG_H
#define MOOR_COMMON_LOG_H

#include <stdarg.h>

enum moor_log_level {
	MOOR_LOG_DEBUG = 0,
	MOOR_LOG_INFO = 1,
	MOOR_LOG_WARN = 2,
	MOOR_LOG_ERROR = 3,
};

/* The sink. `msg` is formatted already and lives only during the call. */
typedef void (*moor_log_fn)(void *ctx, enum moor_log_level level, const char *module,
                            const char *msg);

struct moor_logger {
	moor_log_fn fn;
	void *ctx;
	enum moor_log_level min_level;
};

/* Format and hand to the sink when level >= min_level. `lg` may be NULL.
 * Messages longer than 1 KiB are truncated. */
void moor_log(const struct moor_logger *lg, enum moor_log_level level, const char *module,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

void moor_logv(const struct moor_logger *lg, enum moor_log_level level, const char *module,
               const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* "debug", "info", "warn", "error"; parse returns 0 or MOOR_EINVAL. */
const char *moor_log_level_name(enum moor_log_level level);
int moor_log_level_parse(const char *s, enum moor_log_level *out);

#endif

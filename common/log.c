/* Formatting front of the logger callback: level filter, then the sink. */
#include "common/log.h"

#include "common/error.h"

#include <stdio.h>
#include <string.h>

void moor_logv(const struct moor_logger *lg, enum moor_log_level level, const char *module,
               const char *fmt, va_list ap)
{
	char buf[1024];

	if (!lg || !lg->fn || level < lg->min_level)
		return;
	vsnprintf(buf, sizeof buf, fmt, ap);
	lg->fn(lg->ctx, level, module, buf);
}

void moor_log(const struct moor_logger *lg, enum moor_log_level level, const char *module,
              const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	moor_logv(lg, level, module, fmt, ap);
	va_end(ap);
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *moor_log_level_name(enum moor_log_level level)
{
	if ((unsigned)level < sizeof level_names / sizeof level_names[0])
		return level_names[level];
	return "unknown";
}

int moor_log_level_parse(const char *s, enum moor_log_level *out)
{
	for (unsigned i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum moor_log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = MOOR_LOG_WARN;
		return 0;
	}
	return MOOR_EINVAL;
}

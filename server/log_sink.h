/*
 * moord's log sink: one line per event on stderr, plain text or JSON, each
 * line carrying the time, the level, the member name and the module. The
 * libraries log through a struct moor_logger pointing here.
 */
#ifndef MOOR_SERVER_LOG_SINK_H
#define MOOR_SERVER_LOG_SINK_H

#include "common/log.h"
#include "server/config.h"

#include <stdio.h>

struct srv_log_sink {
	char member[64];
	enum srv_log_format format;
	FILE *out;
	struct moor_logger logger; /* hand &sink.logger to the libraries */
};

/* Sets up the sink writing to `out` (stderr in moord). Cannot fail. */
void srv_log_sink_init(struct srv_log_sink *s, const char *member, enum srv_log_format format,
                       enum moor_log_level min_level, FILE *out);

#endif

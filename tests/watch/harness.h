/*
 * Shared fixtures of the watch tests: a memstore, a hub over it, and a
 * stream whose responses are pulled into plain records that a test can
 * inspect after the response is released.
 */
#ifndef MOOR_TESTS_WATCH_HARNESS_H
#define MOOR_TESTS_WATCH_HARNESS_H

#include "tests/watch/memstore.h"
#include "watch/watch.h"

#include <stdbool.h>
#include <stdint.h>

struct th {
	struct memstore ms;
	struct watch_hub *hub;
	struct watch_hub_config cfg;
	int64_t applied; /* the last revision handed to the hub */
	int wakeups;
};

struct th_stream {
	struct watch_stream *s;
	int notifies;
};

struct got_ev {
	int64_t rev;
	int type;
	char key[24];
	char val[24];
	bool has_prev;
	char prev_val[24];
};

struct got {
	int64_t id, rev, compact;
	bool canceled, fragment, progress;
	size_t n;
	struct got_ev ev[64];
};

/* cfg may be NULL; fields of it that are 0 get the hub's defaults. */
void th_init(struct th *t, const struct watch_hub_config *cfg);
/* Frees the hub and checks that no batch is left alive. */
void th_fini(struct th *t);
/* Hands the hub every revision the store has and it has not. */
void th_apply(struct th *t);
/* Hands the hub revisions up to rev. */
void th_apply_to(struct th *t, int64_t rev);
int64_t th_put(struct th *t, const char *key, const char *val); /* store + apply */
int64_t th_del(struct th *t, const char *key);
void th_sync(struct th *t); /* watch_hub_sync until idle */

void th_stream_open(struct th *t, struct th_stream *ts);
int64_t th_watch(struct th_stream *ts, const char *key, const char *end, int64_t start_rev);
int64_t th_watch_req(struct th_stream *ts, const struct watch_create *req);
/* Pulls one response into *g: 1, or 0 when none. */
int th_next(struct th_stream *ts, struct got *g);

#endif

/*
 * The history recorder of the fault-injection worker: one JSON line per
 * record in the format of tests/faults/README.md (version 1), written under
 * one mutex so lines never interleave, with CLOCK_MONOTONIC timestamps. A
 * second file gets one line per completed operation ("seconds since start,
 * latency in ms, f, type") for the latency plot.
 */
#ifndef MOOR_FAULTS_HARNESS_HISTORY_H
#define MOOR_FAULTS_HARNESS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

/* Opens both files (truncating) and writes the clock anchors as a comment.
 * Returns 0 or -errno. Not thread-safe; call once before any thread. */
int hist_open(const char *path, const char *latency_path);
void hist_close(void);
uint64_t hist_now_ns(void);

/* Appends one complete JSON object (no newline) as a line. `fmt` is a
 * printf format; the caller escapes strings with hist_quote. Thread-safe. */
void hist_linef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One completed op for the latency file. Thread-safe. */
void hist_latency(uint64_t invoke_ns, uint64_t done_ns, const char *f, const char *type);

/* Writes s as a JSON string (with quotes) into buf; returns buf. Bytes that
 * are not printable ASCII are written as \u00XX. */
char *hist_quote(const void *s, size_t len, char *buf, size_t size);
/* A stored value as JSON: a decimal integer as a number, else a string. */
char *hist_value(const void *v, size_t len, char *buf, size_t size);

#endif

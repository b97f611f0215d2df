/*
 * wal-dump's printer (not part of libwal: a tool, which prints). Used by the
 * wal-dump binary and by its test.
 */
#ifndef MOOR_WAL_DUMP_H
#define MOOR_WAL_DUMP_H

#include <stdio.h>

/* Print DIR's segments and records to `to` (with every entry when
 * verbose_entries). Returns 0 when recovery would succeed, 1 when it would
 * report corruption, 2 on I/O errors. Not thread-safe. */
int wal_dump_dir(FILE *to, const char *dir, int verbose_entries);

#endif

/*
 * wal-dump: print a WAL directory's segments and records, for operators.
 *
 *   wal-dump [-v] DIR
 *
 * Exit status 0 when recovery would succeed, 1 when it would report
 * corruption, 2 on usage or I/O errors. See wal/dump.c.
 */
#include "wal/dump.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	int verbose = argc == 3 && strcmp(argv[1], "-v") == 0;

	if (argc != 2 + verbose) {
		fprintf(stderr, "usage: wal-dump [-v] DIR\n");
		return 2;
	}
	return wal_dump_dir(stdout, argv[1 + verbose], verbose);
}

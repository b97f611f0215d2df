/* The one place an assertion failure is reported: stderr, then abort. */
#include "common/assert.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void moor_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "moor: assertion failed: %s (%s:%d)\n", expr, file, line);
	fflush(stderr);
	abort();
}

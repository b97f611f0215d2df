/*
 * Messages and names for moor error codes: the X-macro table in error.h,
 * turned into two lookups. -errno values fall back to strerror/strerrorname.
 */
#include "common/error.h"

#include <errno.h>
#include <string.h>

const char *moor_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
#define MOOR_ERR_MSG(name, value, msg) \
	case value:                    \
		return msg;
		MOOR_ERRORS(MOOR_ERR_MSG)
#undef MOOR_ERR_MSG
	default:
		break;
	}
	if (code < 0 && code > -1000)
		return strerror(-code);
	return "unknown error";
}

const char *moor_errname(int code)
{
	switch (code) {
	case 0:
		return "OK";
#define MOOR_ERR_NAME(name, value, msg) \
	case value:                     \
		return #name;
		MOOR_ERRORS(MOOR_ERR_NAME)
#undef MOOR_ERR_NAME
	default:
		break;
	}
	if (code < 0 && code > -1000) {
		const char *n = strerrorname_np(-code);
		return n ? n : "EUNKNOWN";
	}
	return "EUNKNOWN";
}

/* Unit tests for common/: CRC32C, byte buffers, error names, allocators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void crc32c_matches_the_published_check_value(void **state)
{
	(void)state;
	assert_int_equal(moor_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(moor_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(moor_crc32c(0, "", 0), 0);
}

static void crc32c_hardware_and_table_agree_on_every_length_and_alignment(void **state)
{
	unsigned char data[1100];
	uint64_t x = 0x9E3779B97F4A7C15ull;

	(void)state;
	for (size_t i = 0; i < sizeof data; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		data[i] = (unsigned char)x;
	}
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof data; len += 37)
			assert_int_equal(moor_crc32c(7, data + off, len),
			                 moor_crc32c_sw(7, data + off, len));
}

static void crc32c_can_be_extended_piecewise(void **state)
{
	const char *s = "the quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);

	(void)state;
	for (size_t cut = 0; cut <= n; cut++)
		assert_int_equal(moor_crc32c(moor_crc32c(0, s, cut), s + cut, n - cut),
		                 moor_crc32c(0, s, n));
}

static void buf_grows_and_encodes_big_and_little_endian(void **state)
{
	struct moor_buf b;

	(void)state;
	moor_buf_init(&b, NULL);
	assert_int_equal(moor_buf_append_be32(&b, 0x01020304), 0);
	assert_int_equal(moor_buf_append_le64(&b, 0x0807060504030201ull), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(moor_buf_append_u8(&b, (uint8_t)i), 0);
	assert_int_equal(b.len, 1012);
	assert_int_equal(b.data[0], 1);
	assert_int_equal(b.data[3], 4);
	assert_int_equal(moor_get_be32(b.data), 0x01020304);
	assert_int_equal(moor_get_le64(b.data + 4), 0x0807060504030201ull);
	assert_int_equal(b.data[1011], (uint8_t)999);
	assert_int_equal(moor_buf_printf(&b, "%s=%d", "x", 42), 0);
	assert_memory_equal(b.data + 1012, "x=42", 4);
	moor_buf_free(&b);
}

static void buf_refuses_to_grow_past_its_cap_and_keeps_its_contents(void **state)
{
	struct moor_buf b;
	char big[100] = {0};

	(void)state;
	moor_buf_init(&b, NULL);
	b.max_bytes = 128;
	assert_int_equal(moor_buf_append(&b, big, 100), 0);
	assert_int_equal(moor_buf_append(&b, big, 29), MOOR_ETOOLARGE);
	assert_int_equal(b.len, 100);
	assert_int_equal(moor_buf_append(&b, big, 28), 0);
	assert_int_equal(b.len, 128);
	moor_buf_free(&b);
}

static void buf_reports_enomem_when_allocation_fails_and_leaks_nothing(void **state)
{
	struct moor_alloc_failing f;
	struct moor_buf b;

	(void)state;
	moor_alloc_failing_init(&f, 1);
	moor_buf_init(&b, &f.alloc);
	assert_int_equal(moor_buf_append(&b, "abc", 3), 0);
	char big[200] = {0};
	assert_int_equal(moor_buf_append(&b, big, sizeof big), MOOR_ENOMEM);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "abc", 3);
	moor_buf_free(&b);
	assert_int_equal(f.live, 0);
	assert_int_equal(f.failures, 1);
}

static void errors_have_names_and_messages_and_errno_falls_through(void **state)
{
	(void)state;
	assert_string_equal(moor_errname(MOOR_ECOMPACTED), "MOOR_ECOMPACTED");
	assert_string_equal(moor_strerror(MOOR_ECOMPACTED),
	                    "mvcc: required revision has been compacted");
	assert_string_equal(moor_errname(-ENOENT), "ENOENT");
	assert_string_equal(moor_strerror(-ENOENT), strerror(ENOENT));
	assert_string_equal(moor_strerror(-99999), "unknown error");
	assert_string_equal(moor_strerror(0), "success");
}

struct captured {
	int calls;
	enum moor_log_level level;
	char msg[64];
};

static void capture(void *ctx, enum moor_log_level level, const char *module, const char *msg)
{
	struct captured *c = ctx;
	(void)module;
	c->calls++;
	c->level = level;
	snprintf(c->msg, sizeof c->msg, "%s", msg);
}

static void logger_filters_by_level_and_tolerates_null(void **state)
{
	struct captured c = {0};
	struct moor_logger lg = {capture, &c, MOOR_LOG_INFO};
	enum moor_log_level lv;

	(void)state;
	moor_log(&lg, MOOR_LOG_DEBUG, "t", "hidden %d", 1);
	assert_int_equal(c.calls, 0);
	moor_log(&lg, MOOR_LOG_WARN, "t", "shown term=%d", 7);
	assert_int_equal(c.calls, 1);
	assert_string_equal(c.msg, "shown term=7");
	moor_log(NULL, MOOR_LOG_ERROR, "t", "nowhere");
	assert_int_equal(moor_log_level_parse("warn", &lv), 0);
	assert_int_equal(lv, MOOR_LOG_WARN);
	assert_int_equal(moor_log_level_parse("loud", &lv), MOOR_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(crc32c_matches_the_published_check_value),
	    cmocka_unit_test(crc32c_hardware_and_table_agree_on_every_length_and_alignment),
	    cmocka_unit_test(crc32c_can_be_extended_piecewise),
	    cmocka_unit_test(buf_grows_and_encodes_big_and_little_endian),
	    cmocka_unit_test(buf_refuses_to_grow_past_its_cap_and_keeps_its_contents),
	    cmocka_unit_test(buf_reports_enomem_when_allocation_fails_and_leaks_nothing),
	    cmocka_unit_test(errors_have_names_and_messages_and_errno_falls_through),
	    cmocka_unit_test(logger_filters_by_level_and_tolerates_null),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}

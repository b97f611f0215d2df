/*
 * Unit tests for server/jsonpb on the field types and labels etcd's API does
 * not use (tests/unit/jsonpb/jsonpb_test.proto): floats written as Go writes
 * them, zigzag and fixed-width integers, proto2 presence and required
 * fields, and oneofs holding strings, bytes and messages. The codec is
 * generic; these keep it honest for messages other than etcd's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "server/jsonpb.h"

#include "tests/unit/jsonpb/jsonpb_test.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *enc(const void *msg)
{
	char *s = NULL;

	assert_int_equal(srv_jsonpb_encode_string(msg, &s, NULL), 0);
	return s;
}

static void assert_encodes_as(const void *msg, const char *want)
{
	char *got = enc(msg);

	assert_string_equal(got, want);
	free(got);
}

static Jsonpbtest__Scalars *dec(const char *json)
{
	ProtobufCMessage *m = NULL;
	struct srv_jsonpb_error err;
	int rc =
	    srv_jsonpb_decode(&jsonpbtest__scalars__descriptor, json, strlen(json), NULL, &m, &err);

	if (rc)
		fail_msg("decoding %s failed (%d): %s", json, rc, err.msg);
	return (Jsonpbtest__Scalars *)m;
}

static void assert_rejected(const char *json, const char *want)
{
	ProtobufCMessage *m = NULL;
	struct srv_jsonpb_error err;

	assert_int_equal(
	    srv_jsonpb_decode(&jsonpbtest__scalars__descriptor, json, strlen(json), NULL, &m, &err),
	    MOOR_EINVAL);
	assert_null(m);
	if (!strstr(err.msg, want))
		fail_msg("decoding %s: message \"%s\" lacks \"%s\"", json, err.msg, want);
}

static void assert_same_message(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t na = protobuf_c_message_get_packed_size(a);
	size_t nb = protobuf_c_message_get_packed_size(b);
	uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);

	assert_int_equal(na, nb);
	protobuf_c_message_pack(a, pa);
	protobuf_c_message_pack(b, pb);
	assert_memory_equal(pa, pb, na);
	free(pa);
	free(pb);
}

static void assert_round_trips(const Jsonpbtest__Scalars *m)
{
	char *json = enc(m), *again;
	Jsonpbtest__Scalars *back = dec(json);

	assert_same_message(&m->base, &back->base);
	again = enc(back);
	assert_string_equal(json, again);
	free(json);
	free(again);
	protobuf_c_message_free_unpacked(&back->base, NULL);
}

static void doubles_are_written_as_go_writes_them(void **state)
{
	static const struct {
		double v;
		const char *json;
	} cases[] = {
	    {0.1, "0.1"},
	    {1.5, "1.5"},
	    {100, "100"},
	    {-2.5, "-2.5"},
	    {123456789.125, "123456789.125"},
	    {1e20, "100000000000000000000"},
	    {1e21, "1e+21"},
	    {1e-6, "0.000001"},
	    {1e-7, "1e-7"},
	    {1.5e-7, "1.5e-7"},
	    {-1.25e-10, "-1.25e-10"},
	    {5e-324, "5e-324"},
	    {1.7976931348623157e308, "1.7976931348623157e+308"},
	    {-0.0, "-0"},
	    {NAN, "\"NaN\""},
	    {INFINITY, "\"Infinity\""},
	    {-INFINITY, "\"-Infinity\""},
	};
	char want[96];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Jsonpbtest__Scalars m = JSONPBTEST__SCALARS__INIT;
		Jsonpbtest__Scalars *back;

		m.has_d = 1;
		m.d = cases[i].v;
		snprintf(want, sizeof want, "{\"d\":%s,\"req\":0}", cases[i].json);
		assert_encodes_as(&m, want);
		back = dec(want);
		assert_true(back->has_d);
		if (isnan(cases[i].v))
			assert_true(isnan(back->d));
		else
			assert_memory_equal(&back->d, &cases[i].v, sizeof(double));
		protobuf_c_message_free_unpacked(&back->base, NULL);
	}
}

static void floats_use_the_shortest_digits_of_their_own_width(void **state)
{
	static const struct {
		float v;
		const char *json;
	} cases[] = {
	    {0.1f, "0.1"},
	    {3.4028235e38f, "3.4028235e+38"},
	    {16777216.0f, "16777216"},
	    {1e-7f, "1e-7"},
	    {-1.1f, "-1.1"},
	};
	char want[96];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Jsonpbtest__Scalars m = JSONPBTEST__SCALARS__INIT;

		m.has_f = 1;
		m.f = cases[i].v;
		snprintf(want, sizeof want, "{\"f\":%s,\"req\":0}", cases[i].json);
		assert_encodes_as(&m, want);
		assert_round_trips(&m);
	}
}

static void floats_are_read_from_numbers_and_strings(void **state)
{
	Jsonpbtest__Scalars *m;

	(void)state;
	m = dec("{\"d\":\"NaN\",\"f\":\"-Infinity\",\"req\":0}");
	assert_true(isnan(m->d));
	assert_true(isinf(m->f) && m->f < 0);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	m = dec("{\"d\":\"1.5\",\"f\":2,\"req\":0}");
	assert_true(m->d == 1.5);
	assert_true(m->f == 2.0f);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	assert_rejected("{\"f\":1e39,\"req\":0}", "field \"f\": 1e+39 is out of range for float");
	assert_rejected("{\"f\":3.4028235677973366e38,\"req\":0}", "out of range for float");
	m = dec("{\"f\":3.4028235677973362e38,\"req\":0}"); /* rounds down to FLT_MAX */
	assert_true(m->f == 3.4028235e38f);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	assert_rejected("{\"d\":\"abc\",\"req\":0}", "field \"d\": \"abc\" is not a double");
	assert_rejected("{\"d\":\" 1\",\"req\":0}", "is not a double");
	assert_rejected("{\"d\":true,\"req\":0}", "expected double as a number, got boolean");
}

static void zigzag_and_fixed_width_integers_follow_their_width(void **state)
{
	Jsonpbtest__Scalars m = JSONPBTEST__SCALARS__INIT;
	int64_t s64s[2] = {-1, INT64_MIN};

	(void)state;
	m.has_s32 = m.has_s64 = m.has_f32 = m.has_f64 = m.has_sf32 = m.has_sf64 = 1;
	m.s32 = -5;
	m.s64 = -5;
	m.f32 = 4294967295u;
	m.f64 = UINT64_MAX;
	m.sf32 = INT32_MIN;
	m.sf64 = INT64_MIN;
	m.s64s = s64s;
	m.n_s64s = 2;
	m.req = -7;
	assert_encodes_as(&m, "{\"s32\":-5,\"s64\":\"-5\",\"f32\":4294967295,"
	                      "\"f64\":\"18446744073709551615\",\"sf32\":-2147483648,"
	                      "\"sf64\":\"-9223372036854775808\",\"s64s\":[\"-1\","
	                      "\"-9223372036854775808\"],\"req\":-7}");
	assert_round_trips(&m);
	assert_rejected("{\"s32\":2147483648,\"req\":0}", "out of range for int32");
	assert_rejected("{\"f32\":-1,\"req\":0}", "out of range for uint32");
}

static void proto2_optional_fields_are_written_when_present_even_if_zero(void **state)
{
	Jsonpbtest__Scalars m = JSONPBTEST__SCALARS__INIT;
	Jsonpbtest__Scalars *back;
	char empty[1] = "";

	(void)state;
	/* Absent, and the string at its default: only the required field. */
	assert_encodes_as(&m, "{\"req\":0}");
	m.has_opt_i64 = 1;
	m.has_opt_bool = 1;
	m.has_opt_blob = 1;
	m.opt_str = empty;
	assert_encodes_as(&m, "{\"opt_i64\":\"0\",\"opt_str\":\"\",\"opt_bool\":false,\"req\":0,"
	                      "\"opt_blob\":\"\"}");
	back = dec("{\"opt_i64\":\"0\",\"opt_str\":\"\",\"opt_bool\":false,\"req\":0,"
	           "\"opt_blob\":\"\"}");
	assert_true(back->has_opt_i64 && back->has_opt_bool && back->has_opt_blob);
	assert_string_equal(back->opt_str, "");
	assert_ptr_not_equal(back->opt_str, jsonpbtest__scalars__opt_str__default_value);
	assert_same_message(&m.base, &back->base);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	/* Not given: the default stays and nothing is present. */
	back = dec("{\"req\":3}");
	assert_false(back->has_opt_i64);
	assert_ptr_equal(back->opt_str, jsonpbtest__scalars__opt_str__default_value);
	protobuf_c_message_free_unpacked(&back->base, NULL);
}

static void a_missing_required_field_is_named(void **state)
{
	(void)state;
	assert_rejected("{}", "required field \"req\" of jsonpbtest.Scalars is missing");
	assert_rejected("{\"req\":1,\"opt_child\":{\"d\":1}}",
	                "field \"opt_child\": required field \"req\" of jsonpbtest.Scalars is "
	                "missing");
}

static void oneof_strings_bytes_and_messages_are_present_even_when_empty(void **state)
{
	Jsonpbtest__Scalars m = JSONPBTEST__SCALARS__INIT, child = JSONPBTEST__SCALARS__INIT;
	Jsonpbtest__Scalars *back;
	char empty[1] = "";

	(void)state;
	m.choice_case = JSONPBTEST__SCALARS__CHOICE_NAME;
	m.name = empty;
	assert_encodes_as(&m, "{\"name\":\"\",\"req\":0}");
	assert_round_trips(&m);
	m.choice_case = JSONPBTEST__SCALARS__CHOICE_BLOB;
	m.blob.len = 0;
	m.blob.data = NULL;
	assert_encodes_as(&m, "{\"blob\":\"\",\"req\":0}");
	assert_round_trips(&m);
	m.choice_case = JSONPBTEST__SCALARS__CHOICE_CHILD;
	m.child = &child;
	assert_encodes_as(&m, "{\"child\":{\"req\":0},\"req\":0}");
	assert_round_trips(&m);
	back = dec("{\"req\":0,\"name\":\"x\"}");
	assert_int_equal(back->choice_case, JSONPBTEST__SCALARS__CHOICE_NAME);
	assert_string_equal(back->name, "x");
	protobuf_c_message_free_unpacked(&back->base, NULL);
	assert_rejected("{\"req\":0,\"name\":\"x\",\"blob\":\"eA==\"}",
	                "only one field of a oneof may be set, and \"name\" is");
	/* A half-built message member is freed with the rest (ASan checks). */
	assert_rejected("{\"req\":0,\"child\":{\"req\":0,\"d\":\"x\"}}",
	                "field \"child.d\": \"x\" is not a double");
}

static void repeated_doubles_and_bytes_round_trip(void **state)
{
	Jsonpbtest__Scalars m = JSONPBTEST__SCALARS__INIT;
	double ds[3] = {0.1, -0.0, 1e300};
	ProtobufCBinaryData blobs[2] = {{0, NULL}, {3, (uint8_t *)"\x00\xff\x10"}};

	(void)state;
	m.ds = ds;
	m.n_ds = 3;
	m.blobs = blobs;
	m.n_blobs = 2;
	assert_encodes_as(&m, "{\"ds\":[0.1,-0,1e+300],\"blobs\":[\"\",\"AP8Q\"],\"req\":0}");
	assert_round_trips(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(doubles_are_written_as_go_writes_them),
	    cmocka_unit_test(floats_use_the_shortest_digits_of_their_own_width),
	    cmocka_unit_test(floats_are_read_from_numbers_and_strings),
	    cmocka_unit_test(zigzag_and_fixed_width_integers_follow_their_width),
	    cmocka_unit_test(proto2_optional_fields_are_written_when_present_even_if_zero),
	    cmocka_unit_test(a_missing_required_field_is_named),
	    cmocka_unit_test(oneof_strings_bytes_and_messages_are_present_even_when_empty),
	    cmocka_unit_test(repeated_doubles_and_bytes_round_trip),
	};

	return cmocka_run_group_tests_name("jsonpb_types", tests, NULL, NULL);
}

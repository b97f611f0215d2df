/* The nesting guard (see pbcheck.h). */
#include "proto/pbcheck.h"

/* Reads a varint at *p (< end); false when it runs past the end or over
 * ten bytes. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

static enum moor_pb_verdict walk(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                                 const uint8_t *end, int depth, int max_depth)
{
	enum moor_pb_verdict v;

	if (depth > max_depth)
		return MOOR_PB_TOO_DEEP;
	while (p < end) {
		uint64_t key, len;
		const ProtobufCFieldDescriptor *f;

		if (!varint(&p, end, &key))
			return MOOR_PB_OK; /* malformed: the unpack says so */
		if (key >> 3 == 0)
			return MOOR_PB_BAD_FIELD;
		switch (key & 7) {
		case 0: /* varint */
			if (!varint(&p, end, &len))
				return MOOR_PB_OK;
			break;
		case 1: /* 64-bit */
			if (end - p < 8)
				return MOOR_PB_OK;
			p += 8;
			break;
		case 5: /* 32-bit */
			if (end - p < 4)
				return MOOR_PB_OK;
			p += 4;
			break;
		case 2: /* length-delimited: a message field is walked into */
			if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
				return MOOR_PB_OK;
			f = key >> 3 <= UINT32_MAX
			        ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
			        : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    (v = walk(f->descriptor, p, p + len, depth + 1, max_depth)) !=
			        MOOR_PB_OK)
				return v;
			p += len;
			break;
		default: /* groups and the rest: protobuf-c refuses them */
			return MOOR_PB_OK;
		}
	}
	return MOOR_PB_OK;
}

enum moor_pb_verdict moor_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                   size_t len, int max_depth)
{
	if (!data)
		return MOOR_PB_OK;
	return walk(d, data, data + len, 1, max_depth);
}

/*
 * A guard to run before protobuf-c unpacks bytes from outside: protobuf-c
 * unpacks nested messages by recursion, without a depth limit, so a body of
 * a few hundred kilobytes that nests a TxnRequest in a RequestOp in a
 * TxnRequest... a hundred thousand times overflows the stack. The check
 * walks the wire format with the message's descriptor, iteratively per
 * level and never deeper than `max_depth`. It also refuses field number 0,
 * which protobuf-c accepts when its key is written in two bytes and keeps
 * as an unknown field, but then packs into bytes it refuses to unpack: a
 * write carrying one would be proposed and then fail to decode on apply.
 */
#ifndef MOOR_PROTO_PBCHECK_H
#define MOOR_PROTO_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How deep moor lets any message nest: far beyond any real request (a txn
 * inside a txn is one level per two messages). */
#define MOOR_PB_MAX_DEPTH 64

enum moor_pb_verdict {
	MOOR_PB_OK = 0,
	MOOR_PB_TOO_DEEP,  /* a message nested more than max_depth deep */
	MOOR_PB_BAD_FIELD, /* field number 0, which protobuf-c keeps as an
	                      unknown field but cannot read back once packed */
};

/* Judges `data` as a message of type `d` (the top message is depth 1).
 * Bytes that are otherwise not valid protobuf are not judged here
 * (MOOR_PB_OK): the unpack refuses them. */
enum moor_pb_verdict moor_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                   size_t len, int max_depth);

#endif

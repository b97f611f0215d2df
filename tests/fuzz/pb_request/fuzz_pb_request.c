/*
 * Fuzz target for protobuf bodies from outside: the input is taken as every
 * request message a client can send (each gateway route's, the watch and
 * keep-alive stream requests) and as the InternalRequest a raft entry
 * carries. The nesting guard (proto/pbcheck.c) runs first, as in moord and
 * libmoor; whatever it lets through must unpack without harm and be no
 * deeper than it promised; whatever unpacks must pack back to bytes that
 * unpack and pack to the same bytes, and (when shallow enough for JSON's
 * depth limit) survive the gateway's JSON codec. Anything else aborts.
 */
#include "proto/pbcheck.h"
#include "server/gateway_errors.h"
#include "server/jsonpb.h"

#include "proto/internal.pb-c.h"
#include "proto/rpc.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_pb_request: %s\n", what);
		abort();
	}
}

/* The depth of an unpacked message, the top being 1. */
static int depth_of(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	int deepest = 0;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *arr =
			    *(ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t k = 0; k < n; k++) {
				int dd = depth_of(arr[k]);
				deepest = dd > deepest ? dd : deepest;
			}
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
		if (sub) {
			int dd = depth_of(sub);
			deepest = dd > deepest ? dd : deepest;
		}
	}
	return deepest + 1;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
	uint8_t *p;

	*n = protobuf_c_message_get_packed_size(m);
	p = malloc(*n + 1);
	check(p != NULL, "out of memory");
	check(protobuf_c_message_pack(m, p) == *n, "pack wrote another size than it said");
	return p;
}

/* Decodes our own JSON and encodes it again. */
static char *json_round(const ProtobufCMessageDescriptor *d, const char *json)
{
	struct srv_jsonpb_error err;
	ProtobufCMessage *back = NULL;
	char *out = NULL;

	check(srv_jsonpb_decode(d, json, strlen(json), NULL, &back, &err) == 0,
	      "the gateway cannot decode its own JSON");
	check(srv_jsonpb_encode_string(back, &out, NULL) == 0,
	      "the gateway cannot encode what it decoded");
	protobuf_c_message_free_unpacked(back, NULL);
	return out;
}

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m, *again;
	uint8_t *p1, *p2;
	size_t n1, n2;
	int depth;

	if (moor_pb_check(d, data, size, MOOR_PB_MAX_DEPTH) != MOOR_PB_OK)
		return; /* refused before any recursion */
	m = protobuf_c_message_unpack(d, NULL, size, data);
	if (!m)
		return;
	depth = depth_of(m);
	check(depth <= MOOR_PB_MAX_DEPTH, "the guard let a deeper message through");
	p1 = pack(m, &n1);
	check(moor_pb_check(d, p1, n1, MOOR_PB_MAX_DEPTH) == MOOR_PB_OK,
	      "the guard refused our own packing");
	again = protobuf_c_message_unpack(d, NULL, n1, p1);
	if (!again)
		fprintf(stderr, "%s: packed again, %zu bytes do not unpack\n", d->name, n1);
	check(again != NULL, "our own packing does not unpack");
	p2 = pack(again, &n2);
	check(n1 == n2 && memcmp(p1, p2, n1) == 0, "pack, unpack, pack is not stable");

	/* JSON nests an object and an array per message level. JSON drops
	 * the unknown fields protobuf-c keeps and replaces bytes that are not
	 * UTF-8 in string fields, so the first round may change the message;
	 * from then on the JSON must be stable. */
	if (2 * depth < SRV_JSONPB_MAX_DEPTH) {
		char *j1 = NULL, *j2 = NULL, *j3 = NULL;

		if (srv_jsonpb_encode_string(m, &j1, NULL) == 0) {
			j2 = json_round(d, j1);
			j3 = json_round(d, j2);
			if (strcmp(j2, j3) != 0)
				fprintf(stderr, "%s as JSON: %s, then %s\n", d->name, j2, j3);
			check(strcmp(j2, j3) == 0, "the JSON round trip is not stable");
		}
		free(j1);
		free(j2);
		free(j3);
	}
	free(p1);
	free(p2);
	protobuf_c_message_free_unpacked(again, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;
	const struct srv_gw_route *routes = srv_gw_routes(&n);
	const ProtobufCMessageDescriptor *last = NULL;

	for (size_t i = 0; i < n; i++) {
		if (routes[i].request == last)
			continue;
		last = routes[i].request;
		one(routes[i].request, data, size);
	}
	one(&etcdserverpb__watch_request__descriptor, data, size);
	one(&etcdserverpb__lease_keep_alive_request__descriptor, data, size);
	one(&moorpb__internal_request__descriptor, data, size);
	return 0;
}

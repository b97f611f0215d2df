/*
 * Fuzz target for the gateway's JSON decoder: the input is decoded as the
 * request of every gateway route (unary), and as a stream of watch and
 * keep-alive requests. Whatever decodes must survive a round trip exactly:
 * encode → decode gives the same protobuf bytes, and encoding that again
 * gives the same JSON. Anything else aborts.
 */
#include "server/gateway_errors.h"
#include "server/jsonpb.h"

#include "proto/rpc.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_jsonpb: %s\n", what);
		abort();
	}
}

static void round_trip(const ProtobufCMessage *m)
{
	char *json = NULL, *again = NULL;
	size_t len = 0, n1, n2;
	ProtobufCMessage *back = NULL;
	struct srv_jsonpb_error err;
	uint8_t *p1, *p2;

	check(srv_jsonpb_encode_string(m, &json, &len) == 0, "encode failed");
	check(srv_jsonpb_decode(m->descriptor, json, len, NULL, &back, &err) == 0,
	      "re-decoding our own output failed");
	n1 = protobuf_c_message_get_packed_size(m);
	n2 = protobuf_c_message_get_packed_size(back);
	check(n1 == n2, "round trip changed the packed size");
	p1 = malloc(n1 + 1);
	p2 = malloc(n2 + 1);
	check(p1 && p2, "out of memory");
	protobuf_c_message_pack(m, p1);
	protobuf_c_message_pack(back, p2);
	check(memcmp(p1, p2, n1) == 0, "round trip changed the message");
	check(srv_jsonpb_encode_string(back, &again, NULL) == 0, "second encode failed");
	check(strcmp(json, again) == 0, "second encoding differs");
	free(p1);
	free(p2);
	free(json);
	free(again);
	protobuf_c_message_free_unpacked(back, NULL);
}

static void stream(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size,
                   bool at_eof)
{
	size_t off = 0;

	while (off <= size) {
		struct srv_jsonpb_error err;
		ProtobufCMessage *m = NULL;
		size_t used = 0;

		if (srv_jsonpb_decode_next(d, data + off, size - off, at_eof, NULL, &m, &used,
		                           &err) != 0)
			return;
		check(used <= size - off, "consumed more than given");
		off += used;
		if (!m)
			return;
		check(used > 0, "a message from no bytes");
		round_trip(m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;
	const struct srv_gw_route *routes = srv_gw_routes(&n);
	const ProtobufCMessageDescriptor *last = NULL;

	for (size_t i = 0; i < n; i++) {
		struct srv_gw_error gerr;
		ProtobufCMessage *m = NULL;

		if (routes[i].request == last)
			continue;
		last = routes[i].request;
		if (srv_gw_decode_request(routes[i].request, data, size, NULL, &m, &gerr) != 0) {
			check(m == NULL, "a failed decode left a message");
			check(gerr.message[0] != '\0', "a failed decode without a message");
			continue;
		}
		round_trip(m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	stream(&etcdserverpb__watch_request__descriptor, data, size, true);
	stream(&etcdserverpb__watch_request__descriptor, data, size, false);
	stream(&etcdserverpb__lease_keep_alive_request__descriptor, data, size, true);
	return 0;
}

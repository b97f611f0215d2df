# Unit tests for the gateway's JSON codec and errors (server/jsonpb.c,
# server/gateway_errors.c). They link those two objects directly rather than
# libserver.a, so they need neither libuv nor RocksDB.
JSONPB_TEST_OBJS := $(call objs,server/jsonpb.c server/gateway_errors.c) \
	$(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a
JSONPB_TEST_LDLIBS := -ljansson -lprotobuf-c

$(eval $(call link_bin,$(BUILD)/tests/unit_jsonpb,$(call objs,tests/unit/jsonpb/test_jsonpb.c) $(JSONPB_TEST_OBJS),$(JSONPB_TEST_LDLIBS) -lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/unit_gateway_errors,$(call objs,tests/unit/jsonpb/test_gateway_errors.c) $(JSONPB_TEST_OBJS),$(JSONPB_TEST_LDLIBS) -lcmocka))
TESTS += $(BUILD)/tests/unit_jsonpb $(BUILD)/tests/unit_gateway_errors

.PHONY: test-jsonpb
test-jsonpb: $(BUILD)/tests/unit_jsonpb $(BUILD)/tests/unit_gateway_errors $(BUILD)/tests/fuzz_replay_jsonpb
	@BUILD=$(BUILD) tests/run.sh $^

# Micro-benchmark (make bench only).
$(eval $(call link_bin,$(BUILD)/bench/bench_jsonpb,$(call objs,tests/unit/jsonpb/bench_jsonpb.c) $(JSONPB_TEST_OBJS),$(JSONPB_TEST_LDLIBS)))
BENCHES += $(BUILD)/bench/bench_jsonpb

# Field types and labels etcd's API does not use, from a test-only .proto.
JSONPB_TYPES_GEN := $(BUILD)/gen/tests/unit/jsonpb/jsonpb_test.pb-c
$(JSONPB_TYPES_GEN).c $(JSONPB_TYPES_GEN).h: tests/unit/jsonpb/jsonpb_test.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen $<
.SECONDARY: $(JSONPB_TYPES_GEN).c $(JSONPB_TYPES_GEN).h
$(BUILD)/obj/tests/unit/jsonpb/test_jsonpb_types.o: $(JSONPB_TYPES_GEN).h
$(eval $(call link_bin,$(BUILD)/tests/unit_jsonpb_types,$(call objs,tests/unit/jsonpb/test_jsonpb_types.c) $(BUILD)/obj/gen/tests/unit/jsonpb/jsonpb_test.pb-c.o $(JSONPB_TEST_OBJS),$(JSONPB_TEST_LDLIBS) -lcmocka))
TESTS += $(BUILD)/tests/unit_jsonpb_types
test-jsonpb: $(BUILD)/tests/unit_jsonpb_types

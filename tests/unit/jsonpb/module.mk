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

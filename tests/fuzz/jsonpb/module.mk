# libFuzzer target for the gateway's JSON request decoder (server/jsonpb.c);
# without FUZZ=1, a test replaying tests/fuzz/corpus/jsonpb/.
$(eval $(call fuzz_target,jsonpb,$(call objs,tests/fuzz/jsonpb/fuzz_jsonpb.c server/jsonpb.c server/gateway_errors.c) $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-ljansson -lprotobuf-c))

# tests/fuzz/replay.c (not ours) has "corpus/NAME/*" in its opening comment,
# which -Werror=comment refuses; until it is fixed there, build it without
# that warning. Harmless once fixed.
$(BUILD)/obj/tests/fuzz/replay.o: CFLAGS += -Wno-comment

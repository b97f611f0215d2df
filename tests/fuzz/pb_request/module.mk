# libFuzzer target for protobuf bodies from outside (proto/pbcheck.c, the
# protobuf-c unpack of every request, the JSON codec on what unpacks);
# without FUZZ=1, a test replaying tests/fuzz/corpus/pb_request/.
$(eval $(call fuzz_target,pb_request,$(call objs,tests/fuzz/pb_request/fuzz_pb_request.c server/jsonpb.c server/gateway_errors.c) $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-ljansson -lprotobuf-c))

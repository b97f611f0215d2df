# kv's record and index-key encodings (kv/codec.c): a libFuzzer target under
# FUZZ=1, otherwise a test replaying tests/fuzz/corpus/kv_record/.
$(eval $(call fuzz_target,kv_record,$(call objs,tests/fuzz/kv_record/fuzz_kv_record.c) $(BUILD)/lib/libkv.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-lrocksdb -lprotobuf-c))

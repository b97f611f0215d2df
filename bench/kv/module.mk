# bench/kv/: the MVCC store's microbenchmark (make bench). Library paths are
# spelled out: this file is included before kv/module.mk.
$(eval $(call link_bin,$(BUILD)/bench/bench_kv,$(call objs,bench/kv/bench_kv.c) $(BUILD)/lib/libkv.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-lrocksdb -lprotobuf-c))
BENCHES += $(BUILD)/bench/bench_kv

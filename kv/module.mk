# kv/: the MVCC store on RocksDB (kv/kv.h).
kv_SRCS := $(wildcard kv/*.c)
$(eval $(call module_lib,kv,$(kv_SRCS)))
KV_LIBS := $(BUILD)/lib/libkv.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a
KV_LDLIBS := -lrocksdb -lprotobuf-c

# watch/: the watch hub. Depends on common/ and the generated mvccpb
# messages (libproto.a, -lprotobuf-c); not on kv/ (the store is an interface).
watch_SRCS := $(wildcard watch/*.c)
$(eval $(call module_lib,watch,$(watch_SRCS)))
WATCH_LIBS := $(BUILD)/lib/libwatch.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a
WATCH_LDLIBS := -lprotobuf-c

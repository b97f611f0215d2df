# wal/: the write-ahead log (library libwal) and the wal-dump operator tool.
wal_SRCS := wal/record.c wal/state.c wal/recovery.c wal/segment.c wal/wal.c wal/read.c wal/fs_posix.c
$(eval $(call module_lib,wal,$(wal_SRCS)))

BINS += $(BUILD)/bin/wal-dump
$(eval $(call link_bin,$(BUILD)/bin/wal-dump,$(call objs,wal/dump.c wal/dump_main.c) $(BUILD)/lib/libwal.a $(BUILD)/lib/libcommon.a,))

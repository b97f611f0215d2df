# The WAL record reader's fuzz target (replayed from tests/fuzz/corpus/wal_record
# by `make test`; a libFuzzer binary under `make fuzz`).
$(eval $(call fuzz_target,wal_record,$(call objs,tests/fuzz/wal_record/fuzz_wal_record.c tests/wal/memfs.c) $(BUILD)/lib/libwal.a $(BUILD)/lib/libcommon.a,))

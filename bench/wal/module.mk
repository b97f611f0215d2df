# bench/wal/: the WAL benchmark (batch sizes 1..4096 against raw write+fdatasync,
# and group commit under 64 writers). Runs under `make bench`.
BENCHES += $(BUILD)/bench/bench_wal
$(eval $(call link_bin,$(BUILD)/bench/bench_wal,$(call objs,bench/wal/bench_wal.c) $(BUILD)/lib/libwal.a $(BUILD)/lib/libcommon.a,))

.PHONY: bench-wal
bench-wal: $(BUILD)/bench/bench_wal ; $(BUILD)/bench/bench_wal

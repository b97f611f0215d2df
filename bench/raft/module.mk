# bench/raft/: raft core throughput through a 3-member cluster in one thread,
# no I/O, 256-byte entries, batches of 1 and 64; allocations per entry.
BENCHES += $(BUILD)/bench/bench_raft
$(eval $(call link_bin,$(BUILD)/bench/bench_raft,$(call objs,bench/raft/bench_raft.c) $(BUILD)/lib/libraft.a $(BUILD)/lib/libcommon.a,))

.PHONY: bench-raft
bench-raft: $(BUILD)/bench/bench_raft ; $(BUILD)/bench/bench_raft

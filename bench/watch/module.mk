# The watch hub's benchmark (fan-out, latency, idle memory, catch-up) over
# the in-memory store model of tests/watch. Runs under `make bench`.
BENCH_WATCH_LIBS := $(BUILD)/lib/libwatch.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a
$(eval $(call link_bin,$(BUILD)/bench/bench_watch,$(call objs,bench/watch/bench_watch.c tests/watch/memstore.c) $(BENCH_WATCH_LIBS),-lprotobuf-c))
BENCHES += $(BUILD)/bench/bench_watch

.PHONY: bench-watch
bench-watch: $(BUILD)/bench/bench_watch ; $<

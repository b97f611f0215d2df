# bench/moorbench/: moor-bench, the load generator that drives moord and etcd
# alike (etcd's v3 JSON gateway, or moord's protobuf bodies), its unit test,
# and `make bench-compare` (bench/compare/compare.sh: 3-member etcd 3.4 and
# moor clusters on loopback, side by side).
MOORBENCH_SRCS := bench/moorbench/hist.c bench/moorbench/wire.c
MOORBENCH_LIBS := $(call objs,$(MOORBENCH_SRCS)) $(BUILD)/lib/libproto.a
MOORBENCH_LDLIBS := -lcurl -ljansson -lprotobuf-c -lm

BINS += $(BUILD)/bin/moor-bench
$(eval $(call link_bin,$(BUILD)/bin/moor-bench,$(call objs,bench/moorbench/moorbench.c) $(MOORBENCH_LIBS),$(MOORBENCH_LDLIBS)))

MOORBENCH_TESTS := $(BUILD)/tests/test_moorbench
TESTS += $(MOORBENCH_TESTS)
$(eval $(call link_bin,$(BUILD)/tests/test_moorbench,$(call objs,bench/moorbench/test_moorbench.c) $(MOORBENCH_LIBS),-lcmocka $(MOORBENCH_LDLIBS)))

.PHONY: test-moorbench
test-moorbench: $(MOORBENCH_TESTS) ; @BUILD=$(BUILD) tests/run.sh $^

# moor alone, a 3-member cluster on loopback, a few workloads of a few seconds.
BENCHES += $(BUILD)/bench/moor-cluster
$(BUILD)/bench/moor-cluster: bench/compare/compare.sh $(BUILD)/bin/moor-bench $(BUILD)/bin/moord
	@mkdir -p $(@D)
	@printf '#!/bin/bash\nexec %s --moor-only --quick --build %s --out %s "$$@"\n' "$(CURDIR)/bench/compare/compare.sh" "$(CURDIR)/$(BUILD)" "$(CURDIR)/$(BUILD)/bench-moor" > $@
	@chmod +x $@

# etcd 3.4 against moor, every workload, several interleaved rounds.
.PHONY: bench-compare
bench-compare: $(BUILD)/bin/moor-bench $(BUILD)/bin/moord
	bench/compare/compare.sh --build $(BUILD) $(BENCH_COMPARE_FLAGS)

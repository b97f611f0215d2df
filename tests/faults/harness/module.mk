# tests/faults/harness: the fault-injection harness of issue 10 — the worker
# (moor-jepsen-client, over libmoor), the disk shim (a preloaded .so), the
# run script and the scenarios. `make test` runs a short suite
# (tests/faults/harness/short.sh); `make jepsen TIME=... SEED=...` the long one.
JEPSEN_CLIENT := $(BUILD)/bin/moor-jepsen-client
JEPSEN_SHIM := $(BUILD)/lib/moor-diskshim.so
$(eval $(call link_bin,$(JEPSEN_CLIENT),$(call objs,tests/faults/harness/worker.c tests/faults/harness/workloads.c tests/faults/harness/watchers.c tests/faults/harness/history.c tests/faults/harness/rawkv.c) $(BUILD)/lib/libmoor.a,-lcurl -lprotobuf-c -lpthread))
BINS += $(JEPSEN_CLIENT)
LIBS += $(JEPSEN_SHIM)

$(JEPSEN_SHIM): tests/faults/harness/diskshim.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(OPT) $(WARN) -fPIC -shared -o $@ $< -ldl

SCRIPT_TESTS += tests/faults/harness/short.sh

JEPSEN_DEPS := $(BUILD)/bin/moord $(BUILD)/bin/moor-check $(JEPSEN_CLIENT) $(JEPSEN_SHIM)
TIME ?= 1800
SEED ?=
.PHONY: jepsen test-jepsen-short
# The long suite: every scenario in turn until TIME seconds have passed.
jepsen: $(JEPSEN_DEPS)
	@BUILD=$(BUILD) tests/faults/harness/long.sh $(TIME) $(SEED)
test-jepsen-short: $(JEPSEN_DEPS)
	@BUILD=$(BUILD) tests/run.sh tests/faults/harness/short.sh

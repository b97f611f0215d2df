# tests/faults/checker: the history checkers of the fault-injection suite
# (libfaultcheck), the moor-check CLI, their cmocka tests and a script that
# runs the CLI over the example histories in tests/faults/histories/.
FAULTCHECK_SRCS := $(addprefix tests/faults/checker/,util.c history.c linear.c lin_search.c set.c watch.c lock.c revision.c)
$(eval $(call module_lib,faultcheck,$(FAULTCHECK_SRCS)))
FAULTCHECK_LIBS := $(BUILD)/lib/libfaultcheck.a $(BUILD)/lib/libcommon.a

$(eval $(call link_bin,$(BUILD)/bin/moor-check,$(call objs,tests/faults/checker/main.c) $(FAULTCHECK_LIBS),-ljansson))
BINS += $(BUILD)/bin/moor-check

FAULTCHECK_TESTS := $(BUILD)/tests/faults_linear $(BUILD)/tests/faults_workloads
$(eval $(call link_bin,$(BUILD)/tests/faults_linear,$(call objs,tests/faults/checker/tests/test_linear.c tests/faults/checker/tests/gen.c) $(FAULTCHECK_LIBS),-ljansson -lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/faults_workloads,$(call objs,tests/faults/checker/tests/test_workloads.c) $(FAULTCHECK_LIBS),-ljansson -lcmocka))
TESTS += $(FAULTCHECK_TESTS)
SCRIPT_TESTS += tests/faults/checker/tests/histories.sh

.PHONY: test-faults
test-faults: $(FAULTCHECK_TESTS) $(BUILD)/bin/moor-check
	@BUILD=$(BUILD) tests/run.sh $(FAULTCHECK_TESTS) tests/faults/checker/tests/histories.sh

$(eval $(call link_bin,$(BUILD)/bench/bench_faults_check,$(call objs,tests/faults/checker/tests/bench_check.c tests/faults/checker/tests/gen.c) $(FAULTCHECK_LIBS),-ljansson))
BENCHES += $(BUILD)/bench/bench_faults_check

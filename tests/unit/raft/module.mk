# Unit tests for raft/: one scenario per rule of the paper and per promise
# of raft/raft.h, on a hand-driven cluster (fixture.c).
RAFT_UNIT_SRCS := tests/unit/raft/test_raft.c tests/unit/raft/fixture.c
$(eval $(call link_bin,$(BUILD)/tests/unit_raft,$(call objs,$(RAFT_UNIT_SRCS)) $(BUILD)/lib/libraft.a $(BUILD)/lib/libcommon.a,-lcmocka))
TESTS += $(BUILD)/tests/unit_raft

.PHONY: test-raft
test-raft: $(BUILD)/tests/unit_raft $(BUILD)/tests/sim_scenarios $(BUILD)/tests/sim_swarm
	@BUILD=$(BUILD) tests/run.sh $^

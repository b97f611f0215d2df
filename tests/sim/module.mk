# tests/sim/: the raft simulator (seeded swarm + scripted scenarios).
#   make test-sim                the swarm at the default seed count + scenarios
#   make sim SEEDS=100000        that many seeds, split across 2 processes
SIM_ENGINE := $(call objs,tests/sim/sim.c tests/sim/net.c tests/sim/check.c tests/sim/chaos.c)
SIM_LIBS := $(BUILD)/lib/libraft.a $(BUILD)/lib/libcommon.a

$(eval $(call link_bin,$(BUILD)/tests/sim_swarm,$(call objs,tests/sim/swarm.c) $(SIM_ENGINE) $(SIM_LIBS),))

$(eval $(call link_bin,$(BUILD)/tests/sim_scenarios,$(call objs,tests/sim/scenarios.c) $(SIM_ENGINE) $(SIM_LIBS),-lcmocka))
TESTS += $(BUILD)/tests/sim_scenarios $(BUILD)/tests/sim_swarm
.PHONY: test-sim sim
test-sim: $(BUILD)/tests/sim_scenarios $(BUILD)/tests/sim_swarm
	@BUILD=$(BUILD) tests/run.sh $^

SEEDS ?= 1000
sim: $(BUILD)/tests/sim_swarm
	$(BUILD)/tests/sim_swarm --start 1 --count $(SEEDS) --jobs 2

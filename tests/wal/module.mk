# tests/wal/: the WAL's test suites, on memfs (in-memory, fault-injecting) and
# on the real file system under a mkdtemp() directory.
WAL_TEST_COMMON := $(call objs,tests/wal/memfs.c tests/wal/util.c) $(BUILD)/lib/libwal.a $(BUILD)/lib/libcommon.a
WAL_TESTS := $(BUILD)/tests/wal_basic $(BUILD)/tests/wal_crash $(BUILD)/tests/wal_faults $(BUILD)/tests/wal_swarm
$(eval $(call link_bin,$(BUILD)/tests/wal_basic,$(call objs,tests/wal/test_wal_basic.c wal/dump.c) $(WAL_TEST_COMMON),-lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/wal_crash,$(call objs,tests/wal/test_wal_crash.c) $(WAL_TEST_COMMON),-lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/wal_faults,$(call objs,tests/wal/test_wal_faults.c) $(WAL_TEST_COMMON),-lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/wal_swarm,$(call objs,tests/wal/test_wal_swarm.c) $(WAL_TEST_COMMON),-lcmocka))
TESTS += $(WAL_TESTS)

.PHONY: test-wal
test-wal: $(WAL_TESTS) $(BUILD)/tests/fuzz_replay_wal_record $(BUILD)/bin/wal-dump
	@BUILD=$(BUILD) tests/run.sh $(WAL_TESTS) $(BUILD)/tests/fuzz_replay_wal_record

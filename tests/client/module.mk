# tests/client/: libmoor and moorctl against real moord clusters on loopback.
CLIENT_TEST_LIBS := $(BUILD)/lib/libmoor.a
CLIENT_TESTS := $(BUILD)/tests/client_unit $(BUILD)/tests/client_kv $(BUILD)/tests/client_failover
$(eval $(call link_bin,$(BUILD)/tests/client_unit,$(call objs,tests/client/test_client_unit.c) $(CLIENT_TEST_LIBS),$(MOOR_LDLIBS) -lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/client_kv,$(call objs,tests/client/test_client_kv.c tests/client/fixture.c) $(CLIENT_TEST_LIBS),$(MOOR_LDLIBS) -lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/client_failover,$(call objs,tests/client/test_client_failover.c tests/client/fixture.c) $(CLIENT_TEST_LIBS),$(MOOR_LDLIBS) -lcmocka))
TESTS += $(CLIENT_TESTS)
SCRIPT_TESTS += tests/client/test_moorctl.sh tests/client/test_example.sh

.PHONY: test-client
test-client: $(BUILD)/bin/moord $(BUILD)/bin/moorctl $(BUILD)/bin/moor-example-controller $(BUILD)/bin/moor-example-hello $(CLIENT_TESTS) $(BUILD)/lib/libmoor.so $(BUILD)/lib/pkgconfig/moor.pc
	@BUILD=$(BUILD) tests/run.sh $(CLIENT_TESTS) tests/client/test_moorctl.sh tests/client/test_example.sh

# Benchmark: `make bench` (never in `make test`).
BENCHES += $(BUILD)/bench/bench_client
$(eval $(call link_bin,$(BUILD)/bench/bench_client,$(call objs,tests/client/bench_client.c tests/client/fixture.c) $(CLIENT_TEST_LIBS),$(MOOR_LDLIBS)))

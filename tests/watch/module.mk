# Tests of the watch hub: scenarios (test_watch.c) and the randomized model
# check with seeded hand-over schedules (test_watch_model.c), both over the
# in-memory store model in memstore.c.
# (watch/module.mk is included after this file, so name its libraries here.)
WATCH_TEST_LIBS := $(BUILD)/lib/libwatch.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a
WATCH_TEST_COMMON := $(call objs,tests/watch/memstore.c tests/watch/harness.c)
$(eval $(call link_bin,$(BUILD)/tests/watch_unit,$(call objs,tests/watch/test_watch.c) $(WATCH_TEST_COMMON) $(WATCH_TEST_LIBS),-lprotobuf-c -lcmocka))
WATCH_TESTS := $(BUILD)/tests/watch_unit
ifneq ($(wildcard tests/watch/test_watch_model.c),)
$(eval $(call link_bin,$(BUILD)/tests/watch_model,$(call objs,tests/watch/test_watch_model.c) $(WATCH_TEST_COMMON) $(WATCH_TEST_LIBS),-lprotobuf-c -lcmocka))
WATCH_TESTS += $(BUILD)/tests/watch_model
endif
TESTS += $(WATCH_TESTS)

.PHONY: test-watch
test-watch: $(WATCH_TESTS) ; @BUILD=$(BUILD) tests/run.sh $^

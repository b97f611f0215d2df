# tests/kv/: the MVCC store's tests (model-based, crash, semantics).
KV_TEST_HELPERS := $(call objs,tests/kv/model.c tests/kv/gen.c tests/kv/harness.c)
KV_TESTS := $(BUILD)/tests/fuzz_replay_kv_record $(BUILD)/tests/kv_basic $(BUILD)/tests/kv_model $(BUILD)/tests/kv_crash

$(eval $(call link_bin,$(BUILD)/tests/kv_model,$(call objs,tests/kv/test_kv_model.c) $(KV_TEST_HELPERS) $(KV_LIBS),$(KV_LDLIBS) -lcmocka))

$(eval $(call link_bin,$(BUILD)/tests/kv_crash,$(call objs,tests/kv/test_kv_crash.c) $(KV_TEST_HELPERS) $(KV_LIBS),$(KV_LDLIBS) -lcmocka))
$(eval $(call link_bin,$(BUILD)/tests/kv_basic,$(call objs,tests/kv/test_kv_basic.c) $(KV_TEST_HELPERS) $(KV_LIBS),$(KV_LDLIBS) -lcmocka))

# (the fuzz replay is registered by tests/fuzz/kv_record/module.mk)
TESTS += $(filter-out $(BUILD)/tests/fuzz_replay_kv_record,$(KV_TESTS))

.PHONY: test-kv
test-kv: $(KV_TESTS) ; @BUILD=$(BUILD) tests/run.sh $^

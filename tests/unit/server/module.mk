# Unit tests for server/ pieces that run without a daemon.
$(eval $(call link_bin,$(BUILD)/tests/unit_server_config,$(call objs,tests/unit/server/test_config.c server/config.c) $(BUILD)/lib/libcommon.a,-lcmocka))
TESTS += $(UNIT_SERVER_TESTS)

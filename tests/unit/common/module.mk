# Unit tests for common/.
$(eval $(call link_bin,$(BUILD)/tests/unit_common,$(call objs,$(wildcard tests/unit/common/*.c)) $(BUILD)/lib/libcommon.a,-lcmocka))
TESTS += $(BUILD)/tests/unit_common

# Unit tests for server/ pieces that run without a daemon.
$(eval $(call link_bin,$(BUILD)/tests/unit_server_config,$(call objs,tests/unit/server/test_config.c server/config.c) $(BUILD)/lib/libcommon.a,-lcmocka))
TESTS += $(UNIT_SERVER_TESTS)
$(eval $(call link_bin,$(BUILD)/tests/unit_server_peer,$(call objs,tests/unit/server/test_peer.c server/peer.c server/peer_tls.c server/config.c) $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-luv -lprotobuf-c -lssl -lcrypto -lcmocka))

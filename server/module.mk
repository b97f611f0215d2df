# server/: moord. Every server/*.c but main.c goes into libserver.a, so that
# tests can link the pieces (config, http, codecs) without the daemon's main.
server_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
$(eval $(call module_lib,server,$(server_SRCS)))

MOORD_LIBS := $(BUILD)/lib/libserver.a $(BUILD)/lib/libraft.a $(BUILD)/lib/libwal.a $(BUILD)/lib/libkv.a $(BUILD)/lib/libwatch.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a
MOORD_LDLIBS := -luv -lmicrohttpd -ljansson -lprotobuf-c -lrocksdb -lssl -lcrypto -lpthread
BINS += $(BUILD)/bin/moord
$(eval $(call link_bin,$(BUILD)/bin/moord,$(call objs,server/main.c) $(MOORD_LIBS),$(MOORD_LDLIBS)))

SCRIPT_TESTS += tests/cluster/test_moord_start.sh tests/cluster/test_cluster_basic.sh tests/cluster/test_cluster_watch_lease.sh tests/cluster/test_cluster_membership.sh tests/cluster/test_cluster_quota.sh tests/cluster/test_readme.sh tests/cluster/test_restore.sh tests/cluster/test_stop_inflight.sh
UNIT_SERVER_TESTS := $(BUILD)/tests/unit_server_config $(BUILD)/tests/unit_server_peer
.PHONY: test-server
test-server: $(BUILD)/bin/moord $(UNIT_SERVER_TESTS)
	@BUILD=$(BUILD) tests/run.sh $(UNIT_SERVER_TESTS) tests/cluster/test_moord_start.sh tests/cluster/test_cluster_basic.sh tests/cluster/test_cluster_watch_lease.sh tests/cluster/test_cluster_membership.sh tests/cluster/test_cluster_quota.sh tests/cluster/test_readme.sh tests/cluster/test_restore.sh tests/cluster/test_stop_inflight.sh

# The probe of the bidirectional watch stream, used by test_watch_stream.sh.
BINS += $(BUILD)/bin/moor-watch-probe
$(eval $(call link_bin,$(BUILD)/bin/moor-watch-probe,$(call objs,tests/cluster/watch_probe.c) $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-lprotobuf-c))
SCRIPT_TESTS += tests/cluster/test_watch_stream.sh
SCRIPT_TESTS += tests/cluster/test_lock_election.sh

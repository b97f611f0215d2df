# server/: moord. Every server/*.c but main.c goes into libserver.a, so that
# tests can link the pieces (config, http, codecs) without the daemon's main.
server_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
$(eval $(call module_lib,server,$(server_SRCS)))

MOORD_LIBS := $(BUILD)/lib/libserver.a $(BUILD)/lib/libraft.a $(BUILD)/lib/libwal.a $(BUILD)/lib/libkv.a $(BUILD)/lib/libwatch.a $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a
MOORD_LDLIBS := -luv -lmicrohttpd -lgnutls -ljansson -lprotobuf-c -lrocksdb -lssl -lcrypto -lpthread
BINS += $(BUILD)/bin/moord
$(eval $(call link_bin,$(BUILD)/bin/moord,$(call objs,server/main.c) $(MOORD_LIBS),$(MOORD_LDLIBS)))

SCRIPT_TESTS += tests/cluster/test_moord_start.sh tests/cluster/test_cluster_basic.sh tests/cluster/test_cluster_watch_lease.sh tests/cluster/test_cluster_membership.sh tests/cluster/test_cluster_quota.sh tests/cluster/test_readme.sh tests/cluster/test_restore.sh tests/cluster/test_stop_inflight.sh tests/cluster/test_peer_names.sh
UNIT_SERVER_TESTS := $(BUILD)/tests/unit_server_config $(BUILD)/tests/unit_server_peer
.PHONY: test-server
test-server: $(BUILD)/bin/moord $(UNIT_SERVER_TESTS)
	@BUILD=$(BUILD) tests/run.sh $(UNIT_SERVER_TESTS) tests/cluster/test_moord_start.sh tests/cluster/test_cluster_basic.sh tests/cluster/test_cluster_watch_lease.sh tests/cluster/test_cluster_membership.sh tests/cluster/test_cluster_quota.sh tests/cluster/test_readme.sh tests/cluster/test_restore.sh tests/cluster/test_stop_inflight.sh tests/cluster/test_peer_names.sh

# The probe of the bidirectional watch stream, used by test_watch_stream.sh.
BINS += $(BUILD)/bin/moor-watch-probe
$(eval $(call link_bin,$(BUILD)/bin/moor-watch-probe,$(call objs,tests/cluster/watch_probe.c tests/cluster/probe_tls.c) $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-lprotobuf-c -lgnutls -lpthread))
SCRIPT_TESTS += tests/cluster/test_watch_stream.sh
# TLS on the client listener; uses moorctl and the probe (with its TLS relay).
SCRIPT_TESTS += tests/cluster/test_tls.sh
# TLS between members (server/peer_tls.c): https peer URLs, snapshots over
# TLS, a member from another CA refused.
SCRIPT_TESTS += tests/cluster/test_peer_tls.sh

# etcd's JSON gateway answer for answer against a real etcd (3.4, Debian's
# etcd-server). In `make test` it compares when an etcd binary is there and
# says so when not (installing etcd-server would start a system etcd on
# 127.0.0.1:2379 on hosts with systemd, where `make run` listens);
# `make test-conformance` installs etcd-server and requires the comparison.
SCRIPT_TESTS += tests/cluster/test_etcd_conformance.sh
.PHONY: test-conformance
test-conformance: $(BUILD)/bin/moord
	@scripts/deps.sh etcd-server
	@BUILD=$(BUILD) MOOR_CONFORMANCE_OPTIONAL=0 tests/run.sh tests/cluster/test_etcd_conformance.sh

# etcd's lock and election services (server/api_lock.c).
SCRIPT_TESTS += tests/cluster/test_lock_election.sh

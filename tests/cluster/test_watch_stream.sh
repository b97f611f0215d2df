#!/usr/bin/env bash
# The bidirectional watch stream (Upgrade: moor-watch/1) on a follower of a
# 3-member cluster, driven by moor-watch-probe (tests/cluster/watch_probe.c):
# creates and cancels at any time on one connection.
set -u
source "$(dirname "$0")/lib.sh"
PROBE=${PROBE:-$BUILD/bin/moor-watch-probe}

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3
f=$(((T_LEADER % 3) + 1))
"$PROBE" "${C_HOST[$f]}" "${C_CPORT[$f]}" >"$T_TMP/probe.out" 2>&1
rc=$?
sed 's/^/    probe: /' "$T_TMP/probe.out"
t_check "every check of the probe passed (exit $rc)" test "$rc" = 0
t_check "the probe ran all its checks" grep -q '^14 passed, 0 failed$' "$T_TMP/probe.out"
for i in 1 2 3; do t_member_stop "$i" TERM; done
t_check "the members stop cleanly with the stream closed" test "$T_RC" = 0
t_done

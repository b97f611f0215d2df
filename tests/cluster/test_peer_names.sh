#!/usr/bin/env bash
# Peer URLs that are DNS names (what a StatefulSet's members advertise):
# a member advertised by name is dialled at the address the name resolves
# to, and a peer whose name cannot be resolved - its pod not yet in DNS, a
# DNS server that does not answer - does not stall the event loop that runs
# raft: writes are answered while that peer is dialled again and again.
#
# The test runs in a mount namespace of its own, where /etc/hosts names
# member 3 and /etc/resolv.conf points at a loopback UDP port that reads
# queries and never answers (each lookup of any other name then waits for
# the resolver's timeout, 5 s here). Needs root (unshare -m) and python3;
# without them it says why and checks nothing.
set -u
if [[ -z ${MOOR_PEER_NAMES_NS:-} ]]; then
	if [[ $(id -u) -ne 0 ]] || ! command -v python3 >/dev/null ||
		! unshare -m true 2>/dev/null; then
		echo "skipped: needs root, unshare -m and python3"
		echo "0 passed, 0 failed"
		exit 0
	fi
	MOOR_PEER_NAMES_NS=1 exec unshare -m bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

t_cluster_init 3
name3=moor-3.moor-peers.test
name4=moor-4.moor-peers.test # in no hosts file; DNS never answers
dns=${C_HOST[1]%.*}.53
cat >"$T_TMP/hosts" <<EOF
127.0.0.1 localhost
${C_HOST[3]} $name3
EOF
printf 'nameserver %s\noptions timeout:5 attempts:1\n' "$dns" >"$T_TMP/resolv.conf"
mount --bind "$T_TMP/hosts" /etc/hosts
mount --bind "$T_TMP/resolv.conf" /etc/resolv.conf
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    s.recv(4096)
' "$dns" &
T_PIDS+=($!)
t_check "a name not in the hosts file waits for the silent DNS server" \
	bash -c "! timeout 10 getent ahosts $name4 >/dev/null"

C_CLUSTER="m1=$(t_peer_url 1),m2=$(t_peer_url 2),m3=http://$name3:2380,m4=http://$name4:2380"
t_member_start 1
t_member_start 2
t_member_start 3 --initial-advertise-peer-urls "http://$name3:2380"
t_check "three of four members elect a leader" t_wait_leader 20 1 2 3
t_check "member 1 dialled member 3 at its name" \
	grep -q "connected to peer [0-9a-f]* at http://$name3:2380" "$T_TMP/m1.log"

# Blocked, the loop would sit 5 s in each lookup of member 4's name, redialled
# every 2 s at most: most puts would wait longer than curl's 3 s.
failed=0
for k in $(seq 1 40); do
	curl -fsS -m 3 -o /dev/null -X POST "$(t_url $(((k % 3) + 1)))/v3/kv/put" \
		-d "{\"key\":\"$(b64 "names/$k")\",\"value\":\"$(b64 "v$k")\"}" || failed=$((failed + 1))
	((failed > 2)) && break # blocked: no use waiting for the rest
	sleep 0.2
done
t_check "40 writes over 8 s, each answered, while member 4's name is looked up" \
	test "$failed" = 0
t_check "every write is on member 3" test "$(t_get 3 names/40)" = v40
# a lookup may be in flight on libuv's pool: stopping waits for it, no more
t_member_stop 1 TERM
t_check "member 1 exits 0 on SIGTERM with member 4's name still unresolved" test "$T_RC" = 0
t_done

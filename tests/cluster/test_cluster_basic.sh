#!/usr/bin/env bash
# A 3-member cluster of real moord processes on loopback: writes through
# every member, linearizable and serializable reads, the leader killed and a
# new one elected, a member restarted with its data catching up, equal
# HashKV on every member, SIGTERM of the leader losing no acknowledged write,
# a peer speaking garbage, and a data directory of another member refused.
set -u
source "$(dirname "$0")/lib.sh"

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected and known to every member within 15 s" t_wait_leader 15 1 2 3

acked=0
failed=0
for i in 1 2 3; do
	for k in $(seq 1 10); do
		if [[ -n $(t_put "$i" "k/$i/$k" "v$i.$k") ]]; then
			acked=$((acked + 1))
		else
			failed=$((failed + 1))
		fi
	done
done
t_check "30 writes through all three members are acknowledged ($acked ok, $failed failed)" test "$acked" = 30
for i in 1 2 3; do
	t_check "member m$i reads all 30 keys linearizably" test "$(t_count "$i" k/)" = 30
	t_check "member m$i reads a value written through another member" \
		test "$(t_get "$i" "k/$(((i % 3) + 1))/7")" = "v$(((i % 3) + 1)).7"
done
for i in 1 2 3; do
	t_check "member m$i serves 30 keys from its local store" t_wait_eq 10 30 t_count "$i" k/ true
done

# Kill the leader.
old=$T_LEADER
old_hex=$(printf '%016x' "$(t_member_id "$old")")
t_member_stop "$old" KILL
alive=()
for i in 1 2 3; do [[ $i != "$old" ]] && alive+=("$i"); done
# A write through a follower that knows its link to the dead leader is down
# is never sent: it is refused at once as not applied ("raft proposal
# dropped", or "no leader" once the election began), not left unknown
# ("leader changed", a timeout). Unless a new leader was elected first.
s=${alive[0]}
t_wait_eq 5 1 bash -c "grep -c 'lost connection to peer $old_hex' '$T_TMP/m$s.log' | sed 's/^[1-9][0-9]*$/1/'"
out=$(curl -sS -m 10 -X POST "$(t_url "$s")/v3/kv/put" -d "{\"key\":\"$(b64 orphan)\",\"value\":\"$(b64 x)\"}")
t_check "a write forwarded to a leader whose link is down is refused as not applied ($out)" \
	bash -c "[[ '$out' == *'raft proposal dropped'* || '$out' == *'no leader'* || '$out' == *'\"revision\"'* ]]"
t_check "after kill -9 of the leader m$old a new leader is elected within 10 s" \
	t_wait_leader 10 "${alive[@]}"
t_check "the new leader is not the dead one" test "$T_LEADER" != "$old"
n_after=0
for k in $(seq 1 10); do
	[[ -n $(t_put "${alive[$((k % 2))]}" "after/$k" "x$k") ]] && n_after=$((n_after + 1))
done
t_check "writes go on with one member down ($n_after of 10)" test "$n_after" = 10
t_check "a survivor reads them linearizably" test "$(t_count "${alive[0]}" after/)" = 10

# Restart it with its data: it catches up.
t_member_start "$old"
t_check "the restarted member m$old catches up (serializable count)" t_wait_eq 15 10 t_count "$old" after/ true
t_check "and sees the writes from before its death" t_wait_eq 5 30 t_count "$old" k/ true
h1=$(t_hashkv 1)
t_check "HashKV is equal on all three members" \
	bash -c "[[ -n '$h1' && '$h1' == '$(t_hashkv 2)' && '$h1' == '$(t_hashkv 3)' ]]"

# A peer speaking garbage: the member closes that connection and serves on.
exec 3<>"/dev/tcp/${C_HOST[1]}/${C_PPORT[1]}"
printf 'GARBAGE GARBAGE GARBAGE\r\n\r\n' >&3
exec 3>&-
t_check "a member fed garbage on its peer port keeps serving" \
	test -n "$(t_put 1 garbage/after yes)"
t_check "... and logs why it closed that connection" \
	t_wait_eq 5 1 bash -c "grep -c 'closing peer connection' '$T_TMP/m1.log' | sed 's/^[1-9][0-9]*$/1/'"

# SIGTERM of the leader: clean exit, nothing acknowledged lost.
t_check "a leader is known again" t_wait_leader 10 1 2 3
old=$T_LEADER
t_member_stop "$old" TERM
t_check "SIGTERM stops the leader m$old with exit 0 (got $T_RC)" test "$T_RC" = 0
t_check "... after handing leadership to another member" grep -q "handing leadership" "$T_TMP/m$old.log"
alive=()
for i in 1 2 3; do [[ $i != "$old" ]] && alive+=("$i"); done
t_check "the others elect a new leader within 10 s" t_wait_leader 10 "${alive[@]}"
t_check "every acknowledged write is still there (k/: 30)" test "$(t_count "${alive[0]}" k/)" = 30
t_check "every acknowledged write is still there (after/: 10)" test "$(t_count "${alive[1]}" after/)" = 10

for i in "${alive[@]}"; do t_member_stop "$i" TERM; done

# A data directory that belongs to another member is refused.
"$MOORD" --name "m$old" --data-dir "$T_TMP/m${alive[0]}" \
	--listen-client-urls "$(t_url "$old")" \
	--listen-peer-urls "$(t_peer_url "$old")" \
	--initial-cluster "$C_CLUSTER" 2>"$T_TMP/wrong.log" &
wrong=$!
t_wait_exit "$wrong" 20
t_check "a data directory of another member is refused with exit 1 (got $T_RC)" test "$T_RC" = 1
t_check "... naming the member it belongs to" grep -q "belongs to member" "$T_TMP/wrong.log"

t_done

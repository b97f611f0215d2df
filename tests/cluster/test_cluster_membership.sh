#!/usr/bin/env bash
# Membership and snapshots on real moord processes: the log is compacted
# every 50 entries, so members that join or come back must be sent the
# store's snapshot. A learner joins and is promoted; the cluster grows to
# five voters and shrinks back to three (removed members stop themselves);
# a member wiped and re-added catches up by snapshot, as a new member with
# a new id that a late removal of the old one cannot touch; leadership
# moves on request; every member ends with the same HashKV.
set -u
source "$(dirname "$0")/lib.sh"

t_cluster_init 5
FULL=$C_CLUSTER
# the cluster starts with m1..m3; m4 and m5 are added later
C_CLUSTER=$(echo "$FULL" | cut -d, -f1-3)
for i in 1 2 3; do t_member_start "$i" --snapshot-count 50; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3
ok=0
for k in $(seq 1 200); do [[ -n $(t_put $(((k % 3) + 1)) "s/$k" "v$k") ]] && ok=$((ok + 1)); done
t_check "200 writes acknowledged while the log is compacted every 50 entries" test "$ok" = 200

member_add() { # I LEARNER: adds member I, prints its id
	t_api 1 /v3/cluster/member/add \
		"{\"peerURLs\":[\"$(t_peer_url "$1")\"],\"isLearner\":$2}" |
		sed -n 's/.*"member":{"ID":"\([0-9]*\)".*/\1/p'
}
member_list() { t_api "${1:-1}" /v3/cluster/member/list '{}'; }
# member_remove I ID: as a client would, retried while the cluster answers
# "leader changed" or "no leader" (503); "member not found" after a retry
# means an earlier try did apply.
member_call() { # I VERB ID
	local code
	for try in 1 2 3 4 5; do
		code=$(curl -s -m 10 -o "$T_TMP/rm.out" -w '%{http_code}' -X POST \
			"$(t_url "$1")/v3/cluster/member/$2" -d "{\"ID\":\"$3\"}")
		[[ $code == 200 ]] && return 0
		[[ $try -gt 1 && $2 == remove ]] && grep -q "member not found" "$T_TMP/rm.out" && return 0
		[[ $code == 503 || $code == 400 ]] || return 1
		sleep 1
	done
	return 1
}
member_remove() { member_call "$1" remove "$2"; }

id4=$(member_add 4 true)
t_check "member add (learner) answers with the new member's id" test -n "$id4"
t_check "the member list shows it as a learner" \
	bash -c "curl -fsS -X POST '$(t_url 2)/v3/cluster/member/list' -d '{}' | grep -q '\"ID\":\"$id4\",\"peerURLs\":\\[\"$(t_peer_url 4)\"\\],\"isLearner\":true'"
# not started yet, the learner has none of the log: a promote through any
# member is refused at once with etcd's error, not left to time out
# (before, the member waited for a change that never came and answered a
# timeout, not this error)
for i in 1 2 3; do
	code=$(curl -s -m 10 -o "$T_TMP/promote.out" -w '%{http_code}' -X POST \
		"$(t_url "$i")/v3/cluster/member/promote" -d "{\"ID\":\"$id4\"}")
	t_check "promoting a learner that has not caught up, through m$i: refused (HTTP $code)" \
		bash -c "[[ $code == 400 ]] && grep -q 'can only promote a learner member which is in sync with leader' '$T_TMP/promote.out'"
done
C_CLUSTER=$(echo "$FULL" | cut -d, -f1-4)
t_member_start 4 --snapshot-count 50 --initial-cluster-state existing
t_check "the learner gets the store by snapshot (serializable count 200)" \
	t_wait_eq 20 200 t_count 4 s/ true
t_check "... and it logged the snapshot it installed" grep -q "installed snapshot" "$T_TMP/m4.log"
t_check "promote the learner" member_call 3 promote "$id4"
t_check "after promotion it is a voter" \
	bash -c "! curl -fsS -X POST '$(t_url 1)/v3/cluster/member/list' -d '{}' | grep -q isLearner"

id5=$(member_add 5 false)
t_check "member add (voter) answers with the new member's id" test -n "$id5"
C_CLUSTER=$FULL
t_member_start 5 --snapshot-count 50 --initial-cluster-state existing
t_check "five voters agree on a leader" t_wait_leader 20 1 2 3 4 5
for k in $(seq 201 260); do t_put $(((k % 5) + 1)) "s/$k" "v$k" >/dev/null; done
for i in 1 2 3 4 5; do
	t_check "member m$i of five reads all 260 keys" t_wait_eq 15 260 t_count "$i" s/ true
done
h=$(t_hashkv 1)
same=1
for i in 2 3 4 5; do [[ $(t_hashkv "$i") == "$h" ]] || same=0; done
t_check "HashKV is equal on all five members" test "$same" = 1

# Leadership moves on request.
t_check "a leader is known" t_wait_leader 10 1 2 3 4 5
target=$(( (T_LEADER % 5) + 1 ))
tid=$(t_member_id "$target")
t_check "transfer-leadership to m$target is answered" \
	bash -c "curl -fsS -m 10 -X POST '$(t_url "$T_LEADER")/v3/maintenance/transfer-leadership' -d '{\"targetID\":\"$tid\"}' >/dev/null"
t_check "m$target is now the leader" t_wait_eq 10 "$tid" t_leader_of 1

# Shrink back to three: removed members stop themselves.
for i in 4 5; do
	id=$(t_member_id "$i")
	t_check "remove member m$i" member_remove 1 "$id"
	t_wait_exit "${C_PID[$i]}" 15
	t_check "removed member m$i stops by itself with exit 0 (got $T_RC)" test "$T_RC" = 0
done
t_check "three members remain in the list" \
	test "$(member_list 2 | grep -o '"ID"' | wc -l)" = 3
t_check "the three agree on a leader" t_wait_leader 15 1 2 3
t_check "writes go on" test -n "$(t_put 2 after/shrink yes)"

# A member wiped and re-added catches up by snapshot.
t_member_stop 3 KILL
t_check "the two others agree on a leader" t_wait_leader 10 1 2
id3=$(curl -fsS -X POST "$(t_url 1)/v3/cluster/member/list" -d '{}' |
	grep -o "{\"ID\":\"[0-9]*\",\"name\":\"m3\"" | grep -o '[0-9]\{5,\}')
t_check "remove the dead member m3" member_remove 1 "$id3"
rm -rf "$T_TMP/m3"
for k in $(seq 1 120); do t_put $(((k % 2) + 1)) "w/$k" "x" >/dev/null; done
new3=$(member_add 3 false)
t_check "re-add m3" test -n "$new3"
t_check "m3 added again at the same URL is a new member (id $new3, was $id3)" \
	test "$new3" != "$id3"
C_CLUSTER=$(echo "$FULL" | cut -d, -f1-3)
t_member_start 3 --snapshot-count 50 --initial-cluster-state existing
t_check "the wiped member catches up (120 new keys)" t_wait_eq 20 120 t_count 3 w/ true
t_check "and has the old ones" t_wait_eq 5 260 t_count 3 s/ true
t_check "it took the id the cluster gave it" test "$(t_member_id 3)" = "$new3"
# A late duplicate of the old m3's removal (a retry that arrives after the
# re-add) finds no such member and leaves the new one alone.
out=$(curl -sS -m 10 -X POST "$(t_url 2)/v3/cluster/member/remove" -d "{\"ID\":\"$id3\"}")
t_check "removing the old m3 again is answered 'member not found' ($out)" \
	grep -q "member not found" <<<"$out"
sleep 1
t_check "... and the new m3 is still a member and running" \
	bash -c "kill -0 ${C_PID[3]} && [[ \$(curl -fsS -X POST '$(t_url 1)/v3/cluster/member/list' -d '{}' | grep -o '\"ID\"' | wc -l) == 3 ]]"
# Restarted, it is still that member: the id is in its identity file.
t_member_stop 3 TERM
t_member_start 3 --snapshot-count 50
t_check "restarted, m3 keeps the id it was given" t_wait_eq 10 "$new3" t_member_id 3
h=$(t_hashkv 1)
t_check "HashKV is equal on the three members" \
	bash -c "[[ '$h' == '$(t_hashkv 2)' && '$h' == '$(t_hashkv 3)' ]]"

for i in 1 2 3; do t_member_stop "$i" TERM; done
t_done

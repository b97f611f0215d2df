#!/usr/bin/env bash
# Watches and leases on a 3-member cluster of real moord processes:
# a watch catches up from history and follows live writes with prev_kv;
# a watch resumed on another member after its member dies gets every
# revision exactly once; a lease expires and takes its keys; keep-alives
# hold a lease across the death of the leader; a lease survives a failover
# without expiring early and is revoked by the new leader when its time is up.
set -u
source "$(dirname "$0")/lib.sh"

# revisions KEYFILE: the mod_revisions of the events in a JSON watch stream.
revisions() {
	grep -o '"mod_revision":"[0-9]*"' "$1" | grep -o '[0-9]*'
}
# Event mod_revisions only (prev_kv entries carry theirs too): take the
# "kv" objects, which come first in each event.
event_revs() {
	grep -o '{"kv":{[^}]*}\|{"type":"DELETE","kv":{[^}]*}' "$1" |
		grep -o '"mod_revision":"[0-9]*"' | grep -o '[0-9]*'
}

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3

# --- a watch from history, then live, with prev_kv ---
r0=$(t_put 1 w/a v1)
t_put 2 w/a v2 >/dev/null
curl -sN -m 30 -X POST "$(t_url 3)/v3/watch" \
	-d "{\"create_request\":{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"start_revision\":\"$r0\",\"prev_kv\":true}}" \
	>"$T_TMP/w1.out" &
wpid=$!
T_PIDS+=("$wpid")
t_put 1 w/b v3 >/dev/null
t_put 1 w/a v4 >/dev/null
curl -fsS -X POST "$(t_url 2)/v3/kv/deleterange" -d "{\"key\":\"$(b64 w/b)\"}" >/dev/null
t_check "the watch sees 5 events (2 from history, 3 live)" \
	t_wait_eq 10 5 bash -c "grep -o '\"kv\":{\"key\"' '$T_TMP/w1.out' | wc -l | tr -d ' ' ; true" 
t_check "the first response says created" grep -q '"created":true' "$T_TMP/w1.out"
t_check "the delete arrives as a DELETE event with its previous value" \
	grep -q '"type":"DELETE","kv":{"key":"'"$(b64 w/b)"'"' "$T_TMP/w1.out"
t_check "a live put carries prev_kv" grep -q "\"prev_kv\":{\"key\":\"$(b64 w/a)\"" "$T_TMP/w1.out"
kill "$wpid" 2>/dev/null

# --- a watch resumed on another member after its member dies ---
t_check "a leader is known" t_wait_leader 10 1 2 3
leader=$T_LEADER
watcher=$(((leader % 3) + 1))   # a follower
writer=$(((watcher % 3) + 1))
[[ $writer == "$watcher" ]] && writer=$leader
start=$(($(t_put "$writer" r/0 x) + 1))
curl -sN -m 60 -X POST "$(t_url "$watcher")/v3/watch" \
	-d "{\"create_request\":{\"key\":\"$(b64 r/)\",\"range_end\":\"$(b64 r0)\",\"start_revision\":\"$start\"}}" \
	>"$T_TMP/r1.out" &
wpid=$!
T_PIDS+=("$wpid")
expected=()
for k in $(seq 1 20); do expected+=("$(t_put "$writer" "r/$k" "v$k")"); done
t_check "the first watch got the first 20 revisions" \
	t_wait_eq 10 20 bash -c "grep -o '\"kv\":{\"key\"' '$T_TMP/r1.out' | wc -l | tr -d ' '"
t_member_stop "$watcher" KILL
wait "$wpid" 2>/dev/null
last=$(event_revs "$T_TMP/r1.out" | tail -n 1)
alive=()
for i in 1 2 3; do [[ $i != "$watcher" ]] && alive+=("$i"); done
t_check "a leader among the survivors" t_wait_leader 10 "${alive[@]}"
other=${alive[0]}
[[ $other == "$writer" ]] && other=${alive[1]}
for k in $(seq 21 30); do expected+=("$(t_put "$writer" "r/$k" "v$k")"); done
curl -sN -m 60 -X POST "$(t_url "$other")/v3/watch" \
	-d "{\"create_request\":{\"key\":\"$(b64 r/)\",\"range_end\":\"$(b64 r0)\",\"start_revision\":\"$((last + 1))\"}}" \
	>"$T_TMP/r2.out" &
wpid=$!
T_PIDS+=("$wpid")
for k in $(seq 31 40); do expected+=("$(t_put "$writer" "r/$k" "v$k")"); done
t_check "the resumed watch catches up and follows" \
	t_wait_eq 15 20 bash -c "grep -o '\"kv\":{\"key\"' '$T_TMP/r2.out' | wc -l | tr -d ' '"
kill "$wpid" 2>/dev/null
got=$( (event_revs "$T_TMP/r1.out"; event_revs "$T_TMP/r2.out") | tr '\n' ' ')
want=$(printf '%s\n' "${expected[@]}" | tr '\n' ' ')
t_check "across the failover every revision arrived exactly once, in order" test "$got" = "$want"
t_member_start "$watcher"
t_check "the killed member rejoins" t_wait_leader 15 1 2 3

# --- leases ---
lease() { t_api "$1" /v3/lease/grant "{\"TTL\":\"$2\",\"ID\":\"$3\"}" >/dev/null; }
keepalive() {
	curl -fsS -m 2 -X POST "$(t_url "$1")/v3/lease/keepalive" -d "{\"ID\":\"$2\"}" |
		sed -n 's/.*"TTL":"\([0-9]*\)".*/\1/p'
}
lease 1 3 101
t_api 2 /v3/kv/put "{\"key\":\"$(b64 l/a)\",\"value\":\"$(b64 x)\",\"lease\":\"101\"}" >/dev/null
t_check "a key attached to a lease exists" test "$(t_get 3 l/a)" = x
t_check "the lease expires and takes its key" t_wait_eq 15 "" t_get 3 l/a
t_check "a keep-alive of the expired lease says TTL 0 (nothing)" test -z "$(keepalive 1 101)"

lease 2 6 102
t_api 1 /v3/kv/put "{\"key\":\"$(b64 l/b)\",\"value\":\"$(b64 y)\",\"lease\":\"102\"}" >/dev/null
t_check "a keep-alive answers the lease's TTL" test "$(keepalive 3 102)" = 6
t_check "a leader is known" t_wait_leader 10 1 2 3
t_member_stop "$T_LEADER" KILL
dead=$T_LEADER
alive=()
for i in 1 2 3; do [[ $i != "$dead" ]] && alive+=("$i"); done
renewed=0
for k in $(seq 1 10); do
	# keep it alive through the failover, as a client would every TTL/3
	[[ -n $(keepalive "${alive[$((k % 2))]}" 102 2>/dev/null) ]] && renewed=$((renewed + 1))
	sleep 1
done
t_check "keep-alives go on after the failover ($renewed of 10 answered)" test "$renewed" -ge 5
t_check "keep-alives across the leader's death hold the lease" test "$(t_get "${alive[0]}" l/b)" = y
t_check "the lease's key is still there on the other survivor" test "$(t_get "${alive[1]}" l/b)" = y
t_check "without keep-alives the new leader revokes it" t_wait_eq 20 "" t_get "${alive[0]}" l/b
t_member_start "$dead"

t_done

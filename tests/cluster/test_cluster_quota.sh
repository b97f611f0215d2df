#!/usr/bin/env bash
# The backend quota: a member whose store grows over --quota-backend-bytes
# raises the NOSPACE alarm through raft; then writes that add data are
# refused with etcd's "database space exceeded" (429), while reads,
# deletes and compaction go on and /health says why; disarming the alarm
# lets writes in again.
set -u
source "$(dirname "$0")/lib.sh"

t_cluster_init 1
t_member_start 1 --quota-backend-bytes 200000 --snapshot-count 20
t_check "the member is up" t_wait_leader 15 1
big=$(head -c 6000 /dev/zero | tr '\0' x)
alarmed=0
for k in $(seq 1 300); do
	t_put 1 "q/$k" "$big" >/dev/null 2>&1
	if t_api 1 /v3/maintenance/alarm '{"action":"GET"}' 2>/dev/null | grep -q NOSPACE; then
		alarmed=1
		break
	fi
	[[ $((k % 20)) == 0 ]] && sleep 0.5 # the quota is checked every few seconds
done
for _ in $(seq 1 100); do
	[[ $alarmed == 1 ]] && break
	t_api 1 /v3/maintenance/alarm '{"action":"GET"}' 2>/dev/null | grep -q NOSPACE && alarmed=1
	sleep 0.1
done
t_check "the NOSPACE alarm is raised once the store is over its quota" test "$alarmed" = 1
code=$(curl -s -o "$T_TMP/put.out" -w '%{http_code}' -X POST "$(t_url 1)/v3/kv/put" \
	-d "{\"key\":\"$(b64 q/new)\",\"value\":\"$(b64 v)\"}")
t_check "a put is refused with 429" test "$code" = 429
t_check "... and etcd's message" grep -q "database space exceeded" "$T_TMP/put.out"
t_check "reads go on" test "$(t_get 1 q/1 | head -c 3)" = xxx
t_check "deletes go on" \
	bash -c "curl -fsS -X POST '$(t_url 1)/v3/kv/deleterange' -d '{\"key\":\"$(b64 q/1)\"}' | grep -q deleted"
t_check "/health reports the alarm" \
	bash -c "curl -s '$(t_url 1)/health' | grep -q 'ALARM NOSPACE'"
dbsize() { t_api 1 /v3/maintenance/status '{}' | sed -n 's/.*"dbSize":"\([0-9]*\)".*/\1/p'; }
before=$(dbsize)
# free the space: delete the big values, compact history, defragment
curl -fsS -X POST "$(t_url 1)/v3/kv/deleterange" -d "{\"key\":\"$(b64 q/)\",\"range_end\":\"$(b64 q0)\"}" >/dev/null
rev=$(t_api 1 /v3/maintenance/status '{}' | sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')
t_check "compaction is allowed under the alarm" \
	bash -c "curl -fsS -X POST '$(t_url 1)/v3/kv/compaction' -d '{\"revision\":\"$rev\"}' >/dev/null"
sleep 1 # physical compaction runs in the background
t_check "defragment is answered" \
	bash -c "curl -fsS -m 30 -X POST '$(t_url 1)/v3/maintenance/defragment' -d '{}' | grep -q header"
after=$(dbsize)
t_check "the store shrank on disk ($before -> $after bytes)" test "$after" -lt "$before"
id=$(t_member_id 1)
t_check "disarming the alarm is answered" \
	bash -c "curl -fsS -X POST '$(t_url 1)/v3/maintenance/alarm' -d '{\"action\":\"DEACTIVATE\",\"memberID\":\"$id\",\"alarm\":\"NOSPACE\"}' >/dev/null"
t_check "after disarming, writes are taken again" test -n "$(t_put 1 q/after v)"
sleep 6 # the quota is checked every 5 s
t_check "below the quota now, the alarm is not raised again" \
	bash -c "! curl -fsS -X POST '$(t_url 1)/v3/maintenance/alarm' -d '{\"action\":\"GET\"}' | grep -q NOSPACE"
t_member_stop 1 TERM
t_check "the member stops cleanly (exit $T_RC)" test "$T_RC" = 0
t_done

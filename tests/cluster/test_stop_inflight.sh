#!/usr/bin/env bash
# A member stops cleanly (exit 0, within its bounds) whatever its clients are
# waiting for: linearizable reads with no quorum, a leadership transfer that
# cannot happen, a watch stream and a keep-alive stream; every waiting client
# gets an answer (503 "server stopped") rather than a dropped connection.
set -u
source "$(dirname "$0")/lib.sh"

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3
s=$T_LEADER
t_put "$s" k v >/dev/null
others=()
for i in 1 2 3; do [[ $i != "$s" ]] && others+=("$i"); done
dead=$(t_member_id "${others[0]}")
# a watch stream and a keep-alive stream held open on the survivor
curl -sN -m 30 -X POST "$(t_url "$s")/v3/watch" -d "{\"create_request\":{\"key\":\"$(b64 k)\"}}" \
	>"$T_TMP/watch.out" 2>&1 &
t_api "$s" /v3/lease/grant '{"TTL":"60","ID":"5"}' >/dev/null
for i in "${others[@]}"; do t_member_stop "$i" KILL; done
sleep 0.5
# a transfer to a member that is gone, and reads that need a quorum
curl -s -m 30 -o "$T_TMP/move.out" -w '%{http_code}' -X POST "$(t_url "$s")/v3/maintenance/transfer-leadership" \
	-d "{\"targetID\":\"$dead\"}" >"$T_TMP/move.code" &
mpid=$!
rpids=()
for r in 1 2 3 4; do
	curl -s -m 30 -o /dev/null -w '%{http_code}' -X POST "$(t_url "$s")/v3/kv/range" \
		-d "{\"key\":\"$(b64 k)\"}" >"$T_TMP/read$r.code" &
	rpids+=($!)
done
sleep 1.5
t_member_stop "$s" TERM
t_check "the member stops with exit 0 while clients wait (got $T_RC)" test "$T_RC" = 0
wait "$mpid" "${rpids[@]}" 2>/dev/null
answered=0
for f in "$T_TMP"/read*.code "$T_TMP/move.code"; do
	[[ $(cat "$f") =~ ^[0-9]{3}$ && $(cat "$f") != 000 ]] && answered=$((answered + 1))
done
t_check "every waiting client got an HTTP answer ($answered of 5)" test "$answered" = 5
t_check "the log says nothing of suspended connections" \
	bash -c "! grep -q 'suspended connections' '$T_TMP/m$s.log'"
t_done

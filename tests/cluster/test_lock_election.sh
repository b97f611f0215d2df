#!/usr/bin/env bash
# etcd's lock and election services on a 3-member cluster, over the JSON
# gateway (and one protobuf body): a second locker waits for the first to
# unlock and gets a later key; a lock whose holder's lease expires passes
# on; a waiter whose own lease expires is told its session expired; a
# waiter whose client goes away has its key deleted; an
# unknown lease is refused; a lock without a lease gets a fresh one; a lock
# taken through one member blocks a locker on another; campaign, leader,
# proclaim and resign round trip with etcd's errors; observe streams the
# leader, its new value and the next leader. Every member then stops
# cleanly (under the sanitizer build: no leak, no error).
set -u
source "$(dirname "$0")/lib.sh"

# field NAME: the first "NAME":"..." string of the JSON on stdin.
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }
lease() { t_api "$1" /v3/lease/grant "{\"TTL\":\"$2\",\"ID\":\"$3\"}" >/dev/null; }
# lock_bg I NAME LEASE OUT: a Lock call in the background, its body and
# HTTP status to OUT, "done" appended when it returned.
lock_bg() {
	(
		curl -sS -m 40 -o "$4.body" -w '%{http_code}' -X POST "$(t_url "$1")/v3/lock/lock" \
			-d "{\"name\":\"$(b64 "$2")\",\"lease\":\"$3\"}" >"$4.code" 2>/dev/null
		echo done >"$4.done"
	) &
	T_PIDS+=("$!")
}
is_done() { [[ -f $1.done ]]; }
wait_done() { t_wait_eq "$2" yes bash -c "[[ -f '$1.done' ]] && echo yes"; }
# create_rev I KEY: the key's create revision ("" when absent).
create_rev() {
	t_api "$1" /v3/kv/range "{\"key\":\"$(b64 "$2")\"}" | field create_revision
}
# post I PATH JSON: the body then the HTTP status on its own line, whatever the status.
post() {
	curl -sS -m 10 -w '\n%{http_code}' -X POST "$(t_url "$1")$2" -d "$3"
}

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3

# --- two lockers, one name ---
lease 1 60 4096 # key suffix 1000
lease 1 60 8192 # key suffix 2000
out=$(t_api 1 /v3/lock/lock "{\"name\":\"$(b64 res)\",\"lease\":\"4096\"}")
k1=$(unb64 "$(field key <<<"$out")")
t_check "the first locker gets the lock at once, key name/lease-in-hex ($k1)" test "$k1" = res/1000
r1=$(create_rev 1 res/1000)
lock_bg 1 res 8192 "$T_TMP/l2"
sleep 1.5
t_check "the second locker is still waiting 1.5 s later" bash -c "! [[ -f '$T_TMP/l2.done' ]]"
t_check "its key is queued behind the first" test "$(create_rev 1 res/2000)" -gt "$r1"
t_api 1 /v3/lock/unlock "{\"key\":\"$(b64 res/1000)\"}" >/dev/null
t_check "after the unlock the second locker returns within 5 s" wait_done "$T_TMP/l2" 5
t_check "with 200" test "$(cat "$T_TMP/l2.code")" = 200
k2=$(unb64 "$(field key <"$T_TMP/l2.body")")
t_check "and its own key ($k2)" test "$k2" = res/2000
t_check "whose create revision is higher than the first key's" \
	test "$(create_rev 1 res/2000)" -gt "$r1"
t_check "the first key is gone" test -z "$(create_rev 1 res/1000)"
t_api 1 /v3/lock/unlock "{\"key\":\"$(b64 res/2000)\"}" >/dev/null

# --- the holder's lease expires: the lock passes on ---
lease 1 3 12288  # 3000, never renewed
lease 1 60 16384 # 4000
t_api 1 /v3/lock/lock "{\"name\":\"$(b64 exp)\",\"lease\":\"12288\"}" >/dev/null
lock_bg 1 exp 16384 "$T_TMP/l3"
sleep 0.5
t_check "a locker waits behind a holder with a 3 s lease" bash -c "! [[ -f '$T_TMP/l3.done' ]]"
t_check "the holder's lease expires and the waiter gets the lock within TTL + 5 s" \
	wait_done "$T_TMP/l3" 8
t_check "its answer is the lock (200, key exp/4000)" \
	test "$(cat "$T_TMP/l3.code") $(unb64 "$(field key <"$T_TMP/l3.body")")" = "200 exp/4000"

# --- the waiter's own lease expires ---
lease 1 3 20480 # 5000
lock_bg 1 exp 20480 "$T_TMP/l4"
t_check "a waiter whose lease expires is answered within TTL + 5 s" wait_done "$T_TMP/l4" 8
t_check "with etcd's mutex error (500, code 2, 'mutex: session is expired')" \
	test "$(cat "$T_TMP/l4.code") $(tr -d '\n' <"$T_TMP/l4.body")" = \
	'500 {"error":"mutex: session is expired","code":2,"message":"mutex: session is expired"}'
t_check "the lock is still held by the other locker" test -n "$(create_rev 2 exp/4000)"
t_api 1 /v3/lock/unlock "{\"key\":\"$(b64 exp/4000)\"}" >/dev/null

# --- a waiter whose client goes away ---
lease 1 60 53248 # d000
lease 1 60 57344 # e000
t_api 1 /v3/lock/lock "{\"name\":\"$(b64 gone)\",\"lease\":\"53248\"}" >/dev/null
curl -sS -m 1 -X POST "$(t_url 1)/v3/lock/lock" \
	-d "{\"name\":\"$(b64 gone)\",\"lease\":\"57344\"}" >/dev/null 2>&1
t_check "a waiter that gave up had queued its key" test -n "$(t_api 1 /v3/kv/range \
	"{\"key\":\"$(b64 gone/e000)\",\"revision\":\"$(($(create_rev 1 gone/d000) + 1))\"}" | field key)"
t_check "its key is deleted within 3 s of its going (etcd unlocks a canceled wait)" \
	t_wait_eq 3 "" create_rev 1 gone/e000
t_check "the holder keeps the lock" test -n "$(create_rev 1 gone/d000)"
t_api 1 /v3/lock/unlock "{\"key\":\"$(b64 gone/d000)\"}" >/dev/null

# --- an unknown lease; no lease at all ---
out=$(post 1 /v3/lock/lock "{\"name\":\"$(b64 res)\",\"lease\":\"777\"}")
t_check "a lock with an unknown lease is refused with etcd's error, as Unknown (500) as etcd's lock server sends it" \
	test "$(tr -d '\n' <<<"$out")" = \
	'{"error":"etcdserver: requested lease not found","code":2,"message":"etcdserver: requested lease not found"}500'
t_check "and leaves no key" test "$(t_count 1 res/)" = 0
out=$(t_api 1 /v3/lock/lock "{\"name\":\"$(b64 free)\"}")
k=$(unb64 "$(field key <<<"$out")")
t_check "a lock without a lease gets a fresh lease's key ($k)" bash -c "[[ '$k' == free/* ]]"
id=$(t_api 1 /v3/kv/range "{\"key\":\"$(b64 "$k")\"}" | field lease)
ttl=$(t_api 1 /v3/lease/timetolive "{\"ID\":\"$id\"}" | field grantedTTL)
t_check "that lease is etcd's session TTL, 60 s (got '$ttl')" test "$ttl" = 60

# --- across members ---
lease 1 60 24576 # 6000
lease 2 60 28672 # 7000
t_api 1 /v3/lock/lock "{\"name\":\"$(b64 multi)\",\"lease\":\"24576\"}" >/dev/null
lock_bg 2 multi 28672 "$T_TMP/l5"
sleep 1.5
t_check "a lock taken through member 1 blocks a locker on member 2" \
	bash -c "! [[ -f '$T_TMP/l5.done' ]]"
t_api 3 /v3/lock/unlock "{\"key\":\"$(b64 multi/6000)\"}" >/dev/null
t_check "an unlock through member 3 lets it through within 5 s" wait_done "$T_TMP/l5" 5
t_check "with its key" test "$(unb64 "$(field key <"$T_TMP/l5.body")")" = multi/7000

# --- a protobuf body ---
# LockRequest{name: "pb" (field 1), lease: 28672 (field 2, varint 80 e0 01)}
printf '\x0a\x02pb\x10\x80\xe0\x01' >"$T_TMP/lock.pb"
curl -sS -m 10 -X POST -H 'Content-Type: application/x-protobuf' \
	--data-binary "@$T_TMP/lock.pb" "$(t_url 3)/v3/lock/lock" -o "$T_TMP/lock.resp" \
	-w '%{http_code} %{content_type}' >"$T_TMP/lock.code"
t_check "a protobuf Lock is answered 200 in protobuf" \
	test "$(cat "$T_TMP/lock.code")" = "200 application/x-protobuf"
# LockResponse field 2 (key): tag 0x12, length 7, "pb/7000"
t_check "its key field is pb/7000" \
	bash -c "grep -q \$'\\x12\\x07pb/7000' '$T_TMP/lock.resp'"

# --- election ---
out=$(post 1 /v3/election/leader "{\"name\":\"$(b64 el)\"}")
t_check "the leader of an empty election: 500 and etcd's 'election: no leader'" \
	test "$(tr -d '\n' <<<"$out")" = \
	'{"error":"election: no leader","code":2,"message":"election: no leader"}500'
curl -sN -m 30 -X POST "$(t_url 3)/v3/election/observe" -d "{\"name\":\"$(b64 el)\"}" \
	>"$T_TMP/obs.out" 2>/dev/null &
T_PIDS+=("$!")
opid=$!
lease 1 60 36864 # 9000
lease 1 60 40960 # a000
out=$(t_api 1 /v3/election/campaign \
	"{\"name\":\"$(b64 el)\",\"lease\":\"36864\",\"value\":\"$(b64 alice)\"}")
lkey=$(unb64 "$(field key <<<"$out")")
lrev=$(field rev <<<"$out")
t_check "a campaign on a free election wins at once (key $lkey)" test "$lkey" = el/9000
t_check "its leader key names the election and the lease" \
	test "$(field name <<<"$out") $(field lease <<<"$out")" = "$(b64 el) 36864"
t_check "its rev is the key's create revision" test "$lrev" = "$(create_rev 2 el/9000)"
out=$(t_api 2 /v3/election/leader "{\"name\":\"$(b64 el)\"}")
t_check "Leader names it, with its value, on another member" \
	test "$(unb64 "$(field key <<<"$out")") $(unb64 "$(field value <<<"$out")")" = "el/9000 alice"
leader="{\"name\":\"$(b64 el)\",\"key\":\"$(b64 el/9000)\",\"rev\":\"$lrev\",\"lease\":\"36864\"}"
t_api 2 /v3/election/proclaim "{\"leader\":$leader,\"value\":\"$(b64 alice2)\"}" >/dev/null
t_check "a proclaim changes the leader's value" \
	test "$(unb64 "$(t_api 3 /v3/election/leader "{\"name\":\"$(b64 el)\"}" | field value)")" = alice2
bad="{\"name\":\"$(b64 el)\",\"key\":\"$(b64 el/9000)\",\"rev\":\"$((lrev + 1000))\",\"lease\":\"36864\"}"
out=$(post 1 /v3/election/proclaim "{\"leader\":$bad,\"value\":\"$(b64 mallory)\"}")
t_check "a proclaim by a non-leader: 500 and etcd's 'election: not leader'" \
	test "$(tr -d '\n' <<<"$out")" = \
	'{"error":"election: not leader","code":2,"message":"election: not leader"}500'
out=$(post 1 /v3/election/proclaim "{\"value\":\"$(b64 x)\"}")
t_check "a proclaim without a leader key: etcd's error" \
	test "$(tr -d '\n' <<<"$out")" = \
	'{"error":"\"leader\" field must be provided","code":2,"message":"\"leader\" field must be provided"}500'
t_check "the value is unchanged" \
	test "$(unb64 "$(t_api 1 /v3/election/leader "{\"name\":\"$(b64 el)\"}" | field value)")" = alice2
out=$(t_api 1 /v3/election/campaign \
	"{\"name\":\"$(b64 el)\",\"lease\":\"36864\",\"value\":\"$(b64 alice3)\"}")
t_check "campaigning again with the same lease and a new value proclaims it" \
	test "$(field rev <<<"$out") $(unb64 "$(t_api 1 /v3/election/leader "{\"name\":\"$(b64 el)\"}" | field value)")" = "$lrev alice3"
(
	curl -sS -m 40 -o "$T_TMP/c2.body" -X POST "$(t_url 2)/v3/election/campaign" \
		-d "{\"name\":\"$(b64 el)\",\"lease\":\"40960\",\"value\":\"$(b64 bob)\"}" 2>/dev/null
	echo done >"$T_TMP/c2.done"
) &
T_PIDS+=("$!")
sleep 1.5
t_check "a second candidate waits while the leader holds" bash -c "! [[ -f '$T_TMP/c2.done' ]]"
t_api 1 /v3/election/resign "{\"leader\":$leader}" >/dev/null
t_check "the leader resigns and the second candidate is elected within 5 s" \
	wait_done "$T_TMP/c2" 5
t_check "its leader key is el/a000" test "$(unb64 "$(field key <"$T_TMP/c2.body")")" = el/a000
out=$(t_api 3 /v3/election/leader "{\"name\":\"$(b64 el)\"}")
t_check "Leader names the new leader" test "$(unb64 "$(field value <<<"$out")")" = bob
t_check "observe streamed alice, alice2, alice3, then bob" \
	t_wait_eq 5 "alice alice2 alice3 bob" bash -c \
	"grep -o '\"value\":\"[^\"]*\"' '$T_TMP/obs.out' | cut -d'\"' -f4 | while read -r v; do printf '%s\n' \"\$v\" | base64 -d; echo; done | tr '\n' ' ' | sed 's/ \$//'"
t_check "each observe line is a {\"result\":...} LeaderResponse" \
	bash -c "[[ \$(grep -c '^{\"result\":{\"header\":' '$T_TMP/obs.out') -eq 4 ]]"
c2rev=$(field rev <"$T_TMP/c2.body")
t_api 2 /v3/election/resign \
	"{\"leader\":{\"name\":\"$(b64 el)\",\"key\":\"$(b64 el/a000)\",\"rev\":\"$c2rev\",\"lease\":\"40960\"}}" >/dev/null
out=$(post 2 /v3/election/leader "{\"name\":\"$(b64 el)\"}")
t_check "after the last resign there is no leader" \
	test "$(tail -n 1 <<<"$out")" = 500
kill "$opid" 2>/dev/null

# --- a waiter and an observer are answered when the member stops ---
lease 3 60 45056 # b000
lease 3 60 49152 # c000
t_api 3 /v3/lock/lock "{\"name\":\"$(b64 stop)\",\"lease\":\"45056\"}" >/dev/null
lock_bg 3 stop 49152 "$T_TMP/l6"
curl -sN -m 30 -X POST "$(t_url 3)/v3/election/observe" -d "{\"name\":\"$(b64 el)\"}" \
	>/dev/null 2>&1 &
T_PIDS+=("$!")
sleep 1
for i in 3 1 2; do
	t_member_stop "$i" TERM
	t_check "member $i stops cleanly (exit $T_RC)" test "$T_RC" = 0
done
t_check "the waiter was answered when its member stopped" wait_done "$T_TMP/l6" 5
t_check "with 503 'server stopped'" test "$(cat "$T_TMP/l6.code")" = 503
t_check "no sanitizer report in the members' logs" \
	bash -c "! grep -l 'Sanitizer\|runtime error' '$T_TMP'/m*.log"

t_done

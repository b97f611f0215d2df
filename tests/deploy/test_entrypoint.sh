#!/usr/bin/env bash
# deploy/entrypoint.sh and deploy/prestop.sh outside a container, against
# real moord processes on loopback. Pod hostnames are simulated with
# MOOR_HOSTNAME (moor-0, moor-1, ...), the headless Service's DNS names
# with MOOR_HOSTS (moor-i.moor-peers.test -> 127.A.B.(i+1)), and the
# StatefulSet's desired replica count with MOOR_DESIRED_REPLICAS. Covered:
# the first start of three, a restart with data (alive but not ready without
# a leader, ready only once caught up), a replaced member whose volume is
# empty rejoining (stale entry removed, added as a learner, promoted), scale
# 3 -> 5 and back 5 -> 3 through the preStop hook, a scaled-down member's
# kept volume coming back under a NOSPACE alarm, an empty volume that must
# not bootstrap over a cluster without a leader, the refusals (a hostname
# without an ordinal, TLS asked of a moord without it), and three pods with
# MOOR_TLS=true (https for clients and peers, client certificates required).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/tests/cluster/lib.sh"

# Other engineers rebuild build/bin/moord at any moment: use a copy.
cp "$MOORD" "$T_TMP/moord" || exit 1
export MOORD=$T_TMP/moord
ENTRY=$root/deploy/entrypoint.sh
PRESTOP=$root/deploy/prestop.sh

t_cluster_init 5 # only for its random loopback prefix
prefix=${C_HOST[1]%.1}
hosts=""
for i in 0 1 2 3 4; do hosts+="${hosts:+,}moor-$i.moor-peers.test=$prefix.$((i + 1))"; done
export MOOR_HOSTS=$hosts MOOR_PEER_DOMAIN=moor-peers.test MOOR_REPLICAS=3
export MOOR_JOIN_TIMEOUT=60 MOOR_CURL_TIMEOUT=2

P=() # moord pid per ordinal
url() { echo "http://$prefix.$(($1 + 1)):2379"; }
purl() { echo "http://$prefix.$(($1 + 1)):2380"; }
log() { echo "$T_TMP/moor-$1.log"; }

# pod_start I [env...]: the container starting: entrypoint execs moord.
pod_start() {
	local i=$1
	shift
	env MOOR_HOSTNAME="moor-$i" MOOR_DATA_DIR="$T_TMP/moor-$i/data" "$@" \
		bash "$ENTRY" --snapshot-count 50 2>>"$(log "$i")" &
	P[i]=$!
	T_PIDS+=("${P[$i]}")
}
pod_stop() { # I SIGNAL
	kill "-$2" "${P[$1]}" 2>/dev/null
	t_wait_exit "${P[$1]}" 20
}
leader_of() { curl -fsS -m 2 -X POST "$(url "$1")/v3/maintenance/status" -d '{}' 2>/dev/null | sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p'; }
agree() { # I...: every listed member reports the same non-zero leader
	local first="" l j
	for j in "$@"; do
		l=$(leader_of "$j")
		[[ -n $l && $l != 0 ]] || return 1
		[[ -z $first || $l == "$first" ]] || return 1
		first=$l
	done
}
wait_agree() { # SECONDS I...
	local limit=$1 k
	shift
	for ((k = 0; k < limit * 10; k++)); do
		agree "$@" && return 0
		sleep 0.1
	done
	return 1
}
api() { curl -fsS -m 10 -X POST "$(url "$1")$2" -d "$3"; }
put1() { api "$1" /v3/kv/put "{\"key\":\"$(b64 "$2")\",\"value\":\"$(b64 "$3")\"}" >/dev/null 2>&1; }
# put I KEY VALUE: retried for up to 10 s (an election after a member's loss
# answers 503 "no leader"; a put is idempotent here, so retrying is safe).
put() { until_ok 10 put1 "$@"; }
count() { # I PREFIX: serializable count of keys under PREFIX at member I
	local end
	end=$(t_prefix_end "$2")
	api "$1" /v3/kv/range "{\"key\":\"$(b64 "$2")\",\"range_end\":\"$(b64 "$end")\",\"count_only\":true,\"serializable\":true}" 2>/dev/null |
		sed -n 's/.*"count":"\([0-9]*\)".*/\1/p'
}
no_learners() { local b; b=$(api "$1" /v3/cluster/member/list '{}') || return 1; ! grep -q '"isLearner":true' <<<"$b"; }
nmembers() { api "$1" /v3/cluster/member/list '{}' | grep -o '"ID"' | wc -l; }
listed() { api "$1" /v3/cluster/member/list '{}' | grep -q "\"peerURLs\":\[\"$2\"\]"; }
hashkv() { api "$1" /v3/maintenance/hashkv '{}' | sed -n 's/.*"hash":\([0-9]*\).*/\1/p'; }
started_as() { # I STATE: the entrypoint's last start line for member I names STATE
	grep 'moor-deploy: starting' "$(log "$1")" | tail -n 1 | grep -q -- "--initial-cluster-state $2 "
}
ready() { # I...: /readyz answers 200 at every listed member
	local j
	for j in "$@"; do curl -fsS -m 2 -o /dev/null "$(url "$j")/readyz" || return 1; done
}
until_ok() { # SECONDS CMD...: until CMD succeeds (bounded)
	local limit=$1 k
	shift
	for ((k = 0; k < limit * 10; k++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
both_counts() { [[ $(count "$1" a/) == 120 && $(count "$1" b/) == 60 ]]; }
show_logs() { for f in "$T_TMP"/moor-*.log; do echo "== $f"; tail -n 15 "$f"; done; }

# ---- first start of three, in parallel (podManagementPolicy: Parallel) ----
for i in 0 1 2; do pod_start "$i"; done
t_check "three pods started together elect a leader" wait_agree 20 0 1 2
for i in 0 1 2; do
	t_check "moor-$i bootstrapped with --initial-cluster-state new" started_as "$i" new
done
t_check "moor-1 advertises its DNS-derived peer URL (here its mapped address)" listed 0 "$(purl 1)"
t_check "the member list names moor-2 by its hostname" \
	bash -c "curl -fsS -X POST '$(url 0)/v3/cluster/member/list' -d '{}' | grep -q '\"name\":\"moor-2\"'"
ok=0
for k in $(seq 1 120); do put $((k % 3)) "a/$k" "v$k" && ok=$((ok + 1)); done
t_check "120 writes acknowledged (the log is compacted every 50 entries)" test "$ok" = 120

# ---- a restart with its data ----
pod_stop 1 TERM
t_check "moor-1 stops on SIGTERM with exit 0 (got $T_RC)" test "$T_RC" = 0
for k in $(seq 1 60); do put $((k % 2 * 2)) "b/$k" x; done
# The two others freeze: moor-1 comes back alive but cannot be ready.
kill -STOP "${P[0]}" "${P[2]}"
pod_start 1
t_check "moor-1 restarts with its data as --initial-cluster-state existing, no leader needed" \
	until_ok 15 started_as 1 existing
t_check "... it is alive (/livez 200)" until_ok 10 curl -fsS -m 1 -o /dev/null "$(url 1)/livez"
t_check "... but not ready without a leader (/readyz 503)" \
	test "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url 1)/readyz")" = 503
kill -CONT "${P[0]}" "${P[2]}"
# Ready must mean caught up: the first 200 of /readyz comes with every key.
until_ok 20 ready 1
n=$(count 1 b/)
t_check "when /readyz turns 200, moor-1 has the 60 keys written while it was down (has $n)" test "$n" = 60
t_check "after the restart the three agree on a leader" wait_agree 15 0 1 2
t_check "moor-1 has every key (120 + 60)" until_ok 15 both_counts 1
t_check "still three members" test "$(nmembers 0)" = 3

# ---- a replaced member: its volume is gone ----
pod_stop 2 KILL
rm -rf "$T_TMP/moor-2"
t_check "the two others agree on a leader" wait_agree 15 0 1
for k in $(seq 1 80); do put $((k % 2)) "c/$k" y; done
old_id=$(api 0 /v3/cluster/member/list '{}' | grep -o "{\"ID\":\"[0-9]*\",\"name\":\"moor-2\"" | grep -o '[0-9]\{3,\}')
pod_start 2
t_check "the replaced moor-2 removes its stale entry first" \
	until_ok 15 grep -q "removing that entry first" "$(log 2)"
t_check "... and starts as --initial-cluster-state existing" until_ok 15 started_as 2 existing
t_check "... added as a learner" grep -q "added moor-2 to the cluster as a learner" "$(log 2)"
t_check "... and promoted to a voter once caught up" until_ok 30 grep -q "promoted moor-2 to a voter" "$(log 2)"
t_check "no learner is left" until_ok 10 no_learners 0
t_check "it catches up by snapshot (80 keys written while it was gone)" t_wait_eq 20 80 count 2 c/
t_check "... and has the older ones (120)" t_wait_eq 5 120 count 2 a/
t_check "its /readyz turns 200" until_ok 15 ready 2
t_check "it is listed once, under a new id (the old incarnation $old_id is gone)" \
	bash -c "l=\$(curl -fsS -X POST '$(url 0)/v3/cluster/member/list' -d '{}'); [[ -n '$old_id' && \$(grep -o '\"ID\":\"$old_id\"' <<<\"\$l\" | wc -l) == 0 && \$(grep -o '\"name\":\"moor-2\"' <<<\"\$l\" | wc -l) == 1 ]]"
t_check "three members" test "$(nmembers 1)" = 3
same_hash() { local h; h=$(hashkv "$1"); shift; [[ -n $h ]] || return 1; for j in "$@"; do [[ $(hashkv "$j") == "$h" ]] || return 1; done; }
t_check "HashKV equal on the three" until_ok 10 same_hash 0 1 2

# ---- scale 3 -> 5 (kubectl scale: the pod template, MOOR_REPLICAS=3, is unchanged) ----
pod_start 3
pod_start 4
t_check "moor-3 joins" until_ok 30 started_as 3 existing
t_check "moor-4 joins" until_ok 30 started_as 4 existing
t_check "both are promoted: five voters, no learner" until_ok 40 no_learners 0
t_check "five voters agree on a leader" wait_agree 30 0 1 2 3 4
t_check "the list has five members" t_wait_eq 10 5 nmembers 0
t_check "moor-4 reads the 80 c/ keys" t_wait_eq 20 80 count 4 c/
t_check "moor-3 and moor-4 turn ready" until_ok 20 ready 3 4
put 4 d/1 z
t_check "a write through moor-4 is read at moor-3" t_wait_eq 10 1 count 3 d/

# ---- scale 5 -> 3: the preStop hook of the two pods going away ----
MOOR_DESIRED_REPLICAS=3 MOOR_HOSTNAME=moor-1 bash "$PRESTOP" 2>>"$(log 1)"
t_check "preStop of moor-1 (ordinal below the desired 3) exits 0" test $? = 0
t_check "... and leaves the membership alone" test "$(nmembers 0)" = 5
MOOR_DESIRED_REPLICAS=0 MOOR_HOSTNAME=moor-4 bash "$PRESTOP" 2>>"$(log 4)"
t_check "preStop on a scale to 0 (a pause) exits 0" test $? = 0
t_check "... and removes nobody" test "$(nmembers 0)" = 5
MOOR_DESIRED_REPLICAS=3 MOOR_HOSTNAME=moor-3 bash "$PRESTOP" 2>>"$(log 3)" &
h3=$!
MOOR_DESIRED_REPLICAS=3 MOOR_HOSTNAME=moor-4 bash "$PRESTOP" 2>>"$(log 4)" &
h4=$!
wait "$h3"
r3=$?
wait "$h4"
r4=$?
t_check "preStop of moor-3 and moor-4, run together, exit 0 ($r3, $r4)" test "$r3$r4" = 00
t_wait_exit "${P[3]}" 15
t_check "removed moor-3 stopped by itself with exit 0 (got $T_RC)" test "$T_RC" = 0
t_wait_exit "${P[4]}" 15
t_check "removed moor-4 stopped by itself with exit 0 (got $T_RC)" test "$T_RC" = 0
t_check "three members remain" t_wait_eq 10 3 nmembers 0
t_check "the three agree on a leader" wait_agree 15 0 1 2
put 1 e/1 after-shrink
t_check "writes go on after the shrink" t_wait_eq 5 1 count 2 e/

# ---- scale 3 -> 4 again while moor-3's old volume was kept, under a NOSPACE alarm ----
id0=$(api 0 /v3/maintenance/status '{}' | sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p')
api 0 /v3/maintenance/alarm "{\"action\":\"ACTIVATE\",\"memberID\":\"$id0\",\"alarm\":\"NOSPACE\"}" >/dev/null
t_check "a NOSPACE alarm is raised: /health answers 503" \
	until_ok 5 test "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url 1)/health")" = 503
pod_start 3
t_check "moor-3 moves the removed member's data aside" \
	until_ok 15 grep -q "belongs to a removed member" "$(log 3)"
t_check "... keeps it (DATA.removed-TIME)" bash -c "ls -d '$T_TMP'/moor-3/data.removed-* >/dev/null"
t_check "... and joins anew" until_ok 20 started_as 3 existing
t_check "four members" t_wait_eq 15 4 nmembers 0
t_check "moor-3 has the e/ key" t_wait_eq 20 1 count 3 e/
t_check "... all under the NOSPACE alarm, which is then disarmed" \
	bash -c "curl -fsS -m 5 -X POST '$(url 0)/v3/maintenance/alarm' -d '{\"action\":\"DEACTIVATE\",\"memberID\":\"$id0\",\"alarm\":\"NOSPACE\"}' >/dev/null"
t_check "/health is 200 again" until_ok 5 curl -fsS -m 2 -o /dev/null "$(url 1)/health"
MOOR_DESIRED_REPLICAS=3 MOOR_HOSTNAME=moor-3 bash "$PRESTOP" 2>>"$(log 3)"
t_wait_exit "${P[3]}" 15
t_check "scaled down again: moor-3 removed and stopped (exit $T_RC)" test "$T_RC" = 0
t_check "three members again" t_wait_eq 10 3 nmembers 0

# ---- an empty volume must not bootstrap over a cluster that has no leader ----
pod_stop 0 TERM
pod_stop 1 TERM
rm -rf "$T_TMP/moor-0"
: >"$(log 0)"
pod_start 0 MOOR_JOIN_TIMEOUT=4
t_wait_exit "${P[0]}" 20
t_check "moor-0 with an empty volume and no leader around gives up with exit 1 (got $T_RC)" test "$T_RC" = 1
t_check "... having said why" grep -q "the cluster exists" "$(log 0)"
t_check "... and never bootstrapped a new cluster" bash -c "! grep -q 'moor-deploy: starting' '$(log 0)'"
pod_start 1
t_check "moor-1 restarts with its data; with moor-2 they elect a leader" wait_agree 20 1 2
pod_start 0
t_check "now moor-0 rejoins through them" until_ok 20 started_as 0 existing
t_check "and catches up" t_wait_eq 20 120 count 0 a/
t_check "the three agree on a leader" wait_agree 15 0 1 2
t_check "three members at the end" test "$(nmembers 2)" = 3

# ---- refusals ----
MOOR_HOSTNAME=notastatefulsetpod bash "$ENTRY" 2>"$T_TMP/bad.log"
rc=$?
t_check "a hostname without an ordinal is refused with exit 1 (got $rc)" test "$rc" = 1
printf '#!/bin/sh\necho "Usage: moord [flags]"\n' >"$T_TMP/old-moord"
chmod +x "$T_TMP/old-moord"
MOORD=$T_TMP/old-moord MOOR_HOSTNAME=moor-1 MOOR_TLS=true MOOR_DATA_DIR=$T_TMP/tls \
	bash "$ENTRY" 2>"$T_TMP/tls.log"
rc=$?
t_check "MOOR_TLS=true with a moord without peer TLS is refused (exit $rc), not run in clear text" \
	bash -c "[[ $rc == 1 ]] && grep -q 'has no peer TLS' '$T_TMP/tls.log'"

[[ $T_FAILED -eq 0 ]] || show_logs
for i in 0 1 2; do pod_stop "$i" TERM; done

# ---- MOOR_TLS=true (the Kubernetes tls component): https for clients and
# peers, client certificates required on both, from one certificate in
# MOOR_TLS_DIR as cert-manager writes it (tls.crt, tls.key, ca.crt) naming
# every member's DNS name and (test mode) address. Other ports than above.
TD=$T_TMP/tls-dir
mkdir -p "$TD"
san=""
for i in 0 1 2; do san+="${san:+,}DNS:moor-$i.moor-peers.test,IP:$prefix.$((i + 1))"; done
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$TD/ext"
{
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TD/ca.key" -out "$TD/ca.crt" -days 2 \
		-subj /CN=moor-test-ca &&
		openssl req -newkey rsa:2048 -nodes -keyout "$TD/tls.key" -out "$TD/tls.csr" -subj /CN=moor &&
		openssl x509 -req -in "$TD/tls.csr" -CA "$TD/ca.crt" -CAkey "$TD/ca.key" -CAcreateserial \
			-out "$TD/tls.crt" -days 2 -extfile "$TD/ext"
} >"$TD/openssl.log" 2>&1
t_check "openssl made the pods' certificate" test -s "$TD/tls.crt"
TLS_ENV=(MOOR_TLS=true "MOOR_TLS_DIR=$TD" MOOR_CLIENT_PORT=12379 MOOR_PEER_PORT=12380)
tls_pod_start() { # I
	env MOOR_HOSTNAME="moor-$1" MOOR_DATA_DIR="$T_TMP/tls-$1/data" "${TLS_ENV[@]}" \
		bash "$ENTRY" --snapshot-count 50 2>>"$T_TMP/tls-$1.log" &
	P[$1]=$!
	T_PIDS+=("${P[$1]}")
}
turl() { echo "https://$prefix.$(($1 + 1)):12379"; }
tcurl() { curl -fsS -m 3 --cacert "$TD/ca.crt" --cert "$TD/tls.crt" --key "$TD/tls.key" "$@"; }
tls_leader_of() { tcurl -X POST "$(turl "$1")/v3/maintenance/status" -d '{}' 2>/dev/null | sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p'; }
tls_agree() {
	local a b c
	a=$(tls_leader_of 0) b=$(tls_leader_of 1) c=$(tls_leader_of 2)
	[[ -n $a && $a != 0 && $a == "$b" && $b == "$c" ]]
}
for i in 0 1 2; do tls_pod_start "$i"; done
t_check "three pods with MOOR_TLS=true bootstrap and elect a leader over TLS" until_ok 30 tls_agree
for i in 0 1 2; do
	t_check "moor-$i dialled its peers at https URLs with TLS" \
		test "$(grep -c "connected to peer [0-9a-f]* at https://$prefix.[0-9]:12380 (TLS)" "$T_TMP/tls-$i.log")" -ge 2
done
t_check "a write through moor-0 over https with the client certificate" \
	bash -c "curl -fsS -m 5 --cacert '$TD/ca.crt' --cert '$TD/tls.crt' --key '$TD/tls.key' -X POST '$(turl 0)/v3/kv/put' -d '{\"key\":\"$(b64 tk)\",\"value\":\"$(b64 tv)\"}' | grep -q revision"
t_check "is read through moor-2" until_ok 10 bash -c "curl -fsS -m 3 --cacert '$TD/ca.crt' --cert '$TD/tls.crt' --key '$TD/tls.key' -X POST '$(turl 2)/v3/kv/range' -d '{\"key\":\"$(b64 tk)\"}' | grep -q '$(b64 tv)'"
t_check "a client without a certificate is refused" \
	bash -c "! curl -fsS -m 3 -o /dev/null --cacert '$TD/ca.crt' '$(turl 1)/health' 2>/dev/null"
PROBE=$root/deploy/probe.sh
probe() { env MOOR_HOSTNAME="moor-$1" "${TLS_ENV[@]}" bash "$PROBE" "$2" 2>>"$T_TMP/probe.log"; }
t_check "probe.sh /livez passes for moor-1 (the exec probe of the tls component)" probe 1 /livez
t_check "probe.sh /readyz passes for moor-2 once it is ready" until_ok 10 probe 2 /readyz
mkdir -p "$T_TMP/no-certs"
t_check "probe.sh fails without the member's certificate" \
	bash -c "! env MOOR_HOSTNAME=moor-1 ${TLS_ENV[*]} MOOR_TLS_DIR='$T_TMP/no-certs' bash '$PROBE' /livez 2>/dev/null"
[[ $T_FAILED -eq 0 ]] || for i in 0 1 2; do echo "== tls-$i"; tail -n 15 "$T_TMP/tls-$i.log"; done
for i in 0 1 2; do
	pod_stop "$i" TERM
	t_check "TLS pod moor-$i stops with exit 0 (got $T_RC)" test "$T_RC" = 0
done
t_done

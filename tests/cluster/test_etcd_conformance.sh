#!/usr/bin/env bash
# etcd's JSON gateway, answer for answer: the same requests, in the same
# order, go to a fresh 3-member moord cluster and a fresh 3-member etcd
# cluster (3.4, Debian's etcd-server), and each pair of answers must match: the HTTP
# status and the whole JSON body, field by field (names, presence, types,
# values, revisions included), but for what differs by nature (cluster and
# member ids, raft terms, sizes, versions, hashes). Every path of the KV,
# lease, watch, cluster and maintenance services is covered, with etcd's
# errors. Without an etcd binary the comparison cannot run: the test says so
# and passes with nothing counted, unless MOOR_CONFORMANCE_OPTIONAL=0
# (`make test-conformance` installs etcd-server and sets it).
set -u
source "$(dirname "$0")/lib.sh"
ETCD=${ETCD:-$(command -v etcd)}
if [[ -z $ETCD ]]; then
	echo "etcd not found (apt-get install etcd-server): no comparison made"
	if [[ ${MOOR_CONFORMANCE_OPTIONAL:-1} == 1 ]]; then
		echo "0 passed, 0 failed"
		exit 0
	fi
	exit 1
fi

# Three moord members on addresses 1-3 and three etcd members on 4-6;
# every request goes to the second member of each (a follower or the
# leader, as elections fell).
t_cluster_init 6
C_CLUSTER="m1=$(t_peer_url 1),m2=$(t_peer_url 2),m3=$(t_peer_url 3)"
for i in 1 2 3; do t_member_start "$i"; done
ECLUSTER="e4=http://${C_HOST[4]}:2380,e5=http://${C_HOST[5]}:2380,e6=http://${C_HOST[6]}:2380"
EPIDS=()
for i in 4 5 6; do
	h=${C_HOST[$i]}
	"$ETCD" --name "e$i" --data-dir "$T_TMP/etcd$i" \
		--listen-client-urls "http://$h:2379" --advertise-client-urls "http://$h:2379" \
		--listen-peer-urls "http://$h:2380" --initial-advertise-peer-urls "http://$h:2380" \
		--initial-cluster "$ECLUSTER" --log-level error >"$T_TMP/etcd$i.log" 2>&1 &
	EPIDS+=("$!")
	T_PIDS+=("$!")
done
M=$(t_url 2)
E=http://${C_HOST[5]}:2379
t_check "moord's three members agree on a leader" t_wait_leader 15 1 2 3
t_check "etcd answers /health" t_wait_http "$E/health" 15

b64() { printf '%s' "$1" | base64 -w0; }

# What differs by nature: ids, terms, sizes, versions, hashes, member URLs.
MASK='walk(if type == "object" then
	del(.cluster_id, .member_id, .raft_term, .leader, .raftIndex, .raftTerm, .raftAppliedIndex,
	    .dbSize, .dbSizeInUse, .version, .hash, .ID, .peerURLs, .clientURLs, .name)
	else . end)'

# call BASE PATH JSON: "STATUS BODY" with the body sorted and masked.
call() {
	local out code body
	out=$(curl -sS -m 10 -X POST "$1$2" -d "$3" -w '\n%{http_code}')
	code=${out##*$'\n'}
	body=${out%$'\n'*}
	printf '%s ' "$code"
	jq -cS "$MASK" <<<"$body" 2>/dev/null || printf 'not JSON: %s' "$body"
}

# agree NAME ETCD MOORD: one check that the two answers are equal (and not
# empty), showing both when they differ.
agree() {
	if [[ $2 == "$3" && -n $3 ]]; then t_check "$1" true; else
		t_check "$1" false
		echo "     etcd:  $2"
		echo "     moord: $3"
	fi
}

# same NAME PATH JSON: moord answers exactly as etcd does.
same() { agree "$1" "$(call "$E" "$2" "$3")" "$(call "$M" "$2" "$3")"; }

# Where etcd 3.4 and 3.5 differ, moord answers as 3.5 does; the etcd here
# is 3.4. same_as_35 NAME PATH JSON SED: etcd's answer is first turned into
# 3.5's by SED (a sed script over "STATUS BODY").
same_as_35() { agree "$1" "$(call "$E" "$2" "$3" | sed -E "$4")" "$(call "$M" "$2" "$3")"; }

# same_code NAME PATH JSON: the same HTTP status and gRPC code; the message
# is free (etcd's are Go's decoder errors, ours name the field and problem).
status_code() { call "$1" "$2" "$3" | sed -E 's/^([0-9]+) .*"code":([0-9]+).*/\1 \2/'; }
same_code() { agree "$1" "$(status_code "$E" "$2" "$3")" "$(status_code "$M" "$2" "$3")"; }

K=$(b64 k)
# ---- KV
same "put: header only" /v3/kv/put "{\"key\":\"$K\",\"value\":\"$(b64 v1)\"}"
same "put with prev_kv returns the previous key-value" /v3/kv/put \
	"{\"key\":\"$K\",\"value\":\"$(b64 v2)\",\"prev_kv\":true}"
same "range of one key: kvs with revisions and version, count" /v3/kv/range "{\"key\":\"$K\"}"
for i in 1 2 3; do
	same "put p/$i" /v3/kv/put "{\"key\":\"$(b64 "p/$i")\",\"value\":\"$(b64 "x$i")\"}"
done
P=$(b64 p/)
PE=$(b64 p0)
same "range of a prefix" /v3/kv/range "{\"key\":\"$P\",\"range_end\":\"$PE\"}"
same "camelCase input (rangeEnd, countOnly)" /v3/kv/range "{\"key\":\"$P\",\"rangeEnd\":\"$PE\",\"countOnly\":true}"
same "limit, sort descending by key, keys only: more is set" /v3/kv/range \
	"{\"key\":\"$P\",\"range_end\":\"$PE\",\"limit\":\"2\",\"sort_order\":\"DESCEND\",\"sort_target\":\"KEY\",\"keys_only\":true}"
same "sort by create revision as an enum number" /v3/kv/range \
	"{\"key\":\"$P\",\"range_end\":\"$PE\",\"sort_order\":2,\"sort_target\":2}"
same "all keys (range_end \\0), serializable" /v3/kv/range "{\"key\":\"$(b64 a)\",\"range_end\":\"AA==\",\"serializable\":true}"
same "range at an old revision" /v3/kv/range "{\"key\":\"$K\",\"revision\":\"2\"}"
same "min/max mod revision filters" /v3/kv/range \
	"{\"key\":\"$P\",\"range_end\":\"$PE\",\"min_mod_revision\":\"5\",\"max_mod_revision\":\"5\"}"
same "a key that is absent: no kvs, count omitted" /v3/kv/range "{\"key\":\"$(b64 nope)\"}"
same "delete one key with prev_kv: deleted and prev_kvs" /v3/kv/deleterange "{\"key\":\"$(b64 p/1)\",\"prev_kv\":true}"
same "delete a prefix: deleted count" /v3/kv/deleterange "{\"key\":\"$P\",\"range_end\":\"$PE\"}"
same "txn: compare value equal, success put and range" /v3/kv/txn \
	"{\"compare\":[{\"key\":\"$K\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\"$(b64 v2)\"}],\"success\":[{\"request_put\":{\"key\":\"$K\",\"value\":\"$(b64 v3)\"}},{\"request_range\":{\"key\":\"$K\"}}],\"failure\":[]}"
same "txn: compare mod_revision less, failure branch with delete" /v3/kv/txn \
	"{\"compare\":[{\"key\":\"$K\",\"result\":\"LESS\",\"target\":\"MOD\",\"mod_revision\":\"2\"}],\"success\":[],\"failure\":[{\"request_delete_range\":{\"key\":\"$(b64 nothing)\"}},{\"request_range\":{\"key\":\"$K\",\"count_only\":true}}]}"
same "txn: compare version greater, create_revision not equal" /v3/kv/txn \
	"{\"compare\":[{\"key\":\"$K\",\"result\":\"GREATER\",\"target\":\"VERSION\",\"version\":\"1\"},{\"key\":\"$K\",\"result\":\"NOT_EQUAL\",\"target\":\"CREATE\",\"create_revision\":\"99\"}],\"success\":[{\"request_range\":{\"key\":\"$K\",\"keys_only\":true}}]}"
same "txn: a nested txn" /v3/kv/txn \
	"{\"success\":[{\"request_txn\":{\"compare\":[{\"key\":\"$K\",\"target\":\"VALUE\",\"value\":\"$(b64 v3)\"}],\"success\":[{\"request_put\":{\"key\":\"$(b64 n)\",\"value\":\"$(b64 y)\"}}]}}]}"
same "txn that writes nothing does not advance the revision" /v3/kv/txn "{}"

# ---- KV errors
same "put with an empty key: key is not provided" /v3/kv/put "{\"value\":\"$(b64 x)\"}"
same "range at a future revision" /v3/kv/range "{\"key\":\"$K\",\"revision\":\"1000\"}"
same "txn writing one key twice" /v3/kv/txn \
	"{\"success\":[{\"request_put\":{\"key\":\"$K\",\"value\":\"$(b64 a)\"}},{\"request_put\":{\"key\":\"$K\",\"value\":\"$(b64 b)\"}}]}"
ops=$(for i in $(seq 1 129); do printf '{"request_put":{"key":"%s","value":"eA=="}},' "$(b64 "t/$i")"; done)
same "txn with 129 operations: too many operations" /v3/kv/txn "{\"success\":[${ops%,}]}"
same "put with a lease that does not exist" /v3/kv/put "{\"key\":\"$K\",\"value\":\"eA==\",\"lease\":\"12345\"}"
same "put with ignore_value on an absent key" /v3/kv/put "{\"key\":\"$(b64 absent)\",\"ignore_value\":true}"
same "compaction to the current revision's past" /v3/kv/compaction '{"revision":"3","physical":true}'
same "range at a compacted revision" /v3/kv/range "{\"key\":\"$K\",\"revision\":\"2\"}"
same "compaction to an already compacted revision" /v3/kv/compaction '{"revision":"2"}'
same_code "a body that is not JSON" /v3/kv/range '{"key":'
same_code "a field of the wrong type" /v3/kv/range '{"key":5}'
same_code "bytes that are not base64" /v3/kv/range '{"key":"!!!"}'
same_code "an unknown enum name" /v3/kv/range "{\"key\":\"$K\",\"sort_order\":\"SIDEWAYS\"}"
same "a range_end below its key: an empty answer" /v3/kv/range "{\"key\":\"$(b64 z)\",\"range_end\":\"$(b64 a)\"}"
same "an unknown field is ignored" /v3/kv/range "{\"key\":\"$K\",\"no_such_field\":1}"
printf '{"key":"%s","value":"%s"}' "$K" "$(head -c 1700000 /dev/zero | base64 -w0)" >"$T_TMP/big.json"
same "a value over the request limit (1.5 MiB)" /v3/kv/put "@$T_TMP/big.json"
# status_of BASE METHOD PATH: the HTTP status of a request with no body
status_of() { curl -s -o /dev/null -m 10 -X "$2" -w '%{http_code}' "$1$3"; }
agree "an unknown path: 404" "$(status_of "$E" POST /v3/kv/nothing)" "$(status_of "$M" POST /v3/kv/nothing)"
agree "a GET of a POST path: 405" "$(status_of "$E" GET /v3/kv/range)" "$(status_of "$M" GET /v3/kv/range)"

# ---- leases
same "lease grant with an id and a TTL" /v3/lease/grant '{"TTL":"60","ID":"7777"}'
# grpc-gateway 1.9 (etcd 3.4) maps FailedPrecondition to 412, 1.16 (3.5) to 400
same_as_35 "lease grant of an id in use" /v3/lease/grant '{"TTL":"60","ID":"7777"}' 's/^412 (.*"code":9,)/400 \1/'
same "put attached to the lease" /v3/kv/put "{\"key\":\"$(b64 leased)\",\"value\":\"eA==\",\"lease\":\"7777\"}"
same "the leased key carries the lease" /v3/kv/range "{\"key\":\"$(b64 leased)\"}"
ttl_n() { call "$1" /v3/lease/timetolive '{"ID":"7777","keys":true}' | sed -E 's/"TTL":"[0-9]+"/"TTL":"N"/'; }
agree "lease time-to-live: granted TTL and keys as etcd's (remaining TTL not compared)" "$(ttl_n "$E")" "$(ttl_n "$M")"
same "lease leases lists it" /v3/lease/leases '{}'
same "lease revoke" /v3/lease/revoke '{"ID":"7777"}'
same "the leased key went with it" /v3/kv/range "{\"key\":\"$(b64 leased)\"}"
same "lease revoke of an unknown lease" /v3/lease/revoke '{"ID":"7777"}'
same "time-to-live of an unknown lease: TTL -1" /v3/lease/timetolive '{"ID":"7777"}'

# ---- watch: the created response and the events of a watch from the past
W="{\"create_request\":{\"key\":\"$K\",\"start_revision\":\"2\",\"prev_kv\":true}}"
watch_lines() { curl -sS -N -m 2 -X POST "$1/v3/watch" -d "$W" 2>/dev/null | jq -cS "$MASK" 2>/dev/null | head -n 3; }
agree "watch: created, then the compacted answer, line for line" "$(watch_lines "$E")" "$(watch_lines "$M")"
W="{\"create_request\":{\"key\":\"$K\",\"start_revision\":\"$(call "$E" /v3/kv/range "{\"key\":\"$K\"}" | sed -E 's/^[0-9]+ //' | jq -r '.kvs[0].mod_revision')\"}}"
agree "watch: created, then the events, line for line" "$(watch_lines "$E")" "$(watch_lines "$M")"
for k in 1 2 3; do same "put w/$k for the watches below" /v3/kv/put "{\"key\":\"$(b64 "w/$k")\",\"value\":\"$(b64 "x$k")\"}"; done
same "delete w/2 with prev_kv" /v3/kv/deleterange "{\"key\":\"$(b64 w/2)\",\"prev_kv\":true}"
WR=$(call "$E" /v3/kv/range "{\"key\":\"$(b64 w/1)\"}" | sed -E 's/^[0-9]+ //' | jq -r '.kvs[0].mod_revision')
W="{\"create_request\":{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"start_revision\":\"$WR\",\"prev_kv\":true}}"
agree "watch of a prefix with prev_kv: puts and the delete with its previous value" "$(watch_lines "$E")" "$(watch_lines "$M")"
W="{\"create_request\":{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"start_revision\":\"$WR\",\"filters\":[\"NOPUT\"]}}"
agree "watch with the NOPUT filter: only the delete" "$(watch_lines "$E")" "$(watch_lines "$M")"
W="{\"create_request\":{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"start_revision\":\"$WR\",\"filters\":[\"NODELETE\"]}}"
agree "watch with the NODELETE filter: only the puts" "$(watch_lines "$E")" "$(watch_lines "$M")"
W="{\"create_request\":{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"start_revision\":\"$WR\",\"watch_id\":\"7\"}}"
agree "watch with a watch_id chosen by the client" "$(watch_lines "$E")" "$(watch_lines "$M")"
same "txn comparing a key's lease" /v3/kv/txn \
	"{\"compare\":[{\"key\":\"$(b64 w/1)\",\"target\":\"LEASE\",\"lease\":\"0\"}],\"success\":[{\"request_range\":{\"key\":\"$(b64 w/1)\"}}]}"
same "txn comparing over a range of keys" /v3/kv/txn \
	"{\"compare\":[{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"target\":\"VERSION\",\"result\":\"GREATER\",\"version\":\"0\"}],\"success\":[{\"request_range\":{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"count_only\":true}}]}"
same "put with ignore_lease and a lease: lease is provided" /v3/kv/put "{\"key\":\"$(b64 w/1)\",\"lease\":\"5\",\"ignore_lease\":true}"
same "put with ignore_value and a value: value is provided" /v3/kv/put "{\"key\":\"$(b64 w/1)\",\"value\":\"eA==\",\"ignore_value\":true}"
same "range with a negative limit" /v3/kv/range "{\"key\":\"$(b64 w/1)\",\"limit\":\"-1\"}"
same "range at the compact revision itself" /v3/kv/range "{\"key\":\"$K\",\"revision\":\"3\"}"

# ---- lock and election (etcd's servers send their errors as Unknown, 500)
same "lease grant for the lock" /v3/lease/grant '{"TTL":"60","ID":"4660"}'
same "lock: the key name/<lease hex>" /v3/lock/lock "{\"name\":\"$(b64 my)\",\"lease\":\"4660\"}"
same "unlock" /v3/lock/unlock "{\"key\":\"$(b64 my/1234)\"}"
same "lock with an unknown lease" /v3/lock/lock "{\"name\":\"$(b64 my)\",\"lease\":\"999\"}"
same "election leader with no candidate" /v3/election/leader "{\"name\":\"$(b64 el)\"}"
same "campaign: the leader key" /v3/election/campaign "{\"name\":\"$(b64 el)\",\"lease\":\"4660\",\"value\":\"$(b64 v1)\"}"
same "election leader: the key-value" /v3/election/leader "{\"name\":\"$(b64 el)\"}"
crev=$(call "$E" /v3/election/leader "{\"name\":\"$(b64 el)\"}" | sed -E 's/.*"create_revision":"([0-9]+)".*/\1/')
LK="{\"name\":\"$(b64 el)\",\"key\":\"$(b64 el/1234)\",\"lease\":\"4660\""
same "proclaim by the leader" /v3/election/proclaim "{\"leader\":$LK,\"rev\":\"$crev\"},\"value\":\"$(b64 v2)\"}"
same "proclaim by a stale leader key" /v3/election/proclaim "{\"leader\":$LK,\"rev\":\"1\"},\"value\":\"$(b64 v3)\"}"
same "resign" /v3/election/resign "{\"leader\":$LK,\"rev\":\"$crev\"}}"
same "election leader after the resign" /v3/election/leader "{\"name\":\"$(b64 el)\"}"

# ---- cluster and maintenance
same "member list: three members, keys as etcd's" /v3/cluster/member/list '{}'
same "status: the same fields" /v3/maintenance/status '{}'
same "hash: the same fields" /v3/maintenance/hash '{}'
# 3.4 answers an alarm request without a header, 3.5 with one
same_as_35 "alarm list: none" /v3/maintenance/alarm '{"action":"GET"}' \
	"s/^200 \\{\\}\$/200 {\"header\":{\"revision\":\"$(call "$E" /v3/kv/range '{"key":"AA=="}' | sed -E 's/.*"revision":"([0-9]+)".*/\1/')\"}}/"

same "member remove of an unknown id" /v3/cluster/member/remove '{"ID":"42"}'
same "member promote of an unknown id" /v3/cluster/member/promote '{"ID":"42"}'

# ---- the older prefix
same "/v3beta/ answers as /v3/" /v3beta/kv/range "{\"key\":\"$K\"}"

for p in "${EPIDS[@]}"; do
	kill -TERM "$p" 2>/dev/null
	t_wait_exit "$p" 10
done
for i in 1 2 3; do t_member_stop "$i" TERM; done
t_done

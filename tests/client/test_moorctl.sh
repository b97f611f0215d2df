#!/usr/bin/env bash
# moorctl against a real 3-member cluster on loopback: each verb's output
# compared with the text etcdctl would print (member ids, ports and timings
# masked), exit codes, --help, MOORCTL_* variables, and unimplemented server
# calls reported as such.
set -u
source "$(dirname "$0")/../cluster/lib.sh"
# a private copy of moord: a concurrent build may relink it mid-test
cp "$MOORD" "$T_TMP/moord" && MOORD=$T_TMP/moord
M=${MOORCTL:-$BUILD/bin/moorctl}

# t_out NAME EXPECTED CMD...: CMD's stdout equals EXPECTED (a diff otherwise).
t_out() {
	local name=$1 want=$2 got
	shift 2
	got=$("$@" 2>"$T_TMP/stderr")
	if [[ "$got" == "$want" ]]; then
		T_PASSED=$((T_PASSED + 1))
		echo "ok   $name"
	else
		T_FAILED=$((T_FAILED + 1))
		echo "FAIL $name"
		diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /'
		sed 's/^/    stderr: /' "$T_TMP/stderr"
	fi
}

# t_rc NAME WANT CMD...: CMD exits with WANT.
t_rc() {
	local name=$1 want=$2 rc
	shift 2
	"$@" >"$T_TMP/out" 2>"$T_TMP/stderr"
	rc=$?
	t_check "$name (exit $rc)" test "$rc" = "$want"
}

mask() { sed -E -e 's/\b[0-9a-f]{12,16}\b/ID/g' -e 's/ +ID/ ID/g' -e 's/127\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+/ADDR/g' -e 's/took = [0-9.]+ms/took = T/'; }
# a table's lines with runs of spaces and dashes squeezed (column widths follow the addresses)
squeeze() { tr -s ' -'; }
export -f squeeze
export -f mask

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3
export MOORCTL_ENDPOINTS="$(t_url 1),$(t_url 2),$(t_url 3)"

t_out "put prints OK" "OK" $M put foo bar
t_out "put --prev-kv prints the previous pair" "OK
foo
bar" $M put foo bar2 --prev-kv
t_out "put takes the value from stdin" "OK" bash -c "printf 'from stdin' | $M put stdin-key"
t_out "get prints key and value" "stdin-key
from stdin" $M get stdin-key
$M put foo2 baz >/dev/null
$M put fop x >/dev/null
t_out "get --prefix in key order" "foo
bar2
foo2
baz" $M get --prefix foo
t_out "get --from-key" "fop
x
stdin-key
from stdin" $M get --from-key fop
t_out "get key range_end" "foo
bar2
foo2
baz" $M get foo fop
t_out "get --limit" "foo
bar2" $M get --prefix fo --limit 1
t_out "get --keys-only (etcdctl prints an empty value line)" "foo

foo2" $M get --prefix foo --keys-only
t_out "get --print-value-only" "bar2
baz" $M get --prefix foo --print-value-only
t_out "get --count-only" "3" $M get --prefix fo --count-only
t_out "get --sort-by=VALUE --order=DESCEND" "fop
x
foo2
baz
foo
bar2" $M get --prefix fo --sort-by=VALUE --order=DESCEND
t_out "get --sort-by=MODIFY" "foo
bar2
foo2
baz" $M get --prefix foo --sort-by=MODIFY
t_out "get --rev reads history" "foo
bar" $M get foo --rev 2
t_out "get --consistency=s" "foo
bar2" $M get foo --consistency=s
t_out "get -w json" '{"header":{"cluster_id":ID,"member_id":ID,"revision":6,"raft_term":T},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2,"value":"YmFyMg=="}],"count":1}' \
	bash -c "$M get foo -w json | sed -E -e 's/\"(cluster_id|member_id)\":\"[0-9]+\"/\"\1\":ID/g' -e 's/\"raft_term\":[0-9]+/\"raft_term\":T/'"
t_out "get -w table" "+-----+-------+-----------------+--------------+---------+-------+
| KEY | VALUE | CREATE REVISION | MOD REVISION | VERSION | LEASE |
+-----+-------+-----------------+--------------+---------+-------+
| foo |  bar2 |               2 |            3 |       2 |     0 |
+-----+-------+-----------------+--------------+---------+-------+" $M get foo -w table

t_out "txn from stdin runs the success branch" "SUCCESS

OK

foo
new" bash -c "printf 'mod(\"foo\") > \"0\"\nvalue(\"foo\") = \"bar2\"\n\nput foo new\nget foo\n\nput foo other\n\n' | $M txn"
t_out "txn runs the failure branch when a compare fails" "FAILURE

foo2
baz

1" bash -c "printf 'version(\"foo\") = \"1\"\n\nput foo nope\n\nget foo2\ndel foo2\n\n' | $M txn"
t_out "txn -i prompts for each section" "compares:

success requests (get, put, del):

failure requests (get, put, del):

SUCCESS

OK" bash -c "printf 'create(\"absent\") = \"0\"\n\nput absent here\n\n\n' | $M txn -i"
t_rc "txn with a bad compare fails with exit 128" 128 bash -c "printf 'nonsense\n\n\n\n' | $M txn"

t_out "del prints the count" "1" $M del absent
t_out "del --prev-kv prints the removed pairs" "1
fop
x" $M del fop --prev-kv
t_out "del --prefix" "1" $M del --prefix stdin
t_out "del of nothing prints 0" "0" $M del nothing-here
t_rc "get with --prefix and a range_end fails with exit 128" 128 $M get --prefix a b
t_rc "del with --from-key and --prefix fails with exit 128" 128 $M del --from-key --prefix a

t_out "watch --rev --prefix replays history" "PUT
foo
bar
PUT
foo
bar2
PUT
foo2
baz" $M watch --prefix foo --rev 1 --max-events 3
t_out "watch --prev-kv prints the previous pair first" "PUT
foo
bar
foo
bar2" $M watch foo --rev 3 --prev-kv --max-events 1
# from the revision after now, so the watch misses nothing however late it starts
rev=$($M get foo -w json | sed -E 's/.*"revision":([0-9]+).*/\1/')
$M watch live/ --prefix --rev $((rev + 1)) --max-events 2 >"$T_TMP/live.out" 2>&1 &
wpid=$!
$M put live/a 1 >/dev/null
$M del live/a >/dev/null
t_wait_exit "$wpid" 10
t_out "watch prints live puts and deletes" "PUT
live/a
1
DELETE
live/a" cat "$T_TMP/live.out"

lease_out=$($M lease grant 100)
L=$(awk '{print $2}' <<<"$lease_out")
t_out "lease grant" "lease $L granted with TTL(100s)" echo "$lease_out"
$M put --lease="$L" leased v >/dev/null
t_out "lease timetolive --keys" "lease $L granted with TTL(100s), remaining(100s), attached keys([leased])" \
	bash -c "$M lease timetolive $L --keys | sed -E 's/remaining\((99|100)s\)/remaining(100s)/'"
t_out "lease list" "found 1 leases
$L" $M lease list
ka=$($M lease keep-alive --once "$L" 2>&1)
if [[ $ka == *"not implemented"* || $ka == *nimplemented* ]]; then
	echo "SKIP lease keep-alive: the server answers Unimplemented (code 12)"
else
	t_out "lease keep-alive --once" "lease $L keepalived with TTL(100)" echo "$ka"
fi
t_out "lease revoke" "lease $L revoked" $M lease revoke "$L"
t_out "lease timetolive of a revoked lease" "lease $L already expired" $M lease timetolive "$L"
t_out "the lease's keys went with it" "" $M get leased
t_rc "lease revoke of an unknown lease fails with exit 1" 1 $M lease revoke 1234
t_check "... saying the lease is not found" grep -q "requested lease not found" "$T_TMP/stderr"

t_out "member list" "ID, started, m1, http://ADDR, http://ADDR, false
ID, started, m2, http://ADDR, http://ADDR, false
ID, started, m3, http://ADDR, http://ADDR, false" bash -c "$M member list | mask | sort"
t_out "member list -w table" "+-+-+-+-+-+-+
| ID | STATUS | NAME | PEER ADDRS | CLIENT ADDRS | IS LEARNER |
+-+-+-+-+-+-+
| ID | started | mN | http://ADDR | http://ADDR | false |" \
	bash -c "$M member list -w table | head -4 | mask | squeeze | sed -E 's/ m[0-9] / mN /'"
add_out=$($M member add m4 --peer-urls=http://127.9.9.9:2380 --learner 2>&1)
if [[ $add_out == *"not implemented"* ]]; then
	echo "SKIP moorctl member add/update/remove: the server answers Unimplemented (code 12)"
else
	t_out "member add prints the settings for the new member" "Member ID added to cluster ID

MOOR_NAME=\"m4\"
MOOR_INITIAL_CLUSTER=\"m1=http://ADDR,m2=http://ADDR,m3=http://ADDR,m4=http://ADDR\"
MOOR_INITIAL_ADVERTISE_PEER_URLS=\"http://ADDR\"
MOOR_INITIAL_CLUSTER_STATE=\"existing\"" bash -c "mask <<<'$add_out'"
	new_id=$($M member list | grep unstarted | cut -d, -f1)
	t_out "member list shows the learner unstarted" "ID, unstarted, , http://ADDR, , true" bash -c "$M member list | grep unstarted | mask"
	t_out "member update" "Member ID updated in cluster ID" bash -c "$M member update $new_id --peer-urls=http://127.9.9.8:2380 | mask"
	t_out "member remove" "Member ID removed from cluster ID" bash -c "$M member remove $new_id | mask"
	t_out "the cluster has three members again" "3" bash -c "$M member list | wc -l"
fi
follower=$($M endpoint status | grep -m1 ', false, false, ' | cut -d, -f2 | tr -d ' ')
ml=$($M move-leader "$follower" 2>&1)
if [[ $ml == *"not implemented"* ]]; then
	echo "SKIP moorctl move-leader: the server answers Unimplemented (code 12)"
else
	t_out "move-leader names both members" "Leadership transferred from ID to ID" bash -c "mask <<<'$ml'"
	t_check "the named member leads afterwards" t_wait_eq 10 1 bash -c "$M endpoint status | grep -c ', $follower, .*, true, false, '"
fi
t_out "endpoint health" "http://ADDR is healthy: successfully committed proposal: took = T
http://ADDR is healthy: successfully committed proposal: took = T
http://ADDR is healthy: successfully committed proposal: took = T" bash -c "$M endpoint health | mask"
t_out "endpoint status names exactly one leader" "1" bash -c "$M endpoint status | grep -c ', true, false, '"
t_out "endpoint status --cluster covers every member" "3" bash -c "$M endpoint status --cluster | wc -l"
t_out "endpoint status -w table has etcdctl's columns" "| ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |" \
	bash -c "$M endpoint status -w table | sed -n 2p | squeeze"
t_out "endpoint hashkv agrees on every member" "1" bash -c "$M endpoint hashkv | awk -F', ' '{print \$2}' | sort -u | wc -l"

t_out "compaction" "compacted revision 5" $M compaction 5
t_rc "compaction again at the same revision fails with exit 1" 1 $M compaction 5
t_check "... saying it is compacted" grep -q "compacted" "$T_TMP/stderr"

t_out "lock runs a command while holding the lock" "held" $M lock mylock echo held
t_out "lock sets MOOR_LOCK_KEY for the command" "mylock/" bash -c "$M lock mylock sh -c 'echo \${MOOR_LOCK_KEY%%/*}/'"
$M elect myelection alice >"$T_TMP/elect.out" 2>&1 &
epid=$!
t_check "elect campaigns and prints the leader key and proposal" \
	t_wait_eq 10 alice bash -c "sed -n 2p '$T_TMP/elect.out'"
t_out "elect -l reports the current leader" "alice" bash -c "timeout 2 $M elect -l myelection | sed -n 2p"
kill -INT "$epid"
t_wait_exit "$epid" 10
t_check "elect resigns on SIGINT and exits 0 (got $T_RC)" test "$T_RC" = 0
t_out "no leader remains after the resignation" "" $M get --prefix myelection/

for verb in defrag "alarm list" "snapshot save $T_TMP/snap.db"; do
	if [[ $verb == snapshot* ]]; then
		out=$($M --endpoints "$(t_url 1)" $verb 2>&1)
	else
		out=$($M $verb 2>&1)
	fi
	rc=$?
	if [[ $out == *"not implemented"* ]]; then
		echo "SKIP moorctl $verb: the server answers Unimplemented (code 12)"
	else
		t_check "moorctl $verb succeeds (exit $rc: $out)" test "$rc" = 0
	fi
done
t_rc "snapshot save to several endpoints is refused with exit 128" 128 $M snapshot save "$T_TMP/x.db"
t_rc "snapshot restore without --data-dir exits 128" 128 $M snapshot restore x.db
t_rc "snapshot restore of a missing file exits 1" 1 $M snapshot restore "$T_TMP/none.db" \
	--data-dir="$T_TMP/restored" --name=m1 --initial-cluster=m1=http://127.0.0.1:1 \
	--initial-advertise-peer-urls=http://127.0.0.1:1

t_rc "an unknown verb exits 128" 128 $M frobnicate
t_rc "get without a key exits 128" 128 $M get
t_rc "an unknown flag exits 128" 128 $M get foo --bogus
t_rc "a bad output format exits 128" 128 $M get foo -w yaml
for verb in put get del txn watch compaction "lease grant" "lease revoke" "lease timetolive" "lease list" \
	"lease keep-alive" "member list" "member add" "member remove" "member update" "member promote" \
	"endpoint health" "endpoint status" defrag "snapshot save" "alarm list" "alarm disarm" move-leader lock elect; do
	t_rc "moorctl $verb --help exits 0" 0 $M $verb --help
	t_check "... and shows its usage" grep -q "USAGE:" "$T_TMP/out"
done
t_rc "no endpoint reachable: exit 2" 2 $M --endpoints 127.0.0.1:1 --command-timeout 300ms get x
t_check "... with a clear error" grep -q "no endpoint answered" "$T_TMP/stderr"
t_out "MOORCTL_ENDPOINTS is overridden by --endpoints" "foo
new" env MOORCTL_ENDPOINTS=127.0.0.1:1 $M --endpoints "$(t_url 2)" get foo
t_out "MOORCTL_WRITE_OUT selects the format" "1" bash -c "MOORCTL_WRITE_OUT=json $M get --prefix fo --count-only | sed -E 's/.*\"count\":([0-9]+).*/\1/'"

# Failover: the first endpoint dead, moorctl answers from the next.
t_member_stop 1 KILL
t_out "with the first endpoint dead, get still answers" "foo
new" $M get foo
for i in 2 3; do t_member_stop "$i" TERM; done
if [[ $T_FAILED -gt 0 ]]; then
	tail -n 30 "$T_TMP"/m*.log
fi
t_done

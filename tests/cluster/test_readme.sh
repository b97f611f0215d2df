#!/usr/bin/env bash
# The README's curl examples and its C program, run as printed against a 3-member cluster
# (only the addresses are changed: make run's 127.0.0.1:2379/22379/32379
# become this test's members), each checked for what it must answer.
set -u
source "$(dirname "$0")/lib.sh"

readme=$(dirname "$0")/../../README.md
t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3

# the block marked readme-test, addresses mapped to this cluster
sed -n '/^```sh readme-test$/,/^```$/p' "$readme" | grep '^curl' |
	sed -e "s|http://127.0.0.1:2379|$(t_url 1)|g" -e "s|http://127.0.0.1:22379|$(t_url 2)|g" \
		-e "s|http://127.0.0.1:32379|$(t_url 3)|g" >"$T_TMP/cmds"
t_check "the README has its curl examples (14 of them)" test "$(wc -l <"$T_TMP/cmds")" = 14
i=0
while IFS= read -r cmd; do
	i=$((i + 1))
	bash -c "$cmd" >"$T_TMP/out.$i" 2>&1
	echo >>"$T_TMP/out.$i"
done <"$T_TMP/cmds"
t_check "put answers with a header" grep -q '"header":{"cluster_id"' "$T_TMP/out.1"
t_check "get on another member returns bar" grep -q '"value":"YmFy"' "$T_TMP/out.2"
t_check "prefix get returns foo" grep -q '"key":"Zm9v"' "$T_TMP/out.3"
t_check "the compare-and-swap succeeded" grep -q '"succeeded":true' "$T_TMP/out.4"
t_check "the lease was granted" grep -q '"ID":"7587","TTL":"60"' "$T_TMP/out.5"
t_check "the key was put with the lease" grep -q '"revision"' "$T_TMP/out.6"
t_check "the keep-alive answered the TTL" grep -q '"result":{.*"ID":"7587","TTL":"60"' "$T_TMP/out.7"
t_check "the watch replayed foo's history (bar, then baz)" \
	bash -c "grep -q '\"created\":true' '$T_TMP/out.8' && grep -q '\"value\":\"YmFy\"' '$T_TMP/out.8' && grep -q '\"value\":\"YmF6\"' '$T_TMP/out.8'"
t_check "member list shows three members" test "$(grep -o '"name":"m[0-9]"' "$T_TMP/out.9" | wc -l)" = 3
t_check "status names the leader and the etcd version" \
	bash -c "grep -q '\"leader\":\"[0-9]*\"' '$T_TMP/out.10' && grep -q '\"version\":\"3.5' '$T_TMP/out.10'"
t_check "the lock answered its key mylock/1da3" grep -q '"key":"bXlsb2NrLzFkYTM="' "$T_TMP/out.11"
t_check "the unlock through another member answered a header" grep -q '"header":{"cluster_id"' "$T_TMP/out.12"
t_check "the campaign answered the leader key" grep -q '"leader":{"name":"ZWw=","key":"ZWwvMWRhMw=="' "$T_TMP/out.13"
t_check "the leader, asked on a third member, holds the campaign's value" grep -q '"value":"bTE="' "$T_TMP/out.14"
# the README's C program: the example it names, and it builds and runs
sed -n '/^```c readme-test$/,/^```$/p' "$readme" | sed '1d;$d' >"$T_TMP/hello.c"
t_check "the README's C program is client/examples/hello.c" \
	bash -c "sed -n '/^#include \"client\/moor.h\"/,\$p' '$(dirname "$0")/../../client/examples/hello.c' | cmp -s - '$T_TMP/hello.c'"
root=$(cd "$(dirname "$0")/../.." && pwd)
san=() # a libmoor built for make sanitize needs the sanitizers' runtimes
nm "$BUILD/lib/libmoor.a" 2>/dev/null | grep -q __asan_init && san=(-fsanitize=address,undefined)
t_check "... it compiles against libmoor" \
	cc -std=c11 -Wall -Werror "${san[@]}" -I"$root" -o "$T_TMP/hello" "$T_TMP/hello.c" \
	"$BUILD/lib/libmoor.a" -lcurl -lprotobuf-c -lpthread
timeout 30 "$T_TMP/hello" "$(t_url 2)" >"$T_TMP/hello.out" 2>&1
t_check "... and puts, gets and watches: it prints hello and the watched goodbye" \
	bash -c "grep -q '^hello at revision [0-9]*$' '$T_TMP/hello.out' && grep -q '^watched: goodbye$' '$T_TMP/hello.out'"
for i in 1 2 3; do t_member_stop "$i" TERM; done
t_done

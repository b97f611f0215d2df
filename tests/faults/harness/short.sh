#!/usr/bin/env bash
# The short fault-injection suite of `make test`: three scenarios of about
# 25 s of faults each (partitions; disks and crashes; membership changes,
# clock jumps and fenced locks), each on a fresh cluster with a seed drawn
# now (printed, with the command that reruns it). MOOR_JEPSEN_SEED fixes it.
# Prints "N passed, N failed" for tests/run.sh.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
passed=0
failed=0
base=${MOOR_JEPSEN_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))}
k=0
for sc in short-partitions short-disk short-membership; do
	seed=$((base + k))
	k=$((k + 1))
	out=$(mktemp -d /tmp/moor-jepsen-short.XXXXXX)
	if BUILD=$BUILD bash "$HERE/run.sh" "$sc" --seed "$seed" --out "$out" >"$out/stdout.txt" 2>&1; then
		passed=$((passed + 1))
		echo "ok   $sc seed $seed: $(head -n 1 "$out/summary.txt")"
		rm -rf "$out"
	else
		failed=$((failed + 1))
		echo "FAIL $sc seed $seed (results kept in $out):"
		tail -n 25 "$out/stdout.txt" | sed 's/^/    /'
	fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

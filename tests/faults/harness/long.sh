#!/usr/bin/env bash
# The long fault-injection suite (`make jepsen TIME=S SEED=N`): every
# long scenario in turn (partitions, crash, watch, locks, membership,
# libmoor), each
# run for min(300 s, what is left) of faults, until TIME seconds of faults
# have passed. Results under /tmp/moor-jepsen/; one summary line per run,
# appended to /tmp/moor-jepsen/runs.txt as well.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
TOTAL=${1:-1800}
SEED=${2:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))}
PER=${MOOR_JEPSEN_PER_RUN:-300}
mkdir -p /tmp/moor-jepsen
scenarios=(${MOOR_JEPSEN_SCENARIOS:-partitions crash watch locks membership libmoor})
left=$TOTAL
k=0
passed=0
failed=0
while ((left >= 20)); do
	sc=${scenarios[k % ${#scenarios[@]}]}
	t=$((left < PER ? left : PER))
	seed=$((SEED + k))
	k=$((k + 1))
	out=/tmp/moor-jepsen/$sc-$seed
	rm -rf "$out"
	BUILD=$BUILD bash "$HERE/run.sh" "$sc" --time "$t" --seed "$seed" --out "$out" >/dev/null 2>&1
	rc=$?
	line="$(date -u +%FT%TZ) rc=$rc $(head -n 2 "$out/summary.txt" 2>/dev/null | tr '\n' ' ') dir=$out"
	echo "$line" | tee -a /tmp/moor-jepsen/runs.txt
	if [[ $rc -eq 0 ]]; then passed=$((passed + 1)); else
		failed=$((failed + 1))
		echo "    rerun: BUILD=$BUILD tests/faults/harness/run.sh $sc --time $t --seed $seed"
	fi
	left=$((left - t))
done
echo "jepsen: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# Runs every test binary and script given on the command line, each in its
# own process with a time limit, and prints one closing line that CI reads:
#   tests: N passed, N failed
# cmocka binaries are counted by their own summary lines (one per test
# case); a script or a binary without such lines counts as one test, judged
# by its exit code. Output of each goes to $BUILD/test-logs/NAME.log and is
# shown when it fails.
set -u
BUILD=${BUILD:-build}
LIMIT=${MOOR_TEST_TIMEOUT:-900}
logs=$BUILD/test-logs
mkdir -p "$logs"
passed=0
failed=0
failed_names=()
for t in "$@"; do
	name=$(basename "$t")
	log=$logs/$name.log
	start=$(date +%s)
	if [[ $t == *.sh ]]; then
		BUILD=$BUILD timeout -k 10 "$LIMIT" bash "$t" >"$log" 2>&1
	else
		timeout -k 10 "$LIMIT" "$t" >"$log" 2>&1
	fi
	rc=$?
	secs=$(($(date +%s) - start))
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	if [[ $p -eq 0 && $f -eq 0 ]]; then
		# A plain "N passed, N failed" line counts too.
		line=$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
		if [[ -n $line ]]; then
			p=$(sed -E 's/^([A-Za-z_-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
			f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
		elif [[ $rc -eq 0 ]]; then
			p=1
		fi
	fi
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		f=1 # crashed, timed out, or failed outside a counted case
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [[ $rc -ne 0 || $f -ne 0 ]]; then
		failed_names+=("$name")
		echo "FAIL $name (exit $rc, ${secs}s) — last lines of $log:"
		tail -n 40 "$log" | sed 's/^/    /'
	else
		echo "ok   $name ($p passed, ${secs}s)"
	fi
done
if [[ ${#failed_names[@]} -gt 0 ]]; then
	echo "failed: ${failed_names[*]}"
fi
echo "tests: $passed passed, $failed failed"
[[ $failed -eq 0 && ${#failed_names[@]} -eq 0 ]]

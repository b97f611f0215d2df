#!/usr/bin/env bash
# Runs moor-check over every example history in tests/faults/histories/ and
# compares its exit status with the file's "# expect:" header (valid → 0,
# invalid → 1, unknown → 2), using the checkers its "# checkers:" header names.
set -u
cd "$(dirname "$0")/../../../.."
BUILD=${BUILD:-build}
bin=$BUILD/bin/moor-check
passed=0
failed=0
for f in tests/faults/histories/*.jsonl; do
	checkers=$(sed -n 's/^# checkers: *//p' "$f" | head -n 1)
	expect=$(sed -n 's/^# expect: *//p' "$f" | head -n 1)
	case $expect in
	valid) want=0 ;;
	invalid) want=1 ;;
	unknown) want=2 ;;
	*) echo "FAIL $f: no '# expect:' header"; failed=$((failed + 1)); continue ;;
	esac
	# shellcheck disable=SC2086
	out=$("$bin" "$f" $checkers 2>&1)
	rc=$?
	if [[ $rc -eq $want ]]; then
		passed=$((passed + 1))
		echo "ok   $f ($expect)"
	else
		failed=$((failed + 1))
		echo "FAIL $f: expected $expect (exit $want), got exit $rc"
		echo "$out" | sed 's/^/    /'
	fi
done
echo "histories: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

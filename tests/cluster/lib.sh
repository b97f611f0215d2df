# Shared helpers for tests that start real moord processes.
# Every daemon listens on 127.0.0.1 only, is stopped by its pid, and every
# wait is bounded.

BUILD=${BUILD:-build}
MOORD=${MOORD:-$BUILD/bin/moord}
T_PASSED=0
T_FAILED=0
T_PIDS=()
T_TMP=$(mktemp -d /tmp/moor-test.XXXXXX)

t_cleanup() {
	for p in "${T_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT

# t_check NAME COMMAND...: one assertion, counted.
t_check() {
	local name=$1
	shift
	if "$@"; then
		T_PASSED=$((T_PASSED + 1))
		echo "ok   $name"
	else
		T_FAILED=$((T_FAILED + 1))
		echo "FAIL $name"
	fi
}

t_done() {
	echo "$T_PASSED passed, $T_FAILED failed"
	[[ $T_FAILED -eq 0 ]]
}

# A free TCP port on 127.0.0.1 (none listening there now).
t_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if ! ss -ltnH "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# t_wait_http URL SECONDS: until URL answers 200, or fail.
t_wait_http() {
	local url=$1 limit=$2 i
	for ((i = 0; i < limit * 20; i++)); do
		if curl -fsS -m 1 -o /dev/null "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# t_wait_exit PID SECONDS: waits (bounded) for a child of this shell to
# exit and sets T_RC to its exit code, or to "timeout". Not for $(...): only
# the parent shell can collect the status.
t_wait_exit() {
	local pid=$1 limit=$2 i
	T_RC=timeout
	for ((i = 0; i < limit * 20; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			T_RC=$?
			return 0
		fi
		# A zombie still answers kill -0: look at its state.
		if [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then
			wait "$pid"
			T_RC=$?
			return 0
		fi
		sleep 0.05
	done
	return 1
}

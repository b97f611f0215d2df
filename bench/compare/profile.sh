#!/bin/bash
# Profiles a 3-member moor cluster under one moor-bench workload: starts the
# cluster on loopback (a private copy of moord), preloads 10,000 keys, runs
# the workload and samples the chosen member with `perf record` (software
# cpu-clock event, so it works inside VMs) for the length of the run, then
# prints the functions with the largest share of that member's CPU time and
# the member's CPU use per thread.
#
#   bench/compare/profile.sh [--build DIR] [--member leader|follower]
#       [--duration S] [--callers] -- MOOR-BENCH-FLAGS...
#   e.g. bench/compare/profile.sh -- --workload put --clients 256
#
# --callers records call graphs (dwarf) and prints who calls the top symbols.
# --callgrind: instead of perf, restarts one follower under valgrind's
# callgrind (a private copy of moord, its data kept), sends the load to the
# two other members only, and prints the inclusive cost of moord's functions
# on that follower: what replicating and applying a request costs a member.
# With --member leader (the default) leadership is then handed to that member
# and the load sent to it alone: what a leader serving HTTP clients costs.
# --syscalls also counts the member's system calls per thread with their
# time (perf trace -s): how many fdatasyncs, writes and wakeups a request costs.
set -u
BUILD=build
MEMBER=leader
DUR=10
CALLERS=0
SYSCALLS=0
CALLGRIND=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--member) MEMBER=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--callers) CALLERS=1; shift ;;
	--syscalls) SYSCALLS=1; shift ;;
	--callgrind) CALLGRIND=1; shift ;;
	--) shift; break ;;
	*) echo "profile.sh: unknown flag $1" >&2; exit 2 ;;
	esac
done
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/moor-profile.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$BUILD/bin/moord" "$WORK/moord" && cp "$BUILD/bin/moor-bench" "$WORK/moor-bench" || exit 1

NET=127.$((RANDOM % 254 + 1)).$((RANDOM % 254 + 1))
CL="m1=http://$NET.1:2380,m2=http://$NET.2:2380,m3=http://$NET.3:2380"
declare -A PID
start_member() { # i [wrapper...]
	local i=$1
	shift
	"$@" "$WORK/moord" --name "m$i" --data-dir "$WORK/m$i" \
		--listen-client-urls "http://$NET.$i:2379" --advertise-client-urls "http://$NET.$i:2379" \
		--listen-peer-urls "http://$NET.$i:2380" --initial-advertise-peer-urls "http://$NET.$i:2380" \
		--initial-cluster "$CL" --initial-cluster-state new --log-level warn 2>>"$WORK/m$i.log" &
	PID[$i]=$!
	PIDS+=($!)
}
for i in 1 2 3; do start_member "$i"; done
EP="http://$NET.1:2379,http://$NET.2:2379,http://$NET.3:2379"
leader=
for ((k = 0; k < 300; k++)); do
	[[ -n $leader ]] && break
	for i in 1 2 3; do
		st=$(curl -fsS -m 1 -X POST "http://$NET.$i:2379/v3/maintenance/status" -d '{}' 2>/dev/null) || continue
		[[ $(jq -r .leader <<<"$st") == "$(jq -r .header.member_id <<<"$st")" && $(jq -r .leader <<<"$st") != 0 ]] && leader=$i
	done
	[[ -z $leader ]] && sleep 0.1
done
[[ -n $leader ]] || { echo "profile.sh: no leader" >&2; tail "$WORK"/m*.log >&2; exit 1; }
target=$leader
[[ $MEMBER == follower ]] && target=$((leader % 3 + 1))
timeout 120 "$WORK/moor-bench" --endpoints "$EP" --workload fill --keyspace 10000 --duration 0 >/dev/null || exit 1

if [[ $CALLGRIND == 1 ]]; then
	command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind" >&2; exit 1; }
	target=$((leader % 3 + 1))
	kill -TERM "${PID[$target]}"
	wait "${PID[$target]}"
	start_member "$target" valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
		--dump-instr=no --collect-atstart=yes
	for ((k = 0; k < 1200; k++)); do
		curl -fsS -m 2 -o /dev/null -X POST "http://$NET.$target:2379/v3/kv/range" \
			-d '{"key":"Zm9v","serializable":true}' 2>/dev/null && break
		sleep 0.1
	done
	others=""
	for i in 1 2 3; do [[ $i != "$target" ]] && others+="${others:+,}http://$NET.$i:2379"; done
	role="follower m$target; load on the two others"
	if [[ $MEMBER == leader ]]; then
		# hand leadership to the member under callgrind and send it the load
		id=$(curl -fsS -m 5 -X POST "http://$NET.$target:2379/v3/maintenance/status" -d '{}' | jq -r .header.member_id)
		for i in 1 2 3; do
			curl -fsS -m 20 -o /dev/null -X POST "http://$NET.$i:2379/v3/maintenance/transfer-leadership" \
				-d "{\"targetID\":\"$id\"}" 2>/dev/null
		done
		for ((k = 0; k < 300; k++)); do
			st=$(curl -fsS -m 2 -X POST "http://$NET.$target:2379/v3/maintenance/status" -d '{}' 2>/dev/null)
			[[ $(jq -r .leader <<<"$st") == "$id" ]] && break
			sleep 0.1
		done
		[[ $(jq -r .leader <<<"$st") == "$id" ]] || { echo "profile.sh: leadership did not move" >&2; exit 1; }
		others="http://$NET.$target:2379"
		role="leader m$target, which takes the load itself"
	fi
	echo "callgrind on $role: $*"
	timeout $((DUR + 60)) "$WORK/moor-bench" --endpoints "$others" --duration "$DUR" "$@" | grep -v '^RESULT'
	sleep 2
	kill -TERM "${PID[$target]}"
	for ((k = 0; k < 600; k++)); do kill -0 "${PID[$target]}" 2>/dev/null || break; sleep 0.1; done
	wait "${PID[$target]}" 2>/dev/null
	echo "inclusive cost on m$target (callgrind, Ir):"
	callgrind_annotate --inclusive=yes --threshold=99.5 "$WORK/callgrind.out" 2>/dev/null |
		grep -E '^ *[0-9,]+ .*moord\]|PROGRAM TOTALS' | sed -E 's# \[[^]]*moord\]##' | head -70
	echo "self cost, top functions (callgrind, Ir):"
	callgrind_annotate --threshold=90 "$WORK/callgrind.out" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -25 | cut -c1-160
	cp "$WORK/callgrind.out" "$BUILD/profile-callgrind.out"
	echo "kept as $BUILD/profile-callgrind.out (callgrind_annotate --tree=caller ... for who calls what)"
	exit 0
fi

PERF_FLAGS=(-e cpu-clock -F 999)
[[ $CALLERS == 1 ]] && PERF_FLAGS+=(--call-graph dwarf,16384)
echo "profiling member m$target ($([[ $target == "$leader" ]] && echo leader || echo follower), pid ${PID[$target]}) under: $*"
perf record "${PERF_FLAGS[@]}" -o "$WORK/perf.data" -p "${PID[$target]}" -- sleep "$DUR" 2>"$WORK/perf.err" &
perfpid=$!
if [[ $SYSCALLS == 1 ]]; then
	perf trace -s -p "${PID[$target]}" -o "$WORK/trace.txt" -- sleep "$DUR" 2>/dev/null &
	tracepid=$!
fi
before=$(awk '{print $14 + $15}' "/proc/${PID[$target]}/stat")
timeout $((DUR + 60)) "$WORK/moor-bench" --endpoints "$EP" --duration "$DUR" "$@" | grep -v '^RESULT'
after=$(awk '{print $14 + $15}' "/proc/${PID[$target]}/stat")
wait "$perfpid"
[[ $SYSCALLS == 1 ]] && wait "$tracepid"
echo "member CPU during the run: $(awk -v a="$before" -v b="$after" -v d="$DUR" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f cores", (b - a) / hz / d}')"
echo "per thread (CPU seconds since start):"
for t in /proc/"${PID[$target]}"/task/*; do
	printf '  %-16s %s\n' "$(cat "$t/comm")" "$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "$t/stat")"
done
echo "by library (share of the member's samples):"
perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo "by thread:"
perf report -i "$WORK/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
echo "top functions (share of the member's samples):"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
	grep -E '^ +[0-9]' | sed -E 's/ {2,}-  +- *$//; s/ +$//' | head -40
if [[ $SYSCALLS == 1 ]]; then
	echo "system calls (perf trace -s, per thread):"
	grep -vE '^ *$' "$WORK/trace.txt" | head -120
fi
if [[ $CALLERS == 1 ]]; then
	perf report -i "$WORK/perf.data" --children --sort symbol --stdio -G 2>/dev/null | head -200 >"$BUILD/profile-callers.txt"
	echo "call graphs: $BUILD/profile-callers.txt"
fi

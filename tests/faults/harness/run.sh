#!/usr/bin/env bash
# One run of the fault-injection suite (issue 10): a real moord cluster on
# per-member loopback addresses 127.A.B.i, a fault schedule drawn from a seed,
# concurrent clients recording a history (moor-jepsen-client), then heal,
# final reads, and the verdict of moor-check.
#
#   tests/faults/harness/run.sh SCENARIO [--time S] [--seed N] [--out DIR]
#
# SCENARIO names tests/faults/scenarios/SCENARIO.conf (bash: MEMBERS,
# WORKLOAD, THREADS, WATCHERS, KEYS, LOCKS, FAULTS, HOLD_MIN/HOLD_MAX,
# QUIET_MIN/QUIET_MAX, SNAPSHOT_COUNT, TIME, THINK_MS, WRITES=raw|libmoor). Results go to DIR (default
# /tmp/moor-jepsen/SCENARIO-SEED-STAMP): history.jsonl, latency.txt,
# timeline.txt, m*.log, verdict.json, findings.txt, latency.svg/png, summary.txt.
# Exit 0: every checker valid and no finding; 1: a violation or finding; 2:
# unknown verdict or the run could not be carried out.
#
# Faults are undone by the run itself and by its EXIT trap: every daemon is
# killed by its pid, every iptables rule lives in a chain of this run that is
# removed, and every address is loopback. The seed fixes the schedule (which
# fault, which member by role, how long); what the cluster does in between is
# real time and not replayed exactly.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD

SCENARIO=${1:?usage: run.sh SCENARIO [--time S] [--seed N] [--out DIR]}
shift
TIME_ARG= SEED= OUT=
while [[ $# -gt 0 ]]; do
	case $1 in
	--time) TIME_ARG=$2; shift 2 ;;
	--seed) SEED=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

# Scenario defaults, then the scenario file.
MEMBERS=3 WORKLOAD=register THREADS=6 WATCHERS=3 KEYS=4 LOCKS=2
FAULTS="kill" HOLD_MIN=2 HOLD_MAX=6 QUIET_MIN=1 QUIET_MAX=3 SNAPSHOT_COUNT=10000 TIME=60
THINK_MS=0 WRITES=raw
SETTLE=8 # seconds of operations after healing, before the final phase
conf=$ROOT/tests/faults/scenarios/$SCENARIO.conf
[[ -f $conf ]] || { echo "no scenario $conf" >&2; exit 2; }
# shellcheck disable=SC1090
source "$conf"
[[ -n $TIME_ARG ]] && TIME=$TIME_ARG
[[ -n $SEED ]] || SEED=$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000000 ))
RANDOM=$SEED # bash's generator: the schedule follows from the seed
OUT=${OUT:-/tmp/moor-jepsen/$SCENARIO-$SEED-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
RERUN="BUILD=${BUILD#"$ROOT"/} tests/faults/harness/run.sh $SCENARIO --time $TIME --seed $SEED"

say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }
now() { date +%s.%N; }

# ---- tools (the harness installs what it lacks; it runs as root in CI)
need_pkg() { # COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 && return 0
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		(apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null 2>&1; })
	fi
	command -v "$1" >/dev/null 2>&1
}
need_pkg iptables iptables || { echo "iptables is missing and cannot be installed" >&2; exit 2; }
need_pkg jq jq || { echo "jq is missing and cannot be installed" >&2; exit 2; }
FAKETIME_LIB=
if [[ " $FAULTS " == *" clock "* ]]; then
	need_pkg faketime faketime
	for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 /usr/lib/*/faketime/libfaketimeMT.so.1; do
		[[ -f $f ]] && { FAKETIME_LIB=$f; break; }
	done
	if [[ -z $FAKETIME_LIB ]]; then
		say "libfaketime not installable: clock faults skipped"
		FAULTS=${FAULTS//clock/}
	fi
fi

# A private copy of every binary: others rebuild build/ at any moment.
for b in moord moor-jepsen-client moor-check; do
	cp "$BUILD/bin/$b" "$OUT/$b" || exit 2
done
cp "$BUILD/lib/moor-diskshim.so" "$OUT/diskshim.so" || exit 2

# ---- the cluster
for _ in $(seq 1 50); do
	A=$(( $(od -An -N2 -tu2 /dev/urandom) % 254 + 1 ))
	B=$(( $(od -An -N2 -tu2 /dev/urandom) % 254 + 1 ))
	ss -ltnH "src 127.$A.$B.1" 2>/dev/null | grep -q . || break
done
CHAIN=MOORJ_${A}_${B}
host() { echo "127.$A.$B.$1"; }
curl_url() { echo "http://$(host "$1"):2379"; }
peer_url() { echo "http://$(host "$1"):2380"; }
FULL_CLUSTER=""
for ((i = 1; i <= MEMBERS; i++)); do FULL_CLUSTER+="${FULL_CLUSTER:+,}m$i=$(peer_url "$i")"; done
ENDPOINTS=""
for ((i = 1; i <= MEMBERS; i++)); do ENDPOINTS+="${ENDPOINTS:+,}$(curl_url "$i")"; done
echo "$SEED" >"$OUT/seed"
: >"$OUT/timeline.txt"
: >"$OUT/findings.txt"
: >"$OUT/pids.all"

pid_of() { cat "$OUT/m$1.pid" 2>/dev/null; }
alive() { local p; p=$(pid_of "$1"); [[ -n $p ]] && kill -0 "$p" 2>/dev/null && [[ $(ps -o stat= -p "$p" 2>/dev/null) != Z* ]]; }

member_start() { # I STATE(new|existing)
	local i=$1 state=$2 env=()
	env+=(MOORJ_DISK_CTL="$OUT/m$i.disk" LD_PRELOAD="$OUT/diskshim.so" ASAN_OPTIONS=verify_asan_link_order=0)
	if [[ -n $FAKETIME_LIB ]]; then
		[[ -f $OUT/m$i.clock ]] || echo "+0" >"$OUT/m$i.clock"
		env+=(LD_PRELOAD="$OUT/diskshim.so:$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$OUT/m$i.clock"
			FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_RESET=1)
	fi
	echo "=== start $(date -u +%H:%M:%S.%N) state=$state" >>"$OUT/m$i.log"
	rm -f "$OUT/m$i.pid"
	# A waiter shell writes the member's exit status into its log (137 = our
	# kill -9, 134 = abort, 139 = SIGSEGV); the pid file holds moord's own pid.
	(
		env "${env[@]}" "$OUT/moord" --name "m$i" --data-dir "$OUT/data/m$i" \
			--listen-client-urls "$(curl_url "$i")" --listen-peer-urls "$(peer_url "$i")" \
			--initial-advertise-peer-urls "$(peer_url "$i")" --advertise-client-urls "$(curl_url "$i")" \
			--initial-cluster "$FULL_CLUSTER" --initial-cluster-state "$state" \
			--snapshot-count "$SNAPSHOT_COUNT" --log-level info >>"$OUT/m$i.log" 2>&1 &
		echo $! >"$OUT/m$i.pid.tmp"
		mv "$OUT/m$i.pid.tmp" "$OUT/m$i.pid"
		exec 2>/dev/null # no "Aborted"/"Killed" notices on the run's output
		wait $!
		echo "=== exit status $? at $(date -u +%H:%M:%S.%N)" >>"$OUT/m$i.log"
	) &
	disown $! # no "Killed" notices from bash: the run kills members on purpose
	while [[ ! -s $OUT/m$i.pid ]]; do sleep 0.01; done
	cat "$OUT/m$i.pid" >>"$OUT/pids.all"
	echo "$state" >"$OUT/m$i.state"
	rm -f "$OUT/m$i.down"
}

api() { # I PATH JSON [TIMEOUT]
	curl -fsS -m "${4:-2}" -X POST "$(curl_url "$1")$2" -d "$3" 2>/dev/null
}
member_id() { api "$1" /v3/maintenance/status '{}' 1 | jq -r '.header.member_id // empty' 2>/dev/null; }
leader_id() { api "$1" /v3/maintenance/status '{}' 1 | jq -r '.leader // empty' 2>/dev/null; }

# leader_index: the member the majority of reachable members call leader.
leader_index() {
	local i l best= ids=() id
	for ((i = 1; i <= MEMBERS; i++)); do
		alive "$i" || continue
		[[ -f $OUT/m$i.paused ]] && continue
		l=$(leader_id "$i")
		[[ -n $l && $l != 0 ]] && { best=$l; break; }
	done
	[[ -n $best ]] || return 1
	for ((i = 1; i <= MEMBERS; i++)); do
		id=$(cat "$OUT/m$i.id" 2>/dev/null)
		[[ $id == "$best" ]] && { echo "$i"; return 0; }
	done
	return 1
}

wait_healthy() { # SECONDS: every member reports the same leader
	local k i l first ok
	for ((k = 0; k < $1 * 5; k++)); do
		ok=1 first=
		for ((i = 1; i <= MEMBERS; i++)); do
			l=$(leader_id "$i")
			if [[ -z $l || $l == 0 || (-n $first && $l != "$first") ]]; then ok=0; break; fi
			first=$l
		done
		[[ $ok == 1 ]] && return 0
		sleep 0.2
	done
	return 1
}

record_ids() {
	local i id
	for ((i = 1; i <= MEMBERS; i++)); do
		id=$(member_id "$i")
		[[ -n $id ]] && echo "$id" >"$OUT/m$i.id"
	done
}

# ---- network faults: one iptables chain of this run, jumped to from INPUT
iptables -N "$CHAIN" 2>/dev/null
iptables -I INPUT -j "$CHAIN"
cut_link() { iptables -A "$CHAIN" -s "$(host "$1")" -d "$(host "$2")" -j DROP; } # drop FROM → TO
cut_both() { cut_link "$1" "$2"; cut_link "$2" "$1"; }
heal_net() { iptables -F "$CHAIN"; }
# partition GROUP_A GROUP_B: no traffic between the groups ("1 2" "3 4 5")
partition() {
	local a b
	for a in $1; do for b in $2; do cut_both "$a" "$b"; done; done
}

WORKER_PID=
cleanup() {
	local p
	[[ -n $WORKER_PID ]] && kill -KILL "$WORKER_PID" 2>/dev/null
	while read -r p; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done <"$OUT/pids.all"
	iptables -D INPUT -j "$CHAIN" 2>/dev/null
	iptables -F "$CHAIN" 2>/dev/null
	iptables -X "$CHAIN" 2>/dev/null
	rm -rf "$OUT/data"
}
trap cleanup EXIT
trap 'exit 3' INT TERM

# ---- timeline: "start_epoch end_epoch kind detail"; end "-" while open
fault_begin() { FAULT_T0=$(now); FAULT_KIND=$1; FAULT_DETAIL=$2; say "fault $1: $2"; }
fault_end() { echo "$FAULT_T0 $(now) $FAULT_KIND $FAULT_DETAIL" >>"$OUT/timeline.txt"; }
finding() { say "FINDING: $*"; echo "$*" >>"$OUT/findings.txt"; }

rand_between() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
# BUSY: a member a concurrent membership change owns; other faults avoid it.
BUSY=0
rand_member() {
	local m
	while :; do
		m=$(( RANDOM % MEMBERS + 1 ))
		[[ $m != "$BUSY" ]] && { echo "$m"; return; }
	done
}
shuffle_members() { local i; for ((i = 1; i <= MEMBERS; i++)); do echo "$RANDOM $i"; done | sort -n | cut -d' ' -f2 | tr '\n' ' '; }

# Members the run took down on purpose carry a .down file with the reason;
# one found dead without it exited on its own: a finding, then restarted.
check_members() {
	local i
	for ((i = 1; i <= MEMBERS; i++)); do
		if ! alive "$i" && [[ ! -f $OUT/m$i.down ]]; then
			finding "member m$i exited unexpectedly; last log lines: $(tail -n 6 "$OUT/m$i.log" | tr '\n' '|')"
			member_start "$i" "$(cat "$OUT/m$i.state")"
		fi
	done
}

# The target of a fault: "leader" (falls back to random) or a random member.
pick() { # ROLE
	local l
	if [[ $1 == leader ]] && l=$(leader_index) && [[ $l != "$BUSY" ]]; then echo "$l"; else rand_member; fi
}

# Removes member I through another member and adds it back with an empty
# data dir (as a learner then promoted, or as a voter, by the seed).
membership_change() {
	local i=$1 learner=$2 j id newid out deadline removed=0
	id=$(cat "$OUT/m$i.id" 2>/dev/null)
	[[ -n $id ]] || { say "membership: no id for m$i"; return; }
	# Through any member that answers (another fault may be hitting one);
	# an error may still have removed it: "member not found" on a retry, or
	# the member stopping by itself, says so.
	deadline=$((SECONDS + 15))
	while ((SECONDS < deadline)) && [[ $removed == 0 ]]; do
		for ((j = 1; j <= MEMBERS; j++)); do
			[[ $j != "$i" ]] && alive "$j" && [[ ! -f $OUT/m$j.paused ]] || continue
			out=$(curl -sS -m 3 -X POST "$(curl_url "$j")/v3/cluster/member/remove" -d "{\"ID\":\"$id\"}" 2>/dev/null)
			if [[ $out == *'"header"'* || $out == *"member not found"* ]]; then removed=1; break; fi
		done
		[[ $removed == 0 ]] && sleep 0.5
	done
	if [[ $removed == 0 ]]; then
		sleep 2
		if alive "$i"; then
			say "membership: remove of m$i not accepted within 15 s"
			return
		fi
	fi
	touch "$OUT/m$i.down"
	deadline=$((SECONDS + 10))
	while alive "$i" && ((SECONDS < deadline)); do sleep 0.1; done
	if alive "$i"; then
		say "membership: removed m$i still running after 10 s; killing it"
		kill -KILL "$(pid_of "$i")"
	fi
	rm -rf "$OUT/data/m$i"
	deadline=$((SECONDS + 20))
	newid=
	while ((SECONDS < deadline)) && [[ -z $newid ]]; do
		out=$(any_api "$i" /v3/cluster/member/add "{\"peerURLs\":[\"$(peer_url "$i")\"],\"isLearner\":$learner}")
		newid=$(jq -r '.member.ID // empty' <<<"$out" 2>/dev/null)
		if [[ -z $newid && $out == *"already exist"* ]]; then # an earlier try went through
			newid=$(any_api "$i" /v3/cluster/member/list '{}' |
				jq -r --arg u "$(peer_url "$i")" '.members[] | select(.peerURLs | index($u)) | .ID' 2>/dev/null)
		fi
		[[ -z $newid ]] && sleep 0.5
	done
	if [[ -z $newid ]]; then
		finding "membership: m$i removed but could not be added back within 20 s"
		return
	fi
	member_start "$i" existing
	echo "$newid" >"$OUT/m$i.id"
	if [[ $learner == true ]]; then
		deadline=$((SECONDS + 30))
		while ((SECONDS < deadline)); do
			out=$(any_api "$i" /v3/cluster/member/promote "{\"ID\":\"$newid\"}")
			[[ $out == *'"header"'* ]] && return
			# an earlier promote may have gone through
			any_api "$i" /v3/cluster/member/list '{}' | jq -e --arg id "$newid" \
				'.members[] | select(.ID == $id) | (.isLearner // false) | not' >/dev/null 2>&1 && return
			sleep 0.5
		done
		say "membership: learner m$i not promoted within 30 s"
	fi
}

# any_api EXCEPT PATH JSON: the first answer (body, error or not) of a
# member other than EXCEPT that is up; "" when none answered.
any_api() {
	local j out
	for ((j = 1; j <= MEMBERS; j++)); do
		[[ $j != "$1" ]] && alive "$j" && [[ ! -f $OUT/m$j.paused ]] || continue
		out=$(curl -sS -m 3 -X POST "$(curl_url "$j")$2" -d "$3" 2>/dev/null) || continue
		[[ -n $out ]] && { echo "$out"; return 0; }
	done
	return 1
}

# One fault: begin, hold, end. Sets nothing global but the timeline.
do_fault() {
	local kind=$1 hold i j l g1 g2 ms members
	hold=$(rand_between "$HOLD_MIN" "$HOLD_MAX")
	case $kind in
	kill | kill-leader)
		i=$(pick "$([[ $kind == kill-leader ]] && echo leader || echo any)")
		alive "$i" || return 0
		fault_begin "$kind" "m$i kill -9, restart after ${hold}s"
		touch "$OUT/m$i.down"
		kill -KILL "$(pid_of "$i")"
		sleep "$hold"
		member_start "$i" "$(cat "$OUT/m$i.state")"
		fault_end ;;
	pause | pause-leader)
		i=$(pick "$([[ $kind == pause-leader ]] && echo leader || echo any)")
		alive "$i" || return 0
		fault_begin "$kind" "m$i SIGSTOP for ${hold}s"
		touch "$OUT/m$i.paused"
		kill -STOP "$(pid_of "$i")"
		sleep "$hold"
		kill -CONT "$(pid_of "$i")"
		rm -f "$OUT/m$i.paused"
		fault_end ;;
	part-leader)
		l=$(pick leader)
		members=$(seq 1 "$MEMBERS" | grep -vx "$l" | tr '\n' ' ')
		fault_begin "$kind" "m$l | $members for ${hold}s"
		partition "$l" "$members"
		sleep "$hold"; heal_net; fault_end ;;
	part-one)
		i=$(rand_member)
		members=$(seq 1 "$MEMBERS" | grep -vx "$i" | tr '\n' ' ')
		fault_begin "$kind" "m$i | $members for ${hold}s"
		partition "$i" "$members"
		sleep "$hold"; heal_net; fault_end ;;
	part-half)
		members=$(shuffle_members)
		read -r -a arr <<<"$members"
		g1="${arr[*]:0:$((MEMBERS / 2))}"
		g2="${arr[*]:$((MEMBERS / 2))}"
		fault_begin "$kind" "$g1 | $g2 for ${hold}s"
		partition "$g1" "$g2"
		sleep "$hold"; heal_net; fault_end ;;
	part-bridge)
		# Two halves that do not see each other; one member sees both.
		members=$(shuffle_members)
		read -r -a arr <<<"$members"
		local bridge=${arr[0]} h=$(((MEMBERS - 1) / 2))
		g1="${arr[*]:1:$h}"
		g2="${arr[*]:$((1 + h))}"
		fault_begin "$kind" "$g1 | $g2, bridge m$bridge, for ${hold}s"
		partition "$g1" "$g2"
		sleep "$hold"; heal_net; fault_end ;;
	part-oneway)
		# The leader hears nobody (its messages still go out), or one
		# member hears nobody: check-quorum and pre-vote territory.
		i=$(pick "$([[ $((RANDOM % 2)) == 0 ]] && echo leader || echo any)")
		fault_begin "$kind" "m$i receives from nobody for ${hold}s"
		for ((j = 1; j <= MEMBERS; j++)); do [[ $j != "$i" ]] && cut_link "$j" "$i"; done
		sleep "$hold"; heal_net; fault_end ;;
	disk-slow)
		i=$(pick "$([[ $((RANDOM % 2)) == 0 ]] && echo leader || echo any)")
		ms=$(rand_between 100 600)
		fault_begin "$kind" "m$i fsync +${ms}ms for ${hold}s"
		echo "slow $ms" >"$OUT/m$i.disk"
		sleep "$hold"; rm -f "$OUT/m$i.disk"; fault_end ;;
	disk-fail)
		i=$(pick "$([[ $((RANDOM % 2)) == 0 ]] && echo leader || echo any)")
		alive "$i" || return 0
		fault_begin "$kind" "m$i fsync fails (EIO) for ${hold}s, then restarted if it stopped"
		touch "$OUT/m$i.down" # stopping on a failed fsync is the right answer
		echo "fail" >"$OUT/m$i.disk"
		sleep "$hold"
		rm -f "$OUT/m$i.disk"
		sleep 1 # a sync that failed just before may still be stopping it
		if alive "$i"; then
			rm -f "$OUT/m$i.down"
			echo "$(now) m$i survived failing fsyncs" >>"$OUT/disk-fail.txt"
		else
			member_start "$i" "$(cat "$OUT/m$i.state")"
		fi
		fault_end ;;
	clock)
		i=$(rand_member)
		local jump cur
		jump=$(rand_between 3 20)
		cur=$(tr -dc 0-9 <"$OUT/m$i.clock" 2>/dev/null)
		cur=$(( ${cur:-0} + jump ))
		fault_begin "$kind" "m$i clock jumps forward ${jump}s (offset now +${cur}s)"
		echo "+${cur}s" >"$OUT/m$i.clock"
		sleep "$hold"; fault_end ;;
	member)
		# Remove and re-add a random member while another fault runs.
		i=$(rand_member)
		local other=${MEMBER_WITH[RANDOM % ${#MEMBER_WITH[@]}]}
		local learner mt0
		learner=$([[ $((RANDOM % 2)) == 0 ]] && echo true || echo false)
		fault_begin "$kind" "remove m$i and add it back (learner=$learner, during $other)"
		mt0=$FAULT_T0
		membership_change "$i" "$learner" &
		local mpid=$!
		BUSY=$i
		do_fault "$other"
		wait "$mpid"
		BUSY=0
		# do_fault overwrote FAULT_*: record ours from its own start.
		FAULT_T0=$mt0 FAULT_KIND=$kind FAULT_DETAIL="remove m$i and add it back"
		fault_end ;;
	*) say "unknown fault $kind"; return 1 ;;
	esac
}
MEMBER_WITH=(part-one pause kill part-half)

heal_all() {
	local i
	heal_net
	for ((i = 1; i <= MEMBERS; i++)); do
		rm -f "$OUT/m$i.disk"
		[[ -f $OUT/m$i.paused ]] && { kill -CONT "$(pid_of "$i")" 2>/dev/null; rm -f "$OUT/m$i.paused"; }
		if ! alive "$i"; then
			[[ -f $OUT/m$i.down ]] || finding "member m$i found dead at heal: $(tail -n 5 "$OUT/m$i.log" | tr '\n' '|')"
			member_start "$i" "$(cat "$OUT/m$i.state")"
		fi
	done
}

# ---- the run
say "scenario $SCENARIO seed $SEED time ${TIME}s members $MEMBERS workload $WORKLOAD faults: $FAULTS"
say "results in $OUT; rerun: $RERUN"
for ((i = 1; i <= MEMBERS; i++)); do member_start "$i" new; done
if ! wait_healthy 30; then
	say "the cluster did not elect a leader within 30 s"
	exit 2
fi
record_ids

"$OUT/moor-jepsen-client" --endpoints "$ENDPOINTS" --workload "$WORKLOAD" --threads "$THREADS" \
	--watchers "$WATCHERS" --keys "$KEYS" --locks "$LOCKS" --duration "$((TIME * 3 + 600))" \
	--final-timeout 90 --seed "$SEED" --think-ms "$THINK_MS" --writes "$WRITES" --history "$OUT/history.jsonl" --latency "$OUT/latency.txt" \
	>"$OUT/worker.log" 2>&1 &
WORKER_PID=$!

read -r -a fault_kinds <<<"$FAULTS"
t_end=$(( $(date +%s) + TIME ))
sleep 2
nfaults=0
while (( $(date +%s) < t_end )) && [[ ${#fault_kinds[@]} -gt 0 ]]; do
	check_members
	do_fault "${fault_kinds[RANDOM % ${#fault_kinds[@]}]}"
	nfaults=$((nfaults + 1))
	check_members
	sleep "$(rand_between "$QUIET_MIN" "$QUIET_MAX")"
done
say "fault window over after $nfaults faults: healing"
heal_all
if ! wait_healthy 60; then
	finding "the cluster did not recover (one leader seen by every member) within 60 s of healing"
fi
record_ids

# The worker goes on for SETTLE seconds, then (SIGUSR1) its final phase:
# final reads, watchers caught up, the log dump.
sleep "$SETTLE"
kill -USR1 "$WORKER_PID" 2>/dev/null
wrc=timeout
for ((k = 0; k < 1500; k++)); do
	if ! kill -0 "$WORKER_PID" 2>/dev/null; then
		wait "$WORKER_PID"; wrc=$?; break
	fi
	sleep 0.1
done
[[ $wrc == timeout ]] && kill -KILL "$WORKER_PID" 2>/dev/null
WORKER_PID=
[[ $wrc == 0 ]] || finding "the worker's final phase did not complete (exit $wrc): $(tail -n 3 "$OUT/worker.log" | tr '\n' '|')"

# Every member must hold the same key space at one revision.
rev=$(api 1 /v3/kv/range '{"key":"AA=="}' 5 | jq -r '.header.revision // empty')
if [[ -n $rev ]]; then
	hashes=""
	for ((i = 1; i <= MEMBERS; i++)); do
		h=
		for ((k = 0; k < 50; k++)); do
			h=$(api "$i" /v3/maintenance/hashkv "{\"revision\":\"$rev\"}" 5 | jq -r '.hash // empty') && [[ -n $h ]] && break
			sleep 0.2
		done
		hashes+="m$i=${h:-none} "
	done
	say "hashkv at revision $rev: $hashes"
	[[ $(tr ' ' '\n' <<<"$hashes" | grep -v '^$' | cut -d= -f2 | sort -u | wc -l) == 1 ]] ||
		finding "members disagree on HashKV at revision $rev: $hashes"
fi

# Stop every member by its pid (SIGTERM, then KILL after 20 s).
for ((i = 1; i <= MEMBERS; i++)); do kill -TERM "$(pid_of "$i")" 2>/dev/null; done
for ((k = 0; k < 200; k++)); do
	any=0
	for ((i = 1; i <= MEMBERS; i++)); do alive "$i" && any=1; done
	[[ $any == 0 ]] && break
	sleep 0.1
done
for ((i = 1; i <= MEMBERS; i++)); do alive "$i" && { finding "m$i ignored SIGTERM for 20 s"; kill -KILL "$(pid_of "$i")"; }; done
# An abort or a crash is a finding even where the member was meant to stop,
# except the abort that follows a failed WAL write (moord's chosen answer).
grep -H "=== exit status 1[3-5][0-9]" "$OUT"/m*.log 2>/dev/null | grep -v "status 137" | while read -r l; do
	f=${l%%:*}
	before=$(grep -B3 -F "${l#*:}" "$f" | head -n 3 | tr '\n' '|')
	[[ ${l#*:} == *"status 134"* && $before == *"WAL write failed, stopping"* ]] && continue
	finding "$(basename "$f"): ${l#*:} after: $before"
done
grep -lE "assert|Assertion|AddressSanitizer|runtime error" "$OUT"/m*.log 2>/dev/null | while read -r f; do
	finding "$(basename "$f"): $(grep -m1 -E "assert|Assertion|AddressSanitizer|runtime error" "$f")"
done

# Every client value is unique: one applied at two revisions is a write
# applied twice (a retried or re-forwarded proposal).
dups=$(grep '"type":"log"' "$OUT/history.jsonl" | jq -r 'select(.op == "put" and .value != "") | .value' 2>/dev/null |
	sort | uniq -d | head -n 5 | tr '\n' ' ')
[[ -z $dups ]] || finding "values applied at two revisions (a write applied twice): $dups"

# ---- verdict
"$OUT/moor-check" --time-limit 300 "$OUT/history.jsonl" all >"$OUT/verdict.json" 2>"$OUT/verdict.txt"
crc=$?
ops=$(grep -c '"type":"invoke"' "$OUT/history.jsonl")
oks=$(grep -c '"type":"ok"' "$OUT/history.jsonl")
infos=$(grep -c '"type":"info"' "$OUT/history.jsonl")
bash "$HERE/plot.sh" "$OUT" >/dev/null 2>&1 || say "plot failed"
verdicts=$(jq -r '.checkers | to_entries | map("\(.key)=\(.value.valid)") | join(" ")' "$OUT/verdict.json" 2>/dev/null)
nfind=$(wc -l <"$OUT/findings.txt")
summary="scenario=$SCENARIO seed=$SEED time=${TIME}s ops=$ops ok=$oks info=$infos faults=$nfaults findings=$nfind checker_exit=$crc $verdicts"
echo "$summary" >"$OUT/summary.txt"
sort -k3,3 "$OUT/timeline.txt" | awk '{print $3}' | uniq -c | tr '\n' ' ' >>"$OUT/summary.txt"
echo >>"$OUT/summary.txt"
say "$summary"
cat "$OUT/verdict.txt" | tee -a "$OUT/run.log"
if [[ $crc -ne 0 || $nfind -ne 0 ]]; then
	say "FAILED: seed $SEED; results in $OUT"
	say "rerun: $RERUN"
	[[ $crc -eq 1 || $nfind -ne 0 ]] && exit 1
	exit 2
fi
exit 0

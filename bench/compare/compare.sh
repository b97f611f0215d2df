#!/bin/bash
# moor against etcd 3.4, side by side, on this machine, in one run.
#
# Starts a 3-member etcd cluster and a 3-member moor cluster on loopback
# (each member on its own 127.x.y.i address), runs every workload against
# each in turn (etcd, moor, etcd, moor... for --rounds rounds) with the same
# generator (moor-bench, etcd's v3 JSON gateway), then fills each with
# --fill-keys keys and measures resident memory, on-disk size and the time a
# member holding them takes to restart and serve. Prints one table and writes
# it as Markdown, with a gnuplot PNG (or SVG) of throughput and p99 latency.
#
# Durability is the same on both sides: etcd fsyncs its WAL before a member
# acknowledges an entry (its default; there is no switch to turn it off), and
# moord fsyncs its WAL per batch before acknowledging; a write commits on a
# majority of fsynced logs in both.
#
#   bench/compare/compare.sh [--build DIR] [--rounds N] [--duration S]
#       [--fill-keys N] [--out DIR] [--moor-only] [--quick] [--no-fill]
#
# Every process is started here, stopped by its pid, and its data removed;
# every generator run is bounded by `timeout`.
set -u
ORIG_ARGS="$*"

BUILD=build
ROUNDS=3
DUR=10
FILL_KEYS=1000000
OUT=
MOOR_ONLY=0
QUICK=0
DO_FILL=1
ONLY=
while [[ $# -gt 0 ]]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--fill-keys) FILL_KEYS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--moor-only) MOOR_ONLY=1; shift ;;
	--quick) QUICK=1; shift ;;
	--no-fill) DO_FILL=0; shift ;;
	--only) ONLY=$2; shift 2 ;;
	*) echo "compare.sh: unknown flag $1" >&2; exit 2 ;;
	esac
done
if [[ $QUICK == 1 ]]; then
	ROUNDS=1
	DUR=3
	FILL_KEYS=${QUICK_FILL_KEYS:-20000}
fi
OUT=${OUT:-$BUILD/bench-compare}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BENCH=$(cd "$(dirname "$BUILD/bin/moor-bench")" && pwd)/moor-bench
[[ -x $BENCH ]] || { echo "compare.sh: $BENCH missing (make $BUILD/bin/moor-bench)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/moor-compare.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# moord and moor-bench are rebuilt at any moment: run private copies.
cp "$BUILD/bin/moord" "$WORK/moord" && cp "$BENCH" "$WORK/moor-bench" || exit 1
BENCH=$WORK/moor-bench

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if [[ $MOOR_ONLY == 0 ]]; then
	if ! command -v etcd >/dev/null; then
		log "installing etcd-server (Debian's etcd 3.4)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server \
			>"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; exit 1; }
	fi
	ETCD_VERSION=$(etcd --version | awk '/etcd Version/ {print $3}')
	[[ $ETCD_VERSION == 3.4.* ]] || log "warning: etcd $ETCD_VERSION is not 3.4"
fi

# Two loopback subnets nobody listens on.
free_net() {
	local a b
	for _ in $(seq 1 50); do
		a=$((RANDOM % 254 + 1))
		b=$((RANDOM % 254 + 1))
		ss -ltnH "src 127.$a.$b.1" 2>/dev/null | grep -q . || { echo "127.$a.$b"; return; }
	done
	echo "127.$a.$b"
}
NET_moor=$(free_net)
NET_etcd=$(free_net)
while [[ $NET_etcd == "$NET_moor" ]]; do NET_etcd=$(free_net); done

declare -A PID
cluster_spec() { # sys -> name=peerurl,...
	local s=$1 c="" i
	for i in 1 2 3; do c+="${c:+,}${s:0:1}$i=http://$(eval echo \$NET_$s).$i:2380"; done
	echo "$c"
}
url() { echo "http://$(eval echo \$NET_$1).$2:2379"; }
endpoints() { echo "$(url "$1" 1),$(url "$1" 2),$(url "$1" 3)"; }

start_member() { # sys i
	local s=$1 i=$2 host
	host=$(eval echo \$NET_$s).$i
	if [[ $s == moor ]]; then
		"$WORK/moord" --name "m$i" --data-dir "$WORK/moor/m$i" \
			--listen-client-urls "http://$host:2379" --advertise-client-urls "http://$host:2379" \
			--listen-peer-urls "http://$host:2380" --initial-advertise-peer-urls "http://$host:2380" \
			--initial-cluster "$(cluster_spec moor)" --initial-cluster-state new \
			--log-level warn 2>>"$WORK/moor-m$i.log" &
	else
		etcd --name "e$i" --data-dir "$WORK/etcd/e$i" \
			--listen-client-urls "http://$host:2379" --advertise-client-urls "http://$host:2379" \
			--listen-peer-urls "http://$host:2380" --initial-advertise-peer-urls "http://$host:2380" \
			--initial-cluster "$(cluster_spec etcd)" --initial-cluster-state new \
			--initial-cluster-token bench --quota-backend-bytes 8589934592 \
			--logger zap --log-level warn 2>>"$WORK/etcd-e$i.log" &
	fi
	PID[$s$i]=$!
	PIDS+=($!)
}

stop_member() { # sys i: SIGTERM, bounded wait, then SIGKILL
	local p=${PID[$1$2]} k
	kill -TERM "$p" 2>/dev/null
	for ((k = 0; k < 300; k++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

# serving: a linearizable range answered by member i
serves() { curl -fsS -m 1 -o /dev/null -X POST "$(url "$1" "$2")/v3/kv/range" -d '{"key":"Zm9v"}' 2>/dev/null; }

wait_serving() { # sys seconds
	local s=$1 lim=$2 k i ok
	for ((k = 0; k < lim * 10; k++)); do
		ok=1
		for i in 1 2 3; do serves "$s" "$i" || ok=0; done
		[[ $ok == 1 ]] && return 0
		sleep 0.1
	done
	log "$s cluster not serving after ${lim}s"; tail -5 "$WORK"/$s-*.log >&2
	return 1
}

leader_url() { # sys
	local s=$1 i st
	for i in 1 2 3; do
		st=$(curl -fsS -m 2 -X POST "$(url "$s" "$i")/v3/maintenance/status" -d '{}' 2>/dev/null) || continue
		if [[ $(jq -r '.leader' <<<"$st") == "$(jq -r '.header.member_id' <<<"$st")" ]]; then
			url "$s" "$i"
			return 0
		fi
	done
	return 1
}

start_cluster() {
	local s=$1
	mkdir -p "$WORK/$s"
	for i in 1 2 3; do start_member "$s" "$i"; done
	wait_serving "$s" 60
}

HZ=$(getconf CLK_TCK)
cpu_ticks() { # sys -> user+system ticks of its 3 members so far
	local s=$1 t=0 i v
	for i in 1 2 3; do
		v=$(awk '{print $14 + $15}' "/proc/${PID[$s$i]}/stat" 2>/dev/null)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

rss_kb() { # sys -> sum of VmRSS of its 3 members
	local s=$1 t=0 i v
	for i in 1 2 3; do
		v=$(awk '/VmRSS/ {print $2}' "/proc/${PID[$s$i]}/status" 2>/dev/null)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

SYSTEMS=(etcd moor)
[[ $MOOR_ONLY == 1 ]] && SYSTEMS=(moor)

command -v jq >/dev/null || { echo "compare.sh: needs jq" >&2; exit 1; }

for s in "${SYSTEMS[@]}"; do
	log "starting $s cluster on $(eval echo \$NET_$s).{1,2,3}"
	start_cluster "$s" || exit 1
done

# run SYS LABEL ARGS...: one generator run bounded by $LIMIT seconds;
# appends its result line to $WORK/results.tsv
LIMIT=$((DUR + 120))
run() {
	local s=$1 label=$2 ep
	shift 2
	ep=$(endpoints "$s")
	local args=()
	for a in "$@"; do
		if [[ $a == LEADER ]]; then
			ep=$(leader_url "$s") || { log "$s: no leader"; return 1; }
		else
			args+=("$a")
		fi
	done
	local out
	local c0 c1
	c0=$(cpu_ticks "$s")
	out=$(timeout "$LIMIT" "$BENCH" --endpoints "$ep" --label "$label" "${args[@]}" 2>&1)
	c1=$(cpu_ticks "$s")
	echo "$out" >>"$OUT/runs-$s.log"
	local line
	line=$(grep '^RESULT' <<<"$out" | tail -1)
	if [[ -z $line ]]; then
		log "$s $label: no result"; tail -3 <<<"$out" >&2
		return 1
	fi
	# the members' CPU time per request (µs): what a request costs the
	# cluster, a figure the machine's other load disturbs much less
	local cpu_us
	cpu_us=$(awk -F'\t' -v d="$((c1 - c0))" -v hz="$HZ" '{printf "%.1f", ($9 > 0 ? d / hz * 1e6 / $9 : 0)}' <<<"$line")
	printf '%s\t%s\t%s\n' "$s" "$line" "$cpu_us" >>"$WORK/results.tsv"
	awk -F'\t' -v s="$s" -v c="$cpu_us" '{printf "  %-5s %-30s %9.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  errors %s  cluster CPU %s us/op\n", s, $2, $3, $4, $6, $10, c}' <<<"$line" >&2
}

D=(--duration "$DUR")
# name | generator flags (LEADER = the current leader only)
WORKLOADS=(
	"put, 64 clients, to leader|--workload put --clients 64 LEADER"
	"put, 256 clients, to leader|--workload put --clients 256 LEADER"
	"put, 256 clients, to all|--workload put --clients 256"
	"put, open loop 2000/s|--workload put --clients 256 --rate 2000"
	"range lin, 1 key, 64 cl|--workload range --clients 64"
	"range lin, 1 key, 256 cl|--workload range --clients 256"
	"range ser, 1 key, 64 cl|--workload range --clients 64 --serializable"
	"range ser, 1 key, 256 cl|--workload range --clients 256 --serializable"
	"range lin, prefix 100 keys|--workload range --clients 64 --prefix"
	"range ser, prefix 100 keys|--workload range --clients 64 --prefix --serializable"
	"txn mod_rev+put, 64 cl|--workload txn --clients 64"
	"mixed 90% read, 64 cl|--workload mixed --clients 64 --read-ratio 0.9"
	"watch 50 w, 100 puts/s|--workload watch --clients 16 --watchers 50 --rate 100"
	"lease keepalive, 64 cl|--workload lease-keepalive --clients 64"
	"lease grant, 64 cl|--workload lease-grant --clients 64 --ttl 30"
)
[[ $QUICK == 1 ]] && WORKLOADS=("${WORKLOADS[@]:0:2}" "${WORKLOADS[4]}" "${WORKLOADS[6]}" "${WORKLOADS[10]}" "${WORKLOADS[12]}")

: >"$WORK/results.tsv"
for s in "${SYSTEMS[@]}"; do
	log "$s: preloading 10000 keys"
	run "$s" preload --workload fill --keyspace 10000 --clients 64 --duration 0 >/dev/null || exit 1
done
for ((r = 1; r <= ROUNDS; r++)); do
	for w in "${WORKLOADS[@]}"; do
		name=${w%%|*}
		[[ -n $ONLY && $name != *$ONLY* ]] && continue
		read -ra flags <<<"${w#*|}"
		for s in "${SYSTEMS[@]}"; do
			log "round $r/$ROUNDS $s: $name"
			run "$s" "$name" "${flags[@]}" "${D[@]}" --keyspace 10000
		done
	done
done
# moor's binary protocol, for reference (etcd does not speak it)
if [[ $QUICK == 0 ]]; then
	for w in "put, 256 clients, to leader|--workload put --clients 256 LEADER" \
		"range lin, 1 key, 256 cl|--workload range --clients 256"; do
		read -ra flags <<<"${w#*|}"
		log "moor protobuf: ${w%%|*}"
		run moor "${w%%|*} [pb]" "${flags[@]}" "${D[@]}" --keyspace 10000 --proto pb
	done
fi

# fill, memory, disk, restart
declare -A FILL_RATE RSS DISK RESTART
if [[ $DO_FILL == 1 ]]; then
	# on fresh clusters, so that the history the workloads wrote does not count
	for s in "${SYSTEMS[@]}"; do
		for i in 1 2 3; do stop_member "$s" "$i"; done
		rm -rf "${WORK:?}/$s"
		log "$s: fresh cluster for the fill"
		start_cluster "$s" || exit 1
	done
	for s in "${SYSTEMS[@]}"; do
		log "$s: filling $FILL_KEYS keys"
		LIMIT=$((FILL_KEYS / 1000 + 300))
		run "$s" "fill $FILL_KEYS keys" --workload fill --keyspace "$FILL_KEYS" --clients 256 \
			--key-prefix /fill/ --duration 0 --timeout-ms 30000
		FILL_RATE[$s]=$(awk -F'\t' -v s="$s" -v l="fill $FILL_KEYS keys" '$1==s && $3==l {print $4}' "$WORK/results.tsv" | tail -1)
		sleep 5
		RSS[$s]=$(rss_kb "$s")
		DISK[$s]=$(du -sk "$WORK/$s" | awk '{print $1}')
		# restart a follower: from exec to its first linearizable read
		ld=$(leader_url "$s")
		for i in 3 2 1; do [[ $(url "$s" "$i") != "$ld" ]] && break; done
		log "$s: restarting member $i (follower)"
		stop_member "$s" "$i"
		t0=$(date +%s%N)
		start_member "$s" "$i"
		ok=0
		for ((k = 0; k < 3000; k++)); do
			if serves "$s" "$i"; then ok=1; break; fi
			sleep 0.02
		done
		t1=$(date +%s%N)
		RESTART[$s]=$([[ $ok == 1 ]] && echo "$(((t1 - t0) / 1000000))" || echo "timeout")
		log "$s: rss $((RSS[$s] / 1024)) MiB, disk $((DISK[$s] / 1024)) MiB, restart ${RESTART[$s]} ms"
	done
fi

for s in "${SYSTEMS[@]}"; do for i in 1 2 3; do stop_member "$s" "$i"; done; done

# ---- the table: median over rounds of throughput and of p99 ----
NCPU=$(nproc)
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
{
	echo "# moor vs etcd $(
		[[ $MOOR_ONLY == 0 ]] && echo "$ETCD_VERSION"
	), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Command: \`bench/compare/compare.sh $ORIG_ARGS\` (rounds $ROUNDS, $DUR s per run, fill $FILL_KEYS keys), moor $(git rev-parse --short HEAD 2>/dev/null)."
	[[ $MOOR_ONLY == 1 ]] && echo "moor alone (--moor-only: no etcd in this run)." && echo
	echo "Clusters: 3 members each on loopback, every write fsynced on a majority; generator: moor-bench, etcd's v3 JSON gateway, key 32 B, value 256 B, 10,000 keys, uniform; $DUR s per run, median of $ROUNDS interleaved rounds."
	echo
	echo "**Note: all six members and the generator share this machine's $NCPU cores ($CPU), with whatever else runs on it; the ratios are the figures, not the absolute numbers.**"
	echo
	echo "| workload | etcd ops/s | moor ops/s | ratio | etcd p99 ms | moor p99 ms | ratio | etcd CPU µs/op | moor CPU µs/op |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' '
	function median(arr, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
		return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
	}
	$3 == "preload" || $3 ~ /^fill / { next }
	{
		k = $1 SUBSEP $3
		if (!($3 in seen)) { seen[$3] = 1; order[++n] = $3 }
		cnt[k]++; rps[k, cnt[k]] = $4; p99[k, cnt[k]] = $7; cpu[k, cnt[k]] = $12
	}
	END {
		for (i = 1; i <= n; i++) {
			w = order[i]
			for (si = 1; si <= 2; si++) {
				s = si == 1 ? "etcd" : "moor"; k = s SUBSEP w
				if (cnt[k] == 0) { R[s] = ""; P[s] = ""; C[s] = ""; continue }
				delete a; delete b; delete c
				for (j = 1; j <= cnt[k]; j++) { a[j] = rps[k, j]; b[j] = p99[k, j]; c[j] = cpu[k, j] }
				R[s] = median(a, cnt[k]); P[s] = median(b, cnt[k]); C[s] = median(c, cnt[k])
			}
			rr = (R["etcd"] > 0 && R["moor"] != "") ? sprintf("%.2f×", R["moor"] / R["etcd"]) : "—"
			pr = (P["etcd"] > 0 && P["moor"] != "") ? sprintf("%.2f×", P["moor"] / P["etcd"]) : "—"
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w,
				R["etcd"] == "" ? "—" : sprintf("%.0f", R["etcd"]),
				R["moor"] == "" ? "—" : sprintf("%.0f", R["moor"]), rr,
				P["etcd"] == "" ? "—" : sprintf("%.2f", P["etcd"]),
				P["moor"] == "" ? "—" : sprintf("%.2f", P["moor"]), pr,
				C["etcd"] == "" ? "—" : sprintf("%.0f", C["etcd"]),
				C["moor"] == "" ? "—" : sprintf("%.0f", C["moor"])
			printf "%s\t%s\t%s\t%s\t%s\n", w, R["etcd"], R["moor"], P["etcd"], P["moor"] > "/dev/stderr"
		}
	}' "$WORK/results.tsv" 2>"$WORK/plot.dat"
	echo
	echo "ops/s and p99: median over the rounds. CPU µs/op: user+system CPU time of the three members during the run divided by the requests answered (median over the rounds) — what a request costs the cluster, less disturbed by the machine's other load than throughput."
	echo "For watch, the latency is event delivery (event received − put sent), the rate the puts'. Open-loop rows: latency from each request's due time (coordinated omission corrected)."
	if [[ $DO_FILL == 1 ]]; then
		echo
		echo "Fresh clusters filled with $FILL_KEYS keys (32 B keys, 256 B values, one put each, 256 clients); memory and disk 5 s after the fill; restart: a follower stopped by SIGTERM, then timed from exec to its first answered linearizable range:"
		echo
		echo "| | etcd | moor | ratio |"
		echo "|---|---:|---:|---:|"
		ratio() { [[ -n ${1:-} && -n ${2:-} && $1 != timeout && $2 != timeout && $1 != 0 ]] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", b / a}' || echo "—"; }
		printf '| fill rate, 256 clients (puts/s) | %s | %s | %s |\n' "${FILL_RATE[etcd]:-—}" "${FILL_RATE[moor]:-—}" "$(ratio "${FILL_RATE[etcd]:-}" "${FILL_RATE[moor]:-}")"
		mib() { [[ -n ${1:-} ]] && echo "$(($1 / 1024))" || echo "—"; }
		printf '| resident memory, 3 members (MiB) | %s | %s | %s |\n' "$(mib "${RSS[etcd]:-}")" "$(mib "${RSS[moor]:-}")" "$(ratio "${RSS[etcd]:-}" "${RSS[moor]:-}")"
		printf '| on disk, 3 members (MiB) | %s | %s | %s |\n' "$(mib "${DISK[etcd]:-}")" "$(mib "${DISK[moor]:-}")" "$(ratio "${DISK[etcd]:-}" "${DISK[moor]:-}")"
		printf '| follower restart to first linearizable read (ms) | %s | %s | %s |\n' "${RESTART[etcd]:-—}" "${RESTART[moor]:-—}" "$(ratio "${RESTART[etcd]:-}" "${RESTART[moor]:-}")"
	fi
} >"$OUT/results.md"
cat "$OUT/results.md"
cp "$WORK/results.tsv" "$OUT/results.tsv"

# ---- the plot: gnuplot (installed with apt-get when missing), else our own SVG ----
if ! command -v gnuplot >/dev/null && [[ $MOOR_ONLY == 0 ]]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gnuplot-nox \
		>"$WORK/apt-gnuplot.log" 2>&1 || log "gnuplot not installable: writing an SVG instead"
fi
if ! command -v gnuplot >/dev/null && [[ -s $WORK/plot.dat ]]; then
	# two panels of horizontal bars (ops/s, p99 ms), etcd above moor per workload
	awk -F'\t' -v ncpu="$NCPU" '
	{ w[NR] = $1; v[NR, 1] = $2 + 0; v[NR, 2] = $3 + 0; v[NR, 3] = $4 + 0; v[NR, 4] = $5 + 0
	  for (j = 1; j <= 4; j++) if (v[NR, j] > mx[int((j + 1) / 2)]) mx[int((j + 1) / 2)] = v[NR, j] }
	END {
		n = NR; rowh = 30; top = 60; h = top + n * rowh + 40; lw = 260; bw = 420
		printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", lw + 2 * (bw + 40), h
		printf "<text x=\"10\" y=\"20\" font-size=\"14\">moor vs etcd, 3 members each on one %s-core machine shared with the generator</text>\n", ncpu
		printf "<text x=\"%d\" y=\"45\">ops/s (median)</text><text x=\"%d\" y=\"45\">p99 latency ms (median)</text>\n", lw, lw + bw + 40
		printf "<rect x=\"%d\" y=\"30\" width=\"10\" height=\"10\" fill=\"#4477aa\"/><text x=\"%d\" y=\"39\">etcd</text>\n", lw + 2 * bw - 60, lw + 2 * bw - 45
		printf "<rect x=\"%d\" y=\"30\" width=\"10\" height=\"10\" fill=\"#cc6677\"/><text x=\"%d\" y=\"39\">moor</text>\n", lw + 2 * bw + 10, lw + 2 * bw + 25
		for (i = 1; i <= n; i++) {
			y = top + (i - 1) * rowh
			gsub(/&/, "\\&amp;", w[i]); gsub(/</, "\\&lt;", w[i])
			printf "<text x=\"5\" y=\"%d\">%s</text>\n", y + 16, w[i]
			for (p = 0; p < 2; p++) {
				x0 = lw + p * (bw + 40)
				for (s = 0; s < 2; s++) {
					val = v[i, p * 2 + s + 1]; len = mx[p + 1] > 0 ? val / mx[p + 1] * bw : 0
					printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"11\" fill=\"%s\"/>", x0, y + 3 + s * 12, len, s ? "#cc6677" : "#4477aa"
					if (val > 0) printf "<text x=\"%.1f\" y=\"%d\" font-size=\"9\">%g</text>", x0 + len + 3, y + 12 + s * 12, val
					printf "\n"
				}
			}
		}
		print "</svg>"
	}' "$WORK/plot.dat" >"$OUT/results.svg"
	log "plot: $OUT/results.svg"
fi
if command -v gnuplot >/dev/null && [[ -s $WORK/plot.dat ]]; then
	awk -F'\t' '{printf "\"%s\"\t%s\t%s\t%s\t%s\n", $1, ($2==""?0:$2), ($3==""?0:$3), ($4==""?0:$4), ($5==""?0:$5)}' "$WORK/plot.dat" >"$OUT/plot.dat"
	gnuplot <<-EOF 2>"$WORK/gnuplot.err" || cat "$WORK/gnuplot.err" >&2
		set terminal pngcairo size 1400,1000 noenhanced font ",9"
		set output "$OUT/results.png"
		set multiplot layout 2,1 title "moor vs etcd, 3 members each on one $NCPU-core machine (shared with the generator)"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set xtics rotate by -30 scale 0
		set grid ytics
		set datafile separator "\t"
		set key top right
		set rmargin 12
		set logscale y
		set yrange [10:*]
		set ylabel "ops/s (median, log scale)"
		plot "$OUT/plot.dat" using 2:xtic(1) title "etcd" lc rgb "#4477aa", '' using 3 title "moor" lc rgb "#cc6677"
		set ylabel "p99 latency ms (median, log scale)"
		set autoscale y
		plot "$OUT/plot.dat" using 4:xtic(1) title "etcd" lc rgb "#4477aa", '' using 5 title "moor" lc rgb "#cc6677"
		unset multiplot
	EOF
	[[ -s $OUT/results.png ]] && log "plot: $OUT/results.png"
fi
log "table: $OUT/results.md; every run's output: $OUT/runs-*.log"

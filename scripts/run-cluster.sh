#!/usr/bin/env bash
# `make run`: starts moor on loopback with data under ./data and prints how
# to reach it; Ctrl-C (or SIGTERM) stops every member cleanly.
#
# Until the replicated node lands (issue 7) this is a single member; the
# three-member layout below is what it will start then.
set -u
BUILD=${1:-build}
MOORD=$BUILD/bin/moord
DATA=${MOOR_RUN_DATA:-./data}
HOST=127.0.0.1
names=(m1)
client_ports=(2379)
peer_ports=(2380)

mkdir -p "$DATA"
pids=()
stop() {
	echo
	echo "stopping: ${pids[*]}"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p"; done
	exit 0
}
trap stop INT TERM

cluster=""
for i in "${!names[@]}"; do
	cluster+="${cluster:+,}${names[$i]}=http://$HOST:${peer_ports[$i]}"
done
for i in "${!names[@]}"; do
	n=${names[$i]}
	"$MOORD" --name "$n" --data-dir "$DATA/$n" \
		--listen-client-urls "http://$HOST:${client_ports[$i]}" \
		--listen-peer-urls "http://$HOST:${peer_ports[$i]}" \
		--initial-cluster "$cluster" 2>>"$DATA/$n.log" &
	pids+=($!)
done

endpoints=""
for i in "${!names[@]}"; do
	endpoints+="${endpoints:+,}http://$HOST:${client_ports[$i]}"
	ok=0
	for _ in $(seq 1 100); do
		if curl -fsS -m 1 -o /dev/null "http://$HOST:${client_ports[$i]}/readyz"; then
			ok=1
			break
		fi
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if [[ $ok -ne 1 ]]; then
		echo "member ${names[$i]} did not start; its log ($DATA/${names[$i]}.log):"
		tail -n 20 "$DATA/${names[$i]}.log"
		stop
	fi
done

cat <<MSG
moor is running: ${#names[@]} member(s) on loopback, data under $DATA (logs: $DATA/*.log)
  endpoints: $endpoints
  try:       curl http://$HOST:${client_ports[0]}/health
             curl http://$HOST:${client_ports[0]}/version
Ctrl-C stops it.
MSG
wait

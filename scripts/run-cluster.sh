#!/usr/bin/env bash
# `make run`: starts moor on loopback with data under ./data and prints how
# to reach it; Ctrl-C (or SIGTERM) stops every member cleanly.
#
# Three members, as etcd's own Procfile lays them out: client ports 2379,
# 22379, 32379 and peer ports 2380, 22380, 32380 on 127.0.0.1.
set -u
BUILD=${1:-build}
MOORD=$BUILD/bin/moord
DATA=${MOOR_RUN_DATA:-./data}
HOST=127.0.0.1
names=(m1 m2 m3)
client_ports=(2379 22379 32379)
peer_ports=(2380 22380 32380)

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
		if curl -fs -m 1 -o /dev/null "http://$HOST:${client_ports[$i]}/health"; then
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
  try:       curl -X POST http://$HOST:${client_ports[0]}/v3/kv/put -d '{"key":"Zm9v","value":"YmFy"}'
             curl -X POST http://$HOST:${client_ports[1]}/v3/kv/range -d '{"key":"Zm9v"}'
             curl http://$HOST:${client_ports[2]}/health
Ctrl-C stops it.
MSG
wait

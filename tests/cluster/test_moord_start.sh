#!/usr/bin/env bash
# moord starts on a loopback port, answers its health endpoints and /version,
# refuses bad flags (exit 2) and an unusable or locked data directory or a
# taken port (exit 1), and stops with exit 0 on SIGTERM and SIGINT.
set -u
source "$(dirname "$0")/lib.sh"

port=$(t_free_port)
url=http://127.0.0.1:$port
"$MOORD" --name m1 --data-dir "$T_TMP/m1" --listen-client-urls "$url" \
	--listen-peer-urls "http://127.0.0.1:$(t_free_port)" 2>"$T_TMP/m1.log" &
pid=$!
T_PIDS+=("$pid")

t_check "moord answers /health within 10 s" t_wait_http "$url/health" 10
t_check "/health says healthy in etcd's body" \
	test "$(curl -fsS "$url/health")" = '{"health":"true","reason":""}'
t_check "/livez says ok in plain text" test "$(curl -fsS "$url/livez")" = "ok"
t_check "/readyz?verbose lists its checks" \
	bash -c "curl -fsS '$url/readyz?verbose' | grep -q '^\[+\]leader ok'"
t_check "/version reports an etcd-compatible version" \
	bash -c "curl -fsS '$url/version' | grep -q '\"etcdserver\":\"3.5.[0-9]*\"'"
t_check "an unknown path is 404 with etcd's error body" \
	test "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")" = 404
t_check "POST /health is 405" \
	test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/health")" = 405
t_check "the log line names the member" grep -q 'member=m1' "$T_TMP/m1.log"
t_check "a single-member cluster writes at once" \
	bash -c "curl -fsS -X POST '$url/v3/kv/put' -d '{\"key\":\"YQ==\",\"value\":\"Yg==\"}' | grep -q '\"revision\":\"2\"'"
curl -fsS "$url/metrics" >"$T_TMP/metrics.txt"
t_check "/metrics reports etcd's leader gauge" grep -q '^etcd_server_has_leader 1$' "$T_TMP/metrics.txt"
t_check "/metrics counts the put by gRPC method and code" \
	grep -q '^grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1$' "$T_TMP/metrics.txt"
t_check "/metrics has the WAL fsync histogram" \
	grep -q '^etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} [1-9]' "$T_TMP/metrics.txt"

# A second moord on the same data directory is refused.
"$MOORD" --name m1b --data-dir "$T_TMP/m1" --listen-client-urls "http://127.0.0.1:$(t_free_port)" \
	--listen-peer-urls "http://127.0.0.1:$(t_free_port)" \
	2>"$T_TMP/m1b.log"
rc=$?
t_check "a locked data directory exits 1" test "$rc" = 1
t_check "... with a message naming it" grep -q "in use by another moord" "$T_TMP/m1b.log"

# The port is taken.
"$MOORD" --name m2 --data-dir "$T_TMP/m2" --listen-client-urls "$url" \
	--listen-peer-urls "http://127.0.0.1:$(t_free_port)" 2>"$T_TMP/m2.log"
rc=$?
t_check "a taken port exits 1" test "$rc" = 1
t_check "... with a message naming the URL" grep -q "cannot listen on $url: Address already in use" "$T_TMP/m2.log"

# The data directory is a file.
touch "$T_TMP/afile"
"$MOORD" --name m3 --data-dir "$T_TMP/afile" --listen-client-urls "http://127.0.0.1:$(t_free_port)" \
	--listen-peer-urls "http://127.0.0.1:$(t_free_port)" \
	2>"$T_TMP/m3.log"
rc=$?
t_check "a data directory that is a file exits 1" test "$rc" = 1
t_check "... with a clear message" grep -q "afile" "$T_TMP/m3.log"

# Hostile protobuf bodies: a txn nested 100,000 deep in 800 KB (protobuf-c
# unpacks by recursion: this used to overflow the stack and kill moord),
# and bytes that are not protobuf. Each gets a 400 naming the problem.
python3 -c '
import sys
def v(n):
    o = b""
    while True:
        b, n = n & 0x7f, n >> 7
        if n: o += bytes([b | 0x80])
        else: return o + bytes([b])
t = b""
for _ in range(100000):
    op = b"\x22" + v(len(t)) + t
    t = b"\x12" + v(len(op)) + op
sys.stdout.buffer.write(t)' >"$T_TMP/nested.bin"
out=$(curl -sS -m 10 -w ' %{http_code}' -X POST -H 'Content-Type: application/x-protobuf' \
	--data-binary @"$T_TMP/nested.bin" "$url/v3/kv/txn")
t_check "a protobuf txn nested 100,000 deep is refused with 400 ($out)" \
	bash -c "[[ '$out' == *'nests messages more than 64 deep'*' 400' ]]"
out=$(printf '\xff\xff\xff' | curl -sS -m 10 -w ' %{http_code}' -X POST \
	-H 'Content-Type: application/x-protobuf' --data-binary @- "$url/v3/kv/put")
t_check "a body that is not protobuf is refused with 400 ($out)" \
	bash -c "[[ '$out' == *'malformed protobuf body for /etcdserverpb.KV/Put'*' 400' ]]"
t_check "... and moord serves on" test -n "$(curl -fsS -m 10 -X POST "$url/v3/kv/range" -d '{"key":"YQ=="}')"

kill -TERM "$pid"
t_wait_exit "$pid" 10; rc=$T_RC
t_check "SIGTERM stops moord with exit 0 (got $rc)" test "$rc" = 0
t_check "the listener is closed after the stop" \
	bash -c "! curl -s -m 1 -o /dev/null '$url/health'"

# SIGINT too, and configuration from the environment alone.
port2=$(t_free_port)
MOOR_NAME=e1 MOOR_DATA_DIR="$T_TMP/e1" MOOR_LISTEN_CLIENT_URLS="http://127.0.0.1:$port2" \
	MOOR_LISTEN_PEER_URLS="http://127.0.0.1:$(t_free_port)" \
	MOOR_LOG_FORMAT=json "$MOORD" 2>"$T_TMP/e1.log" &
pid2=$!
T_PIDS+=("$pid2")
t_check "moord configured only by MOOR_* variables serves" \
	t_wait_http "http://127.0.0.1:$port2/livez" 10
t_check "MOOR_LOG_FORMAT=json gives JSON lines with the member" \
	grep -q '"member":"e1"' "$T_TMP/e1.log"
kill -INT "$pid2"
t_wait_exit "$pid2" 10; rc=$T_RC
t_check "SIGINT stops moord with exit 0 (got $rc)" test "$rc" = 0

# The command line.
"$MOORD" --no-such-flag >/dev/null 2>"$T_TMP/bad.log"
t_check "an unknown flag exits 2" test $? = 2
t_check "... naming the flag" grep -q "unknown flag: --no-such-flag" "$T_TMP/bad.log"
"$MOORD" --listen-client-urls 127.0.0.1:1 >/dev/null 2>&1
t_check "a URL without a scheme exits 2" test $? = 2
"$MOORD" --initial-cluster-state sideways >/dev/null 2>&1
t_check "an unknown cluster state exits 2" test $? = 2
"$MOORD" --name a --initial-cluster b=http://127.0.0.1:1 >/dev/null 2>&1
t_check "an initial cluster without this member exits 2" test $? = 2
MOOR_LOG_LEVEL=loud "$MOORD" >/dev/null 2>&1
t_check "a malformed variable exits 2" test $? = 2
"$MOORD" --help >"$T_TMP/help.txt" 2>&1
t_check "--help exits 0 and documents each flag with its variable" \
	bash -c "test $? = 0 && grep -q -- '--data-dir' '$T_TMP/help.txt' && grep -q 'MOOR_DATA_DIR' '$T_TMP/help.txt'"
t_check "--version prints the version" bash -c "'$MOORD' --version | grep -q '^moord '"

t_done

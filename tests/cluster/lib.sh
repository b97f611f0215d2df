# Shared helpers for tests that start real moord processes.
# Every daemon listens on loopback only (127.0.0.0/8), is stopped by its pid, and every
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
	if [[ -n ${T_KEEP:-} ]]; then echo "kept $T_TMP"; else rm -rf "$T_TMP"; fi
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

# A free TCP port on 127.0.0.1: below the kernel's ephemeral range (which
# starts at 32768), so no outgoing connection can hold it, and with no
# socket of any state on it now.
t_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		if ! ss -tanH "sport = :$p" 2>/dev/null | grep -q .; then
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

# ---- clusters of real moord processes on loopback ----
# t_cluster_init N: names m1..mN, each on its own loopback address
# 127.A.B.i (A and B drawn at random, so concurrent test runs do not meet)
# with client port 2379 and peer port 2380, data dirs under $T_TMP. Members
# are started with t_member_start I. Each member binds its outgoing peer
# connections to its own address, so links can be cut between addresses.
C_N=0
C_NAMES=()
C_HOST=()
C_CPORT=()
C_PPORT=()
C_PID=()
C_CLUSTER=""
t_cluster_init() {
	local a b
	C_N=$1
	C_CLUSTER=""
	for _ in $(seq 1 50); do
		a=$((RANDOM % 254 + 1))
		b=$((RANDOM % 254 + 1))
		# nobody listens on the first member's address yet
		ss -ltnH "src 127.$a.$b.1" 2>/dev/null | grep -q . || break
	done
	for ((i = 1; i <= C_N; i++)); do
		C_NAMES[$i]=m$i
		C_HOST[$i]=127.$a.$b.$i
		C_CPORT[$i]=2379
		C_PPORT[$i]=2380
		C_PID[$i]=
		C_CLUSTER+="${C_CLUSTER:+,}m$i=http://${C_HOST[$i]}:2380"
	done
}

t_url() { echo "http://${C_HOST[$1]}:${C_CPORT[$1]}"; }
t_peer_url() { echo "http://${C_HOST[$1]}:${C_PPORT[$1]}"; }

# t_member_start I [flags...]
t_member_start() {
	local i=$1
	shift
	"$MOORD" --name "m$i" --data-dir "$T_TMP/m$i" \
		--listen-client-urls "$(t_url "$i")" \
		--listen-peer-urls "$(t_peer_url "$i")" \
		--initial-cluster "$C_CLUSTER" "$@" 2>>"$T_TMP/m$i.log" &
	C_PID[$i]=$!
	T_PIDS+=("${C_PID[$i]}")
}

# t_member_stop I SIGNAL: signal the member and wait (bounded) for its exit;
# T_RC is its exit code.
t_member_stop() {
	kill "-$2" "${C_PID[$1]}" 2>/dev/null
	t_wait_exit "${C_PID[$1]}" 20
	C_PID[$1]=
}

b64() { printf '%s' "$1" | base64 -w0; }
unb64() { printf '%s' "$1" | base64 -d; }

# t_api I PATH JSON: POST to member I; prints the body; fails on non-200.
t_api() {
	curl -fsS -m 10 -X POST "$(t_url "$1")$2" -d "$3"
}

# t_put I KEY VALUE: prints the header revision of the put.
t_put() {
	t_api "$1" /v3/kv/put "{\"key\":\"$(b64 "$2")\",\"value\":\"$(b64 "$3")\"}" |
		sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p'
}

# t_get I KEY [serializable]: prints the value ("" when absent).
t_get() {
	local ser=${3:-false} v
	v=$(t_api "$1" /v3/kv/range "{\"key\":\"$(b64 "$2")\",\"serializable\":$ser}" |
		sed -n 's/.*"value":"\([^"]*\)".*/\1/p')
	unb64 "$v"
}

# t_prefix_end PREFIX: etcd's range_end for a prefix of printable ASCII.
t_prefix_end() {
	local p=$1 last code
	last=${p: -1}
	code=$(printf '%d' "'$last")
	printf '%s' "${p:0:${#p}-1}"
	printf "\\$(printf '%03o' $((code + 1)))"
}

# t_count I PREFIX [serializable]: number of keys under the prefix.
t_count() {
	local ser=${3:-false} end c
	end=$(t_prefix_end "$2")
	c=$(t_api "$1" /v3/kv/range "{\"key\":\"$(b64 "$2")\",\"range_end\":\"$(b64 "$end")\",\"count_only\":true,\"serializable\":$ser}" |
		sed -n 's/.*"count":"\([0-9]*\)".*/\1/p')
	echo "${c:-0}"
}

# t_leader_of I: the leader id member I reports ("" when none).
t_leader_of() {
	t_api "$1" /v3/maintenance/status '{}' 2>/dev/null | sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p'
}

t_member_id() {
	t_api "$1" /v3/maintenance/status '{}' 2>/dev/null | sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p'
}

# t_wait_leader SECONDS I...: until every listed member reports the same
# leader; sets T_LEADER to the index of the leading member.
t_wait_leader() {
	local limit=$1 k j l first ok
	shift
	T_LEADER=
	for ((k = 0; k < limit * 10; k++)); do
		ok=1
		first=
		for j in "$@"; do
			l=$(t_leader_of "$j")
			if [[ -z $l || $l == 0 || (-n $first && $l != "$first") ]]; then
				ok=0
				break
			fi
			first=$l
		done
		if [[ $ok -eq 1 ]]; then
			for j in "$@"; do
				[[ $(t_member_id "$j") == "$first" ]] && T_LEADER=$j
			done
			[[ -n $T_LEADER ]] && return 0
		fi
		sleep 0.1
	done
	return 1
}

# t_hashkv I: the hash of member I's key space at its current revision.
t_hashkv() {
	t_api "$1" /v3/maintenance/hashkv '{}' | sed -n 's/.*"hash":\([0-9]*\).*/\1/p'
}

# t_wait_eq SECONDS EXPECTED CMD...: until CMD prints EXPECTED.
t_wait_eq() {
	local limit=$1 want=$2 k
	shift 2
	for ((k = 0; k < limit * 10; k++)); do
		[[ $("$@" 2>/dev/null) == "$want" ]] && return 0
		sleep 0.1
	done
	return 1
}

# ---- test certificates, made by openssl in T_PKI (a folder of T_TMP) ----
T_PKI=$T_TMP/pki
t_pki() { mkdir -p "$T_PKI" && openssl "$@" >>"$T_PKI/openssl.log" 2>&1; }
# t_pki_ca NAME CN: a self-signed CA, $T_PKI/NAME.pem and NAME.key
t_pki_ca() {
	t_pki req -x509 -newkey rsa:2048 -nodes -keyout "$T_PKI/$1.key" -out "$T_PKI/$1.pem" \
		-days 2 -subj "/CN=$2"
}
# t_pki_sign NAME CA EXTFILE: $T_PKI/NAME.pem (CN=NAME) and NAME.key, signed
# by CA with the x509v3 extensions in EXTFILE
t_pki_sign() {
	t_pki req -newkey rsa:2048 -nodes -keyout "$T_PKI/$1.key" -out "$T_PKI/$1.csr" \
		-subj "/CN=$1" &&
		t_pki x509 -req -in "$T_PKI/$1.csr" -CA "$T_PKI/$2.pem" -CAkey "$T_PKI/$2.key" \
			-CAcreateserial -out "$T_PKI/$1.pem" -days 2 -extfile "$3"
}

#!/usr/bin/env bash
# TLS on moord's client listener (--cert-file, --key-file, --trusted-ca-file,
# --client-cert-auth), end to end with certificates made here by openssl:
# curl, moorctl and the upgraded watch and keep-alive streams over https;
# client certificates required and checked; bad TLS settings refused at
# start with the flag and file named; a 3-member cluster whose clients use
# https while its peers stay plain.
set -u
source "$(dirname "$0")/lib.sh"
# private copies: a concurrent build may relink them mid-test
cp "$MOORD" "$T_TMP/moord" && MOORD=$T_TMP/moord
cp "${MOORCTL:-$BUILD/bin/moorctl}" "$T_TMP/moorctl" && CTL=$T_TMP/moorctl
cp "${PROBE:-$BUILD/bin/moor-watch-probe}" "$T_TMP/probe" && PROBE=$T_TMP/probe

t_cluster_init 3
H=${C_HOST[1]}
P=$T_PKI

# ---- certificates: a CA, a server certificate for the three members'
# addresses, a client certificate; another CA with its own client.
t_pki_ca ca moor-test-ca
t_pki_ca other-ca moor-other-ca
printf 'subjectAltName=IP:%s,IP:%s,IP:%s\nextendedKeyUsage=serverAuth\n' \
	"${C_HOST[1]}" "${C_HOST[2]}" "${C_HOST[3]}" >"$P/server.ext"
printf 'extendedKeyUsage=clientAuth\n' >"$P/client.ext"
# sign NAME CA EXT: NAME.key and NAME.pem signed by CA
sign() { t_pki_sign "$1" "$2" "$P/$3"; }
sign server ca server.ext
sign client ca client.ext
sign stranger other-ca client.ext
t_check "openssl made the test certificates" \
	test -s "$P/server.pem" -a -s "$P/client.pem" -a -s "$P/stranger.pem"
SRV_TLS=(--cert-file "$P/server.pem" --key-file "$P/server.key")
CA=$P/ca.pem
CLI=(--cert "$P/client.pem" --key "$P/client.key")

# curl over https with the test CA; fails on a non-200 answer.
tc() { curl -fsS -m 5 --cacert "$CA" "$@"; }
# t_wait_https URL SECONDS [curl flags...]: until URL answers 200 over https.
t_wait_https() {
	local url=$1 limit=$2 i
	shift 2
	for ((i = 0; i < limit * 20; i++)); do
		tc -o /dev/null "$@" "$url" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# one member alone on member 1's address, https clients; T_PID is its pid
start_single() {
	"$MOORD" --name m1 --data-dir "$T_TMP/single" --listen-client-urls "https://$H:2379" \
		--listen-peer-urls "http://$H:2380" --initial-cluster "m1=http://$H:2380" \
		"${SRV_TLS[@]}" "$@" 2>>"$T_TMP/single.log" &
	T_PID=$!
	T_PIDS+=("$T_PID")
}
stop_single() {
	kill -TERM "$T_PID" 2>/dev/null
	t_wait_exit "$T_PID" 20
}
U=https://$H:2379

# ---- one member, https, no client certificates ----
start_single
t_check "an https member answers /health over TLS within 10 s" t_wait_https "$U/health" 10
t_check "a put over https with --cacert succeeds" \
	bash -c "curl -fsS -m 5 --cacert '$CA' -X POST '$U/v3/kv/put' -d '{\"key\":\"$(b64 k1)\",\"value\":\"$(b64 v1)\"}' | grep -q '\"revision\"'"
t_check "a get over https reads it back" \
	bash -c "curl -fsS -m 5 --cacert '$CA' -X POST '$U/v3/kv/range' -d '{\"key\":\"$(b64 k1)\"}' | grep -q '\"value\":\"$(b64 v1)\"'"
t_check "two requests share one kept-alive TLS connection" \
	bash -c "curl -sS -m 5 -v --cacert '$CA' '$U/health' '$U/livez' 2>&1 | grep -q 'Re-using existing connection'"
t_check "plain http to the https port gets no answer" \
	bash -c "! curl -fsS -m 3 -o /dev/null 'http://$H:2379/health' 2>/dev/null"
curl -sS -m 3 -o /dev/null --cacert "$P/other-ca.pem" "$U/health" 2>"$T_TMP/curl.err"
t_check "curl trusting another CA refuses the server's certificate (exit $?)" \
	grep -q "SSL certificate problem" "$T_TMP/curl.err"

# the gateway's watch stream (chunked JSON) over https
curl -sS -N -m 15 --cacert "$CA" -X POST "$U/v3/watch" \
	-d "{\"create_request\":{\"key\":\"$(b64 w1)\"}}" >"$T_TMP/watch.out" 2>&1 &
wpid=$!
t_check "the watch stream over https is created" \
	t_wait_eq 5 1 bash -c "grep -c '\"created\":true' '$T_TMP/watch.out'"
tc -X POST "$U/v3/kv/put" -d "{\"key\":\"$(b64 w1)\",\"value\":\"$(b64 seen)\"}" >/dev/null
t_check "the watch stream over https delivers the put's event" \
	t_wait_eq 5 1 bash -c "grep -c '\"value\":\"$(b64 seen)\"' '$T_TMP/watch.out'"
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null

t_check "moorctl --cacert puts over https" \
	test "$("$CTL" --endpoints "$U" --cacert "$CA" put mk mv 2>&1)" = OK
t_check "moorctl --cacert gets over https" \
	test "$("$CTL" --endpoints "$U" --cacert "$CA" get mk 2>&1)" = "$(printf 'mk\nmv')"
t_check "moorctl with --cacert and a bare host:port uses https (as etcdctl)" \
	test "$("$CTL" --endpoints "$H:2379" --cacert "$CA" get mk 2>&1)" = "$(printf 'mk\nmv')"
t_check "moorctl --insecure-skip-tls-verify reads without the CA" \
	test "$("$CTL" --endpoints "$U" --insecure-skip-tls-verify get mk 2>&1)" = "$(printf 'mk\nmv')"
"$CTL" --endpoints "$U" --cacert "$P/other-ca.pem" --command-timeout 2s get mk \
	>/dev/null 2>"$T_TMP/ctl.err"
t_check "moorctl trusting another CA fails (exit $?)" \
	grep -q "SSL peer certificate" "$T_TMP/ctl.err"

# ---- the certificate rotated under the running member (a Secret update):
# new connections get the new one, without a restart; a broken file is
# logged and the one in use kept.
served_serial() {
	openssl s_client -connect "$H:2379" -CAfile "$CA" </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null
}
s1=$(served_serial)
sign server2 ca server.ext
s2=$(openssl x509 -noout -serial -in "$P/server2.pem")
t_check "the member serves the first certificate ($s1)" \
	test -n "$s1" -a "$s1" = "$(openssl x509 -noout -serial -in "$P/server.pem")"
cp "$P/server2.key" "$P/key.new" && mv -f "$P/key.new" "$P/server.key"
cp "$P/server2.pem" "$P/cert.new" && mv -f "$P/cert.new" "$P/server.pem"
t_check "after the files are replaced, new connections get the new certificate within 5 s" \
	t_wait_eq 5 "$s2" served_serial
t_check "... and moord logs the reload" grep -q "reloaded --cert-file" "$T_TMP/single.log"
t_check "... and serves requests with it" bash -c "curl -fsS -m 5 --cacert '$CA' '$U/health' | grep -q '\"health\":\"true\"'"
printf 'not a certificate\n' >"$P/cert.new" && mv -f "$P/cert.new" "$P/server.pem"
sleep 1.2
t_check "a broken certificate file is not used: the member still serves the last good one" \
	t_wait_eq 5 "$s2" served_serial
t_check "... and says why" t_wait_eq 5 1 bash -c "grep -c 'changed but cannot be used' '$T_TMP/single.log' | sed 's/^[1-9][0-9]*$/1/'"
cp "$P/server2.pem" "$P/server.pem"

"$PROBE" "$H" 2379 "$CA" >"$T_TMP/probe1.out" 2>&1
rc=$?
sed 's/^/    probe: /' "$T_TMP/probe1.out"
t_check "the upgraded watch and keep-alive streams work over TLS (probe exit $rc)" \
	grep -q '^14 passed, 0 failed$' "$T_TMP/probe1.out"

# a stop with a gateway watch stream and an upgraded one open over TLS
curl -sS -N -m 15 --cacert "$CA" -X POST "$U/v3/watch" \
	-d "{\"create_request\":{\"key\":\"$(b64 w1)\"}}" >"$T_TMP/watch2.out" 2>&1 &
wpid=$!
(
	printf 'POST /v3/watch HTTP/1.1\r\nHost: x\r\nUpgrade: moor-watch/1\r\n'
	printf 'Connection: Upgrade\r\nContent-Length: 0\r\n\r\n'
	sleep 10
) | timeout 12 openssl s_client -connect "$H:2379" -CAfile "$CA" -quiet \
	>"$T_TMP/upgrade.out" 2>/dev/null &
upid=$!
t_check "a TLS stream is open for the stop" \
	t_wait_eq 5 1 bash -c "grep -c '\"created\":true' '$T_TMP/watch2.out'"
t_check "an upgraded TLS connection is open for the stop" \
	t_wait_eq 5 1 grep -c '^HTTP/1.1 101' "$T_TMP/upgrade.out"
stop_single
t_check "SIGTERM stops the https member with exit 0 with both open (got $T_RC)" \
	test "$T_RC" = 0
kill "$wpid" "$upid" 2>/dev/null
wait "$wpid" "$upid" 2>/dev/null

# ---- the same member with --client-cert-auth ----
start_single --trusted-ca-file "$CA" --client-cert-auth
t_check "with --client-cert-auth a client with its certificate is served within 10 s" \
	t_wait_https "$U/health" 10 "${CLI[@]}"
t_check "a request without a client certificate is refused" \
	bash -c "! curl -fsS -m 3 -o /dev/null --cacert '$CA' '$U/health' 2>/dev/null"
t_check "a client certificate from another CA is refused" \
	bash -c "! curl -fsS -m 3 -o /dev/null --cacert '$CA' --cert '$P/stranger.pem' --key '$P/stranger.key' '$U/health' 2>/dev/null"
t_check "a put with the client certificate succeeds" \
	bash -c "curl -fsS -m 5 --cacert '$CA' --cert '$P/client.pem' --key '$P/client.key' -X POST '$U/v3/kv/put' -d '{\"key\":\"$(b64 k2)\",\"value\":\"$(b64 v2)\"}' | grep -q '\"revision\"'"
t_check "moorctl with --cacert --cert --key puts and gets" \
	bash -c "'$CTL' --endpoints '$U' --cacert '$CA' ${CLI[*]} put ck cv >/dev/null && test \"\$('$CTL' --endpoints '$U' --cacert '$CA' ${CLI[*]} get ck)\" = \"\$(printf 'ck\ncv')\""
t_check "moorctl without a client certificate fails" \
	bash -c "! '$CTL' --endpoints '$U' --cacert '$CA' --command-timeout 2s get ck >/dev/null 2>&1"
"$PROBE" "$H" 2379 "$CA" "$P/client.pem" "$P/client.key" >"$T_TMP/probe2.out" 2>&1
rc=$?
t_check "the upgraded streams work with a client certificate (probe exit $rc)" \
	grep -q '^14 passed, 0 failed$' "$T_TMP/probe2.out"
"$PROBE" "$H" 2379 "$CA" >"$T_TMP/probe3.out" 2>&1
rc=$?
t_check "the probe without a client certificate is refused (exit $rc)" \
	bash -c "test $rc -ne 0 && ! grep -q '^ok ' '$T_TMP/probe3.out'"
stop_single
t_check "the member with --client-cert-auth stops with exit 0 (got $T_RC)" test "$T_RC" = 0

# ---- TLS settings refused at start ----
# start_bad NAME FLAGS...: moord with FLAGS on member 1's address; T_RC and
# $T_TMP/NAME.log
start_bad() {
	local name=$1
	shift
	timeout 20 "$MOORD" --name m1 --data-dir "$T_TMP/$name.d" \
		--listen-peer-urls "http://$H:2380" --initial-cluster "m1=http://$H:2380" "$@" \
		>/dev/null 2>"$T_TMP/$name.log"
	T_RC=$?
}
start_bad nocert --listen-client-urls "$U"
t_check "https without --cert-file/--key-file exits 2 (got $T_RC)" test "$T_RC" = 2
t_check "... naming the URL and the missing flags" \
	grep -q "listen-client-urls $U is https: it needs --cert-file and --key-file (both missing)" \
	"$T_TMP/nocert.log"
start_bad nokey --listen-client-urls "$U" --cert-file "$P/server.pem"
t_check "https with only --cert-file names --key-file (exit $T_RC)" \
	bash -c "test $T_RC = 2 && grep -q '(--key-file missing)' '$T_TMP/nokey.log'"
start_bad noca --listen-client-urls "$U" "${SRV_TLS[@]}" --client-cert-auth
t_check "--client-cert-auth without --trusted-ca-file exits 2 naming it (got $T_RC)" \
	bash -c "test $T_RC = 2 && grep -q 'client-cert-auth needs --trusted-ca-file' '$T_TMP/noca.log'"
printf -- '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n' >"$P/bad.key"
start_bad badkey --listen-client-urls "$U" --cert-file "$P/server.pem" --key-file "$P/bad.key"
t_check "a malformed key file exits 1 (got $T_RC)" test "$T_RC" = 1
t_check "... naming the key file" grep -q -- "--key-file $P/bad.key: not an unencrypted PEM private key" \
	"$T_TMP/badkey.log"
t_check "... before creating the data directory" test ! -e "$T_TMP/badkey.d"
start_bad nofile --listen-client-urls "$U" --cert-file "$P/missing.pem" --key-file "$P/server.key"
t_check "a missing certificate file exits 1 naming it (got $T_RC)" \
	bash -c "test $T_RC = 1 && grep -q -- '--cert-file $P/missing.pem: cannot read: No such file' '$T_TMP/nofile.log'"
start_bad notcert --listen-client-urls "$U" --cert-file "$P/server.key" --key-file "$P/server.key"
t_check "a key given as the certificate exits 1 naming it (got $T_RC)" \
	bash -c "test $T_RC = 1 && grep -q -- '--cert-file $P/server.key: not a PEM certificate' '$T_TMP/notcert.log'"
start_bad mismatch --listen-client-urls "$U" --cert-file "$P/server.pem" --key-file "$P/client.key"
t_check "a key that is not the certificate's exits 1 naming both (got $T_RC)" \
	bash -c "test $T_RC = 1 && grep -q 'the key does not match the certificate' '$T_TMP/mismatch.log'"
start_bad badca --listen-client-urls "$U" "${SRV_TLS[@]}" --trusted-ca-file "$P/server.ext" \
	--client-cert-auth
t_check "a trusted CA file without certificates exits 1 naming it (got $T_RC)" \
	bash -c "test $T_RC = 1 && grep -q -- '--trusted-ca-file $P/server.ext: not a PEM certificate' '$T_TMP/badca.log'"
t_check "--help documents the TLS flags and their variables" \
	bash -c "'$MOORD' --help | grep -q -- '--client-cert-auth' && '$MOORD' --help | grep -q 'MOOR_TRUSTED_CA_FILE'"

# an http URL with the certificate flags set stays plain, as in etcd
"$MOORD" --name m1 --data-dir "$T_TMP/plain" --listen-client-urls "http://$H:2379" \
	--listen-peer-urls "http://$H:2380" --initial-cluster "m1=http://$H:2380" \
	"${SRV_TLS[@]}" 2>"$T_TMP/plain.log" &
T_PID=$!
T_PIDS+=("$T_PID")
t_check "an http URL with --cert-file and --key-file serves plain http" \
	t_wait_http "http://$H:2379/health" 10
stop_single

# ---- three members: clients over https, peers plain ----
for i in 1 2 3; do
	t_member_start "$i" --listen-client-urls "https://${C_HOST[$i]}:2379" "${SRV_TLS[@]}" \
		--trusted-ca-file "$CA" --client-cert-auth
done
EPS="https://${C_HOST[1]}:2379,https://${C_HOST[2]}:2379,https://${C_HOST[3]}:2379"
for i in 1 2 3; do
	t_check "member $i serves https within 15 s" \
		t_wait_https "https://${C_HOST[$i]}:2379/health" 15 "${CLI[@]}"
done
t_check "a write through member 1 over https" \
	bash -c "'$CTL' --endpoints 'https://${C_HOST[1]}:2379' --cacert '$CA' ${CLI[*]} put ck3 across | grep -q OK"
t_check "is read through member 2 over https" \
	t_wait_eq 10 "$(printf 'ck3\nacross')" "$CTL" --endpoints "https://${C_HOST[2]}:2379" \
	--cacert "$CA" "${CLI[@]}" get ck3
t_check "and through member 3 by curl with the client certificate" \
	bash -c "curl -fsS -m 5 --cacert '$CA' ${CLI[*]} -X POST 'https://${C_HOST[3]}:2379/v3/kv/range' -d '{\"key\":\"$(b64 ck3)\"}' | grep -q '\"value\":\"$(b64 across)\"'"
# each member publishes its client URLs through raft once it has started
t_check "member list shows the three members' https client URLs within 10 s" \
	t_wait_eq 10 3 bash -c "'$CTL' --endpoints '$EPS' --cacert '$CA' ${CLI[*]} member list | grep -c ', https://127\.[0-9.]*:2379, '"
for i in 1 2 3; do
	t_member_stop "$i" TERM
	t_check "member $i stops with exit 0 (got $T_RC)" test "$T_RC" = 0
done
t_done

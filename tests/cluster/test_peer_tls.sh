#!/usr/bin/env bash
# TLS between members (--peer-cert-file, --peer-key-file,
# --peer-trusted-ca-file, --peer-client-cert-auth), end to end with
# certificates made here by openssl, one per member with its address as an
# IP subjectAltName: a 3-member cluster with https peer URLs elects a leader,
# replicates, survives kill -9 and restart of its leader; a member added and
# started empty catches up by a snapshot streamed over TLS; a member whose
# certificate comes from another CA cannot join (both sides log why) while
# the cluster keeps serving; bad peer TLS settings are refused at start.
# Clients stay plain http here (client TLS is tests/cluster/test_tls.sh).
set -u
source "$(dirname "$0")/lib.sh"
# a private copy: a concurrent build may relink it mid-test
cp "$MOORD" "$T_TMP/moord" && MOORD=$T_TMP/moord

t_cluster_init 5
FULL=${C_CLUSTER//http:/https:}
t_peer_url() { echo "https://${C_HOST[$1]}:${C_PPORT[$1]}"; }
C_CLUSTER=$(echo "$FULL" | cut -d, -f1-3)
P=$T_PKI

# ---- certificates: a CA and members m1..m4 signed by it; another CA and
# m5 signed by that one. Each certificate is good for both ends of a peer
# connection (serverAuth and clientAuth), as etcd's peer certificates are.
t_pki_ca ca moor-peer-ca
t_pki_ca other-ca moor-other-ca
# member I CA: $P/mI.pem and $P/mI.key for 127.x.y.I
member_cert() {
	printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n' \
		"${C_HOST[$1]}" >"$P/m$1.ext"
	t_pki_sign "m$1" "$2" "$P/m$1.ext"
}
for i in 1 2 3 4; do member_cert "$i" ca; done
member_cert 5 other-ca
t_check "openssl made the test certificates" \
	test -s "$P/m1.pem" -a -s "$P/m4.pem" -a -s "$P/m5.pem"
# ptls I: member I's peer TLS flags
ptls() {
	echo --peer-cert-file "$P/m$1.pem" --peer-key-file "$P/m$1.key" \
		--peer-trusted-ca-file "$P/ca.pem" --peer-client-cert-auth
}
start() { # I [flags...]
	local i=$1
	shift
	# shellcheck disable=SC2046
	t_member_start "$i" --snapshot-count 50 $(ptls "$i") "$@"
}

# ---- three members over TLS ----
for i in 1 2 3; do start "$i"; done
t_check "three members with https peer URLs elect a leader within 15 s" \
	t_wait_leader 15 1 2 3
for i in 1 2 3; do
	t_check "m$i dialled its peers with TLS" \
		test "$(grep -c "connected to peer [0-9a-f]* at https://.* (TLS)" "$T_TMP/m$i.log")" -ge 2
done
t_check "no member refused a peer" bash -c "! grep -q 'cannot connect to peer\|TLS handshake failed' $T_TMP/m[123].log"
w=$(((T_LEADER % 3) + 1))
r=$(((w % 3) + 1))
t_check "a write through m$w" test -n "$(t_put "$w" k1 v1)"
t_check "is read through m$r" t_wait_eq 5 v1 t_get "$r" k1

# kill -9 of the leader; it comes back and catches up
old=$T_LEADER
t_member_stop "$old" KILL
others=()
for i in 1 2 3; do [[ $i != "$old" ]] && others+=("$i"); done
t_check "after kill -9 of leader m$old the two others elect a leader" \
	t_wait_leader 15 "${others[@]}"
t_check "a write while m$old is down" test -n "$(t_put "${others[0]}" k2 v2)"
start "$old"
t_check "m$old restarted catches up over TLS (serializable read of the new key)" \
	t_wait_eq 15 v2 t_get "$old" k2 true
t_check "the three agree on a leader again" t_wait_leader 15 1 2 3

ok=0
for k in $(seq 1 200); do [[ -n $(t_put $(((k % 3) + 1)) "s/$k" "v$k") ]] && ok=$((ok + 1)); done
t_check "200 writes acknowledged (the log is compacted every 50 entries)" test "$ok" = 200

member_add() { # I LEARNER: adds member I, prints its id
	t_api 1 /v3/cluster/member/add \
		"{\"peerURLs\":[\"$(t_peer_url "$1")\"],\"isLearner\":$2}" |
		sed -n 's/.*"member":{"ID":"\([0-9]*\)".*/\1/p'
}

# ---- a fourth member, empty, catches up by snapshot over TLS ----
id4=$(member_add 4 false)
t_check "member add m4 answers with its id" test -n "$id4"
C_CLUSTER=$(echo "$FULL" | cut -d, -f1-4)
start 4 --initial-cluster-state existing
t_check "m4 gets the store (serializable count 200)" t_wait_eq 30 200 t_count 4 s/ true
t_check "... by a snapshot it installed" grep -q "installed snapshot" "$T_TMP/m4.log"
t_check "... over TLS (m4 dials back with TLS)" \
	grep -q "connected to peer [0-9a-f]* at https://.* (TLS)" "$T_TMP/m4.log"
t_check "four members agree on a leader" t_wait_leader 15 1 2 3 4

# ---- a member with a certificate from another CA cannot join ----
id5=$(member_add 5 true)
t_check "member add m5 (a learner) answers with its id" test -n "$id5"
C_CLUSTER=$FULL
start 5 --initial-cluster-state existing
refused() { # the cluster's members say why they cannot reach m5
	grep -h "cannot connect to peer [0-9a-f]* at https://${C_HOST[5]}:2380: TLS handshake failed: certificate verify failed" \
		"$T_TMP"/m[1234].log | head -1 | grep -c .
}
t_check "members refuse m5's certificate and log why (certificate verify failed)" \
	t_wait_eq 15 1 refused
t_check "m5 logs why its peers hung up (unknown ca)" \
	t_wait_eq 10 1 bash -c "grep 'TLS handshake failed: .*unknown ca' '$T_TMP/m5.log' | head -1 | grep -c ."
t_check "the cluster keeps serving writes" test -n "$(t_put 2 k3 v3)"
t_check "... read through another member" t_wait_eq 5 v3 t_get 3 k3
t_check "m5 never got the store" bash -c "! grep -q 'installed snapshot' '$T_TMP/m5.log'"
t_check "m5 never counted a peer as connected" \
	bash -c "! grep -q 'connected to peer' '$T_TMP/m5.log'"
t_check "m5 is removed again" \
	bash -c "curl -fsS -m 10 -X POST '$(t_url 1)/v3/cluster/member/remove' -d '{\"ID\":\"$id5\"}' >/dev/null"
t_member_stop 5 KILL

h=$(t_hashkv 1)
same=1
for i in 2 3 4; do t_wait_eq 10 "$h" t_hashkv "$i" || same=0; done
t_check "HashKV is equal on the four members" test "$same" = 1

# ---- m1's peer certificate rotated under it (a Secret update): new peer
# connections get the new one without a restart
peer_serial() {
	openssl s_client -connect "${C_HOST[1]}:${C_PPORT[1]}" -CAfile "$P/ca.pem" \
		-cert "$P/m2.pem" -key "$P/m2.key" </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null
}
t_check "m1 serves its first peer certificate" \
	test "$(peer_serial)" = "$(openssl x509 -noout -serial -in "$P/m1.pem")"
cp "$P/m1.pem" "$P/m1-old.pem"
member_cert 1 ca
new_serial=$(openssl x509 -noout -serial -in "$P/m1.pem")
t_check "a new certificate for m1 was made ($new_serial)" \
	test "$new_serial" != "$(openssl x509 -noout -serial -in "$P/m1-old.pem")"
t_check "new peer connections to m1 get the new certificate within 5 s" \
	t_wait_eq 5 "$new_serial" peer_serial
t_check "... and m1 logs the reload" grep -q "reloaded --peer-cert-file" "$T_TMP/m1.log"
# (m2 restarts with --initial-cluster listing four members, not the three
# it was bootstrapped with: with data, the cluster is the data's)
t_member_stop 2 TERM
start 2
t_put 1 k4 v4 >/dev/null
t_check "m2 restarted reconnects to m1 under the new certificate and catches up" \
	t_wait_eq 10 v4 t_get 2 k4 true

# ---- peer TLS settings refused at start ----
H=${C_HOST[1]}
start_bad() { # NAME FLAGS...: moord on m1's address; T_RC and $T_TMP/NAME.log
	local name=$1
	shift
	timeout 20 "$MOORD" --name m1 --data-dir "$T_TMP/$name.d" \
		--listen-client-urls "http://$H:12379" "$@" >/dev/null 2>"$T_TMP/$name.log"
	T_RC=$?
}
start_bad nocert --listen-peer-urls "https://$H:12380" --initial-cluster "m1=https://$H:12380"
t_check "https peer URLs without peer certificates exit 2 (got $T_RC)" test "$T_RC" = 2
t_check "... naming the URL and the missing flags" \
	grep -q "listen-peer-urls https://$H:12380 is https: it needs --peer-cert-file and --peer-key-file (both missing)" \
	"$T_TMP/nocert.log"
start_bad noca --listen-peer-urls "https://$H:12380" --initial-cluster "m1=https://$H:12380" \
	--peer-cert-file "$P/m1.pem" --peer-key-file "$P/m1.key" --peer-client-cert-auth
t_check "--peer-client-cert-auth without --peer-trusted-ca-file exits 2 naming it (got $T_RC)" \
	bash -c "test $T_RC = 2 && grep -q 'peer-client-cert-auth needs --peer-trusted-ca-file' '$T_TMP/noca.log'"
start_bad mismatch --listen-peer-urls "https://$H:12380" --initial-cluster "m1=https://$H:12380" \
	--peer-cert-file "$P/m1.pem" --peer-key-file "$P/m2.key"
t_check "a peer key that is not the certificate's exits 1 naming both (got $T_RC)" \
	bash -c "test $T_RC = 1 && grep -q -- '--peer-cert-file $P/m1.pem and --peer-key-file $P/m2.key: the key does not match the certificate' '$T_TMP/mismatch.log'"
t_check "... before creating the data directory" test ! -e "$T_TMP/mismatch.d"
start_bad badcert --listen-peer-urls "https://$H:12380" --initial-cluster "m1=https://$H:12380" \
	--peer-cert-file "$P/m1.key" --peer-key-file "$P/m1.key"
t_check "a key given as the peer certificate exits 1 naming it (got $T_RC)" \
	bash -c "test $T_RC = 1 && grep -q -- '--peer-cert-file $P/m1.key: not a PEM certificate' '$T_TMP/badcert.log'"
start_bad noread --listen-peer-urls "https://$H:12380" --initial-cluster "m1=https://$H:12380" \
	--peer-cert-file "$P/m1.pem" --peer-key-file "$P/missing.key"
t_check "a missing peer key file exits 1 naming it (got $T_RC)" \
	bash -c "test $T_RC = 1 && grep -q -- '--peer-key-file $P/missing.key: cannot read: No such file' '$T_TMP/noread.log'"
t_check "--help documents the peer TLS flags and their variables" \
	bash -c "'$MOORD' --help | grep -q -- '--peer-client-cert-auth' && '$MOORD' --help | grep -q 'MOOR_PEER_TRUSTED_CA_FILE'"

for i in 1 2 3 4; do
	t_member_stop "$i" TERM
	t_check "m$i stops with exit 0 (got $T_RC)" test "$T_RC" = 0
done
t_done

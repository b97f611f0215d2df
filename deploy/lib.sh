# shellcheck shell=bash
# Shared by deploy/entrypoint.sh and deploy/prestop.sh (sourced, not run).
#
# A member's identity comes from its pod: the StatefulSet names pods
# BASE-0, BASE-1, ... and the headless Service gives each one a stable DNS
# name BASE-i.$MOOR_PEER_DOMAIN. From the hostname alone every member can
# compute its own name and URLs and those of every other ordinal, so one
# manifest serves every replica.
#
# Environment (all optional but MOOR_PEER_DOMAIN in a cluster):
#   MOOR_HOSTNAME          the pod's hostname (default: $HOSTNAME up to its first dot)
#   MOOR_PEER_DOMAIN       DNS domain of the headless Service,
#                          e.g. moor-peers.default.svc.cluster.local
#   MOOR_PEER_PORT         2380;  MOOR_CLIENT_PORT 2379
#   MOOR_TLS               true: https URLs and certificate flags (see entrypoint)
#   MOOR_HOSTS             test mode only: "fqdn=address,..." stands in for DNS;
#                          URLs then carry the addresses and moord listens on
#                          the member's own address instead of 0.0.0.0.

set -u

MOOR_PEER_PORT=${MOOR_PEER_PORT:-2380}
MOOR_CLIENT_PORT=${MOOR_CLIENT_PORT:-2379}
MOOR_DATA_DIR=${MOOR_DATA_DIR:-/var/lib/moor/data}
MOOR_HOSTS=${MOOR_HOSTS:-}
MOOR_PEER_DOMAIN=${MOOR_PEER_DOMAIN:-}
MOOR_TLS=${MOOR_TLS:-false}
# curl's time limit per request to a member, in seconds
MOOR_CURL_TIMEOUT=${MOOR_CURL_TIMEOUT:-3}

d_log() { echo "moor-deploy: $*" >&2; }

d_scheme() { if [[ $MOOR_TLS == true ]]; then echo https; else echo http; fi; }

# d_identity: sets D_NAME (pod hostname), D_BASE, D_ORD from MOOR_HOSTNAME.
d_identity() {
	D_NAME=${MOOR_HOSTNAME:-${HOSTNAME%%.*}}
	if [[ ! $D_NAME =~ ^(.+)-([0-9]+)$ ]]; then
		d_log "hostname \"$D_NAME\" is not NAME-ORDINAL (a StatefulSet pod name)"
		return 1
	fi
	D_BASE=${BASH_REMATCH[1]}
	D_ORD=$((10#${BASH_REMATCH[2]}))
}

# d_fqdn ORDINAL: the DNS name of member ORDINAL.
d_fqdn() {
	if [[ -n $MOOR_PEER_DOMAIN ]]; then
		echo "$D_BASE-$1.$MOOR_PEER_DOMAIN"
	else
		echo "$D_BASE-$1"
	fi
}

# d_addr FQDN: the host part to put in URLs. In a cluster the name itself
# (moord resolves it when it dials); in test mode the address MOOR_HOSTS maps
# it to, or nothing (an unknown name, as NXDOMAIN would be).
d_addr() {
	local kv
	if [[ -z $MOOR_HOSTS ]]; then
		echo "$1"
		return 0
	fi
	IFS=, read -r -a kvs <<<"$MOOR_HOSTS"
	for kv in "${kvs[@]}"; do
		if [[ ${kv%%=*} == "$1" ]]; then
			echo "${kv#*=}"
			return 0
		fi
	done
	return 1
}

d_peer_url() {
	local a
	a=$(d_addr "$(d_fqdn "$1")") || return 1
	echo "$(d_scheme)://$a:$MOOR_PEER_PORT"
}
d_client_url() {
	local a
	a=$(d_addr "$(d_fqdn "$1")") || return 1
	echo "$(d_scheme)://$a:$MOOR_CLIENT_PORT"
}

# Certificates for curl when TLS is on (the same files moord is given).
d_curl() {
	local tls=()
	if [[ $MOOR_TLS == true ]]; then
		tls=(--cacert "${MOOR_TLS_DIR:-/etc/moor/tls}/ca.crt"
			--cert "${MOOR_TLS_DIR:-/etc/moor/tls}/tls.crt"
			--key "${MOOR_TLS_DIR:-/etc/moor/tls}/tls.key")
	fi
	curl -sS -m "$MOOR_CURL_TIMEOUT" "${tls[@]}" "$@"
}

# d_post URL PATH JSON: the body on 200, else fails.
d_post() {
	d_curl -f -X POST "$1$2" -H 'Content-Type: application/json' -d "$3" 2>/dev/null
}

# d_has_leader URL: the member at URL answers /health with a leader. A
# NOSPACE alarm makes /health 503 too, but membership changes still work
# under it, so it is excluded (as etcd's ?exclude=NOSPACE does).
d_has_leader() {
	d_curl -f -o /dev/null "$1/health?exclude=NOSPACE" 2>/dev/null
}

# d_members URL: one line per member: ID NAME PEERURL LEARNER (the first
# peer URL; LEARNER true or false).
d_members() {
	local body
	body=$(d_post "$1" /v3/cluster/member/list '{}') || return 1
	grep -o '{"ID":"[0-9]*"[^}]*}' <<<"$body" | while read -r m; do
		local id name purl learner=false
		id=$(sed -n 's/^{"ID":"\([0-9]*\)".*/\1/p' <<<"$m")
		name=$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' <<<"$m")
		purl=$(sed -n 's/.*"peerURLs":\["\([^"]*\)".*/\1/p' <<<"$m")
		grep -q '"isLearner":true' <<<"$m" && learner=true
		echo "$id ${name:--} ${purl:--} $learner"
	done
}

# d_status_field URL FIELD: a string field of /v3/maintenance/status.
d_status_field() {
	d_post "$1" /v3/maintenance/status '{}' | sed -n "s/.*\"$2\":\"\\([0-9]*\\)\".*/\\1/p"
}

# d_other_ordinals: every ordinal a member may have, but this pod's:
# 0 .. max(MOOR_REPLICAS, MOOR_INITIAL_REPLICAS, own ordinal + 1) - 1.
d_other_ordinals() {
	local n=${MOOR_REPLICAS:-3} i
	[[ ${MOOR_INITIAL_REPLICAS:-0} -gt $n ]] && n=$MOOR_INITIAL_REPLICAS
	[[ $((D_ORD + 1)) -gt $n ]] && n=$((D_ORD + 1))
	for ((i = 0; i < n; i++)); do
		[[ $i -ne $D_ORD ]] && echo "$i"
	done
	return 0
}

# d_find_leader_peer: prints the client URL of another member that has a
# leader (it speaks for the cluster), or fails.
d_find_leader_peer() {
	local i u
	for i in $(d_other_ordinals); do
		u=$(d_client_url "$i") || continue
		if d_has_leader "$u"; then
			echo "$u"
			return 0
		fi
	done
	return 1
}

#!/usr/bin/env bash
# The container's entrypoint: works out who this member is and how it must
# start, then execs moord (so moord is PID 1's program and gets SIGTERM).
#
# Identity: --name is the pod's hostname (moor-0, moor-1, ...); the member's
# advertised URLs are http://HOSTNAME.$MOOR_PEER_DOMAIN:2380 (peers) and
# :2379 (clients). A member id in moor is a hash of its peer URLs and the
# cluster token, so a pod that comes back under the same name has the same id.
#
# How it starts (see docs/operations.md, "How a member decides how to start"):
#  1. Data directory not empty, and the cluster (a member with a leader)
#     still lists this member: a restart. Exec moord with
#     --initial-cluster-state existing; the data says which cluster it is in.
#     Also when no member with a leader answers (the whole cluster restarting).
#  2. Data directory not empty, but the members with a leader answer with
#     lists that no longer hold this member's peer URL: the data belongs to
#     a member that was removed (a scale-down whose volume was kept). The data
#     is moved aside (DATA.removed-TIME, never deleted) and it joins as in 3.
#  3. Data directory empty and a member with a leader answers: a replaced pod
#     (lost volume) or a scale-up. If the member list still has this peer URL
#     (the old incarnation, whose log is gone), that entry is removed first:
#     a member that forgot what it acknowledged must not count towards a
#     quorum. Then /v3/cluster/member/add as a learner, then exec moord
#     --initial-cluster-state existing with the current members: it gets the
#     store by snapshot. A promoter left running beside moord makes it a
#     voter once its applied index is within MOOR_PROMOTE_MAX_LAG entries of
#     the cluster's (so the quorum never waits for a member still catching
#     up); it runs at every start and ends once the member is a voter or
#     moord is gone. MOOR_JOIN_AS_LEARNER=false adds voters directly.
#  4. Data directory empty, no member has a leader, this ordinal is one of the
#     first MOOR_INITIAL_REPLICAS, and every member that answers is still at
#     raft term 1 (no election ever won: the cluster is being bootstrapped):
#     exec moord --initial-cluster-state new with members 0..N-1.
#  5. Otherwise (an empty volume while the cluster exists but has no leader,
#     or a scale-up pod without a leader to add it): wait and retry for
#     MOOR_JOIN_TIMEOUT seconds, then exit 1 (Kubernetes restarts the pod).
#     Bootstrapping a new cluster over an existing one would lose data.
#
# Environment, besides deploy/lib.sh's:
#   MOORD                  the daemon (default: moord on PATH)
#   MOOR_REPLICAS          ordinals to probe for peers (default 3)
#   MOOR_INITIAL_REPLICAS  size of the cluster at bootstrap (default MOOR_REPLICAS);
#                          keep it fixed when scaling
#   MOOR_LISTEN_HOST       listen address (default 0.0.0.0; the own address in test mode)
#   MOOR_JOIN_TIMEOUT      seconds to keep trying to join (default 120)
#   MOOR_TLS_DIR           certificates when MOOR_TLS=true (default /etc/moor/tls)
# Arguments are passed on to moord after the flags computed here, except
# when the first one is "moord" or "moorctl": then that program is run as
# given, configured by its arguments and MOOR_*/MOORCTL_* variables alone
# (docker run IMAGE moord --name ..., docker run IMAGE moorctl get k).

here=$(dirname "$(readlink -f "$0")")
# shellcheck source=deploy/lib.sh
source "${MOOR_DEPLOY_LIB:-$here/lib.sh}"

MOORD=${MOORD:-moord}
case ${1:-} in
moord)
	shift
	exec "$MOORD" "$@"
	;;
moorctl)
	shift
	exec "${MOORCTL:-moorctl}" "$@"
	;;
esac
MOOR_REPLICAS=${MOOR_REPLICAS:-3}
MOOR_INITIAL_REPLICAS=${MOOR_INITIAL_REPLICAS:-$MOOR_REPLICAS}
MOOR_JOIN_TIMEOUT=${MOOR_JOIN_TIMEOUT:-120}
MOOR_JOIN_AS_LEARNER=${MOOR_JOIN_AS_LEARNER:-true}
MOOR_PROMOTE_MAX_LAG=${MOOR_PROMOTE_MAX_LAG:-100}

die() {
	d_log "$*"
	exit 1
}

d_identity || exit 1
my_purl=$(d_peer_url "$D_ORD") || die "no address for $(d_fqdn "$D_ORD") (MOOR_HOSTS)"
my_curl=$(d_client_url "$D_ORD") || die "no address for $(d_fqdn "$D_ORD")"
if [[ -n $MOOR_HOSTS ]]; then
	listen=${MOOR_LISTEN_HOST:-$(d_addr "$(d_fqdn "$D_ORD")")}
else
	listen=${MOOR_LISTEN_HOST:-0.0.0.0}
fi
scheme=$(d_scheme)

flags=(--name "$D_NAME" --data-dir "$MOOR_DATA_DIR"
	--listen-client-urls "$scheme://$listen:$MOOR_CLIENT_PORT"
	--advertise-client-urls "$my_curl"
	--listen-peer-urls "$scheme://$listen:$MOOR_PEER_PORT"
	--initial-advertise-peer-urls "$my_purl")

if [[ $MOOR_TLS == true ]]; then
	# etcd's flag names: https for clients and peers, client certificates
	# required on both, one certificate (it must name every member's DNS
	# name) for the client and the peer listener and for dialling peers.
	# An older moord without peer TLS must not silently run in clear text.
	if ! "$MOORD" --help 2>&1 | grep -q -- '--peer-cert-file'; then
		die "MOOR_TLS=true but this moord has no peer TLS (no --peer-cert-file in its --help); refusing to start without TLS"
	fi
	t=${MOOR_TLS_DIR:-/etc/moor/tls}
	flags+=(--cert-file "$t/tls.crt" --key-file "$t/tls.key" --trusted-ca-file "$t/ca.crt"
		--client-cert-auth --peer-cert-file "$t/tls.crt" --peer-key-file "$t/tls.key"
		--peer-trusted-ca-file "$t/ca.crt" --peer-client-cert-auth)
fi

# The bootstrap membership: ordinals 0..MOOR_INITIAL_REPLICAS-1 (and this
# pod, when its ordinal is above them).
bootstrap_cluster() {
	local i u out=""
	for ((i = 0; i < MOOR_INITIAL_REPLICAS; i++)); do
		u=$(d_peer_url "$i") || die "no address for $(d_fqdn "$i")"
		out+="${out:+,}$D_BASE-$i=$u"
	done
	[[ $D_ORD -ge $MOOR_INITIAL_REPLICAS ]] && out+=",$D_NAME=$my_purl"
	echo "$out"
}

# promoter: runs in the background; after the exec below, $$ is moord's
# pid, so it ends with moord. Promotes this member when the cluster lists it
# as a learner and it has caught up; ends when it is a voter.
promoter() {
	local peer list entry mine theirs
	while kill -0 $$ 2>/dev/null; do
		sleep 1
		peer=$(d_find_leader_peer) || continue
		list=$(d_members "$peer") || continue
		entry=$(own_entry "$list")
		[[ -n $entry ]] || continue
		[[ ${entry##* } == true ]] || return 0
		mine=$(d_status_field "$my_curl" raftAppliedIndex)
		theirs=$(d_status_field "$peer" raftAppliedIndex)
		[[ -n $mine && -n $theirs ]] || continue
		((mine > 0 && mine + MOOR_PROMOTE_MAX_LAG >= theirs)) || continue
		if d_post "$peer" /v3/cluster/member/promote "{\"ID\":\"${entry%% *}\"}" >/dev/null; then
			d_log "promoted $D_NAME to a voter (applied index $mine, the cluster's $theirs)"
			return 0
		fi
	done
}

start() { # STATE INITIAL-CLUSTER
	d_log "starting $D_NAME ($my_purl) with --initial-cluster-state $1 --initial-cluster $2"
	[[ $1 == existing ]] && promoter </dev/null &
	exec "$MOORD" "${flags[@]}" --initial-cluster "$2" --initial-cluster-state "$1" "${extra[@]}"
}
extra=("$@")

data_empty() {
	[[ ! -d $MOOR_DATA_DIR ]] || [[ -z $(ls -A "$MOOR_DATA_DIR" 2>/dev/null) ]]
}

# own_entry MEMBERS: the "ID NAME URL" line of this member's peer URL.
own_entry() { awk -v u="$my_purl" '$3 == u' <<<"$1"; }

# join LEADER-URL: case 3; returns (for a retry) only when a step failed.
join() {
	local peer=$1 list entry id cluster
	list=$(d_members "$peer") || return 1
	entry=$(own_entry "$list")
	if [[ -n $entry ]]; then
		id=${entry%% *}
		d_log "the cluster still lists this member ($id) but its data is gone: removing that entry first"
		d_post "$peer" /v3/cluster/member/remove "{\"ID\":\"$id\"}" >/dev/null || return 1
		list=$(d_members "$peer") || return 1
		[[ -z $(own_entry "$list") ]] || return 1
	fi
	d_post "$peer" /v3/cluster/member/add \
		"{\"peerURLs\":[\"$my_purl\"],\"isLearner\":$MOOR_JOIN_AS_LEARNER}" >/dev/null || return 1
	if [[ $MOOR_JOIN_AS_LEARNER == true ]]; then
		d_log "added $D_NAME to the cluster as a learner"
	else
		d_log "added $D_NAME to the cluster as a voter"
	fi
	cluster=$(awk '$3 != "-" { n = ($2 == "-") ? "member-" $1 : $2; printf "%s=%s,", n, $3 }' <<<"$list")
	start existing "$cluster$D_NAME=$my_purl"
}

# removed_everywhere: every other member that has a leader answers with a
# member list, none of them lists this member, and there is at least one.
# (A follower that has not yet applied this member's addition would lack it
# alone; asking all of them keeps a recent joiner from discarding its data.)
removed_everywhere() {
	local i u list n=0
	for i in $(d_other_ordinals); do
		u=$(d_client_url "$i") || continue
		d_has_leader "$u" || continue
		list=$(d_members "$u") || return 1
		[[ -n $list && -z $(own_entry "$list") ]] || return 1
		n=$((n + 1))
	done
	[[ $n -gt 0 ]]
}

if ! data_empty; then
	if removed_everywhere; then
		aside="$MOOR_DATA_DIR.removed-$(date -u +%Y%m%dT%H%M%SZ)"
		d_log "no member with a leader lists $my_purl any more: this data belongs to a removed member; moving it to $aside and joining anew"
		mv "$MOOR_DATA_DIR" "$aside" || die "cannot move $MOOR_DATA_DIR aside"
	else
		start existing "$(bootstrap_cluster)"
	fi
fi

deadline=$((SECONDS + MOOR_JOIN_TIMEOUT))
said=""
while ((SECONDS < deadline)); do
	if peer=$(d_find_leader_peer); then
		join "$peer"
		d_log "joining through $peer failed; retrying"
	elif [[ $D_ORD -lt $MOOR_INITIAL_REPLICAS ]]; then
		fresh=1
		for i in $(d_other_ordinals); do
			u=$(d_client_url "$i") || continue
			term=$(d_status_field "$u" raftTerm) || term=""
			if [[ -n $term && $term -gt 1 ]]; then
				fresh=0
				why="$(d_fqdn "$i") is at raft term $term but has no leader"
			fi
		done
		[[ $fresh -eq 1 ]] && start new "$(bootstrap_cluster)"
		[[ $said == "$why" ]] || d_log "empty data directory and the cluster exists ($why): waiting for a leader to rejoin through"
		said=$why
	else
		[[ -n $said ]] || d_log "ordinal $D_ORD is beyond the bootstrap members: waiting for a member with a leader to add it"
		said=1
	fi
	sleep 1
done
die "gave up after ${MOOR_JOIN_TIMEOUT}s: no member with a leader to join through"

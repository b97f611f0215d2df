#!/usr/bin/env bash
# The container's preStop hook: runs before the kubelet sends SIGTERM.
#
# A pod stops for many reasons (rolling update, node drain, eviction), and
# only one of them means this member must leave the cluster: a scale-down,
# where the StatefulSet's desired replicas no longer include this ordinal.
# Then the member is removed through the membership API (moord stops itself
# with exit 0 once its removal is applied) so the cluster's quorum is counted
# over the members that remain. In every other case it does nothing and
# SIGTERM's graceful stop (leadership handed over, in-flight requests done)
# is all there is. A scale to 0 replicas is taken as a pause: nobody leaves.
#
# The desired replica count: MOOR_DESIRED_REPLICAS when set (tests), else the
# StatefulSet's scale subresource read from the Kubernetes API with the pod's
# service account (RBAC: get statefulsets/scale). When it cannot be read, the
# member is NOT removed: a member left in the list is visible and easy to
# remove by hand (docs/operations.md), a member removed by mistake is not.
#
# Environment, besides deploy/lib.sh's:
#   MOOR_DESIRED_REPLICAS  overrides the API lookup
#   MOOR_STATEFULSET       the StatefulSet's name (default: the hostname's base)
#   MOOR_STOP_TIMEOUT      seconds to wait for the removal and moord's exit (default 30)

here=$(dirname "$(readlink -f "$0")")
# shellcheck source=deploy/lib.sh
source "${MOOR_DEPLOY_LIB:-$here/lib.sh}"
MOOR_STOP_TIMEOUT=${MOOR_STOP_TIMEOUT:-30}

d_identity || exit 0

desired_replicas() {
	local sa=/var/run/secrets/kubernetes.io/serviceaccount ns body
	if [[ -n ${MOOR_DESIRED_REPLICAS:-} ]]; then
		echo "$MOOR_DESIRED_REPLICAS"
		return 0
	fi
	[[ -r $sa/token && -r $sa/namespace ]] || return 1
	ns=$(cat "$sa/namespace")
	body=$(curl -sS -f -m 5 --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" \
		"https://${KUBERNETES_SERVICE_HOST:-kubernetes.default.svc}:${KUBERNETES_SERVICE_PORT:-443}/apis/apps/v1/namespaces/$ns/statefulsets/${MOOR_STATEFULSET:-$D_BASE}/scale") ||
		return 1
	# {"kind":"Scale",...,"spec":{"replicas":N},"status":{...}}
	tr -d ' \n' <<<"$body" | sed -n 's/.*"spec":{"replicas":\([0-9]*\)}.*/\1/p' | grep .
}

if ! want=$(desired_replicas); then
	d_log "preStop: cannot read the desired replica count; $D_NAME stays a member"
	exit 0
fi
if [[ $D_ORD -lt $want ]]; then
	exit 0 # a restart, not a scale-down
fi
if [[ $want -lt 1 ]]; then
	# Scaling to 0 pauses the cluster; removing every member one after the
	# other would destroy it. The members keep their volumes and come back.
	d_log "preStop: scale to 0 replicas is a pause: $D_NAME stays a member"
	exit 0
fi

my_purl=$(d_peer_url "$D_ORD") || exit 0
my_curl=$(d_client_url "$D_ORD") || exit 0
d_log "preStop: scale-down to $want replicas: removing $D_NAME ($my_purl) from the cluster"
deadline=$((SECONDS + MOOR_STOP_TIMEOUT))
removed=0
while ((SECONDS < deadline)); do
	# Ask another member with a leader; this member itself as a last resort.
	peer=$(d_find_leader_peer) || peer=$my_curl
	list=$(d_members "$peer") || list=""
	if [[ -n $list ]]; then
		id=$(awk -v u="$my_purl" '$3 == u { print $1 }' <<<"$list")
		if [[ -z $id ]]; then
			removed=1
			break
		fi
		# Two members leaving at once (Parallel pod management) take turns:
		# a failed remove is retried.
		d_post "$peer" /v3/cluster/member/remove "{\"ID\":\"$id\"}" >/dev/null
	fi
	sleep 0.5
done
if [[ $removed -ne 1 ]]; then
	d_log "preStop: could not remove $D_NAME within ${MOOR_STOP_TIMEOUT}s; remove it by hand"
	exit 1
fi
d_log "preStop: $D_NAME removed; waiting for moord to stop"
while ((SECONDS < deadline)); do
	d_curl -f -o /dev/null "$my_curl/livez" 2>/dev/null || exit 0
	sleep 0.2
done
exit 0

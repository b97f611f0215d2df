#!/usr/bin/env bash
# The kubelet's probes when TLS is on (the Kubernetes tls component):
# moord then requires a client certificate on its client port, which the
# kubelet's own HTTPS probes cannot present. `probe.sh PATH` GETs PATH
# (/livez, /readyz) from this member's own client URL with the member's
# certificate (deploy/lib.sh's d_curl), connecting to 127.0.0.1 (curl
# --resolve) so that neither DNS nor a Service is in the way; the server
# certificate is checked against the member's DNS name, which it must name
# for its peers anyway. Exit 0 on a 200 answer, else non-zero.
#
# Environment: deploy/lib.sh's (MOOR_TLS, MOOR_TLS_DIR, MOOR_PEER_DOMAIN,
# MOOR_CLIENT_PORT, MOOR_HOSTS); MOOR_CURL_TIMEOUT defaults to 2 s here.

MOOR_CURL_TIMEOUT=${MOOR_CURL_TIMEOUT:-2}
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=deploy/lib.sh
source "${MOOR_DEPLOY_LIB:-$here/lib.sh}"

path=${1:-}
if [[ $path != /* ]]; then
	d_log "usage: probe.sh PATH (e.g. /livez)"
	exit 2
fi
d_identity || exit 1
url=$(d_client_url "$D_ORD") || exit 1
resolve=()
# In test mode (MOOR_HOSTS) the URL carries the address already.
[[ -z $MOOR_HOSTS ]] && resolve=(--resolve "$(d_fqdn "$D_ORD"):$MOOR_CLIENT_PORT:127.0.0.1")
d_curl -f -o /dev/null "${resolve[@]}" "$url$path"

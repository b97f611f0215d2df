#!/usr/bin/env bash
# Every Kubernetes manifest under deploy/kubernetes/ parsed and checked.
# kubeconform/kubeval are not packaged in Debian, so there is no schema
# check: tests/deploy/check_manifests.py checks the fields that matter to
# moor. The base and the overlays (example: 5 members, 50 GiB, a namespace;
# tls: the TLS component) are rendered with `kubectl kustomize` when kubectl
# is installed; without it only the base's files are checked as they are.
# PyYAML comes from Debian's python3-yaml, installed here when missing.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
K=deploy/kubernetes
tmp=$(mktemp -d /tmp/moor-manifests.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if ! python3 -c 'import yaml' 2>/dev/null; then
	echo "installing python3-yaml"
	SUDO=
	[[ $(id -u) -ne 0 ]] && SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null ||
		{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null; }
fi
python3 -c 'import yaml' || { echo "no PyYAML"; echo "0 passed, 1 failed"; exit 1; }

fail=0
# Every YAML file parses, kustomize or not.
for f in $(find "$K" -name '*.yaml' | sort); do
	if ! python3 -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' "$f"; then
		echo "FAIL $f does not parse"
		fail=$((fail + 1))
	fi
done

args=()
KUBECTL=${KUBECTL:-kubectl}
if command -v "$KUBECTL" >/dev/null; then
	for v in base overlays/example overlays/tls; do
		name=$(basename "$v")
		if "$KUBECTL" kustomize "$K/$v" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
			args+=("$name" "$tmp/$name.yaml")
		else
			echo "FAIL kubectl kustomize $K/$v:"
			cat "$tmp/$name.err"
			fail=$((fail + 1))
		fi
	done
else
	echo "kubectl not installed: checking the base's files only, overlays not rendered"
	for f in "$K"/base/*.yaml; do
		[[ $(basename "$f") == kustomization.yaml ]] && continue
		cat "$f"
		echo "---"
	done >"$tmp/base.yaml"
	args=(base "$tmp/base.yaml")
fi
out=$(python3 tests/deploy/check_manifests.py "${args[@]}")
rc=$?
echo "$out" | sed '$d'
p=$(tail -n 1 <<<"$out" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
f=$(tail -n 1 <<<"$out" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
[[ -n $p ]] || { p=0; f=$((f + 1)); }
echo "$p passed, $((f + fail)) failed"
[[ $rc -eq 0 && $fail -eq 0 ]]

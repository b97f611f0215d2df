#!/usr/bin/env bash
# The backup CronJob's script, taken from the rendered manifest and run
# outside a container against a real moord on loopback: each run saves a
# complete snapshot (moorctl snapshot save) under a new name, only the newest
# MOOR_BACKUP_KEEP stay, and a run against a stopped member fails without
# leaving a partial file or touching the kept ones.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/tests/cluster/lib.sh"
cd "$root" || exit 1

mkdir -p "$T_TMP/bin" "$T_TMP/backup"
cp "$MOORD" "$T_TMP/bin/moord" && cp "$BUILD/bin/moorctl" "$T_TMP/bin/moorctl" || exit 1
MOORD=$T_TMP/bin/moord

# The script: the CronJob's args[0], as kubectl kustomize renders it (or
# straight from the base file when kubectl is missing).
if command -v kubectl >/dev/null; then
	kubectl kustomize deploy/kubernetes/base >"$T_TMP/base.yaml" || exit 1
else
	cp deploy/kubernetes/base/backup.yaml "$T_TMP/base.yaml"
fi
python3 - "$T_TMP/base.yaml" >"$T_TMP/backup.sh" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "CronJob" and d["metadata"]["name"] == "moor-backup":
        c = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        print(c["args"][0])
PY
t_check "the CronJob's script is found in the manifest" grep -q 'moorctl snapshot save' "$T_TMP/backup.sh"

t_cluster_init 1
t_member_start 1
t_check "a one-member cluster has a leader" t_wait_leader 15 1
for k in $(seq 1 50); do t_put 1 "k/$k" "value-$k" >/dev/null; done

backup() { # the Job's container: its env, this machine's moorctl
	env PATH="$T_TMP/bin:$PATH" MOORCTL_ENDPOINTS="${C_HOST[1]}:2379" MOORCTL_COMMAND_TIMEOUT=5s \
		MOOR_BACKUP_DIR="$T_TMP/backup" MOOR_BACKUP_KEEP=2 bash "$T_TMP/backup.sh" >>"$T_TMP/backup.log" 2>&1
}
snaps() { find "$T_TMP/backup" -mindepth 1 -name 'moor-*.snapshot' -printf '%f\n' | sort; }
files() { find "$T_TMP/backup" -mindepth 1 -printf '%f\n' | sort; }
names=()
for r in 1 2 3; do
	backup
	rc=$?
	t_check "backup run $r exits 0 (got $rc)" test "$rc" = 0
	names+=("$(sed -n 's/^saved .*\/\(moor-.*\.snapshot\) (.*/\1/p' "$T_TMP/backup.log" | tail -n 1)")
	t_put 1 "k/after-$r" x >/dev/null
done
t_check "three runs saved three distinct names" test "$(printf '%s\n' "${names[@]}" | sort -u | grep -c .)" = 3
t_check "only the newest two are kept" test "$(snaps | tr '\n' ' ')" = "${names[1]} ${names[2]} "
t_check "the kept snapshots are not empty" bash -c "cd '$T_TMP/backup' && test -s '${names[1]}' && test -s '${names[2]}'"
t_check "no partial file is left" test "$(files)" = "$(snaps)"
t_check "the snapshot carries the data (bigger than an empty store's)" \
	test "$(stat -c %s "$T_TMP/backup/${names[2]}")" -gt 1000

t_member_stop 1 TERM
backup
rc=$?
t_check "a run against a stopped member fails (exit $rc)" test "$rc" -ne 0
t_check "... keeps the two earlier snapshots and leaves no partial file" \
	test "$(files | tr '\n' ' ')" = "${names[1]} ${names[2]} "
t_done

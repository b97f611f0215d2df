#!/usr/bin/env bash
# Back up and restore: moorctl snapshot save from a running cluster, then
# moorctl snapshot restore builds the data directories of a new cluster on
# other addresses, which starts with every key and revision of the backup,
# takes writes, and agrees on HashKV. A damaged backup and a data directory
# that already holds a member are refused.
set -u
source "$(dirname "$0")/lib.sh"
MOORCTL=${MOORCTL:-$BUILD/bin/moorctl}

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "cluster A has a leader" t_wait_leader 15 1 2 3
for k in $(seq 1 50); do t_put $(((k % 3) + 1)) "r/$k" "v$k" >/dev/null; done
revA=$(t_api 1 /v3/maintenance/status '{}' | sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')
t_check "moorctl snapshot save writes a backup" \
	"$MOORCTL" --endpoints "$(t_url 2)" snapshot save "$T_TMP/backup.db"
for i in 1 2 3; do t_member_stop "$i" TERM; done

# cluster B: new addresses, data directories built from the backup
t_cluster_init 3
for i in 1 2 3; do
	MOORD=$MOORD "$MOORCTL" snapshot restore "$T_TMP/backup.db" --data-dir="$T_TMP/b$i" \
		--name="m$i" --initial-cluster="$C_CLUSTER" --initial-advertise-peer-urls="$(t_peer_url "$i")" \
		>"$T_TMP/restore$i.out" 2>&1
	t_check "moorctl snapshot restore builds member m$i's data directory (exit $?)" test $? = 0
done
for i in 1 2 3; do
	"$MOORD" --name "m$i" --data-dir "$T_TMP/b$i" --listen-client-urls "$(t_url "$i")" \
		--listen-peer-urls "$(t_peer_url "$i")" --initial-cluster "$C_CLUSTER" 2>>"$T_TMP/b$i.log" &
	C_PID[$i]=$!
	T_PIDS+=("${C_PID[$i]}")
done
t_check "the restored cluster B elects a leader" t_wait_leader 15 1 2 3
t_check "it holds the 50 keys of the backup" test "$(t_count 2 r/)" = 50
t_check "with their values" test "$(t_get 3 r/17)" = v17
revB=$(t_put 1 after restore)
t_check "its revisions go on from the backup's ($revA -> $revB)" test "$revB" -gt "$revA"
h=$(t_hashkv 1)
t_check "HashKV is equal on the three restored members" \
	t_wait_eq 10 "$h $h" bash -c "echo \$(curl -fsS -X POST '$(t_url 2)/v3/maintenance/hashkv' -d '{}' | sed -n 's/.*\"hash\":\\([0-9]*\\).*/\\1/p') \$(curl -fsS -X POST '$(t_url 3)/v3/maintenance/hashkv' -d '{}' | sed -n 's/.*\"hash\":\\([0-9]*\\).*/\\1/p')"
t_check "members report no alarm from the old cluster" \
	bash -c "! curl -fsS -X POST '$(t_url 1)/v3/maintenance/alarm' -d '{}' | grep -q alarm\\\""
for i in 1 2 3; do t_member_stop "$i" TERM; done

# a damaged backup, and a directory that already holds a member
cp "$T_TMP/backup.db" "$T_TMP/bad.db"
printf 'X' | dd of="$T_TMP/bad.db" bs=1 seek=100 conv=notrunc 2>/dev/null
MOORD=$MOORD "$MOORCTL" snapshot restore "$T_TMP/bad.db" --data-dir="$T_TMP/c1" --name=m1 \
	--initial-cluster="$C_CLUSTER" --initial-advertise-peer-urls="$(t_peer_url 1)" >"$T_TMP/bad.out" 2>&1
t_check "a damaged backup is refused" test $? != 0
t_check "... naming the failed check" grep -q "SHA-256" "$T_TMP/bad.out"
MOORD=$MOORD "$MOORCTL" snapshot restore "$T_TMP/backup.db" --data-dir="$T_TMP/b1" --name=m1 \
	--initial-cluster="$C_CLUSTER" --initial-advertise-peer-urls="$(t_peer_url 1)" >"$T_TMP/again.out" 2>&1
t_check "restoring over a member's data directory is refused" test $? != 0
t_check "... with a clear message" grep -q "already holds a member" "$T_TMP/again.out"
t_done

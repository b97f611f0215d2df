#!/usr/bin/env bash
# The example controller (client/examples/controller.c) against a 3-member
# cluster: two copies, one active; it writes a status per object; it
# survives the death of the member it talks to and of the active copy (the
# standby takes over when the lease of the dead one expires); deleted objects
# lose their status.
set -u
source "$(dirname "$0")/../cluster/lib.sh"
# a private copy of moord: a concurrent build may relink it mid-test
cp "$MOORD" "$T_TMP/moord" && MOORD=$T_TMP/moord
M=${MOORCTL:-$BUILD/bin/moorctl}
CTL=${CONTROLLER:-$BUILD/bin/moor-example-controller}

t_cluster_init 3
for i in 1 2 3; do t_member_start "$i"; done
t_check "a leader is elected within 15 s" t_wait_leader 15 1 2 3
EPS="$(t_url 1),$(t_url 2),$(t_url 3)"
export MOORCTL_ENDPOINTS=$EPS

start_ctl() { # NAME: starts a copy; its pid in CTL_PID[NAME]
	"$CTL" --endpoints="$EPS" --name="$1" --ttl=2 2>>"$T_TMP/ctl-$1.log" &
	CTL_PID[$1]=$!
	T_PIDS+=("${CTL_PID[$1]}")
}
declare -A CTL_PID
status_of() { $M get "status/$1" --print-value-only 2>/dev/null | sed -E 's/ at [0-9]+$//'; }
active() { grep -l "active" "$T_TMP"/ctl-*.log 2>/dev/null | sed -E 's/.*ctl-(.*)\.log/\1/' | tr '\n' ' '; }

start_ctl a
t_check "the first copy becomes active" t_wait_eq 10 "a " active
start_ctl b
for k in 1 2 3; do $M put "objects/x$k" "v$k" >/dev/null; done
for k in 1 2 3; do
	t_check "object x$k gets its status" t_wait_eq 10 "observed v$k" status_of "x$k"
done
t_check "only one copy is active" test "$(active)" = "a "

# The member the controllers talk to (the first endpoint) dies.
t_member_stop 1 KILL
$M put objects/x4 v4 >/dev/null
t_check "after the death of its member, the active copy still reconciles" t_wait_eq 15 "observed v4" status_of x4
$M put objects/x1 v1b >/dev/null
t_check "... and sees updates" t_wait_eq 10 "observed v1b" status_of x1

# The active copy dies; the standby takes over once its lease expires.
kill -KILL "${CTL_PID[a]}"
t_wait_exit "${CTL_PID[a]}" 10
$M put objects/x5 v5 >/dev/null
t_check "the standby takes over after the active copy's death" t_wait_eq 20 "observed v5" status_of x5
t_check "... and says so" grep -q active "$T_TMP/ctl-b.log"
$M del objects/x2 >/dev/null
t_check "a deleted object loses its status" t_wait_eq 10 "" status_of x2

# The dead member comes back; a new copy waits as standby; SIGTERM hands over.
t_member_start 1
mv "$T_TMP/ctl-a.log" "$T_TMP/old-a.log"
start_ctl a
$M put objects/x6 v6 >/dev/null
t_check "the active copy reconciles with a standby waiting" t_wait_eq 10 "observed v6" status_of x6
t_check "the new copy stays standby" test "$(grep -c active "$T_TMP/ctl-a.log")" = 0
kill -TERM "${CTL_PID[b]}"
t_wait_exit "${CTL_PID[b]}" 15
t_check "the active copy exits 0 on SIGTERM (got $T_RC)" test "$T_RC" = 0
$M put objects/x7 v7 >/dev/null
t_check "the standby takes over at once after a resignation" t_wait_eq 10 "observed v7" status_of x7
t_check "every status is the object's latest value" test \
	"$(for k in 1 3 4 5 6 7; do status_of "x$k"; done | tr '\n' ' ')" = \
	"observed v1b observed v3 observed v4 observed v5 observed v6 observed v7 "
kill -TERM "${CTL_PID[a]}"
t_wait_exit "${CTL_PID[a]}" 15

# The README's program (client/examples/hello.c), linked against the shared
# library as a user would link it.
HELLO_SO=$T_TMP/hello-shared
SANFLAGS=
[[ $BUILD == *san* ]] && SANFLAGS="-fsanitize=address,undefined"
if cc $SANFLAGS -I. -o "$HELLO_SO" client/examples/hello.c -L"$BUILD/lib" -lmoor 2>"$T_TMP/cc.log"; then
	t_out_hello=$(LD_LIBRARY_PATH=$BUILD/lib "$HELLO_SO" "$(t_url 2)" | sed -E 's/revision [0-9]+/revision N/')
	t_check "the README program, linked with -lmoor (shared), puts, gets and watches" \
		test "$t_out_hello" = "hello at revision N
watched: goodbye"
else
	t_check "the README program compiles against libmoor.so" false
	cat "$T_TMP/cc.log"
fi
t_check "the static build of it works too" \
	bash -c "'$BUILD/bin/moor-example-hello' '$(t_url 3)' | grep -q '^watched: goodbye$'"
for i in 1 2 3; do t_member_stop "$i" TERM; done
if [[ $T_FAILED -gt 0 ]]; then
	tail -n 30 "$T_TMP"/m*.log "$T_TMP"/ctl-*.log
fi
t_done

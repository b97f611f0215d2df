#!/usr/bin/env bash
# Checks the module dependency rules of DESIGN.md by reading #include lines,
# and that the deterministic libraries read no clock, no global PRNG and no
# environment. Run by `make test`; prints what breaks a rule and exits 1.
set -u
cd "$(dirname "$0")/.."

# module → the project folders its files may include from
declare -A allowed=(
	[common]="common"
	[raft]="common raft"
	[wal]="common wal"
	[kv]="common kv proto"
	[watch]="common watch kv proto"
	[server]="common proto raft wal kv watch server"
	[client]="common proto client"
)
bad=0
for mod in "${!allowed[@]}"; do
	[[ -d $mod ]] || continue
	while IFS=: read -r file line inc; do
		top=${inc%%/*}
		[[ $inc == */* ]] || continue # system-style or same-folder include
		[[ -d $top ]] || continue      # a library header such as rocksdb/c.h
		ok=0
		for a in ${allowed[$mod]}; do
			[[ $top == "$a" ]] && ok=1
		done
		if [[ $ok -eq 0 ]]; then
			echo "check-deps: $file:$line: $mod/ may not include \"$inc\" (allowed: ${allowed[$mod]})"
			bad=1
		fi
	done < <(grep -n -o -E '^#include "[^"]+"' -r "$mod" --include='*.c' --include='*.h' |
		sed -E 's/^([^:]+):([0-9]+):#include "([^"]+)"/\1:\2:\3/')
done

# The deterministic libraries: time, randomness and environment come from the caller.
for mod in raft wal kv watch; do
	[[ -d $mod ]] || continue
	hits=$(grep -n -E '\b(clock_gettime|gettimeofday|time\(NULL\)|rand\(|srand\(|random\(|getenv\()|common/clock\.h' \
		-r "$mod" --include='*.c' --include='*.h' | grep -v -E '^\S+:[0-9]+:\s*(/\*|\*)')
	if [[ -n $hits ]]; then
		echo "check-deps: $mod/ must take time, randomness and environment from its caller:"
		echo "$hits" | sed 's/^/    /'
		bad=1
	fi
done
if [[ $bad -eq 0 ]]; then
	echo "check-deps: module dependencies ok"
fi
exit $bad

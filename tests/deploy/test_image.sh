#!/usr/bin/env bash
# deploy/Dockerfile without a Docker engine: the runtime stage's package list
# covers every shared library the built moord and moorctl load (ldd, mapped
# to Debian packages with dpkg -S, against the dependency closure of the list
# from apt-cache), each library a binary links directly is installed by name,
# and the file has the shape the image promises (two stages on debian:12 and
# debian:12-slim, non-root numeric user, volume, /livez health check, the
# entrypoint, files it copies that exist).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
cd "$root" || exit 1
DF=deploy/Dockerfile
passed=0
failed=0
check() {
	local name=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok   $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
	fi
}

in_list() { [[ -n $1 ]] && grep -qx -- "$1" <<<"$2"; }

pkgs=$(sed -n 's/^ARG RUNTIME_PACKAGES="\([^"]*\)"$/\1/p' "$DF")
check "the runtime stage names its packages in ARG RUNTIME_PACKAGES" test -n "$pkgs"
read -r -a list <<<"$pkgs"
known=$(apt-cache show --no-all-versions "${list[@]}" 2>/dev/null | sed -n 's/^Package: //p')
for p in "${list[@]}"; do
	check "runtime package $p exists in Debian's index" grep -qx -- "$p" <<<"$known"
done
check "curl is installed (the entrypoint, the preStop hook and HEALTHCHECK use it)" in_list curl "$(tr ' ' '\n' <<<"$pkgs")"
check "tini is installed (the ENTRYPOINT runs it)" in_list tini "$(tr ' ' '\n' <<<"$pkgs")"
check "no -dev package in the runtime stage" bash -c "! grep -q -- '-dev\\b' <<<'$pkgs'"

# The closure: every package the list pulls in (Depends and Pre-Depends).
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
	--no-breaks --no-replaces --no-enhances "${list[@]}" 2>/dev/null | grep -v '^ ' | sed 's/:.*//' | sort -u)
# library path -> package, for every library either binary loads, with one
# dpkg -S over all of them (by the path ldd shows and by its real path:
# usrmerge makes /lib/x.so and /usr/lib/x.so the same file)
declare -A PKG
libs=()
for b in moord moorctl; do
	[[ -x $BUILD/bin/$b ]] &&
		mapfile -t -O "${#libs[@]}" libs < <(ldd "$BUILD/bin/$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
done
while IFS= read -r line; do
	p=${line%%: *}
	PKG[${line#*: }]=${p%%:*}
done < <(for l in "${libs[@]}"; do echo "$l"; readlink -f "$l"; done | sort -u | xargs -r dpkg -S 2>/dev/null)
pkg_of() { # a library path -> its Debian package (no :arch)
	local p=${PKG[$1]:-${PKG[$(readlink -f "$1")]:-}}
	[[ -n $p ]] && echo "$p"
}
for b in moord moorctl; do
	bin=$BUILD/bin/$b
	if [[ ! -x $bin ]]; then
		check "$bin is built (make $bin)" false
		continue
	fi
	# every library loaded, directly or not
	while read -r lib path; do
		[[ -n $path ]] || continue
		p=$(pkg_of "$path") || p=""
		# a sanitizer build's runtime is not what the image ships
		case $p in libasan* | libubsan* | libtsan* | libclang-rt*) continue ;; esac
		check "$b loads $lib, from package ${p:-?}, which the image installs" \
			in_list "$p" "$closure"
	done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
	# libraries linked directly must be installed by name, not by luck
	for lib in $(readelf -d "$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
		case $lib in libc.so.* | libm.so.* | ld-linux* | libpthread.so.* | libstdc++* | libgcc_s*) continue ;; esac
		case $lib in libasan* | libubsan* | libtsan*) continue ;; esac # sanitizer builds
		path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
		p=$(pkg_of "$path") || p=""
		check "$b links $lib directly: its package ${p:-?} is in RUNTIME_PACKAGES" \
			in_list "$p" "$(tr ' ' '\n' <<<"$pkgs")"
	done
done

froms=$(grep -c '^FROM ' "$DF")
check "two stages" test "$froms" = 2
check "builds on debian:12" grep -q '^FROM debian:12 AS build$' "$DF"
check "runs on debian:12-slim" bash -c "grep '^FROM ' '$DF' | tail -n 1 | grep -q '^FROM debian:12-slim\$'"
check "builds with scripts/deps.sh and make" bash -c "grep -q 'scripts/deps.sh' '$DF' && grep -q 'make .*build/bin/moord' '$DF'"
user=$(sed -n 's/^USER \([0-9]*\)\(:[0-9]*\)\{0,1\}$/\1/p' "$DF" | tail -n 1)
check "runs as a numeric non-root user ($user) in group 0" bash -c "[[ -n '$user' && '$user' != 0 ]] && grep -q '^USER $user:0\$' '$DF'"
check "the data directory is group-0 writable (arbitrary uids)" grep -q 'chmod -R g=u /var/lib/moor' "$DF"
check "data in a volume" grep -q '^VOLUME \["/var/lib/moor"\]' "$DF"
check "MOOR_DATA_DIR is inside the volume" grep -q 'MOOR_DATA_DIR=/var/lib/moor/data' "$DF"
check "health check against /livez" bash -c "grep -A1 '^HEALTHCHECK' '$DF' | grep -q '/livez'"
check "the entrypoint runs under tini" grep -q '^ENTRYPOINT \["/usr/bin/tini", "--", "/usr/local/lib/moor/entrypoint.sh"\]' "$DF"
for f in $(grep '^COPY deploy/' "$DF" | tr ' ' '\n' | grep '^deploy/'); do
	check "copied file $f exists and is executable" test -x "$f"
done
check "the image copies entrypoint, preStop hook, TLS probe and their library" \
	grep -q '^COPY deploy/entrypoint.sh deploy/prestop.sh deploy/probe.sh deploy/lib.sh /usr/local/lib/moor/$' "$DF"

# The entrypoint hands "moord ..." and "moorctl ..." straight through.
out=$(MOORD=$BUILD/bin/moord bash deploy/entrypoint.sh moord --help 2>&1)
check "entrypoint 'moord --help' runs moord itself" grep -q 'Usage: moord' <<<"$out"
out=$(MOORCTL=$BUILD/bin/moorctl bash deploy/entrypoint.sh moorctl --help 2>&1)
check "entrypoint 'moorctl --help' runs moorctl itself" grep -q 'moorctl - a command line client' <<<"$out"
if command -v shellcheck >/dev/null; then
	check "shellcheck finds nothing in deploy/*.sh" shellcheck -x deploy/entrypoint.sh deploy/prestop.sh deploy/probe.sh deploy/lib.sh
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/bin/bash
# Builds critest and crictl from sigs.k8s.io/cri-tools (test tools only: Hull itself is C) into
# a cache outside the source tree, once:
#
#   ${HULL_TOOLS:-/var/cache/hull-tools}/bin/critest-v1.37.0, crictl-v1.37.0
#   ${HULL_TOOLS:-/var/cache/hull-tools}/bin/critest, crictl   (symlinks to the versioned ones)
#
# Idempotent: a binary that is already there is not rebuilt.  The module source comes through
# the Go module proxy into the shared GOMODCACHE (go env GOMODCACHE); builds run under `nice`.
# critest is a ginkgo test binary: cri-tools builds it with `go test -c ./cmd/critest`.
#
# critest -parallel runs the `ginkgo` CLI from PATH: `ginkgo` builds it (bin/ginkgo-VERSION, the
# github.com/onsi/ginkgo/v2 version cri-tools' go.mod requires, plus a bin/ginkgo symlink).
#
#   tests/tools/build-cri-tools.sh [critest|crictl|ginkgo]...   (default: all three)
#   prints the path of each binary it was asked for, one a line.
set -euo pipefail

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
TOOLS=${HULL_TOOLS:-/var/cache/hull-tools}
GO=${GO:-/usr/local/go/bin/go}
BIN=$TOOLS/bin
MODULE=sigs.k8s.io/cri-tools

[ $# -gt 0 ] || set -- critest crictl ginkgo
for t in "$@"; do
	case $t in critest | crictl | ginkgo) ;; *)
		echo "build-cri-tools.sh: unknown tool '$t' (critest, crictl or ginkgo)" >&2
		exit 2
		;;
	esac
done

if [ ! -x "$GO" ]; then
	echo "build-cri-tools.sh: $GO not found (Go 1.26 is expected at /usr/local/go)" >&2
	exit 1
fi
mkdir -p "$BIN"

# One builder at a time per cache (kubelet tests and make conformance may start together).
exec 9>"$TOOLS/.lock"
flock 9

moddir=
module_dir() {
	if [ -z "$moddir" ]; then
		# Downloads into the shared module cache (a no-op when present) and prints its folder.
		moddir=$(cd "$TOOLS" && GOFLAGS=-mod=mod nice -n 10 "$GO" mod download -json \
			"$MODULE@$CRI_TOOLS_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
		[ -n "$moddir" ] && [ -d "$moddir" ] || {
			echo "build-cri-tools.sh: go mod download $MODULE@$CRI_TOOLS_VERSION failed" >&2
			exit 1
		}
	fi
}

# ginkgo: the version cri-tools requires, built from its own module (read-only, like cri-tools).
build_ginkgo() {
	module_dir
	local gv out gdir
	gv=$(sed -n 's|^[[:space:]]*github.com/onsi/ginkgo/v2 \(v[^ ]*\)$|\1|p' "$moddir/go.mod")
	[ -n "$gv" ] || {
		echo "build-cri-tools.sh: no github.com/onsi/ginkgo/v2 in $moddir/go.mod" >&2
		exit 1
	}
	out=$BIN/ginkgo-$gv
	if [ ! -x "$out" ]; then
		gdir=$(cd "$TOOLS" && GOFLAGS=-mod=mod nice -n 10 "$GO" mod download -json \
			"github.com/onsi/ginkgo/v2@$gv" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
		echo "build-cri-tools.sh: building ginkgo $gv into $out" >&2
		(
			cd "$gdir"
			export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath"
			nice -n 10 "$GO" build -o "$out.tmp" ./ginkgo
		)
		mv -f "$out.tmp" "$out"
	fi
	ln -sfn "ginkgo-$gv" "$BIN/ginkgo"
	echo "$out"
}

build() {
	if [ "$1" = ginkgo ]; then
		build_ginkgo
		return
	fi
	local tool=$1 out=$BIN/$1-$CRI_TOOLS_VERSION
	if [ ! -x "$out" ]; then
		module_dir
		echo "build-cri-tools.sh: building $tool $CRI_TOOLS_VERSION into $out" >&2
		local ldflags="-X $MODULE/pkg/version.Version=${CRI_TOOLS_VERSION#v}"
		# The module folder is read-only: build from it with -mod=readonly (its go.sum is
		# complete), dependencies come from the module cache, the output goes to a temp file.
		(
			cd "$moddir"
			export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath"
			if [ "$tool" = critest ]; then
				nice -n 10 "$GO" test -c -vet=off -ldflags "$ldflags" -o "$out.tmp" ./cmd/critest
			else
				nice -n 10 "$GO" build -ldflags "$ldflags" -o "$out.tmp" ./cmd/crictl
			fi
		)
		mv -f "$out.tmp" "$out"
	fi
	ln -sfn "$tool-$CRI_TOOLS_VERSION" "$BIN/$tool"
	echo "$out"
}

for t in "$@"; do
	build "$t"
done

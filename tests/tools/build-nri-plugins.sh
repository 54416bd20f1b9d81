#!/bin/bash
# Builds hull-nri-plugin (tests/tools/nri-plugin: an NRI plugin on github.com/containerd/nri
# v0.12.2's stub, a test tool only) into the tools cache outside the source tree:
#
#   ${HULL_TOOLS:-/var/cache/hull-tools}/bin/hull-nri-plugin-<hash of its source>
#   ${HULL_TOOLS:-/var/cache/hull-tools}/bin/hull-nri-plugin   (symlink to it)
#
# The sample plugins of the nri repository (plugins/device-injector, logger, template...) are not
# published on the Go module proxy (only the nri module itself is), so the tests build their own.
# Idempotent: rebuilt only when its source changed.  Prints the binary's path.
set -euo pipefail

TOOLS=${HULL_TOOLS:-/var/cache/hull-tools}
GO=${GO:-/usr/local/go/bin/go}
BIN=$TOOLS/bin
SRC=$(cd "$(dirname "$0")/nri-plugin" && pwd)

if [ ! -x "$GO" ]; then
	echo "build-nri-plugins.sh: $GO not found (Go 1.26 is expected at /usr/local/go)" >&2
	exit 1
fi
mkdir -p "$BIN"
exec 9>"$TOOLS/.lock"
flock 9

hash=$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)
out=$BIN/hull-nri-plugin-$hash
if [ ! -x "$out" ]; then
	echo "build-nri-plugins.sh: building hull-nri-plugin into $out" >&2
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	cp "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" "$work/"
	(
		cd "$work"
		export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath"
		nice -n 10 "$GO" build -o "$out.tmp" .
	)
	mv -f "$out.tmp" "$out"
fi
ln -sfn "hull-nri-plugin-$hash" "$BIN/hull-nri-plugin"
echo "$out"

#!/bin/sh
# crictl for tests/kubelet: tests/tools/build-cri-tools.sh when the tree has it, else
# `go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0` into ${HULL_TOOLS}/bin/crictl-v1.37.0
# (kept if present) with a `crictl` symlink when none exists.
set -eu
HERE=$(dirname "$0")
TOOLS=${HULL_TOOLS:-/var/cache/hull-tools}
VERSION=${CRICTL_VERSION:-v1.37.0}
GO=${GO:-/usr/local/go/bin/go}
if [ -x "$HERE/build-cri-tools.sh" ]; then
	exec "$HERE/build-cri-tools.sh"
fi
mkdir -p "$TOOLS/bin"
if [ ! -x "$TOOLS/bin/crictl-$VERSION" ]; then
	WORK=$(mktemp -d /tmp/hull-build-crictl.XXXXXX)
	trap 'rm -rf "$WORK"' EXIT INT TERM
	(cd "$WORK" && GOFLAGS=-mod=mod GOTOOLCHAIN=local GOBIN="$WORK/bin" CGO_ENABLED=0 \
		nice -n 10 "$GO" install "sigs.k8s.io/cri-tools/cmd/crictl@$VERSION")
	mv -f "$WORK/bin/crictl" "$TOOLS/bin/crictl-$VERSION.tmp.$$"
	mv -f "$TOOLS/bin/crictl-$VERSION.tmp.$$" "$TOOLS/bin/crictl-$VERSION"
fi
[ -e "$TOOLS/bin/crictl" ] || ln -s "crictl-$VERSION" "$TOOLS/bin/crictl"
"$TOOLS/bin/crictl" --version

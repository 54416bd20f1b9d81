#!/bin/sh
# Build kubelet (a test tool only: Hull itself stays C) from the k8s.io/kubernetes module.
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, apimachinery, client-go, cri-api...)
# at v0.0.0 and points them at ./staging/src through replace directives that only apply inside
# its own tree. Built as a dependency, each of them must be pinned at the matching published
# v0.N.x: this script writes a throwaway go.mod in a temporary directory that requires
# k8s.io/kubernetes vX.Y.Z and replaces every k8s.io/* module that its go.mod replaces with
# the same module at v0.Y.Z, then builds k8s.io/kubernetes/cmd/kubelet.
#
# Output: ${HULL_TOOLS:-/var/cache/hull-tools}/bin/kubelet-vX.Y.Z and a `kubelet` symlink to it.
# Idempotent: an existing binary that reports the wanted version is kept. Module downloads go to
# the shared GOMODCACHE (go env GOMODCACHE), compiled packages to the shared GOCACHE.
set -eu

VERSION=${KUBELET_VERSION:-v1.36.3}
TOOLS=${HULL_TOOLS:-/var/cache/hull-tools}
BIN="$TOOLS/bin"
OUT="$BIN/kubelet-$VERSION"
GO=${GO:-/usr/local/go/bin/go}

case "$VERSION" in
v1.*.*) ;;
*) echo "build-kubelet: KUBELET_VERSION must look like v1.Y.Z, not '$VERSION'" >&2; exit 2 ;;
esac
STAGING_VERSION="v0.${VERSION#v1.}"

if [ -x "$OUT" ] && "$OUT" --version 2>/dev/null | grep -qx "Kubernetes $VERSION"; then
	ln -sfn "kubelet-$VERSION" "$BIN/kubelet"
	echo "build-kubelet: $OUT is up to date"
	exit 0
fi
if [ ! -x "$GO" ]; then
	echo "build-kubelet: no Go toolchain at $GO (Go >= 1.26 is needed; set GO=...)" >&2
	exit 1
fi

mkdir -p "$BIN"
WORK=$(mktemp -d /tmp/hull-build-kubelet.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

export GOFLAGS=-mod=mod
export GOTOOLCHAIN=local
cd "$WORK"

# k8s.io/kubernetes' own go.mod says which staging modules it replaces.
KMOD=$("$GO" mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
if [ -z "$KMOD" ] || [ ! -r "$KMOD" ]; then
	echo "build-kubelet: could not download k8s.io/kubernetes@$VERSION" >&2
	exit 1
fi
STAGING=$(sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/k8s\.io/.*$|\1|p' "$KMOD")
if [ -z "$STAGING" ]; then
	echo "build-kubelet: no staging replace directives found in $KMOD" >&2
	exit 1
fi

GOVER=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$KMOD")
{
	echo "module hull.test/kubelet-build"
	echo
	echo "go ${GOVER:-1.26}"
	echo
	echo "require k8s.io/kubernetes $VERSION"
	echo
	echo "replace ("
	for m in $STAGING; do
		echo "	$m => $m $STAGING_VERSION"
	done
	echo ")"
} >go.mod
echo "build-kubelet: k8s.io/kubernetes $VERSION with $(echo "$STAGING" | wc -w) staging modules at $STAGING_VERSION"

MINOR=${VERSION#v1.}
MINOR=${MINOR%%.*}
LDFLAGS="-s -w"
for kv in "gitVersion=$VERSION" "gitMajor=1" "gitMinor=$MINOR" "gitTreeState=clean" \
	"buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
	LDFLAGS="$LDFLAGS -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
done

CGO_ENABLED=0 nice -n 10 "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$WORK/kubelet" k8s.io/kubernetes/cmd/kubelet
"$WORK/kubelet" --version
mv -f "$WORK/kubelet" "$OUT.tmp.$$"
mv -f "$OUT.tmp.$$" "$OUT"
ln -sfn "kubelet-$VERSION" "$BIN/kubelet"
echo "build-kubelet: built $OUT"

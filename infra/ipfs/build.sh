#!/usr/bin/env bash
# Build the pinned Kubo (IPFS) binary into the cache outside the repo; a no-op when present.
#
# Why not plain `go install github.com/ipfs/kubo/cmd/ipfs@VERSION`: Go refuses it because
# kubo's go.mod carries a `replace` directive, and the module that replace points to (a
# personal go-libp2p fork) is not served by the Go module proxy. So we fetch kubo at the
# pinned version through the proxy, build it as the main module, and swap the fork for the
# pinned upstream go-libp2p release that carries the same fix (quic-go >= v0.62).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$INFRA_DIR/ipfs/version.sh"

if [[ -x "$KUBO_BIN" ]] && "$KUBO_BIN" version >/dev/null 2>&1; then
    echo "infra/ipfs: kubo $KUBO_VERSION cached at $KUBO_BIN"
    exit 0
fi

need_cmd infra/ipfs go "install Go >= 1.26 (https://go.dev/dl) and put it on PATH, e.g. export PATH=\$PATH:/usr/local/go/bin"

echo "infra/ipfs: building kubo $KUBO_VERSION (first time only; several minutes)..."
module_dir="$(go mod download -json "github.com/ipfs/kubo@$KUBO_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -d "$module_dir" ]] || die infra/ipfs "could not download github.com/ipfs/kubo@$KUBO_VERSION from the Go module proxy; check access to it (go env GOPROXY)"

# Build from a writable copy: the module cache is read-only and we edit go.mod.
src="$KUBO_HOME/src"
rm -rf "$src"
cp -r "$module_dir" "$src"
chmod -R u+w "$src"
if grep -q '^replace github.com/libp2p/go-libp2p =>' "$src/go.mod"; then
    (cd "$src" && go mod edit -dropreplace=github.com/libp2p/go-libp2p &&
        go get "github.com/libp2p/go-libp2p@$KUBO_LIBP2P_VERSION") >"$KUBO_HOME/build.log" 2>&1 ||
        die infra/ipfs "could not pin go-libp2p $KUBO_LIBP2P_VERSION for kubo $KUBO_VERSION (log: $KUBO_HOME/build.log)"
fi
# -trimpath keeps the binary free of this machine's paths.
if ! (cd "$src" && go build -trimpath -o "$KUBO_BIN.tmp" ./cmd/ipfs) >>"$KUBO_HOME/build.log" 2>&1; then
    tail -n 20 "$KUBO_HOME/build.log" >&2
    die infra/ipfs "go build of kubo $KUBO_VERSION failed (log: $KUBO_HOME/build.log); check the Go version (go version) against $src/go.mod"
fi
mv "$KUBO_BIN.tmp" "$KUBO_BIN"
rm -rf "$src"
echo "infra/ipfs: built kubo $("$KUBO_BIN" version --number) at $KUBO_BIN"

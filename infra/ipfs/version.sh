# The pinned Kubo version and where its binary lives (sourced by the other scripts).
KUBO_VERSION="${KUBO_VERSION:-v0.43.1}"
# Upstream go-libp2p release used in place of kubo's unpublished fork (see build.sh).
KUBO_LIBP2P_VERSION="${KUBO_LIBP2P_VERSION:-v0.50.0}"
KUBO_HOME="$MATERIALABS_CACHE/kubo/$KUBO_VERSION"
KUBO_BIN="$KUBO_HOME/ipfs"
mkdir -p "$KUBO_HOME"

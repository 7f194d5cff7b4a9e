#!/usr/bin/env bash
# Debian's headless Chromium, which the explorer's browser tests drive (through Playwright,
# pointed at this binary: Playwright's own browser download is never used).
set -euo pipefail
CHROMIUM="${MATERIALABS_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "infra/browser: $CHROMIUM not found and no apt-get here; install Chromium and set" \
       "MATERIALABS_CHROMIUM to its path (only the browser tests need it)" >&2
  exit 1
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "infra/browser: installing Debian's chromium needs root; run" \
         "'sudo apt-get install -y chromium' (only the browser tests need it)" >&2
    exit 1
  fi
fi
echo "infra/browser: installing Debian's chromium (first time only)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || true
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version

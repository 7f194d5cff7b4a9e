#!/usr/bin/env bash
# Install GPAW (real plane-wave DFT) into the project's venv, plus Debian's PAW setups.
#
# Idempotent: every step checks first and does nothing when already done.
#   - apt: gpaw-data (PAW setups in /usr/share/gpaw-setups) and the C build deps
#     (libxc-dev, libopenblas-dev, libfftw3-dev, a C compiler). `apt-get update` runs
#     only when a package cannot be found.
#   - pip: gpaw, compiled against Debian's libxc, into the active venv (or /work/main/.venv,
#     or $VENV) unless `import gpaw` already works there.
#   - GPAW finds the setups through ~/.gpaw/rc.py (written only if absent) and through
#     GPAW_SETUP_PATH, which materialabs.dft.gpaw also sets for its subprocesses.
#
# Usage: bash infra/gpaw/install.sh          (GPAW_VERSION=... to override the pin)
set -euo pipefail

# The pin: the newest GPAW that compiles against bookworm's libxc 5.2.3 and runs with numpy 2.
GPAW_VERSION="${GPAW_VERSION:-26.7.0}"
SETUP_DIR=/usr/share/gpaw-setups
APT_PACKAGES=(gpaw-data libxc-dev libopenblas-dev libfftw3-dev build-essential pkg-config)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -n "${VENV:-}" ]]; then
    PY="$VENV/bin/python"
elif [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PY="$VIRTUAL_ENV/bin/python"
elif [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then
    PY="$REPO_ROOT/.venv/bin/python"
else
    PY="$(command -v python3)"
fi

say() { echo "gpaw-install: $*"; }
die() { echo "gpaw-install: $*" >&2; exit 1; }

missing_apt_packages() {
    local pkg missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    echo "${missing[@]:-}"
}

install_apt_packages() {
    local missing
    missing="$(missing_apt_packages)"
    [[ -z "${missing// /}" ]] && { say "apt packages already installed"; return; }
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing} by hand"
    local sudo=""
    [[ "$(id -u)" != 0 ]] && sudo="sudo"
    # Look the packages up first; refresh the package lists only when one is unknown.
    # shellcheck disable=SC2086
    if ! apt-cache show $missing >/dev/null 2>&1; then
        say "refreshing apt package lists"
        $sudo apt-get update -qq
    fi
    say "apt-get install ${missing}"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
}

gpaw_importable() {
    "$PY" -c "import gpaw, _gpaw" >/dev/null 2>&1
}

install_gpaw() {
    if gpaw_importable; then
        say "gpaw $("$PY" -c 'import gpaw; print(gpaw.__version__)') already importable in $PY"
        return
    fi
    if "$PY" -m pip show gpaw >/dev/null 2>&1; then
        say "removing a gpaw install whose compiled part (_gpaw) is missing"
        "$PY" -m pip uninstall -y -q gpaw
    fi
    say "building gpaw==${GPAW_VERSION} into $PY (compiles C code; takes minutes)"
    # No MPI: one process per DFT job; parallelism comes from running jobs side by side.
    # siteconfig.py beside this script: C++ compiler, libxc, OpenBLAS, FFTW, no MPI.
    # GPAW_BUILD_JOBS must stay unset: it switches setup.py to a developer Makefile build
    # whose _gpaw.so does not end up in the wheel.
    env -u GPAW_BUILD_JOBS GPAW_CONFIG="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/siteconfig.py" \
        nice -n 10 "$PY" -m pip install --no-cache-dir "gpaw==${GPAW_VERSION}"
    gpaw_importable || die "gpaw installed but 'import gpaw, _gpaw' fails in $PY"
}

register_setups() {
    [[ -d "$SETUP_DIR" ]] || die "$SETUP_DIR missing; gpaw-data did not install the PAW setups"
    local rc="$HOME/.gpaw/rc.py"
    if [[ -f "$rc" ]] && grep -q "$SETUP_DIR" "$rc"; then
        say "setups already registered in $rc"
        return
    fi
    mkdir -p "$HOME/.gpaw"
    echo "setup_paths.insert(0, '$SETUP_DIR')" >> "$rc"
    say "registered $SETUP_DIR in $rc"
}

install_apt_packages
install_gpaw
register_setups
say "done (gpaw $("$PY" -c 'import gpaw; print(gpaw.__version__)'), setups in $SETUP_DIR)"

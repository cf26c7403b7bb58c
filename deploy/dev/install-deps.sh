#!/usr/bin/env bash
# Installs, only if missing, what the tests and local tools need beyond the
# Rust toolchain. Safe to run again: it does nothing when all is present.
set -euo pipefail

# command -> Debian package
declare -A NEED=([redis-server]=redis-server [redis-cli]=redis-tools [haproxy]=haproxy [curl]=curl)

missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs) first" >&2; exit 1; }

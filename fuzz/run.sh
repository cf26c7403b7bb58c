#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS from its corpus (fuzz/corpus/TARGET),
# stopping at the first crash (kept in fuzz/artifacts/TARGET). New inputs go
# into the corpus with FUZZ_GROW=1 (make fuzz), else into a scratch directory
# (make fuzz-smoke leaves the tree as it was).
# Needs nightly Rust (on the machine); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${FUZZ_SECONDS:-60}
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: nightly Rust is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz --version 0.13.2
fi
for target in $(cargo fuzz list); do
  echo "fuzz: $target for ${SECONDS_EACH}s"
  mkdir -p "corpus/$target"
  dirs=("corpus/$target")
  if [ "${FUZZ_GROW:-0}" != 1 ]; then
    scratch=$(mktemp -d)
    dirs=("$scratch" "corpus/$target")
  fi
  # Inputs that once failed (fuzz/regressions/TARGET) are always replayed too.
  if [ -d "regressions/$target" ]; then dirs+=("regressions/$target"); fi
  cargo +nightly fuzz run -O "$target" "${dirs[@]}" -- \
    -max_total_time="$SECONDS_EACH" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 2>&1 \
    | grep -E "^stat::number_of_executed_units|^#[0-9]+ +DONE|ERROR|panicked|SUMMARY|Test unit written" || true
  # libFuzzer leaves a crash file behind: that is the failure.
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "fuzz: $target found an input that fails: $(ls artifacts/"$target"/)" >&2
    exit 1
  fi
done

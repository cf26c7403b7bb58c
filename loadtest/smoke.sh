#!/usr/bin/env bash
# The k6 smoke test against a fresh local cluster (debug build is enough to
# prove function), on its own ports so it never meets a `make cluster`.
set -euo pipefail
cd "$(dirname "$0")/.."
export QG_RUN_DIR=.cluster-smoke QG_BASE_PORT=${QG_BASE_PORT:-7200} QUIZGATE_BIN=${QUIZGATE_BIN:-target/debug/quizgate}
deploy/cluster/cluster.sh stop >/dev/null 2>&1 || true
trap 'deploy/cluster/cluster.sh stop >/dev/null' EXIT
deploy/cluster/cluster.sh start
QUIZGATE_URL="http://127.0.0.1:$QG_BASE_PORT" k6 run --quiet loadtest/k6/smoke.js
# The same quiz again over TLS, ended at HAProxy (deploy/haproxy/tls.cfg; self-signed).
QUIZGATE_URL="https://127.0.0.1:$((QG_BASE_PORT + 443))" k6 run --quiet --insecure-skip-tls-verify loadtest/k6/smoke.js

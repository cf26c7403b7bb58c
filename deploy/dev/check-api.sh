#!/usr/bin/env bash
# Checks docs/openapi.yaml against a live node with schemathesis: generated
# valid and invalid requests, every response checked against the description
# (status documented, body schema, content type, auth refused without a key).
# The per-address creation limit is lifted so that the requests reach the
# definition checks (the 429 itself is tested in tests/it/security.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${QUIZGATE_BIN:-target/debug/quizgate}
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free) ADMIN=$(free)
KEY=qgk_api_check
QUIZGATE_LISTEN="127.0.0.1:$PORT" QUIZGATE_ADMIN_LISTEN="127.0.0.1:$ADMIN" QUIZGATE_LOG=warn \
  QUIZGATE_CREATES_PER_ADDRESS=1000000 QUIZGATE_QUOTA_LIVE_QUIZZES=1000000 \
  QUIZGATE_API_KEYS="api-check:$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" "$BIN" &
NODE=$!
trap 'kill $NODE 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
schemathesis run docs/openapi.yaml --url "http://127.0.0.1:$PORT" -H "Authorization: Bearer $KEY" \
  --checks all --max-examples "${API_CHECK_EXAMPLES:-100}" --seed 1 --no-color

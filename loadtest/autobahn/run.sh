#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client (wstest, Python 2) against a
# node's /ws/echo endpoint and prints a summary. Not part of CI: it needs
# Python 2.7 (here from pyenv) and pins of Twisted-era packages.
#
#   loadtest/autobahn/run.sh [QUIZGATE_X=v ...]   (extra node settings)
#
# The report goes to target/autobahn/ (index.html, index.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYENV_VERSION=${PYENV_VERSION:-2.7.18}
PY=${AUTOBAHN_PYTHON:-python}
if ! "$PY" -c 'import autobahntestsuite.wstest' >/dev/null 2>&1; then
  "$PY" -m pip install --user autobahntestsuite==25.10.1 "Twisted==20.3.0" "autobahn==0.10.9" "txaio==1.1.0" \
    "jinja2<3" "MarkupSafe<2" "Werkzeug<1" "klein==17.10.0" "zope.interface<5" six "attrs<21" "incremental<22" \
    "constantly<16" "hyperlink<21" "Automat<21" "PyHamcrest<2" "idna<3" "typing<4" "pyOpenSSL<20" \
    "cryptography<3.4" "service_identity<19" pyasn1 "pyasn1-modules<0.3" unittest2
fi
cargo build -q --locked -p quizgate
OUT=$PWD/target/autobahn
rm -rf "$OUT" && mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADMIN=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
env QUIZGATE_ECHO_ENDPOINT=true QUIZGATE_LISTEN="127.0.0.1:$PORT" QUIZGATE_ADMIN_LISTEN="127.0.0.1:$ADMIN" \
  QUIZGATE_LOG=warn "$@" target/debug/quizgate > "$OUT/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
cat > "$OUT/spec.json" <<SPEC
{"outdir": "$OUT", "servers": [{"agent": "quizgate", "url": "ws://127.0.0.1:$PORT/ws/echo"}], "cases": ["*"], "exclude-cases": [], "exclude-agent-cases": {}}
SPEC
(cd "$OUT" && "$PY" -m autobahntestsuite.wstest -m fuzzingclient -s spec.json > wstest.log 2>&1)
python3 - "$OUT/index.json" <<'PY'
import json, sys
from collections import Counter
cases = json.load(open(sys.argv[1]))["quizgate"]
print(len(cases), "cases:", dict(Counter(c["behavior"] for c in cases.values())))
key = lambda k: [int(p) for p in k.split(".")]
for behavior in ("FAILED", "NON-STRICT", "INFORMATIONAL"):
    ids = sorted((k for k, c in cases.items() if c["behavior"] == behavior), key=key)
    if ids:
        print(f"{behavior}: {' '.join(ids)}")
PY

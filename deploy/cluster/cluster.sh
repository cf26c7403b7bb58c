#!/usr/bin/env bash
# Starts (or stops) a local quizgate cluster on loopback, no Docker:
# one Redis with AOF, three nodes, HAProxy in front. `stop` stops exactly
# what `start` started (by the pid files in the run directory).
#
#   deploy/cluster/cluster.sh start|stop|status
#
# Environment: QUIZGATE_API_KEY (default qgk_local_cluster: the key that creates quizzes),
# QG_RUN_DIR (default .cluster), QG_BASE_PORT (default 7000):
# LB on BASE (TLS on BASE+443), nodes on BASE+1..3, admin on BASE+101..103, Redis on BASE+379.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${QG_RUN_DIR:-.cluster}
BASE=${QG_BASE_PORT:-7000}
BIN=${QUIZGATE_BIN:-target/release/quizgate}
REDIS_PORT=$((BASE + 379))
# The API key that may create quizzes on this local cluster; the nodes get only its hash.
KEY=${QUIZGATE_API_KEY:-qgk_local_cluster}
KEY_ENTRY="local:$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)"
# The key all three nodes sign session tokens with (a resume works on any node).
# HAProxy sends PROXY v2 headers, so the nodes see each client's address; on
# loopback every client is 127.0.0.1, so the per-address limits are lifted
# unless told otherwise (docs/security.md).
SESSION_KEYS=${QUIZGATE_SESSION_KEYS:-"local:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"}

start() {
  if [ -f "$RUN/pids" ]; then echo "already running (see $RUN/pids); make cluster-stop first" >&2; exit 1; fi
  [ -x "$BIN" ] || { echo "no $BIN: build it first (make cluster does)" >&2; exit 1; }
  mkdir -p "$RUN/redis"
  : > "$RUN/pids"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/$RUN/redis" \
    --appendonly yes --appendfsync always --save '' --daemonize yes \
    --pidfile "$PWD/$RUN/redis.pid" --logfile "$PWD/$RUN/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && [ -f "$RUN/redis.pid" ] && break; sleep 0.1; done
  [ -f "$RUN/redis.pid" ] || { echo "redis did not start on port $REDIS_PORT (see $RUN/redis.log)" >&2; rm -f "$RUN/pids"; exit 1; }
  echo "redis $(cat "$RUN/redis.pid")" >> "$RUN/pids"
  for i in 1 2 3; do
    QUIZGATE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" QUIZGATE_API_KEYS="$KEY_ENTRY" QUIZGATE_SESSION_KEYS="$SESSION_KEYS" \
    QUIZGATE_PROXY_PROTOCOL=true \
    QUIZGATE_MAX_CONNECTIONS_PER_ADDRESS=${QUIZGATE_MAX_CONNECTIONS_PER_ADDRESS:-100000} \
    QUIZGATE_JOINS_PER_ADDRESS=${QUIZGATE_JOINS_PER_ADDRESS:-100000} \
    QUIZGATE_LISTEN="127.0.0.1:$((BASE + i))" QUIZGATE_ADMIN_LISTEN="127.0.0.1:$((BASE + 100 + i))" \
      nohup "$BIN" >> "$RUN/node$i.log" 2>&1 &
    echo "node$i $!" >> "$RUN/pids"
  done
  for i in 1 2 3; do
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$((BASE + 100 + i))/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  done
  # A self-signed certificate for the TLS frontend (deploy/haproxy/tls.cfg).
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$RUN/tls.key" -out "$RUN/tls.crt" 2>/dev/null
  cat "$RUN/tls.crt" "$RUN/tls.key" > "$RUN/tls.pem"
  QG_LB_BIND="127.0.0.1:$BASE" QG_LB_TLS_BIND="127.0.0.1:$((BASE + 443))" QG_TLS_PEM="$PWD/$RUN/tls.pem" \
  QG_NODE1="127.0.0.1:$((BASE + 1))" QG_NODE2="127.0.0.1:$((BASE + 2))" QG_NODE3="127.0.0.1:$((BASE + 3))" \
  QG_CHECK1=$((BASE + 101)) QG_CHECK2=$((BASE + 102)) QG_CHECK3=$((BASE + 103)) \
    haproxy -f deploy/haproxy/haproxy.cfg -f deploy/haproxy/tls.cfg -D -p "$PWD/$RUN/haproxy.pid"
  echo "haproxy $(cat "$RUN/haproxy.pid")" >> "$RUN/pids"
  cat <<MSG
quizgate cluster up (stop with: make cluster-stop)
  players and hosts  ws://127.0.0.1:$BASE/ws   (HAProxy, sticky by source)
  ... over TLS       wss://127.0.0.1:$((BASE + 443))/ws and https://…/v1/quizzes   (self-signed: $RUN/tls.crt)
  create a quiz      curl -s 127.0.0.1:$BASE/v1/quizzes -H 'Content-Type: application/json' -H 'Authorization: Bearer $KEY' -d @quiz.json
  nodes              127.0.0.1:$((BASE + 1))  :$((BASE + 2))  :$((BASE + 3))   (behind HAProxy only: they expect PROXY v2 headers)
  admin / metrics    http://127.0.0.1:$((BASE + 101))/metrics  :$((BASE + 102))  :$((BASE + 103))
  redis              redis://127.0.0.1:$REDIS_PORT   (AOF in $RUN/redis)
  logs               $RUN/*.log
MSG
}

stop() {
  [ -f "$RUN/pids" ] || { echo "not running"; return 0; }
  while read -r name pid; do
    kill -TERM "$pid" 2>/dev/null && echo "stopping $name ($pid)" || true
  done < "$RUN/pids"
  # Bounded wait until each has exited (nodes drain for up to their window).
  while read -r name pid; do
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done < "$RUN/pids"
  rm -f "$RUN/pids"
}

status() {
  [ -f "$RUN/pids" ] || { echo "not running"; return 0; }
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "$name $pid up"; else echo "$name $pid DOWN"; fi
  done < "$RUN/pids"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac

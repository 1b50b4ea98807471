#!/usr/bin/env bash
# Memory per idle keep-alive connection: RSS of examples/hello holding 10,000 idle keep-alive
# connections (each answered once) minus its RSS after a warm-up, divided by 10,000.
#
#   benches/idle_rss.sh [ROUNDS=3] [CONNECTIONS=10000] [BINARY=target/release/examples/hello]
#
# Server on CPU 0, oneloop-load on CPU 1 (`--idle N --idle-every 3s`: every connection sends a
# request every 3 s, inside the server's 5 s keep-alive timeout). VmRSS is read from /proc
# three times 0.5 s apart once every connection is up; the median is used. Needs the file
# limit to allow CONNECTIONS + a few (the script raises its soft limit to 20,000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ROUNDS="${1:-3}"
CONNS="${2:-10000}"
BIN="${3:-$TARGET_DIR/release/examples/hello}"
LOAD="$TARGET_DIR/release/oneloop-load"
ulimit -n 20000
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
for round in $(seq "$ROUNDS"); do
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PORT=$PORT RUST_LOG=error taskset -c 0 "$BIN" --backlog 4096 >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done
  taskset -c 1 "$LOAD" "http://127.0.0.1:$PORT/plaintext" -c 64 -d 1s >/dev/null
  sleep 0.5
  before=$(rss_kb "$server")
  out=$(mktemp)
  taskset -c 1 "$LOAD" "http://127.0.0.1:$PORT/plaintext" -c 0 --idle "$CONNS" --idle-every 3s \
    -d 10s --timeout 10s --json >"$out" &
  load=$!
  # Wait until the server holds every connection (its fd count), then sample.
  for _ in $(seq 100); do
    [ "$(ls "/proc/$server/fd" | wc -l)" -ge "$CONNS" ] && break
    sleep 0.1
  done
  sleep 3.5
  s1=$(rss_kb "$server"); sleep 0.5; s2=$(rss_kb "$server"); sleep 0.5; s3=$(rss_kb "$server")
  with=$(median3 "$s1" "$s2" "$s3")
  wait "$load"
  idle=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["idle"]; print("connected %s closed_by_server %s connect_errors %s" % (r.get("connected"), r.get("closed_by_server"), r.get("connect_errors")))' "$out" 2>/dev/null || echo "idle report: $(head -c 300 "$out")")
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -f "$out"
  echo "round $round: before ${before} KiB, with $CONNS idle ${with} KiB: $(( (with - before) * 1024 / CONNS )) B per connection ($idle)"
done

#!/usr/bin/env bash
# WebSocket echo throughput: oneloop (examples/chat.rs /echo, release) vs Node `ws` (pinned in
# package.json). Server pinned to CPU 0, the Node load client (load.js) to CPU 1.
#
#   benches/ws/run.sh [--skip-build] [seconds]
#
# Scenarios: connections x pipeline x message size; prints one JSON line per run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SKIP_BUILD=0
if [ "${1:-}" = "--skip-build" ]; then SKIP_BUILD=1; shift; fi
SECS="${1:-5}"

[ -d "$HERE/node_modules/ws" ] || (cd "$HERE" && npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund)
[ "$SKIP_BUILD" = 1 ] || (cd "$ROOT" && cargo build --release -p oneloop --example chat)

taskset -c 0 "$TARGET_DIR/release/examples/chat" --port 9101 >/dev/null 2>&1 &
ONELOOP=$!
taskset -c 0 node "$HERE/node_ws_echo.js" 9102 >/dev/null 2>&1 &
NODE=$!
trap 'kill $ONELOOP $NODE 2>/dev/null || true' EXIT
sleep 1

for scenario in "1 1 32" "64 8 32" "64 8 4096"; do
  set -- $scenario
  for server in "oneloop ws://127.0.0.1:9101/echo" "node_ws ws://127.0.0.1:9102/echo"; do
    name=${server%% *}; url=${server#* }
    printf '%s ' "$name"
    taskset -c 1 node "$HERE/load.js" "$url" "$1" "$2" "$3" "$SECS"
  done
done

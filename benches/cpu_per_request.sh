#!/usr/bin/env bash
# CPU time one server spends per request (user + system, all its threads), from `perf stat -e
# task-clock` attached to the server while oneloop-load sends a fixed number of requests.
# Disturbed much less than req/s by other processes on a shared machine.
#
#   benches/cpu_per_request.sh LABEL [ENV=VALUE ...] -- [hello_app args]
#   e.g. benches/cpu_per_request.sh bare
#        benches/cpu_per_request.sh metrics-only LOG_LEVEL=silent -- --observe
#        benches/cpu_per_request.sh observed -- --observe
#
# hello_app on CPU 0, oneloop-load on CPU 1, 64 connections, GET /api/users/7, 200,000 requests
# (REQUESTS overrides). Needs perf (linux-perf).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
REQUESTS="${REQUESTS:-200000}"
label=$1; shift
envs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
(cd "$ROOT" && cargo build -q --release --example hello_app --bin oneloop-load)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env "${envs[@]}" PORT="$PORT" taskset -c 0 "$TARGET_DIR/release/examples/hello_app" "$@" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done
stat=$(mktemp)
perf stat -x, -e task-clock -p "$server" -o "$stat" &
perf=$!
sleep 0.2
taskset -c 1 "$TARGET_DIR/release/oneloop-load" "http://127.0.0.1:$PORT/api/users/7" -c 64 -n "$REQUESTS" >/dev/null
kill -INT "$perf"; wait "$perf" 2>/dev/null || true
kill "$server"; wait "$server" 2>/dev/null || true
awk -F, -v label="$label" -v n="$REQUESTS" '/task-clock/ {printf "%s cpu %.2f us/req\n", label, $1 * 1000 / n}' "$stat"
rm -f "$stat"

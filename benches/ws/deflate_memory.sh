#!/usr/bin/env bash
# Server memory per WebSocket connection per compression mode (docs/benchmarks.md): for each
# of examples/chat.rs's /echo-plain (off), /echo (shared) and /echo-dedicated, a fresh chat
# process, 1,000 Node ws clients (deflate_memory.js) offering permessage-deflate; the server's
# VmRSS before, with the 1,000 connections open and idle, and after each sent one 2 KiB
# message (compressed) and got its echo (compressed for messages >= 1 KiB).
#   benches/ws/deflate_memory.sh [N]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CHAT="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/chat"
N="${1:-1000}"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
for path in /echo-plain /echo /echo-dedicated; do
  "$CHAT" --port 9121 >/dev/null 2>&1 & S=$!
  sleep 0.5
  base=$(rss $S)
  coproc C { node "$HERE/deflate_memory.js" "ws://127.0.0.1:9121$path" "$N" deflate; }
  read -r line <&"${C[0]}"; [ "$line" = open ] || { echo "clients failed: $line" >&2; kill $S; exit 1; }
  sleep 0.5; idle=$(rss $S)
  echo go >&"${C[1]}"
  read -r line <&"${C[0]}"; [ "$line" = echoed ] || { echo "echo failed: $line" >&2; kill $S; exit 1; }
  sleep 0.5; used=$(rss $S)
  echo go >&"${C[1]}"; wait "$C_PID" 2>/dev/null || true
  kill $S; wait $S 2>/dev/null || true
  printf '%-16s base %6d KiB  idle %6d KiB (+%5.1f KiB/conn)  after one message each %6d KiB (+%5.1f KiB/conn)\n' \
    "$path" "$base" "$idle" "$(echo "($idle-$base)/$N" | bc -l)" "$used" "$(echo "($used-$base)/$N" | bc -l)"
done

#!/usr/bin/env bash
# WebSocket benchmark: oneloop (examples/chat.rs, release: /echo and /bench) vs Node `ws`
# (pinned in package.json: node_ws_echo.js, node_ws_fanout.js). Servers on CPU 0, the load
# client, oneloop-ws-load (src/load/ws.rs, one thread on oneloop's own loop), on CPU 1.
#
#   benches/ws/run.sh [--skip-build] [--runs N] [--secs S]
#
# Scenarios (override with ECHO="C P S" and FANOUT="N P S"):
#   echo    64 connections x 8 messages in flight x 32 B, binary
#   fanout  1,000 subscribers + 1 publisher, 8 messages open (not yet at every subscriber), 32 B
# Rounds are interleaved (oneloop, node, then node, oneloop, ...), N runs of each (default 3),
# S seconds measured after 1 s of warm-up (default 5). Each round holds
# /tmp/oneloop-bench.lock (flock) so it does not overlap other benchmarks on the machine.
# The client reads the server's CPU time (/proc/<pid>/stat) when measuring starts and ends.
# Raw results: one JSON line per run in benches/ws/results/<UTC timestamp>.jsonl; the summary
# (medians, ratios, per server CPU-second) is printed by summarize.py.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SKIP_BUILD=0
RUNS=3
SECS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-build) SKIP_BUILD=1 ;;
    --runs) RUNS="$2"; shift ;;
    --secs) SECS="$2"; shift ;;
    *) echo "usage: $0 [--skip-build] [--runs N] [--secs S]" >&2; exit 2 ;;
  esac
  shift
done
ECHO="${ECHO:-64 8 32}"
FANOUT="${FANOUT:-1000 8 32}"
LOCK=/tmp/oneloop-bench.lock

[ -d "$HERE/node_modules/ws" ] || (cd "$HERE" && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund))
if [ "$SKIP_BUILD" = 0 ]; then
  (cd "$ROOT" && cargo build --release -p oneloop --example chat --bin oneloop-ws-load)
fi
CHAT="$TARGET_DIR/release/examples/chat"
LOAD="$TARGET_DIR/release/oneloop-ws-load"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

taskset -c 0 "$CHAT" --port 9101 >/dev/null 2>&1 &
ONELOOP=$!; PIDS+=("$ONELOOP")
taskset -c 0 node "$HERE/node_ws_echo.js" 9102 >/dev/null 2>&1 &
NODE_ECHO=$!; PIDS+=("$NODE_ECHO")
taskset -c 0 node "$HERE/node_ws_fanout.js" 9103 >/dev/null 2>&1 &
NODE_FANOUT=$!; PIDS+=("$NODE_FANOUT")
sleep 1
for p in "$ONELOOP" "$NODE_ECHO" "$NODE_FANOUT"; do
  kill -0 "$p" 2>/dev/null || { echo "a server did not start (pid $p)" >&2; exit 1; }
done

mkdir -p "$HERE/results"
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "results: $OUT" >&2

# one_run ROUND SERVER SCENARIO  -> one JSON line appended to $OUT
one_run() {
  local round=$1 server=$2 scenario=$3 url pid args line
  case "$server/$scenario" in
    oneloop/echo) url=ws://127.0.0.1:9101/echo; pid=$ONELOOP ;;
    oneloop/fanout) url=ws://127.0.0.1:9101/bench; pid=$ONELOOP ;;
    node_ws/echo) url=ws://127.0.0.1:9102/echo; pid=$NODE_ECHO ;;
    node_ws/fanout) url=ws://127.0.0.1:9103/bench; pid=$NODE_FANOUT ;;
  esac
  if [ "$scenario" = echo ]; then set -- $ECHO; else set -- $FANOUT; fi
  # Bounded: the client stops itself (connect timeout + warm-up + duration + stall timeout);
  # `timeout` is the backstop.
  if line=$(timeout $((SECS + 30)) taskset -c 1 "$LOAD" "$scenario" -c "$1" -p "$2" -s "$3" \
      -d "${SECS}s" -w 1s -t 5s --server-pid "$pid" --json "$url"); then :; else
    echo "run failed: $server $scenario (round $round)" >&2
  fi
  [ -n "$line" ] || line='{"failure":"no output"}'
  printf '{"round":%d,"server":"%s","scenario":"%s","report":%s}\n' \
    "$round" "$server" "$scenario" "$line" | tee -a "$OUT"
}

for round in $(seq 1 "$RUNS"); do
  if [ $((round % 2)) = 1 ]; then order="oneloop node_ws"; else order="node_ws oneloop"; fi
  # One whole round under the lock: every scenario, both servers.
  export -f one_run
  export ONELOOP NODE_ECHO NODE_FANOUT LOAD SECS ECHO FANOUT OUT
  flock "$LOCK" bash -c "
    for scenario in echo fanout; do
      for server in $order; do one_run $round \$server \$scenario; done
    done"
  for p in "$ONELOOP" "$NODE_ECHO" "$NODE_FANOUT"; do
    kill -0 "$p" 2>/dev/null || { echo "a server died (pid $p)" >&2; exit 1; }
  done
done

python3 "$HERE/summarize.py" "$OUT"

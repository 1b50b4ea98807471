#!/usr/bin/env bash
# permessage-deflate fan-out benchmark (docs/benchmarks.md, "WebSocket compression"):
# a 2 KiB JSON-like message (oneloop-ws-load --json-payload) published to 1,000 subscribers,
# 8 messages open, on
#   oneloop-plain   examples/chat.rs /bench          (no compression)
#   oneloop-shared  examples/chat.rs /bench-deflate  (shared: compressed once per publish)
#   node-deflate    node_ws_fanout.js deflate        (ws 8.23.0, perMessageDeflate: true)
#   node-plain      node_ws_fanout.js                (ws, no compression)
# Servers on CPU 0, the load client on CPU 1; rounds interleaved (order reversed every other
# round), N runs (default 3) of S seconds (default 5) after 1 s of warm-up, under
# /tmp/oneloop-bench.lock. Prints medians; raw JSON lines in benches/ws/results/deflate-*.jsonl.
#
#   benches/ws/deflate.sh [--skip-build] [--runs N] [--secs S]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SKIP_BUILD=0; RUNS=3; SECS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-build) SKIP_BUILD=1 ;;
    --runs) RUNS="$2"; shift ;;
    --secs) SECS="$2"; shift ;;
    *) echo "usage: $0 [--skip-build] [--runs N] [--secs S]" >&2; exit 2 ;;
  esac
  shift
done
[ -d "$HERE/node_modules/ws" ] || (cd "$HERE" && npm ci --no-audit --no-fund)
[ "$SKIP_BUILD" = 1 ] || (cd "$ROOT" && cargo build --release -p oneloop --example chat --bin oneloop-ws-load)
CHAT="$TARGET_DIR/release/examples/chat"
LOAD="$TARGET_DIR/release/oneloop-ws-load"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 0 "$CHAT" --port 9111 >/dev/null 2>&1 & ONELOOP=$!; PIDS+=("$ONELOOP")
taskset -c 0 node "$HERE/node_ws_fanout.js" 9112 deflate >/dev/null 2>&1 & NODE_Z=$!; PIDS+=("$NODE_Z")
taskset -c 0 node "$HERE/node_ws_fanout.js" 9113 >/dev/null 2>&1 & NODE_P=$!; PIDS+=("$NODE_P")
sleep 1
mkdir -p "$HERE/results"
OUT="$HERE/results/deflate-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
run() { # NAME URL PID [--deflate]
  local name=$1 url=$2 pid=$3; shift 3
  local line
  line=$(timeout $((SECS + 30)) taskset -c 1 "$LOAD" fanout -c 1000 -p 8 -s 2048 --json-payload "$@" \
    -d "${SECS}s" -w 1s -t 5s --server-pid "$pid" --json "$url") || line='{"failure":"run failed"}'
  printf '{"round":%d,"server":"%s","report":%s}\n' "$round" "$name" "$line" | tee -a "$OUT"
}
for round in $(seq 1 "$RUNS"); do
  order="oneloop-plain oneloop-shared node-deflate node-plain"
  [ $((round % 2)) = 0 ] && order="node-plain node-deflate oneloop-shared oneloop-plain"
  exec 9>/tmp/oneloop-bench.lock; flock 9
  for s in $order; do
    case $s in
      oneloop-plain) run $s ws://127.0.0.1:9111/bench "$ONELOOP" ;;
      oneloop-shared) run $s ws://127.0.0.1:9111/bench-deflate "$ONELOOP" --deflate ;;
      node-deflate) run $s ws://127.0.0.1:9112/bench "$NODE_Z" --deflate ;;
      node-plain) run $s ws://127.0.0.1:9113/bench "$NODE_P" ;;
    esac
  done
  flock -u 9
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["server"], []).append(r["report"])
med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"{'server':15} {'deliv/s':>10} {'wire B/deliv':>12} {'server CPU %':>12} {'deliv/CPU-s':>12} {'p99 us':>8} fails")
res = {}
for name in ["oneloop-plain", "oneloop-shared", "node-deflate", "node-plain"]:
    rs = [r for r in by.get(name, []) if not r.get("failure")]
    d = med([r["deliveries_per_s"] for r in rs])
    w = med([r["wire_bytes"] / max(r["deliveries"], 1) for r in rs])
    cpu = med([100 * r["server_cpu_s"] / r["seconds"] for r in rs if r.get("server_cpu_s") is not None])
    per = med([r["deliveries_per_server_cpu_s"] for r in rs if r.get("deliveries_per_server_cpu_s")])
    p99 = med([r["latency_us"]["p99"] for r in rs]) if rs and "p99" in rs[0]["latency_us"] else float("nan")
    res[name] = d
    print(f"{name:15} {d:10.0f} {w:12.0f} {cpu:12.0f} {per:12.0f} {p99:8.0f} {len(by.get(name, [])) - len(rs)}")
if res.get("node-deflate"):
    print(f"oneloop-shared / node-deflate deliveries/s: {res['oneloop-shared'] / res['node-deflate']:.1f}x")
    print(f"oneloop-shared / oneloop-plain deliveries/s: {res['oneloop-shared'] / res['oneloop-plain']:.2f}x")
PY

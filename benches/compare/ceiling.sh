#!/usr/bin/env bash
# What this machine allows: oneloop `hello`, the bare mio responder (parses nothing), hyper on
# one thread, may_minihttp on one worker (httparse; the pipelined reference), and Node `http`,
# each on CPU 0, loaded by `oneloop-load` on CPU 1 (cheaper per
# request than wrk -t1, so the server, not the client, is the limit) at 256 and 10,000
# keep-alive connections on /plaintext. Interleaved: every round runs every server at each
# connection count, the server order rotating per round. Prints the medians, and keeps the raw
# JSON lines in results/<stamp>.ceiling.jsonl.
#
#   benches/compare/ceiling.sh [--runs N] [--duration S] [--skip-build]      # ~3 min with 3 x 4 s
#
# PIPELINE=16 adds a pipelined cell (depth 16, 256 connections) per server and round.
# BACKLOG=N sets the listen backlog of oneloop and bare_mio (default 4096; see below).
#
# Needs node, taskset, python3; builds the examples, oneloop-load, benches/compare/hyper_hello
# and benches/compare/may_hello (each with its own Cargo.lock) in $CARGO_TARGET_DIR (default:
# target/). The file limit must allow 20,000
# (`ulimit -n 20000`; the script raises its own soft limit). Stops only the servers it started.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS=3
DURATION=4
SKIP_BUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --skip-build) SKIP_BUILD=1 ;;
    *) echo "ceiling.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
ulimit -n 20000

if [ "$SKIP_BUILD" = 0 ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet \
    --example hello --example bare_mio --bin oneloop-load)
  (cd "$HERE/hyper_hello" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --quiet)
  (cd "$HERE/may_hello" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --quiet)
fi
PIPELINE="${PIPELINE:-0}"
# Listen backlog of the two servers built here. 10,000 clients connecting at once overflow a
# backlog of 511 (Node's default) or 1,024 (mio's, tokio's): the kernel drops the SYNs that
# find the accept queue full, and a SYN dropped twice misses oneloop-load's 2 s connect
# timeout (a connect error). 4,096 is this machine's somaxconn. hyper and may_minihttp keep
# their own (1,024); Node keeps 511.
BACKLOG="${BACKLOG:-4096}"
LOAD="$TARGET_DIR/release/oneloop-load"

declare -A CMD=(
  [oneloop]="$TARGET_DIR/release/examples/hello --backlog $BACKLOG"
  [bare_mio]="$TARGET_DIR/release/examples/bare_mio --backlog $BACKLOG"
  [hyper]="$TARGET_DIR/release/hyper_hello"
  [may_minihttp]="$TARGET_DIR/release/may_hello"
  [node_http]="node $HERE/node_http.js"
)
declare -A PORT=([oneloop]=3501 [bare_mio]=3502 [hyper]=3503 [may_minihttp]=3505 [node_http]=3504)
declare -A PID=()
stop_all() {
  local s
  for s in "${!PID[@]}"; do kill -TERM -- "-${PID[$s]}" 2>/dev/null || true; done
}
trap stop_all EXIT

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$HERE/results"
OUT="$HERE/results/$STAMP.ceiling.jsonl"
for s in oneloop bare_mio hyper may_minihttp node_http; do
  # setsid: each server is its own process group, so stop_all ends it and nothing else.
  PORT=${PORT[$s]} HOST=127.0.0.1 RUST_LOG=error setsid taskset -c 0 ${CMD[$s]} \
    >"/tmp/ceiling.$s.log" 2>&1 &
  PID[$s]=$!
done
sleep 2

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
order=(oneloop bare_mio hyper may_minihttp node_http)
cells=(256 10000)
[ "$PIPELINE" != 0 ] && cells+=("256p$PIPELINE")
for r in $(seq 1 "$RUNS"); do
  for cell in "${cells[@]}"; do
    c="${cell%%p*}"
    depth=1
    [ "$cell" != "$c" ] && depth="${cell#*p}"
    for s in "${order[@]}"; do
      before=$(cpu_ticks "${PID[$s]}")
      report=$(timeout $((DURATION + 15)) taskset -c 1 "$LOAD" \
        "http://127.0.0.1:${PORT[$s]}/plaintext" -c "$c" -p "$depth" -d "${DURATION}s" --warmup 1s --json)
      after=$(cpu_ticks "${PID[$s]}")
      echo "{\"round\":$r,\"server\":\"$s\",\"connections\":$c,\"pipeline\":$depth,\"server_cpu_ticks\":$((after - before)),\"report\":$report}" >>"$OUT"
      echo "round $r $s c$c p$depth: $(echo "$report" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["requests_per_sec"]))') req/s" >&2
    done
  done
  order=("${order[@]:1}" "${order[0]}")
done

python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cell = {}
piped = {}
for r in rows:
    if r.get("pipeline", 1) > 1:
        piped.setdefault(r["server"], []).append(r)
    else:
        cell.setdefault((r["server"], r["connections"]), []).append(r)
node = statistics.median(r["report"]["requests_per_sec"] for r in cell[("node_http", 256)])
print("| server | c256 req/s | vs node_http | c10000 req/s | kept at 10,000 | errors c256 / c10000 | server CPU |")
print("|---|---:|---:|---:|---:|---:|---:|")
for s in ["oneloop", "bare_mio", "hyper", "may_minihttp", "node_http"]:
    a = statistics.median(r["report"]["requests_per_sec"] for r in cell[(s, 256)])
    b = statistics.median(r["report"]["requests_per_sec"] for r in cell[(s, 10000)])
    ea = sum(r["report"]["errors"]["total"] for r in cell[(s, 256)])
    eb = sum(r["report"]["errors"]["total"] for r in cell[(s, 10000)])
    # CPU ticks cover the warm-up too (1 s + the measured time).
    cpu = statistics.median(r["server_cpu_ticks"] for r in cell[(s, 256)] + cell[(s, 10000)])
    secs = cell[(s, 256)][0]["report"]["duration_s"] + 1
    print(f"| {s} | {a:,.0f} | {a / node:.2f}x | {b:,.0f} | {100 * b / a:.0f}% | {ea} / {eb} | {cpu / secs:.0f}% |")
if piped:
    print("\n| server | pipelined c256 req/s | vs bare_mio | vs may_minihttp | errors |")
    print("|---|---:|---:|---:|---:|")
    med = {s: statistics.median(r["report"]["requests_per_sec"] for r in v) for s, v in piped.items()}
    for s, v in piped.items():
        e = sum(r["report"]["errors"]["total"] for r in v)
        print(f"| {s} | {med[s]:,.0f} | {med[s] / med['bare_mio']:.2f}x | {med[s] / med['may_minihttp']:.2f}x | {e} |")
print(f"\nraw: {sys.argv[1]}")
EOF

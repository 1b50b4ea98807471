#!/usr/bin/env bash
# hello --workers 2 against --workers 1 (issue: scale-out). See docs/benchmarks.md ("Workers").
#
#   benches/workers.sh [--runs N] [--duration S]
#
# One worker runs pinned to CPU 0; two workers get CPUs 0 and 1. The load generator
# (oneloop-load) is pinned to CPU 1 in both cases, so with two workers one of them shares its
# core with the client: on this 2-core machine that is the honest best case for scale-out.
# Interleaved: each round runs 1w then 2w (the order alternates). Prints one line per run and
# the medians.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS=3
DURATION=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    *) echo "workers.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
(cd "$ROOT" && cargo build --release --example hello --bin oneloop-load >/dev/null 2>&1)
HELLO="$TARGET_DIR/release/examples/hello"
LOAD="$TARGET_DIR/release/oneloop-load"
PORT=3971

cpu_ticks() { # user+sys clock ticks of a process and all its threads
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run_one() { # workers cpus conns pipeline -> "reqps cpu%"
  local workers="$1" cpus="$2" conns="$3" pipeline="$4"
  PORT=$PORT taskset -c "$cpus" "$HELLO" --workers "$workers" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 50); do
    (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
  done
  local t0 c0 out t1 c1
  c0=$(cpu_ticks $pid); t0=$(date +%s%N)
  out=$(taskset -c 1 "$LOAD" "http://127.0.0.1:$PORT/plaintext" -c "$conns" -p "$pipeline" \
    -d "${DURATION}s" --warmup 1s --json)
  c1=$(cpu_ticks $pid); t1=$(date +%s%N)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  local reqps
  reqps=$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["requests_per_sec"]))' "$out")
  local hz; hz=$(getconf CLK_TCK)
  local cpu; cpu=$(python3 -c "print(round(100*($c1-$c0)/$hz/(($t1-$t0)/1e9)))")
  echo "$reqps $cpu"
}

declare -A RES
for scen in "256 1" "256 16"; do
  set -- $scen
  for round in $(seq "$RUNS"); do
    if [ $((round % 2)) -eq 1 ]; then order="1 2"; else order="2 1"; fi
    for w in $order; do
      if [ "$w" = 1 ]; then cpus=0; else cpus=0,1; fi
      r=$(run_one "$w" "$cpus" "$1" "$2")
      echo "c$1 p$2 workers=$w round=$round: $r"
      RES["$1 $2 $w"]+="${r%% *} "
    done
  done
done
echo
echo "| scenario | 1 worker (CPU 0) | 2 workers (CPUs 0,1) | ratio |"
echo "|---|---:|---:|---:|"
for scen in "256 1" "256 16"; do
  set -- $scen
  python3 - "$1" "$2" "${RES["$1 $2 1"]}" "${RES["$1 $2 2"]}" <<'EOF'
import statistics, sys
c, p, a, b = sys.argv[1:5]
m1 = statistics.median(map(int, a.split()))
m2 = statistics.median(map(int, b.split()))
print(f"| c{c} pipeline {p} | {m1:,.0f} | {m2:,.0f} | {m2/m1:.2f}x |")
EOF
done

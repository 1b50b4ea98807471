#!/usr/bin/env bash
# Before/after for one server binary: each round starts each binary fresh on CPU 0 and loads it
# with `oneloop-load` on CPU 1 (by default 256 keep-alive connections, pipelined 16 deep and
# not), interleaved, then prints each run and the medians, with requests per server CPU-second
# and the server's user and system CPU time per request (µs: user time is the server's own
# code; system time is mostly the kernel's work for the load, plus the server's syscall choices).
#
#   benches/ab.sh [--rounds N] [--path /plaintext] [--connections C] [--depths "16 1"]
#                 [--server-args "ARGS"] NAME=BINARY NAME=BINARY ...
#   e.g. cp target/release/examples/hello /tmp/hello.before   # build, change, build again, then
#        benches/ab.sh before=/tmp/hello.before after=target/release/examples/hello
#
#   e.g. 10,000 connections, not pipelined (raise the file limit first: `ulimit -n 20000`):
#        benches/ab.sh --connections 10000 --depths 1 --server-args "--backlog 4096" \
#          hello=target/release/examples/hello bare_mio=target/release/examples/bare_mio
# The CPU time covers the warm-up second, so with many connections it includes their connects.
# The binaries must listen on $PORT (every oneloop example does). Needs target/release/oneloop-load
# (`cargo build --release --bin oneloop-load`; CARGO_TARGET_DIR is honoured). Stops only the
# servers it started.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOAD="${CARGO_TARGET_DIR:-$ROOT/target}/release/oneloop-load"
ROUNDS=3
URL_PATH=/plaintext
CONNECTIONS=256
DEPTHS="16 1"
SERVER_ARGS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --path) URL_PATH="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --depths) DEPTHS="$2"; shift 2 ;;
    --server-args) SERVER_ARGS="$2"; shift 2 ;;
    *=*) break ;;
    *) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: ab.sh [--rounds N] [--path P] NAME=BINARY ..." >&2; exit 2; }
[ -x "$LOAD" ] || { echo "ab.sh: $LOAD missing" >&2; exit 1; }

PORT=3701
HZ=$(getconf CLK_TCK)
OUT="$(mktemp /tmp/ab.XXXXXX.txt)"
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
for r in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    name="${spec%%=*}"
    bin="${spec#*=}"
    for depth in $DEPTHS; do
      # shellcheck disable=SC2086 # SERVER_ARGS is a list of words
      PORT=$PORT HOST=127.0.0.1 RUST_LOG=error setsid taskset -c 0 "$bin" $SERVER_ARGS >/dev/null 2>&1 &
      pid=$!
      sleep 0.4
      read -r user0 sys0 < <(cpu_ticks "$pid")
      report=$(timeout 20 taskset -c 1 "$LOAD" "http://127.0.0.1:$PORT$URL_PATH" \
        -c "$CONNECTIONS" -p "$depth" -d 4s --warmup 1s --json)
      read -r user1 sys1 < <(cpu_ticks "$pid")
      kill -TERM -- "-$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo "$report" | python3 -c '
import json, sys
name, depth, r, user, system, hz = sys.argv[1:]
d = json.load(sys.stdin)
# The CPU ticks cover the 1 s warm-up as well as the 4 s measured.
served = d["requests_per_sec"] * 5
ticks = int(user) + int(system)
per_cpu = served / (ticks / int(hz)) if ticks else 0
us = lambda t: int(t) / int(hz) / served * 1e6 if served else 0
print(name, depth, r, round(d["requests_per_sec"]), round(per_cpu), d["errors"]["total"],
      f"{us(user):.4f}", f"{us(system):.4f}")
' "$name" "$depth" "$r" "$((user1 - user0))" "$((sys1 - sys0))" "$HZ" | tee -a "$OUT"
    done
  done
done
python3 - "$OUT" <<'EOF'
import statistics, sys
runs = [line.split() for line in open(sys.argv[1])]
print("\n| binary | depth | req/s (median) | req per server CPU-s (median) | user / system µs per request (medians) | errors |")
print("|---|---:|---:|---:|---:|---:|")
for name in dict.fromkeys(r[0] for r in runs):
    for depth in dict.fromkeys(r[1] for r in runs if r[0] == name):
        cell = [r for r in runs if r[0] == name and r[1] == depth]
        rps = statistics.median(int(r[3]) for r in cell)
        cpu = statistics.median(int(r[4]) for r in cell)
        user = statistics.median(float(r[6]) for r in cell)
        system = statistics.median(float(r[7]) for r in cell)
        errors = sum(int(r[5]) for r in cell)
        print(f"| {name} | {depth} | {rps:,} | {cpu:,} | {user:.3f} / {system:.3f} | {errors} |")
EOF

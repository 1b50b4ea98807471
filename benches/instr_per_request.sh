#!/usr/bin/env bash
# User-space instructions per pipelined request, counted by cachegrind: deterministic where
# wall-clock numbers on a shared machine are noise (and this VM has no hardware counters).
#
#   benches/instr_per_request.sh [SERVER ...] [-n N] [-c C] [-p P] [--path /plaintext] [--cache-sim]
#
# SERVER is `oneloop` (examples/hello), `bare_mio` (examples/bare_mio), `may_minihttp`
# (benches/compare/may_hello) or a path to a binary that reads PORT/HOST; default: all three.
# Each server runs twice under `valgrind --tool=cachegrind --cache-sim=no`:
#   1. loaded: `oneloop-load http://127.0.0.1:PORT/plaintext -c C -p P -n N` (exactly N
#      requests, pipelined P deep on C connections; default 64 x 16, N = 200,000),
#   2. startup only: started, probed until it listens, stopped (SIGTERM; a background job of a script ignores SIGINT).
# and prints (Ir loaded - Ir startup) / N: every instruction the server ran in user space for
# the requests (parse, handler, response, event loop, syscall wrappers), not the kernel's.
# The servers must already be built in $CARGO_TARGET_DIR (default target/):
#   cargo build --release --example hello --example bare_mio --bin oneloop-load
#   (cd benches/compare/may_hello && CARGO_TARGET_DIR=$PWD/../../../target cargo build --release --locked)
# The load generator runs natively (not under valgrind). Cachegrind serializes the server's
# threads, so the counts are exact up to the timing noise of how reads batch (a few percent
# between runs at most; compare numbers taken with the same -c/-p/-n).
# --cache-sim also simulates this host's caches (L1i and L1d 32 KiB 8-way, a 1 MiB 16-way last
# level; 64-byte lines) and prints I1 and D1 misses (reads + writes) per request the same way.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
N=200000
C=64
P=16
URL_PATH=/plaintext
CACHE_SIM=no
SERVERS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N="$2"; shift ;;
    -c) C="$2"; shift ;;
    -p) P="$2"; shift ;;
    --path) URL_PATH="$2"; shift ;;
    --cache-sim) CACHE_SIM=yes ;;
    -*) echo "instr_per_request.sh: unknown option $1" >&2; exit 2 ;;
    *) SERVERS+=("$1") ;;
  esac
  shift
done
[ ${#SERVERS[@]} -eq 0 ] && SERVERS=(oneloop bare_mio may_minihttp)
LOAD="$TARGET_DIR/release/oneloop-load"
WORK="$(mktemp -d /tmp/instr_per_request.XXXXXX)"
PORT=$((20000 + RANDOM % 20000))

binary_of() {
  case "$1" in
    oneloop) echo "$TARGET_DIR/release/examples/hello" ;;
    bare_mio) echo "$TARGET_DIR/release/examples/bare_mio" ;;
    may_minihttp) echo "$TARGET_DIR/release/may_hello" ;;
    *) echo "$1" ;;
  esac
}

# Runs BINARY under cachegrind; with a request count, loads it first. Prints the total Ir.
count() {
  local bin="$1" requests="$2" out="$WORK/cg.$RANDOM"
  PORT=$PORT HOST=127.0.0.1 RUST_LOG=error valgrind --tool=cachegrind --cache-sim=$CACHE_SIM \
    --I1=32768,8,64 --D1=32768,8,64 --LL=1048576,16,64 --cachegrind-out-file="$out" "$bin" >"$WORK/server.log" 2>&1 &
  local pid=$!
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ "$requests" -gt 0 ]; then
    "$LOAD" "http://127.0.0.1:$PORT$URL_PATH" -c "$C" -p "$P" -n "$requests" -d 3600s \
      --timeout 60s --json >"$WORK/load.json"
    if ! grep -q "\"total\":0,.*\"requests\":$requests," "$WORK/load.json"; then
      echo "instr_per_request.sh: not $requests clean responses: $(cat "$WORK/load.json")" >&2
      exit 1
    fi
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  # Ir, or with the cache simulation "Ir I1mr D1mr+D1mw" (summary: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw)
  if [ "$CACHE_SIM" = yes ]; then
    awk '/^summary:/ {print $2, $3, $6 + $9}' "$out"
  else
    awk '/^summary:/ {print $2}' "$out"
  fi
}

if [ "$CACHE_SIM" = yes ]; then
  printf '%-14s %16s %16s %10s %10s %10s\n' server "Ir loaded" "Ir startup" "Ir/request" \
    "I1mr/req" "D1m/req"
else
  printf '%-14s %16s %16s %10s\n' server "Ir loaded" "Ir startup" "Ir/request"
fi
for s in "${SERVERS[@]}"; do
  bin="$(binary_of "$s")"
  read -r loaded li ld <<<"$(count "$bin" "$N")"
  read -r startup si sd <<<"$(count "$bin" 0)"
  if [ "$CACHE_SIM" = yes ]; then
    printf '%-14s %16s %16s %10.0f %10.2f %10.2f\n' "$s" "$loaded" "$startup" \
      "$(echo "($loaded - $startup) / $N" | bc -l)" "$(echo "($li - $si) / $N" | bc -l)" \
      "$(echo "($ld - $sd) / $N" | bc -l)"
  else
    printf '%-14s %16s %16s %10.0f\n' "$s" "$loaded" "$startup" \
      "$(echo "($loaded - $startup) / $N" | bc -l)"
  fi
done
rm -rf "$WORK"

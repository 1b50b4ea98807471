#!/usr/bin/env bash
# Cross-process WebSocket fan-out through Redis vs local-only (docs/benchmarks.md, "WebSocket
# fan-out across processes"). examples/chat.rs /bench, oneloop-ws-load fanout (1,000
# subscribers, 1 publisher, 8 open messages, 32 B). Servers and redis-server on CPU 0, the
# load client on CPU 1; ROUNDS interleaved rounds (default 3), medians.
#
#   local   one chat process, no Redis: publisher and subscribers on it
#   bridged one chat process with --redis: the same, plus a PUBLISH per message and its own
#           echo coming back from Redis (dropped)
#   cross   two chat processes with --redis: the publisher on A, the 1,000 subscribers on B;
#           every message goes A -> Redis -> B
#
#   benches/ws/redis_fanout.sh            # DURATION=5s ROUNDS=3 by default
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
(cd "$ROOT" && cargo build --release -q -p oneloop --example chat --bin oneloop-ws-load)
CHAT=$ROOT/target/release/examples/chat
LOAD=$ROOT/target/release/oneloop-ws-load
DIR=$(mktemp -d /tmp/oneloop-redis-fanout.XXXXXX)
RP=9611 PL=9612 PBR=9613 PA=9614 PB=9615

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 0 redis-server --port $RP --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
    >"$DIR/redis.log" 2>&1 &
pids+=($!)
sleep 0.3
URL=redis://127.0.0.1:$RP
RUST_LOG=warn taskset -c 0 "$CHAT" --port $PL >/dev/null 2>&1 & pids+=($!)
RUST_LOG=warn taskset -c 0 "$CHAT" --port $PBR --redis $URL >/dev/null 2>&1 & pids+=($!)
RUST_LOG=warn taskset -c 0 "$CHAT" --port $PA --redis $URL >/dev/null 2>&1 & pids+=($!)
RUST_LOG=warn taskset -c 0 "$CHAT" --port $PB --redis $URL >/dev/null 2>&1 & pids+=($!)
sleep 0.5

run() { # scenario -> deliveries/s
    local args
    case $1 in
    local) args=(ws://127.0.0.1:$PL/bench) ;;
    bridged) args=(ws://127.0.0.1:$PBR/bench) ;;
    cross) args=(ws://127.0.0.1:$PA/bench --subscribers-at ws://127.0.0.1:$PB) ;;
    esac
    taskset -c 1 "$LOAD" fanout -c 1000 -p 8 -s 32 -d "$DURATION" -w 1s --json "${args[@]}" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["deliveries_per_s"]))'
}

declare -A results
for round in $(seq "$ROUNDS"); do
    for s in local bridged cross; do
        v=$(run $s)
        results[$s]+="$v "
        echo "round $round $s: $v deliveries/s"
    done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "scenario  median deliveries/s  (rounds)"
for s in local bridged cross; do
    printf '%-8s  %12s         (%s)\n' "$s" "$(median "${results[$s]}")" "${results[$s]% }"
done

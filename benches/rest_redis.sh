#!/usr/bin/env bash
# End to end on Redis: GET of a cached product from `rest_api --redis` vs its Express 5 +
# ioredis twin (benches/compare/rest_express_redis), both cache-aside in the same
# redis-server. Pinning on 2 cores: the HTTP server under test on core 0, redis-server and
# oneloop-load on core 1 (the load generator and Redis share a core: both servers pay the
# same). ROUNDS interleaved rounds (oneloop, Express, oneloop, ...); medians in
# docs/benchmarks.md "rest_api on Redis".
# Run: benches/rest_redis.sh [ROUNDS] [DURATION]   (needs redis-server, node; npm ci in
# benches/compare/rest_express_redis)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-5s}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
OURS=$(free_port)
THEIRS=$(free_port)
DIR=$(mktemp -d)
cargo build --release -q --example rest_api --bin oneloop-load
taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" >/dev/null 2>&1 &
PIDS=$!
trap 'kill $PIDS; rm -rf "$DIR"' EXIT
sleep 0.5
URL="redis://127.0.0.1:$REDIS_PORT"
LOG_LEVEL=silent taskset -c 0 target/release/examples/rest_api --redis "$URL" --port "$OURS" &
PIDS="$PIDS $!"
taskset -c 0 node benches/compare/rest_express_redis/app.js "$URL" "$THEIRS" >/dev/null &
PIDS="$PIDS $!"
sleep 1
curl -sf -X POST "http://127.0.0.1:$OURS/api/products" -H 'content-type: application/json' \
  -d '{"name":"lamp","price":12.5}' >/dev/null
# Warm both caches (the first GET is a miss).
curl -sf "http://127.0.0.1:$OURS/api/products/1" -o /dev/null
curl -sf "http://127.0.0.1:$THEIRS/api/products/1" -o /dev/null
curl -si "http://127.0.0.1:$OURS/api/products/1" | grep -i '^x-cache'
curl -si "http://127.0.0.1:$THEIRS/api/products/1" | grep -i '^x-cache'
load() {
  taskset -c 1 target/release/oneloop-load "http://127.0.0.1:$1/api/products/1" -c 50 -d "$DURATION" \
    --warmup 1s --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%.0f req/s p99 %.2f ms non2xx %d errors %d" % (r["requests_per_sec"],
      r["latency_us"]["p99"] / 1000, r["non_2xx"], r["errors"]["total"]))'
}
for round in $(seq "$ROUNDS"); do
  echo "round $round oneloop: $(load "$OURS")"
  echo "round $round express: $(load "$THEIRS")"
done

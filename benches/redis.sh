#!/usr/bin/env bash
# GET/SET ops/s of the Redis client (auto-pipelining) vs ioredis with enableAutoPipelining vs
# redis-benchmark -P 16 (the ceiling), same run: redis-server on core 0, each client on core 1,
# ROUNDS rounds (medians in docs/benchmarks.md "Redis client").
# Run: benches/redis.sh [ROUNDS] [OPS]     (needs redis-server, redis-benchmark, node; npm ci
# in benches/compare for ioredis)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
OPS=${2:-1000000}
CHAINS=800 # = redis-benchmark's -c 50 x -P 16 commands in flight
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
cargo build --release --example redis_bench -q
taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER; rm -rf "$DIR"' EXIT
sleep 0.5
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  taskset -c 1 target/release/examples/redis_bench --port "$PORT" --chains $CHAINS --ops "$OPS"
  taskset -c 1 node benches/compare/ioredis_bench.js --port "$PORT" --chains $CHAINS --ops "$OPS"
  taskset -c 1 redis-benchmark -p "$PORT" -t set,get -n "$OPS" -c 50 -P 16 -q 2>&1 | tr '\r' '\n' | grep 'per second' | sed 's/^/redis-benchmark -P 16: /'
done

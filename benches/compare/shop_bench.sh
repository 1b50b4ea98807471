#!/usr/bin/env bash
# The shop's product list (GET /api/products, 20 products; plain and gzip-compressed) on oneloop (examples/shop.rs), its
# Express 5 twin and its Fastify 5 twin: server pinned to core 0, oneloop-load on core 1,
# interleaved rounds, medians. Usage: benches/compare/shop_bench.sh [rounds=3] [seconds=5].
# Needs the twins' packages (./test.sh installs them) and a release build:
#   cargo build --release --example shop --bin oneloop-load
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
secs=${2:-5}
load=target/release/oneloop-load
port=39517
url="http://127.0.0.1:$port"

start() { # start <name>: the server, pinned to core 0; sets pid
    # (prints: req/s, p99 latency in us, non-2xx count, bytes per response)
    case $1 in
        oneloop) PORT=$port taskset -c 0 target/release/examples/shop >/dev/null & ;;
        express) (cd benches/compare/shop_express && PORT=$port exec taskset -c 0 node app.js >/dev/null) & ;;
        fastify) (cd benches/compare/shop_fastify && PORT=$port exec taskset -c 0 node app.js >/dev/null) & ;;
    esac
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "$url/api/products" && break; sleep 0.05; done
    # 20 products, added with a bearer token.
    for i in $(seq 20); do
        curl -s -o /dev/null -H 'authorization: Bearer tok-ada' -H 'content-type: application/json' \
            -d "{\"name\":\"product number $i\",\"price\":$i.5}" "$url/api/products"
    done
}

for round in $(seq "$rounds"); do
    for name in oneloop express fastify; do
        start "$name"
        for enc in identity gzip; do
            rps=$(taskset -c 1 "$load" "$url/api/products" -c 64 -d "${secs}s" --warmup 1s --json \
                -H "accept-encoding: $enc" \
                | python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["requests_per_sec"]), r["latency_us"]["p99"], r["non_2xx"], round(r["bytes"]/max(r["requests"],1)))')
            echo "round $round $name $enc $rps"
        done
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
done

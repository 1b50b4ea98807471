#!/usr/bin/env bash
# Observability overhead, one run: hello_app bare vs `hello_app --observe` (JSON access log
# line per request + metrics middleware + /metrics, /healthz, /readyz), and Fastify bare
# (benches/compare/fastify_app.js) vs Fastify with its pino logger on + fastify-metrics
# (benches/compare/fastify_observed.js). See docs/benchmarks.md "Observability overhead".
#
#   benches/observe.sh [ROUNDS=3] [DURATION=4s] [CONNECTIONS=64] [PATH=/api/users/7]
#
# Servers on CPU 0 (taskset -c 0), oneloop-load on CPU 1, 1 s warm-up, rounds interleaved
# (every server once per round, order rotating). Logs go to /dev/null (a real file or pipe
# costs more for both sides alike). While each observed server runs, /metrics is scraped once
# a second, as Prometheus would. Prints one line per run and the medians: req/s, p99, and the
# server's CPU time per request (from /proc/PID/stat around the measured part; other sessions
# on a shared machine disturb it much less than req/s).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ROUNDS="${1:-3}"
DURATION="${2:-4s}"
CONNS="${3:-64}"
URLPATH="${4:-/api/users/7}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build -q --release --example hello_app --bin oneloop-load)
[ -d "$HERE/compare/node_modules/fastify-metrics" ] || (cd "$HERE/compare" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
LOAD="$TARGET_DIR/release/oneloop-load"
APP="$TARGET_DIR/release/examples/hello_app"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OUT="$(mktemp -d)"
SERVERS=(oneloop oneloop_observed fastify fastify_observed)

start() {
  case "$1" in
    oneloop) PORT=$PORT taskset -c 0 "$APP" >/dev/null 2>&1 & ;;
    oneloop_observed) PORT=$PORT taskset -c 0 "$APP" --observe >/dev/null 2>&1 & ;;
    fastify) PORT=$PORT taskset -c 0 node "$HERE/compare/fastify_app.js" >/dev/null 2>&1 & ;;
    fastify_observed) PORT=$PORT taskset -c 0 node "$HERE/compare/fastify_observed.js" >/dev/null 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0
    sleep 0.05
  done
  echo "$1 did not start" >&2
  exit 1
}

for round in $(seq "$ROUNDS"); do
  n=${#SERVERS[@]}
  for i in $(seq 0 $((n - 1))); do
    s=${SERVERS[$(((i + round) % n))]}
    start "$s"
    SCRAPER=
    if [[ "$s" == *_observed ]]; then
      (for _ in $(seq 30); do curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"; sleep 1; done) &
      SCRAPER=$!
    fi
    # Server CPU time (user + system, all threads) over the measured part, from /proc: CPU
    # microseconds per request, which other processes on the machine disturb much less than
    # req/s.
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
    taskset -c 1 "$LOAD" "http://127.0.0.1:$PORT$URLPATH" -c "$CONNS" -d 1s >/dev/null  # warm-up
    before=$(cpu_ticks)
    taskset -c 1 "$LOAD" "http://127.0.0.1:$PORT$URLPATH" -c "$CONNS" -d "$DURATION" --json \
      > "$OUT/$s.$round.json"
    after=$(cpu_ticks)
    echo "$((after - before))" > "$OUT/$s.$round.cpu"
    [ -n "$SCRAPER" ] && kill "$SCRAPER" 2>/dev/null || true
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); rps=r["requests_per_sec"]; p99=r["latency_us"]["p99"]/1000; cpu=int(open(sys.argv[4]).read())*1e4/r["requests"]; print("round %s %-17s %10.0f req/s  p99 %.2f ms  cpu %.2f us/req  errors %d non2xx %d" % (sys.argv[2], sys.argv[3], rps, p99, cpu, r["errors"]["total"], r["non_2xx"]))' \
      "$OUT/$s.$round.json" "$round" "$s" "$OUT/$s.$round.cpu"
  done
done

python3 - "$OUT" "$ROUNDS" "${SERVERS[@]}" <<'PY'
import json, statistics, sys
out, rounds, servers = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med, cpu = {}, {}
for s in servers:
    runs = [json.load(open(f"{out}/{s}.{r}.json")) for r in range(1, rounds + 1)]
    med[s] = statistics.median(r["requests_per_sec"] for r in runs)
    p99 = statistics.median(r["latency_us"]["p99"] for r in runs) / 1000
    # /proc ticks are 10 ms (USER_HZ 100): per request, in microseconds.
    cpu[s] = statistics.median(int(open(f"{out}/{s}.{r}.cpu").read()) * 1e4 / runs[r - 1]["requests"]
                               for r in range(1, rounds + 1))
    print(f"median {s:<17} {med[s]:>10.0f} req/s  p99 {p99:.2f} ms  cpu {cpu[s]:.2f} us/req")
for name, a, b in [("oneloop observed / bare", "oneloop_observed", "oneloop"),
                   ("fastify observed / bare", "fastify_observed", "fastify"),
                   ("oneloop observed / fastify observed", "oneloop_observed", "fastify_observed")]:
    print(f"{name:<36} req/s {med[a] / med[b]:.3f}  cpu per request {cpu[a] / cpu[b]:.3f}")
PY

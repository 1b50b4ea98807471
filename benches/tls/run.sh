#!/usr/bin/env bash
# TLS benchmark, interleaved rounds, server on CPU 0 and client on CPU 1:
#  - keep-alive req/s of GET /plaintext: oneloop `hello --tls`, Node `https`, and oneloop
#    `hello` in plaintext (for TLS as a fraction of plaintext), loaded by `oneloop-load`;
#  - full TLS handshakes/s and resumed handshakes/s (`openssl s_time -new` / `-reuse`: one
#    client process, so these can be client-bound: compare the ratio, not the absolute);
#  - RSS per idle TLS connection: server RSS with IDLE (10,000) open, kept-alive TLS
#    connections minus RSS before, divided by IDLE.
#
#   benches/tls/run.sh [ROUNDS]      (needs target/release/examples/hello and oneloop-load,
#                                     node, openssl, taskset; ulimit -n above IDLE + 100)
# Stops only the servers it started (by pid).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
T="${CARGO_TARGET_DIR:-$ROOT/target}/release"
LOAD="$T/oneloop-load"
HELLO="${HELLO:-$T/examples/hello}"
ROUNDS="${1:-3}"
DUR="${DUR:-5s}"
CONNS="${CONNS:-64}"
IDLE="${IDLE:-10000}"
PORT=3711
dir="$(mktemp -d /tmp/tls-bench.XXXXXX)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

start() { # start NAME -> sets pid
  case "$1" in
    oneloop-tls) PORT=$PORT RUST_LOG=error setsid taskset -c 0 "$HELLO" --tls --cert "$dir/cert.pem" --key "$dir/key.pem" >/dev/null 2>&1 & ;;
    oneloop-plain) PORT=$PORT RUST_LOG=error setsid taskset -c 0 "$HELLO" >/dev/null 2>&1 & ;;
    node-https) PORT=$PORT setsid taskset -c 0 node "$ROOT/benches/tls/node_https.js" "$dir/cert.pem" "$dir/key.pem" >/dev/null 2>&1 & ;;
  esac
  pid=$!
  sleep 0.6
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; sleep 0.3; }
scheme() { [ "$1" = oneloop-plain ] && echo http || echo https; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

for r in $(seq 1 "$ROUNDS"); do
  for name in oneloop-tls node-https oneloop-plain; do
    start "$name"
    rps=$(taskset -c 1 "$LOAD" "$(scheme $name)://127.0.0.1:$PORT/plaintext" -c "$CONNS" -d "$DUR" --warmup 1s --json \
      | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["requests_per_sec"]))')
    echo "round $r $name keepalive_rps $rps"
    if [ "$name" != oneloop-plain ]; then
      full=$(taskset -c 1 openssl s_time -connect 127.0.0.1:$PORT -new -time 4 2>/dev/null | awk '/connections in/ && /real/ {print $1/$4; exit}')
      reuse=$(taskset -c 1 openssl s_time -connect 127.0.0.1:$PORT -reuse -time 4 2>/dev/null | awk '/connections in/ && /real/ {print $1/$4; exit}')
      echo "round $r $name full_handshakes_per_s $full"
      echo "round $r $name resumed_handshakes_per_s $reuse"
      before=$(rss_kb "$pid")
      taskset -c 1 "$LOAD" "https://127.0.0.1:$PORT/plaintext" -c 0 -d 14s --idle "$IDLE" --idle-every 3s --timeout 10s >/dev/null 2>&1 &
      lpid=$!
      sleep 12
      open=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
      after=$(rss_kb "$pid")
      wait "$lpid" || true
      echo "round $r $name idle_conns $open rss_before_kb $before rss_after_kb $after bytes_per_conn $(( (after - before) * 1024 / (open > 0 ? open : 1) ))"
    fi
    stop
  done
done
rm -rf "$dir"

#!/usr/bin/env bash
# TLS benchmark, interleaved rounds, server on CPU 0 and load on CPU 1, all loaded by
# oneloop-load (no other tool):
#  - keep-alive req/s of GET /plaintext: oneloop `hello --tls`, Node `https`, and oneloop
#    `hello` in plaintext (for TLS as a fraction of plaintext);
#  - full TLS handshakes/s: `oneloop-load --new-connection --no-resume` (one connection, one
#    full handshake, one request, close; HS_CONNS at a time);
#  - resumed handshakes/s: `oneloop-load --new-connection` (the same, resuming the session
#    with the server's ticket);
#  - server CPU time per request / per handshake (from /proc/PID/task/*/schedstat, no
#    warm-up): what the server spends, whether or not the client is the bottleneck;
#  - RSS per idle TLS connection: server RSS with IDLE (10,000) open, kept-alive TLS
#    connections (one request each, repeated every 3 s to outlive the 5 s keep-alive
#    timeout) minus RSS before, divided by the connections open at that moment.
#
#   benches/tls/run.sh [ROUNDS]      (needs target/release/examples/hello and oneloop-load,
#                                     node, openssl, taskset, ss; ulimit -n above IDLE + 100)
# Output: one line per measurement, "round R SERVER METRIC VALUE ...".
# Stops only the processes it started (by pid).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
T="${CARGO_TARGET_DIR:-$ROOT/target}/release"
LOAD="$T/oneloop-load"
HELLO="${HELLO:-$T/examples/hello}"
ROUNDS="${1:-3}"
DUR="${DUR:-5s}"
CONNS="${CONNS:-64}"
HS_DUR="${HS_DUR:-4s}"
HS_CONNS="${HS_CONNS:-16}"
IDLE="${IDLE:-10000}"
PORT="${PORT:-3711}"
for tool in "$LOAD" "$HELLO"; do
  [ -x "$tool" ] || { echo "missing $tool: cargo build --release --bin oneloop-load --example hello" >&2; exit 1; }
done
if [ "$(ulimit -n)" -lt $((IDLE + 100)) ]; then
  ulimit -n $((IDLE + 1000)) || { echo "ulimit -n must be above $IDLE" >&2; exit 1; }
fi
dir="$(mktemp -d /tmp/tls-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

pid=
start() { # start NAME -> sets pid
  case "$1" in
    oneloop-tls) PORT=$PORT RUST_LOG=error taskset -c 0 "$HELLO" --tls --cert "$dir/cert.pem" --key "$dir/key.pem" >/dev/null 2>&1 & ;;
    oneloop-plain) PORT=$PORT RUST_LOG=error taskset -c 0 "$HELLO" >/dev/null 2>&1 & ;;
    node-https) PORT=$PORT taskset -c 0 node "$ROOT/benches/tls/node_https.js" "$dir/cert.pem" "$dir/key.pem" >/dev/null 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 1 50); do # until it listens (at most 5 s)
    ss -Htln "( sport = :$PORT )" | grep -q . && break
    sleep 0.1
  done
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; sleep 0.5; }
scheme() { [ "$1" = oneloop-plain ] && echo http || echo https; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time the server's threads have used, in ns (sum of /proc/PID/task/*/schedstat)
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }
# load ARGS... -> the JSON report's FIELD (python expression on r)
load() {
  local field="$1"; shift
  taskset -c 1 "$LOAD" "$@" --json | python3 -c "import json,sys; r=json.load(sys.stdin); print($field)"
}

for r in $(seq 1 "$ROUNDS"); do
  for name in oneloop-tls node-https oneloop-plain; do
    start "$name"
    url="$(scheme $name)://127.0.0.1:$PORT/plaintext"
    c0=$(cpu_ns "$pid")
    read -r rps n < <(load 'round(r["requests_per_sec"]), r["requests"]' "$url" -c "$CONNS" -d "$DUR")
    c1=$(cpu_ns "$pid")
    echo "round $r $name keepalive_rps $rps server_cpu_ns_per_req $(( (c1 - c0) / (n > 0 ? n : 1) ))"
    if [ "$name" != oneloop-plain ]; then
      for mode in full resumed; do
        flags="--new-connection"; [ "$mode" = full ] && flags="$flags --no-resume"
        c0=$(cpu_ns "$pid")
        # no warm-up, so the server's CPU time covers the measured handshakes only
        read -r hs full resumed errs < <(load '" ".join(map(str, [r["handshakes"]["full"] + r["handshakes"]["resumed"], r["handshakes"]["full"], r["handshakes"]["resumed"], r["errors"]["total"]]))' \
          "$url" -c "$HS_CONNS" -d "$HS_DUR" $flags)
        c1=$(cpu_ns "$pid")
        secs=${HS_DUR%s}
        echo "round $r $name ${mode}_handshakes_per_s $(( hs / secs )) full $full resumed $resumed errors $errs server_cpu_us_per_handshake $(( (c1 - c0) / 1000 / (hs > 0 ? hs : 1) ))"
      done
      sleep 1
      before=$(rss_kb "$pid")
      taskset -c 1 "$LOAD" "$url" -c 0 -d 40s --idle "$IDLE" --idle-every 3s --timeout 20s >/dev/null 2>&1 &
      lpid=$!
      open=0
      for _ in $(seq 1 30); do # until all are open (at most 30 s)
        sleep 1
        open=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
        [ "$open" -ge "$IDLE" ] && break
      done
      sleep 2
      open=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
      after=$(rss_kb "$pid")
      kill "$lpid" 2>/dev/null || true
      wait "$lpid" 2>/dev/null || true
      echo "round $r $name idle_conns $open rss_before_kb $before rss_after_kb $after bytes_per_conn $(( (after - before) * 1024 / (open > 0 ? open : 1) ))"
    fi
    stop
  done
done

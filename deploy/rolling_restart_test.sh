#!/usr/bin/env bash
# Rolling restart under load: nginx on 127.0.0.1:8080 in front of two `hello` processes
# (3001, 3002); steady load for DURATION seconds (default 30) while each process is restarted in
# turn (SIGTERM, wait for it to exit, start it again). Passes when the load generator counts zero
# failed requests (non-2xx, including 502, and socket errors).
#
#   deploy/rolling_restart_test.sh            # installs nginx and wrk with apt-get if missing
#   DURATION=10 deploy/rolling_restart_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
PREFIX=$(mktemp -d /tmp/oneloop-deploy.XXXXXX)
LISTEN=127.0.0.1:8080 UP1=127.0.0.1:3001 UP2=127.0.0.1:3002

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need nginx nginx-light
need wrk wrk
cargo build --release --example hello -q
HELLO=target/release/examples/hello

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$PREFIX/nginx.pid" ] && kill "$(cat "$PREFIX/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

start() { # port -> pid
  : >"$PREFIX/hello-$1.log"
  RUST_LOG=info PORT=$1 "$HELLO" >>"$PREFIX/hello-$1.log" 2>&1 &
  echo $!
}
wait_ready() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "port $1 never came up"; return 1
}

p1=$(start 3001); p2=$(start 3002); pids=("$p1" "$p2")
wait_ready 3001; wait_ready 3002
mkdir -p "$PREFIX"/{body,proxy,fastcgi,uwsgi,scgi}
sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@LISTEN@#$LISTEN#" -e "s#@UP1@#$UP1#" -e "s#@UP2@#$UP2#" \
  deploy/nginx.conf >"$PREFIX/nginx.conf"
nginx -p "$PREFIX" -c "$PREFIX/nginx.conf"
wait_ready 8080

echo "load: wrk -t1 -c32 -d${DURATION}s http://$LISTEN/plaintext"
wrk -t1 -c32 -d"${DURATION}s" --timeout 5s "http://$LISTEN/plaintext" >"$PREFIX/wrk.txt" &
wrk_pid=$!

restart() { # index port
  local old=${pids[$1]}
  sleep $((DURATION / 4))
  echo "restart :$2 (pid $old): SIGTERM"
  kill -TERM "$old"
  # Not our child (started from a command substitution): poll until it is gone.
  for _ in $(seq 300); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$old" 2>/dev/null; then echo "  pid $old did not exit within 15 s"; exit 1; fi
  grep -q "shutdown complete" "$PREFIX/hello-$2.log" && echo "  pid $old drained and exited" \
    || { echo "  pid $old exited without draining"; exit 1; }
  pids[$1]=$(start "$2")
  wait_ready "$2"
  echo "  :$2 serving again (pid ${pids[$1]})"
}
restart 0 3001
restart 1 3002
wait "$wrk_pid"
cat "$PREFIX/wrk.txt"

non2xx=$(grep -oP 'Non-2xx or 3xx responses: \K[0-9]+' "$PREFIX/wrk.txt" || echo 0)
sockerr=$(grep -oP 'Socket errors: .*' "$PREFIX/wrk.txt" || true)
requests=$(grep -oP '[0-9]+(?= requests in)' "$PREFIX/wrk.txt")
echo "requests=$requests non2xx=$non2xx socket_errors=${sockerr:-none}"
if [ "$non2xx" != 0 ] || [ -n "$sockerr" ]; then
  echo "FAIL: failed requests during the rolling restart"; exit 1
fi
echo "PASS: zero failed requests and zero 502s across two restarts"

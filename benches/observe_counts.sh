#!/usr/bin/env bash
# Per-request counts of `hello_app` bare vs `hello_app --observe` at two connection counts
# (issue #18; docs/benchmarks.md "Observability overhead", fourth pass):
#
#   benches/observe_counts.sh callgrind [N=20000] [CONNS="64 256"]
#       user-space instructions per request of every server thread (the loop and the log
#       writer), `valgrind --tool=callgrind --separate-threads=yes`, counters zeroed after a
#       4,000-request warm-up. Extra valgrind options in VGOPTS (e.g. "--branch-sim=yes" or
#       "--cache-sim=yes --I1=65536,16,64 --D1=49152,12,64 --LL=2097152,16,64").
#   benches/observe_counts.sh perf [N=400000] [CONNS="64 256"] [ROUNDS=3]
#       syscalls, epoll_wait calls, context switches and task-clock (us) per request of all
#       server threads (`perf stat -p` with tracepoints: this VM has no hardware counters).
#
# Server on CPU 0 (taskset -c 0: the log writer thread shares the loop's core), oneloop-load
# on CPU 1, GET /api/users/7. valgrind is started and stopped inside this script (a SIGTERM
# from outside kills it before it writes its file).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MODE="${1:?callgrind or perf}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build -q --release --example hello_app --bin oneloop-load)
LOAD="$TARGET_DIR/release/oneloop-load"
APP="${APP:-$TARGET_DIR/release/examples/hello_app}"
OUT="$(mktemp -d)"
URL_PATH=/api/users/7

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }

callgrind_one() { # CONNS N LABEL [app args]
  local conns=$1 n=$2 label=$3; shift 3
  local dir="$OUT/$label.c$conns" port
  mkdir -p "$dir"
  port=$(free_port)
  # shellcheck disable=SC2086
  PORT=$port taskset -c 0 valgrind --tool=callgrind ${VGOPTS:-} --separate-threads=yes \
    --callgrind-out-file="$dir/cg.out" "$APP" "$@" >/dev/null 2>"$dir/valgrind.err" &
  local vg=$!
  wait_up "$port"
  taskset -c 1 "$LOAD" "http://127.0.0.1:$port$URL_PATH" -c "$conns" -n 4000 -d 60s >/dev/null
  callgrind_control -z "$vg" >/dev/null 2>&1
  taskset -c 1 "$LOAD" "http://127.0.0.1:$port$URL_PATH" -c "$conns" -n "$n" -d 60s --json >"$dir/load.json"
  callgrind_control -d "$vg" >/dev/null 2>&1
  sleep 1
  kill "$vg"
  wait "$vg" 2>/dev/null || true
  python3 - "$dir" "$label" "$conns" <<'PY'
import glob, json, sys
d, label, conns = sys.argv[1:]
n = json.load(open(d + "/load.json"))["requests"]
parts = []
for f in sorted(glob.glob(d + "/cg.out.1-*")):  # the dump after the measured part, per thread
    events = summary = None
    for line in open(f):
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            summary = [int(x) for x in line.split()[1:]]
    if summary:
        parts.append("thread %s: " % f.rsplit("-", 1)[1] + " ".join(
            "%s %.1f" % (e, v / n) for e, v in zip(events, summary)))
print("c=%-4s %-9s per request  %s" % (conns, label, "  |  ".join(parts)))
PY
}

perf_one() { # CONNS N LABEL [app args]
  local conns=$1 n=$2 label=$3; shift 3
  local port
  port=$(free_port)
  PORT=$port taskset -c 0 "$APP" "$@" >/dev/null 2>&1 &
  local server=$!
  wait_up "$port"
  taskset -c 1 "$LOAD" "http://127.0.0.1:$port$URL_PATH" -c "$conns" -d 1s >/dev/null
  perf stat -x, -o "$OUT/perf.csv" -e raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,context-switches,task-clock -p "$server" &
  local perf=$!
  sleep 0.2
  taskset -c 1 "$LOAD" "http://127.0.0.1:$port$URL_PATH" -c "$conns" -n "$n" -d 30s --json >"$OUT/load.json"
  kill -INT "$perf"
  wait "$perf" || true
  kill "$server"
  wait "$server" 2>/dev/null || true
  python3 - "$OUT" "$label" "$conns" <<'PY'
import json, sys
out, label, conns = sys.argv[1:]
r = json.load(open(out + "/load.json"))
n = r["requests"]
vals = {}
for line in open(out + "/perf.csv"):
    f = line.strip().split(",")
    if len(f) > 3 and f[0][:1].isdigit():
        vals[f[2]] = float(f[0])
print("c=%-4s %-9s %8.0f req/s  syscalls %.3f  epoll_wait %.4f  context switches %.4f  task-clock %.2f us  per request" % (
    conns, label, r["requests_per_sec"], vals["raw_syscalls:sys_enter"] / n,
    vals["syscalls:sys_enter_epoll_wait"] / n, vals["context-switches"] / n,
    vals["task-clock"] / n * 1000))
PY
}

case "$MODE" in
  callgrind)
    N="${2:-20000}"
    for c in ${3:-64 256}; do
      callgrind_one "$c" "$N" bare
      callgrind_one "$c" "$N" observed --observe
    done
    ;;
  perf)
    N="${2:-400000}"
    for r in $(seq "${4:-3}"); do
      echo "round $r (load average $(cut -d' ' -f1 /proc/loadavg))"
      for c in ${3:-64 256}; do
        perf_one "$c" "$N" bare
        perf_one "$c" "$N" observed --observe
      done
    done
    ;;
  *) echo "usage: $0 callgrind|perf [N] [CONNS] [ROUNDS]" >&2; exit 2 ;;
esac
rm -rf "$OUT"

#!/usr/bin/env bash
# oneloop vs Node: one command. See docs/benchmarks.md ("HTTP server").
#
#   benches/compare/run.sh            full run  (10 s x 3 runs; 1/64/256/1000/10000 connections) < 45 min
#   benches/compare/run.sh --lite     full-lite (5 s x 3 runs; plaintext and JSON at 1/64/256/1000/
#                                     10000, pipelining 16; 8 servers; + idle, slowloris, CPU rows) < 40 min
#   benches/compare/run.sh --quick    quick run (3 s x 3 runs; 64/256 connections)               < 5 min
#
# Options: --runs N, --duration S, --servers a,b,c (default: oneloop bare_mio node_http express
# fastify node_cluster; --lite: oneloop oneloop_2w oneloop_app threaded node_http express fastify
# node_cluster),
# --rows main,idle,slowloris,heavy (default: main; --lite: all four), --skip-build (use the
# binaries already in $CARGO_TARGET_DIR), --skip-install (no apt-get / npm ci), --extra-runs N
# (rounds of the extra rows; default --runs), --client wrk|oneloop-load (the main grid's load
# generator; default wrk -t1, which saturates its core near 160k req/s here: oneloop-load is
# cheaper per request, so the fastest servers become the limit instead).
# Servers: oneloop (examples/hello), oneloop_2w (hello --workers 2), oneloop_app (hello_app),
# bare_mio, threaded (threaded_hello: thread per connection), hyper (benches/compare/hyper_hello:
# hyper 1 on a current_thread tokio runtime), node_http, express, fastify, node_cluster (2
# workers), express_app, fastify_app.
# Extra rows (docs/benchmarks.md): idle (10,000 idle keep-alive connections held by oneloop-load
# --idle: server RSS per connection, latency of a fresh request meanwhile), slowloris (200
# slowloris connections next to 64 normal ones: req/s kept, RSS), heavy (~5 ms of hashing per
# request on the loop, on the thread pool, thread per connection, Node sync/async; latency of a
# cheap request sent meanwhile). They use oneloop-load as the client. The environment may
# override IDLE_N, IDLE_SERVERS, SLOW_N, SLOW_SERVERS and HEAVY_VARIANTS (see below).
# Charts: render.py --img-dir docs/img writes docs/img/bench-*.svg (the charts docs/benchmarks.md
# shows) for --lite and the full run; --quick writes them to results/img-quick/ instead, so a
# quick check never replaces the published charts.
#
# It installs wrk (apt-get) if missing and the pinned Node packages (npm ci), builds oneloop's
# examples in release, starts every server pinned to CPU 0 (taskset -c 0) and runs wrk pinned to
# CPU 1, interleaved: for each round, for each scenario, every server in turn (the order rotates
# each round). Raw results: results/<timestamp>.jsonl (one line per run, plus a meta line);
# rendered: results/latest.md (also printed).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/examples"
SERVER_CPU=0
WRK_CPU=1

ARGS="$*"
MODE=full
RUNS=3
DURATION=
SERVERS=
ROWS=
EXTRA_RUNS=
SKIP_BUILD=0
SKIP_INSTALL=0
CLIENT=wrk
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --lite) MODE=lite ;;
    --rows) ROWS="${2//,/ }"; shift ;;
    --extra-runs) EXTRA_RUNS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --servers) SERVERS="${2//,/ }"; shift ;;
    --skip-build) SKIP_BUILD=1 ;;
    --skip-install) SKIP_INSTALL=1 ;;
    --client) CLIENT="$2"; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

case "$CLIENT" in
  wrk|oneloop-load) ;;
  *) echo "run.sh: --client must be wrk or oneloop-load" >&2; exit 2 ;;
esac

# scenario name | path | connections | wrk script | pipeline depth
if [ "$MODE" = lite ]; then
  SERVERS="${SERVERS:-oneloop oneloop_2w oneloop_app threaded node_http express fastify node_cluster}"
  ROWS="${ROWS:-main idle slowloris heavy}"
else
  SERVERS="${SERVERS:-oneloop bare_mio node_http express fastify node_cluster}"
  ROWS="${ROWS:-main}"
fi
EXTRA_RUNS="${EXTRA_RUNS:-$RUNS}"
has_row() { case " $ROWS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# Extra rows: which servers, how many connections (the environment may override these).
IDLE_N="${IDLE_N:-10000}"
IDLE_SERVERS="${IDLE_SERVERS:-oneloop threaded node_http hyper}"
SLOW_N="${SLOW_N:-200}"
SLOW_SERVERS="${SLOW_SERVERS:-oneloop node_http threaded}"
HEAVY_VARIANTS="${HEAVY_VARIANTS:-oneloop:/heavy-blocking oneloop:/heavy-pool threaded:/heavy-blocking node:/heavy-blocking node:/heavy-pool}"

if [ "$MODE" = quick ]; then
  DURATION="${DURATION:-3}"
  SCENARIOS=(
    "plaintext-c64|/plaintext|64|report.lua|1"
    "plaintext-c256|/plaintext|256|report.lua|1"
    "pipeline16-c256|/plaintext|256|pipeline.lua|16"
    "json-c256|/json|256|report.lua|1"
  )
elif [ "$MODE" = lite ]; then
  DURATION="${DURATION:-5}"
  SCENARIOS=()
  for c in 1 64 256 1000 10000; do SCENARIOS+=("plaintext-c$c|/plaintext|$c|report.lua|1"); done
  SCENARIOS+=("pipeline16-c256|/plaintext|256|pipeline.lua|16")
  for c in 1 64 256 1000 10000; do SCENARIOS+=("json-c$c|/json|$c|report.lua|1"); done
else
  DURATION="${DURATION:-10}"
  SCENARIOS=(
    "plaintext-c1|/plaintext|1|report.lua|1"
    "plaintext-c64|/plaintext|64|report.lua|1"
    "plaintext-c256|/plaintext|256|report.lua|1"
    "plaintext-c1000|/plaintext|1000|report.lua|1"
    "plaintext-c10000|/plaintext|10000|report.lua|1"
    "pipeline16-c256|/plaintext|256|pipeline.lua|16"
    "json-c256|/json|256|report.lua|1"
  )
fi

# 10,000 connections need ~10,000 fds in wrk and in the server. This machine's hard limit is
# 20,000 per process: raise the soft limit to min(20000, hard), never above the hard limit.
HARD="$(ulimit -Hn)"
WANT=20000
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$WANT" ]; then WANT="$HARD"; fi
ulimit -n "$WANT"

log() { printf '[run.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---- install -------------------------------------------------------------------------------
if [ "$SKIP_INSTALL" = 0 ]; then
  if [ "$CLIENT" = wrk ] && ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update && $SUDO apt-get install -y wrk
  fi
  log "npm ci (express, fastify: pinned in package-lock.json)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
NEEDED="node taskset python3"
[ "$CLIENT" = wrk ] && NEEDED="wrk $NEEDED"
for tool in $NEEDED; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool not found" >&2; exit 1; }
done

# ---- build ---------------------------------------------------------------------------------
NEED_HYPER=0
case " $SERVERS " in *" hyper "*) NEED_HYPER=1 ;; esac
has_row idle && case " $IDLE_SERVERS " in *" hyper "*) NEED_HYPER=1 ;; esac
LOADGEN="$TARGET_DIR/release/oneloop-load"
HYPER_BIN="$TARGET_DIR/release/hyper_hello"
if [ "$SKIP_BUILD" = 0 ]; then
  log "cargo build --release --examples --bin oneloop-load (target dir $TARGET_DIR)"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --examples --bin oneloop-load --quiet)
  if [ "$NEED_HYPER" = 1 ]; then
    log "cargo build --release (benches/compare/hyper_hello: hyper 1 + tokio, own Cargo.lock)"
    (cd "$HERE/hyper_hello" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --quiet)
  fi
fi
for b in hello bare_mio hello_app threaded_hello heavy; do
  [ -x "$BIN/$b" ] || { echo "run.sh: $BIN/$b missing (build failed?)" >&2; exit 1; }
done
if { [ "$ROWS" != main ] || [ "$CLIENT" = oneloop-load ]; } && [ ! -x "$LOADGEN" ]; then echo "run.sh: $LOADGEN missing" >&2; exit 1; fi
if [ "$NEED_HYPER" = 1 ] && [ ! -x "$HYPER_BIN" ]; then echo "run.sh: $HYPER_BIN missing" >&2; exit 1; fi

# ---- servers -------------------------------------------------------------------------------
declare -A PORT CMD PID
p=3400
# The command of server $2, registered under the name $1 (extra rows run fresh instances).
add_server() {
  local name="$1" s="$2"
  PORT[$name]=$p; p=$((p + 1))
  case "$s" in
    oneloop) CMD[$name]="$BIN/hello" ;;
    oneloop_2w) CMD[$name]="$BIN/hello --workers 2" ;;
    oneloop_app) CMD[$name]="$BIN/hello_app" ;;
    bare_mio) CMD[$name]="$BIN/bare_mio" ;;
    threaded) CMD[$name]="$BIN/threaded_hello" ;;
    hyper) CMD[$name]="$HYPER_BIN" ;;
    heavy) CMD[$name]="$BIN/heavy" ;;
    heavy_threaded) CMD[$name]="$BIN/heavy --threaded" ;;
    node_http|express|fastify|node_cluster|express_app|fastify_app|node_heavy) CMD[$name]="node $HERE/$s.js" ;;
    *) echo "run.sh: unknown server $s" >&2; exit 2 ;;
  esac
}
for s in $SERVERS; do add_server "$s" "$s"; done

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
START_S="$(date +%s)"
mkdir -p "$HERE/results"
OUT="$HERE/results/$STAMP.jsonl"
WORK="$(mktemp -d /tmp/oneloop-compare.XXXXXX)"

start_server() {
  local s="$1"
  : > "$WORK/$s.log"
  # exec: the recorded pid is the server itself (taskset's affinity is inherited by children).
  PORT="${PORT[$s]}" HOST=127.0.0.1 RUST_LOG=error \
    setsid taskset -c "$SERVER_CPU" ${CMD[$s]} >>"$WORK/$s.log" 2>&1 &
  PID[$s]=$!
  local i
  for i in $(seq 1 100); do
    if grep -qE 'listening on|ready on' "$WORK/$s.log"; then return 0; fi
    if ! is_alive "${PID[$s]}"; then break; fi
    sleep 0.1
  done
  echo "run.sh: $s did not start:" >&2; cat "$WORK/$s.log" >&2
  return 1
}

# Stops one server (and its process group) started by start_server.
stop_server() {
  local s="$1" i
  [ -n "${PID[$s]:-}" ] || return 0
  kill -TERM -- "-${PID[$s]}" 2>/dev/null || true
  for i in $(seq 1 50); do is_alive "${PID[$s]}" || break; sleep 0.1; done
  kill -KILL -- "-${PID[$s]}" 2>/dev/null || true
  wait "${PID[$s]}" 2>/dev/null || true
  unset "PID[$s]"
}

stop_servers() {
  local s
  for s in "${!PID[@]}"; do
    # setsid made each server its own process group: this ends the server and its children
    # (node_cluster's workers) and nothing else.
    kill -TERM -- "-${PID[$s]}" 2>/dev/null || true
  done
  sleep 0.3
  for s in "${!PID[@]}"; do kill -KILL -- "-${PID[$s]}" 2>/dev/null || true; done
}
trap 'stop_servers; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# A zombie still answers kill -0: look at /proc instead.
is_alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# These helpers run between every two wrk runs on a loaded machine: bash builtins only, no forks.

# A process and its descendants (node_cluster's workers), from /proc/<pid>/task/<pid>/children.
tree_pids() {
  local queue=("$1") out=() q kids
  while [ ${#queue[@]} -gt 0 ]; do
    q="${queue[0]}"; queue=("${queue[@]:1}")
    out+=("$q")
    kids=""
    [ -r "/proc/$q/task/$q/children" ] && read -r kids <"/proc/$q/task/$q/children" || true
    # shellcheck disable=SC2206
    [ -n "$kids" ] && queue+=($kids)
  done
  echo "${out[*]}"
}

# VmRSS and VmHWM (kB) summed over a process tree.
mem_kb() {
  local rss=0 hwm=0 q key val _
  for q in $(tree_pids "$1"); do
    [ -r "/proc/$q/status" ] || continue
    while read -r key val _; do
      case "$key" in
        VmRSS:) rss=$((rss + val)) ;;
        VmHWM:) hwm=$((hwm + val)) ;;
      esac
    done <"/proc/$q/status" || true
  done
  echo "$rss $hwm"
}

# utime + stime (clock ticks) summed over a process tree. The machine is shared: the server's
# CPU time during a run says whether it was the bottleneck (close to 1 core) or was starved or
# waiting on wrk, and requests per server CPU-second is steadier than req/s under noise.
cpu_ticks() {
  local t=0 q line f
  for q in $(tree_pids "$1"); do
    [ -r "/proc/$q/stat" ] || continue
    read -r line <"/proc/$q/stat" || continue
    line="${line##*) }"          # drop "pid (comm) ": comm may contain spaces
    read -r -a f <<<"$line"      # f[0] is field 3 (state): utime is field 14, stime 15
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
CLK_TCK="$(getconf CLK_TCK)"

# ---- meta ----------------------------------------------------------------------------------
CPU_MODEL="$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
MACHINE="nproc $(nproc), ${CPU_MODEL}; node $(node --version), express $(node -p "require('$HERE/node_modules/express/package.json').version" 2>/dev/null || echo '?'), fastify $(node -p "require('$HERE/node_modules/fastify/package.json').version" 2>/dev/null || echo '?'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}'), $(rustc --version 2>/dev/null | awk '{print "rustc", $2}')"
GIT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && [ -n "$(git status --porcelain 2>/dev/null | grep -v '^??')" ] && echo '+dirty' || true)"
# With --skip-build the binaries may be older than the tree: record when hello was built.
BUILT="$(date -u -r "$BIN/hello" +%Y-%m-%dT%H:%M:%SZ)"
python3 - "$MODE" "$DURATION" "$RUNS" "$SERVER_CPU" "$WRK_CPU" "$MACHINE" "$GIT" "$SERVERS" "$STAMP" "$BUILT" "$SKIP_BUILD" "$ROWS" "$ARGS" "$CLIENT" >"$OUT" <<'PY'
import json, sys
mode, dur, runs, scpu, wcpu, machine, git, servers, stamp, built, skip, rows, args, client = sys.argv[1:]
print(json.dumps({"type": "meta", "mode": mode, "duration_s": int(dur), "runs": int(runs),
                  "client": "wrk -t1" if client == "wrk" else client,
                  "server_cpu": int(scpu), "wrk_cpu": int(wcpu), "machine": machine,
                  "git": git, "hello_built": built, "skip_build": skip == "1",
                  "servers": servers.split(), "rows": rows.split(), "args": args,
                  "started": stamp}))
PY
log "$MACHINE; git $GIT; hello built $BUILT"
log "results: $OUT"

if has_row main; then
for s in $SERVERS; do start_server "$s"; log "started $s on port ${PORT[$s]} (pid ${PID[$s]})"; done
# Warm-up: 1 s of 64 connections on each server (JIT, allocator, page faults); not recorded.
for s in $SERVERS; do
  if [ "$CLIENT" = wrk ]; then
    timeout 20 taskset -c "$WRK_CPU" wrk -t1 -c64 -d1s "http://127.0.0.1:${PORT[$s]}/plaintext" >/dev/null 2>&1 || true
  else
    timeout 20 taskset -c "$WRK_CPU" "$LOADGEN" "http://127.0.0.1:${PORT[$s]}/plaintext" -c 64 -d 1s >/dev/null 2>&1 || true
  fi
done

read -r -a ORDER <<<"$SERVERS"
N=${#ORDER[@]}
TOTAL=$((RUNS * ${#SCENARIOS[@]} * N)); DONE=0
for round in $(seq 1 "$RUNS"); do
  for sc in "${SCENARIOS[@]}"; do
    IFS='|' read -r name path conns script depth <<<"$sc"
    for i in $(seq 0 $((N - 1))); do
      s="${ORDER[$(((i + round - 1) % N))]}"
      if ! is_alive "${PID[$s]}"; then
        log "$s was dead before $name round $round: restarting"
        start_server "$s" || continue
      fi
      extra=()
      [ "$depth" -gt 1 ] && extra=(-- "$depth")
      read -r load _ </proc/loadavg
      cpu0="$(cpu_ticks "${PID[$s]}")"; t0="$EPOCHREALTIME"
      set +e
      if [ "$CLIENT" = wrk ]; then
        timeout $((DURATION + 30)) taskset -c "$WRK_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" \
          --timeout 5s --latency -s "$HERE/$script" "http://127.0.0.1:${PORT[$s]}$path" "${extra[@]}" \
          >"$WORK/wrk.out" 2>&1
      else
        # Same cell with oneloop's own client: its --json report is what wrk2json.py reads.
        timeout $((DURATION + 30)) taskset -c "$WRK_CPU" "$LOADGEN" "http://127.0.0.1:${PORT[$s]}$path" \
          -c "$conns" -p "$depth" -d "${DURATION}s" --timeout 5s --json >"$WORK/wrk.out" 2>/dev/null
      fi
      rc=$?
      set -e
      cpu1="$(cpu_ticks "${PID[$s]}")"; t1="$EPOCHREALTIME"
      alive=true; is_alive "${PID[$s]}" || alive=false
      read -r rss hwm <<<"$(mem_kb "${PID[$s]}")"
      DONE=$((DONE + 1))
      printf '[run.sh %(%H:%M:%S)T] [%d/%d] ' -1 "$DONE" "$TOTAL" >&2
      python3 "$HERE/wrk2json.py" "$WORK/wrk.out" type=run server="$s" scenario="$name" \
        path="$path" connections="$conns" depth="$depth" round="$round" duration="$DURATION" \
        wrk_exit="$rc" server_cpu_ticks="$((cpu1 - cpu0))" clk_tck="$CLK_TCK" t0="$t0" t1="$t1" \
        rss_kb="$rss" hwm_kb="$hwm" loadavg="$load" alive="$alive" >>"$OUT"
      if [ "$alive" = false ]; then
        log "$s DIED during $name; its log:"; tail -20 "$WORK/$s.log" >&2
        cp "$WORK/$s.log" "$HERE/results/$STAMP.$s.crash.log" || true
      fi
    done
  done
done

for s in $SERVERS; do stop_server "$s"; done
fi

# shellcheck source=rows.sh
has_row idle || has_row slowloris || has_row heavy && . "$HERE/rows.sh"
has_row idle && idle_row
has_row slowloris && slowloris_row
has_row heavy && heavy_row

IMG_DIR="$ROOT/docs/img"
[ "$MODE" = quick ] && IMG_DIR="$HERE/results/img-quick"
mkdir -p "$IMG_DIR"
python3 "$HERE/render.py" "$OUT" --img-dir "$IMG_DIR" | tee "$HERE/results/latest.md"
log "raw: $OUT"
log "wall time $(( $(date +%s) - START_S )) s"

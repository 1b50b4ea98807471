# The extra rows of benches/compare/run.sh (sourced by it; uses its helpers and variables:
# add_server, start_server, stop_server, mem_kb, cpu_ticks, log, $LOADGEN, $OUT, $WORK, $RUNS,
# $DURATION, $SERVER_CPU, $WRK_CPU). Every server here is a fresh instance, so RSS baselines
# are not inflated by earlier rows. The client is oneloop-load (--json), pinned to $WRK_CPU,
# every run bounded by `timeout`. One JSON line per run goes to $OUT (type idle / slowloris /
# heavy), built by rowjson.py.

# oneloop-load pinned to the client CPU, bounded in time; $1 = output file, the rest its args.
load_run() {
  local out="$1"; shift
  timeout 120 taskset -c "$WRK_CPU" "$LOADGEN" "$@" --json >"$out" 2>"$out.err" || true
}

# Open file descriptors of a process (sockets, mostly).
fd_count() { local n=0 f; for f in /proc/"$1"/fd/*; do n=$((n + 1)); done; echo "$n"; }
threads_of() { awk '/^Threads:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
kstack_kb() { awk '/^KernelStack:/{print $2}' /proc/meminfo; }

# ---- idle: $IDLE_N idle keep-alive connections -----------------------------------------------
# Per server: fresh instance, 1 s of load at 64 connections (warm-up, as in the main grid),
# RSS "before"; then oneloop-load holds $IDLE_N idle keep-alive connections (each sends
# /plaintext once, then again 3 s after each answer so the 5 s keep-alive timeouts of Node,
# oneloop and the threaded server never close them); once the server holds them all (its fd
# count), RSS "with" (median of 3 samples 0.5 s apart) and the latency of 3 s of fresh requests
# (a new connection, 200 req/s open loop) while they are held.
idle_row() {
  local round s name url base fds i t0 rss0 hwm0 rss hwm samples th0 th1 ks0 ks1 ready alive hold=16
  for s in $IDLE_SERVERS; do add_server "idle_$s" "$s"; done
  log "idle row: $IDLE_N idle connections, servers: $IDLE_SERVERS"
  for round in $(seq 1 "$EXTRA_RUNS"); do
    for s in $IDLE_SERVERS; do
      name="idle_$s"
      start_server "$name" || continue
      url="http://127.0.0.1:${PORT[$name]}/plaintext"
      load_run "$WORK/idle_warm.json" "$url" -c 64 -d 1s
      sleep 1
      read -r rss0 hwm0 <<<"$(mem_kb "${PID[$name]}")"
      base="$(fd_count "${PID[$name]}")"; th0="$(threads_of "${PID[$name]}")"; ks0="$(kstack_kb)"
      timeout $((hold + 30)) taskset -c "$WRK_CPU" "$LOADGEN" "$url" -c 0 --idle "$IDLE_N" \
        --idle-every 3s -d "${hold}s" --timeout 10s --json >"$WORK/idle_hold.json" 2>"$WORK/idle_hold.err" &
      local hold_pid=$!
      t0="$EPOCHREALTIME"; ready=false
      for i in $(seq 1 60); do
        fds="$(fd_count "${PID[$name]}")"
        if [ "$fds" -ge $((base + IDLE_N)) ]; then ready=true; break; fi
        sleep 0.2
      done
      local connect_s
      connect_s="$(python3 -c "print(round($EPOCHREALTIME - $t0, 2))")"
      sleep 1.5
      samples=()
      for i in 1 2 3; do
        read -r rss _ <<<"$(mem_kb "${PID[$name]}")"; samples+=("$rss"); sleep 0.5
      done
      rss="$(printf '%s\n' "${samples[@]}" | sort -n | sed -n 2p)"
      fds="$(fd_count "${PID[$name]}")"; th1="$(threads_of "${PID[$name]}")"; ks1="$(kstack_kb)"
      load_run "$WORK/idle_fresh.json" "$url" -c 1 --rate 200 -d 3s --timeout 5s
      wait "$hold_pid" 2>/dev/null || true
      read -r _ hwm <<<"$(mem_kb "${PID[$name]}")"
      alive=true; is_alive "${PID[$name]}" || alive=false
      if [ "$alive" = false ]; then
        log "$name DIED during the idle row; its log:"; tail -20 "$WORK/$name.log" >&2
        cp "$WORK/$name.log" "$HERE/results/$STAMP.$name.crash.log" || true
      fi
      python3 "$HERE/rowjson.py" type=idle alive="$alive" server="$s" round="$round" n="$IDLE_N" \
        rss_before_kb="$rss0" rss_with_kb="$rss" hwm_kb="$hwm" fds_before="$base" fds_with="$fds" \
        threads_before="$th0" threads_with="$th1" kernel_stack_before_kb="$ks0" \
        kernel_stack_with_kb="$ks1" all_connected="$ready" connect_s="$connect_s" \
        hold=@"$WORK/idle_hold.json" fresh=@"$WORK/idle_fresh.json" >>"$OUT"
      stop_server "$name"
    done
  done
}

# ---- slowloris: $SLOW_N dripping connections next to 64 normal ones --------------------------
# Per server (one fresh instance for the row), per round, in alternating order: 64-connection
# closed-loop /plaintext load for $DURATION s (1 s warm-up), alone and with oneloop-load's
# --slowloris $SLOW_N (request line + Host, then one header byte a second) on the side. RSS in
# the middle of the run and after it.
slowloris_row() {
  local round s name url mode mid rss_mid rss hwm c0 c1 lp
  for s in $SLOW_SERVERS; do add_server "slow_$s" "$s"; start_server "slow_$s"; done
  log "slowloris row: $SLOW_N slowloris + 64 load connections, servers: $SLOW_SERVERS"
  for round in $(seq 1 "$EXTRA_RUNS"); do
    for s in $SLOW_SERVERS; do
      name="slow_$s"; url="http://127.0.0.1:${PORT[$name]}/plaintext"
      local modes="without with"; [ $((round % 2)) = 0 ] && modes="with without"
      for mode in $modes; do
        is_alive "${PID[$name]}" || start_server "$name" || continue
        local extra=()
        [ "$mode" = with ] && extra=(--slowloris "$SLOW_N")
        c0="$(cpu_ticks "${PID[$name]}")"
        timeout $((DURATION + 60)) taskset -c "$WRK_CPU" "$LOADGEN" "$url" -c 64 -d "${DURATION}s" \
          --warmup 1s --timeout 5s "${extra[@]}" --json >"$WORK/slow.json" 2>"$WORK/slow.err" &
        lp=$!
        sleep "$(python3 -c "print(1 + $DURATION / 2)")"
        read -r rss_mid _ <<<"$(mem_kb "${PID[$name]}")"
        wait "$lp" 2>/dev/null || true
        c1="$(cpu_ticks "${PID[$name]}")"
        read -r rss hwm <<<"$(mem_kb "${PID[$name]}")"
        python3 "$HERE/rowjson.py" type=slowloris server="$s" round="$round" mode="$mode" \
          slowloris="$([ "$mode" = with ] && echo "$SLOW_N" || echo 0)" rss_mid_kb="$rss_mid" \
          rss_kb="$rss" hwm_kb="$hwm" threads="$(threads_of "${PID[$name]}")" \
          server_cpu_s="$(python3 -c "print(round(($c1 - $c0) / $CLK_TCK, 2))")" \
          load=@"$WORK/slow.json" >>"$OUT"
      done
    done
  done
  for s in $SLOW_SERVERS; do stop_server "slow_$s"; done
}

# ---- heavy: ~5 ms of hashing per request -------------------------------------------------------
# examples/heavy.rs (loop: /heavy-blocking hashes in the callback, /heavy-pool on queue_work;
# --threaded: thread per connection) and node_heavy.js (pbkdf2Sync / async pbkdf2 on libuv's
# pool), each calibrated at start-up to ~5 ms per request. Per variant: 64-connection
# closed-loop load on the heavy route and, at the same time, 50 req/s open loop of /plaintext on
# one more connection (the cheap request everybody else is waiting to get answered).
heavy_row() {
  local round v s path name url n i hp cp c0 c1 calib
  add_server heavy_oneloop heavy; add_server heavy_threaded heavy_threaded
  add_server heavy_node node_heavy
  for name in heavy_oneloop heavy_threaded heavy_node; do start_server "$name"; done
  # shellcheck disable=SC2206
  local variants=($HEAVY_VARIANTS)
  n=${#variants[@]}
  log "heavy row: ${variants[*]}"
  for round in $(seq 1 "$EXTRA_RUNS"); do
    for i in $(seq 0 $((n - 1))); do
      v="${variants[$(((i + round - 1) % n))]}"; s="${v%%:*}"; path="${v#*:}"
      name="heavy_$s"
      is_alive "${PID[$name]}" || start_server "$name" || continue
      url="http://127.0.0.1:${PORT[$name]}"
      calib="$(grep -oE '\([0-9]+ [A-Za-z0-9-]+ iterations, [0-9.]+ ms\)' "$WORK/$name.log" | head -1)"
      c0="$(cpu_ticks "${PID[$name]}")"
      timeout $((DURATION + 60)) taskset -c "$WRK_CPU" "$LOADGEN" "$url$path" -c 64 -d "${DURATION}s" \
        --warmup 1s --timeout 10s --json >"$WORK/heavy.json" 2>"$WORK/heavy.err" &
      hp=$!
      timeout $((DURATION + 60)) taskset -c "$WRK_CPU" "$LOADGEN" "$url/plaintext" -c 1 --rate 50 \
        -d "${DURATION}s" --warmup 1s --timeout 10s --json >"$WORK/cheap.json" 2>"$WORK/cheap.err" &
      cp=$!
      wait "$hp" 2>/dev/null || true
      wait "$cp" 2>/dev/null || true
      c1="$(cpu_ticks "${PID[$name]}")"
      read -r rss _ <<<"$(mem_kb "${PID[$name]}")"
      python3 "$HERE/rowjson.py" type=heavy server="$s" route="$path" variant="$s $path" \
        round="$round" calibration="${calib:-?}" rss_kb="$rss" \
        server_cpu_s="$(python3 -c "print(round(($c1 - $c0) / $CLK_TCK, 2))")" \
        heavy=@"$WORK/heavy.json" cheap=@"$WORK/cheap.json" >>"$OUT"
    done
  done
  for name in heavy_oneloop heavy_threaded heavy_node; do stop_server "$name"; done
}

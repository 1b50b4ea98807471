#!/usr/bin/env bash
# Three oneloop chat instances on three loopback addresses (127.0.0.2, .3, .4; same port), one
# redis-server (their shared WebSocket room: chat --redis), and nginx in front of the three
# (WebSocket upgrades proxied). Every process runs from a state directory of its own (config,
# pid files, logs, nginx temp dirs): no system service is used or touched.
#
#   deploy/multi_instance.sh demo                # up, print the URLs, wait for Ctrl-C, down
#   deploy/multi_instance.sh up         DIR      # start everything, wait until it serves
#   deploy/multi_instance.sh restart    DIR N    # SIGTERM instance N (1-3), wait for its
#                                                # drain and exit, start it again, wait
#   deploy/multi_instance.sh rolling    DIR      # restart 1, 2, 3 in turn
#   deploy/multi_instance.sh redis-kill DIR      # SIGKILL redis-server (a crash)
#   deploy/multi_instance.sh redis-start DIR     # start it again on the same port
#   deploy/multi_instance.sh down       DIR      # stop everything (by pid)
#
# Environment (defaults): CHAT_BIN (builds target/release/examples/chat), CHAT_PORT (3000),
# NGINX_LISTEN (127.0.0.1:8080), REDIS_PORT (6390), ADDRS ("127.0.0.2 127.0.0.3 127.0.0.4").
# `up` records them in DIR/env, so later commands need only DIR.
# Needs nginx, redis-server and curl (apt-get install -y nginx redis-server curl).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "multi_instance: $*" >&2; exit 1; }

load_env() { # DIR
    DIR=$1
    [ -f "$DIR/env" ] || die "$DIR/env missing: run \`up $DIR\` first"
    # shellcheck disable=SC1091
    . "$DIR/env"
    read -r -a ADDR_LIST <<<"$ADDRS"
}

wait_http() { # URL what
    for _ in $(seq 200); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.05
    done
    die "$2 never answered $1"
}

start_redis() {
    mkdir -p "$DIR/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$DIR/redis" >>"$DIR/redis.log" 2>&1 &
    echo $! >"$DIR/redis.pid"
    for _ in $(seq 200); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    die "redis-server did not start on port $REDIS_PORT (see $DIR/redis.log)"
}

start_instance() { # N (1-based)
    local addr=${ADDR_LIST[$(($1 - 1))]}
    RUST_LOG=${RUST_LOG:-info} "$CHAT_BIN" --host "$addr" --port "$CHAT_PORT" --redis "redis://127.0.0.1:$REDIS_PORT" \
        >>"$DIR/chat-$1.log" 2>&1 &
    echo $! >"$DIR/chat-$1.pid"
    wait_http "http://$addr:$CHAT_PORT/hub/stats" "instance $1"
}

# Whether pid runs (a zombie does not: once `up` has exited, our processes' parent is
# whatever adopted them, which may never reap them).
alive() {
    local state=""
    [ -r "/proc/$1/stat" ] && read -r _ _ state _ <"/proc/$1/stat" 2>/dev/null
    [ -n "$state" ] && [ "$state" != Z ]
}

stop_pid() { # pidfile signal -> waits up to 15 s, then SIGKILL
    [ -f "$1" ] || return 0
    local pid
    pid=$(cat "$1")
    kill "-$2" "$pid" 2>/dev/null || true
    for _ in $(seq 300); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
        echo "  pid $pid still running 15 s after SIG$2: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

up() { # DIR
    DIR=$1
    mkdir -p "$DIR/nginx-tmp"
    command -v nginx >/dev/null || die "nginx missing: apt-get install -y nginx"
    command -v redis-server >/dev/null || die "redis-server missing: apt-get install -y redis-server"
    if [ -z "${CHAT_BIN:-}" ]; then
        cargo build --release --example chat -q
        CHAT_BIN=$PWD/target/release/examples/chat
    fi
    cat >"$DIR/env" <<EOF
CHAT_BIN='$CHAT_BIN'
CHAT_PORT='${CHAT_PORT:-3000}'
NGINX_LISTEN='${NGINX_LISTEN:-127.0.0.1:8080}'
REDIS_PORT='${REDIS_PORT:-6390}'
ADDRS='${ADDRS:-127.0.0.2 127.0.0.3 127.0.0.4}'
EOF
    load_env "$DIR"
    start_redis
    for n in 1 2 3; do start_instance "$n"; done
    sed -e "s#@PREFIX@#$DIR#g" -e "s#@LISTEN@#$NGINX_LISTEN#" \
        -e "s#@UP1@#${ADDR_LIST[0]}:$CHAT_PORT#" -e "s#@UP2@#${ADDR_LIST[1]}:$CHAT_PORT#" \
        -e "s#@UP3@#${ADDR_LIST[2]}:$CHAT_PORT#" deploy/nginx-multi.conf >"$DIR/nginx.conf"
    # In the foreground of its own background job (daemon off): its pid is ours to stop.
    nginx -p "$DIR" -e "$DIR/nginx-error.log" -c "$DIR/nginx.conf" -g "daemon off;" \
        >>"$DIR/nginx.log" 2>&1 &
    echo $! >"$DIR/nginx-master.pid"
    wait_http "http://$NGINX_LISTEN/hub/stats" nginx
    echo "up: nginx http://$NGINX_LISTEN/ -> ${ADDR_LIST[*]} port $CHAT_PORT; redis 127.0.0.1:$REDIS_PORT"
}

restart() { # N
    local pidfile=$DIR/chat-$1.pid
    echo "restart instance $1 (${ADDR_LIST[$(($1 - 1))]}, pid $(cat "$pidfile")): SIGTERM"
    local before
    before=$(grep -c "shutdown complete" "$DIR/chat-$1.log" || true)
    stop_pid "$pidfile" TERM
    [ "$(grep -c "shutdown complete" "$DIR/chat-$1.log" || true)" -gt "$before" ] &&
        echo "  drained and exited" ||
        die "instance $1 exited without draining (see $DIR/chat-$1.log)"
    start_instance "$1"
    echo "  instance $1 serving again (pid $(cat "$pidfile"))"
}

down() {
    stop_pid "$DIR/nginx-master.pid" QUIT
    for n in 1 2 3; do stop_pid "$DIR/chat-$n.pid" TERM; done
    stop_pid "$DIR/redis.pid" TERM
}

cmd=${1:-}
case "$cmd" in
up) [ $# -eq 2 ] || die "usage: $0 up DIR"; up "$2" ;;
restart) [ $# -eq 3 ] || die "usage: $0 restart DIR N"; load_env "$2"; restart "$3" ;;
rolling) load_env "$2"; for n in 1 2 3; do restart "$n"; done ;;
redis-kill) load_env "$2"; stop_pid "$DIR/redis.pid" KILL; echo "redis-server killed" ;;
redis-start) load_env "$2"; start_redis; echo "redis-server started on port $REDIS_PORT" ;;
down) load_env "$2"; down ;;
demo)
    DIR=$(mktemp -d /tmp/oneloop-multi.XXXXXX)
    up "$DIR"
    trap 'down; echo "stopped; logs in $DIR"' EXIT
    echo "open http://$NGINX_LISTEN/ in two tabs (or each instance directly); Ctrl-C stops"
    while sleep 3600; do :; done
    ;;
*) die "usage: $0 demo | up DIR | restart DIR N | rolling DIR | redis-kill DIR | redis-start DIR | down DIR" ;;
esac

#!/usr/bin/env bash
# Browser test of examples/chat.rs: headless Chromium opens the chat page as two users, one sends,
# the other must see it (chat.test.js); writes a screenshot of both pages to docs/img/chat.png.
#
#   tests/browser/run.sh [SCREENSHOT.png]      (default: docs/img/chat.png)
#
# Needs Rust, Node 20+, Python 3. Installs Debian's `chromium` with apt-get if it is missing
# (sudo when not root) and playwright-core (pinned in package-lock.json) with `npm ci`; the
# browser is the system chromium, playwright downloads none.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SHOT="${1:-$ROOT/docs/img/chat.png}"
START=$SECONDS
say() { printf '==> [%3ds] %s\n' "$((SECONDS - START))" "$*"; }

# 1. chromium
if ! command -v chromium >/dev/null 2>&1; then
  say "installing chromium (apt-get)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi
CHROMIUM="$(command -v chromium)"
export CHROMIUM
say "$("$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM"

# 2. playwright-core (no browser download: we drive the system chromium)
say "npm ci (playwright-core)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$HERE" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)

# 3. the chat server, on a free port
say "cargo build --release --example chat"
(cd "$ROOT" && cargo build --release --example chat)
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SERVER_LOG="$(mktemp)"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -s "$SERVER_LOG" ]; then
    echo "--- chat server output:" >&2
    cat "$SERVER_LOG" >&2
  fi
  rm -f "$SERVER_LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$TARGET_DIR/release/examples/chat" --port "$PORT" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT/"
say "chat server (pid $SERVER_PID) starting on $URL"
answers() {
  python3 -c 'import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 and b"oneloop chat" in r.read() else 1)' "$URL" 2>/dev/null
}
for i in $(seq 100); do
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: the chat server exited" >&2; exit 1; }
  answers && break
  [ "$i" = 100 ] && { echo "FAIL: the chat server did not answer on $URL within 20 s" >&2; exit 1; }
  sleep 0.2
done
say "chat server answers"

# 4. the test
say "node chat.test.js"
timeout 120 node "$HERE/chat.test.js" "$URL" "$SHOT"
say "done"

#!/usr/bin/env bash
# Autobahn|Testsuite fuzzingclient against examples/chat.rs's /echo endpoint. See docs/ws.md.
#
#   benches/ws/autobahn/run.sh [--release]
#
# Needs Python 2.7 (pyenv: PYENV_VERSION=2.7.18) with `pip install autobahntestsuite`.
# Cases: fuzzingclient.json: every case (1.* to 10.*, and 12.*/13.*: permessage-deflate), against
# /echo (shared compression) and /echo-dedicated (dedicated compression).
# Report: $OUT/reports/servers/index.html (OUT defaults to a temporary directory).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE=debug
CARGO_FLAGS=()
if [ "${1:-}" = "--release" ]; then PROFILE=release; CARGO_FLAGS=(--release); fi
PORT="${PORT:-9001}"
OUT="${OUT:-$(mktemp -d)}"
export PYENV_VERSION="${PYENV_VERSION:-2.7.18}"

python -c 'import autobahntestsuite' 2>/dev/null || python -m pip install autobahntestsuite
(cd "$ROOT" && cargo build -p oneloop --example chat "${CARGO_FLAGS[@]}")
"$TARGET_DIR/$PROFILE/examples/chat" --port "$PORT" >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
sed "s/127.0.0.1:9001/127.0.0.1:$PORT/g" "$HERE/fuzzingclient.json" >"$OUT/fuzzingclient.json"
(cd "$OUT" && python -m autobahntestsuite.wstest -m fuzzingclient -s fuzzingclient.json >wstest.log 2>&1)
python3 - "$OUT/reports/servers/index.json" <<'PY'
import collections, json, sys
failed = 0
for agent, d in sorted(json.load(open(sys.argv[1])).items()):
    c = collections.Counter((v["behavior"], v["behaviorClose"]) for v in d.values())
    print(f"{agent}: {len(d)} cases: {dict(c)}")
    for prefix in ("12.", "13."):
        sub = {k: v for k, v in d.items() if k.startswith(prefix)}
        ok = sum(v["behavior"] == "OK" for v in sub.values())
        print(f"  {prefix}*: {ok}/{len(sub)} OK")
    for k, v in sorted(d.items()):
        if v["behavior"] not in ("OK", "INFORMATIONAL", "NON-STRICT"):
            failed += 1
            print("FAILED", agent, k, v)
sys.exit(1 if failed else 0)
PY
echo "report: $OUT/reports/servers/index.html"

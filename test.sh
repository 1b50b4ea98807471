#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing (idempotent: a second run
# installs nothing), then runs every test. Needs Rust, Node 20, Python 3 and git; system packages
# come from apt-get (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")"

apt_install() { # apt_install <command> <debian package>
    command -v "$1" >/dev/null && return
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$2"
}

command -v node >/dev/null || { echo "node (v20) is required: the golden and differential tests run it"; exit 1; }
# tests/threaded_raw.rs reads listen backlogs with `ss`.
apt_install ss iproute2
# tests/http_unix.rs drives HTTP over a Unix socket with real `curl --unix-socket`.
apt_install curl curl
# tests/tls_interop.rs runs `openssl s_client` (handshakes, resumption, renegotiation) and
# curl over TLS against the HTTPS server; the aws-lc-rs crypto provider needs a C compiler
# (cc), which building Rust on Linux already requires (no CMake or Go).
apt_install openssl openssl
# tests/redis_*.rs start a real redis-server (Debian's) on free loopback ports.
apt_install redis-server redis-server
# tests/deploy_multi.rs runs nginx (Debian's) in front of three chat instances, as the test's
# own process (its own config, pid file and temp dirs; no service is started).
apt_install nginx nginx
# npm packages of the differential tests (cors, helmet, express...), pinned by the lockfile.
for dir in tests/node tests/node_redis benches/compare/shop_express benches/compare/shop_fastify; do
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        npm ci --prefix "$dir" --no-audit --no-fund
        touch "$dir/node_modules"
    fi
done

# tests/observability.rs: Python's prometheus_client parser (pinned in requirements.txt) in a
# venv under target/py, and pino-pretty (pinned by its lockfile). Without the venv module
# (Debian's python3 without python3-venv): a user install, which the test finds via python3.
if [ ! -x target/py/bin/python ] && ! python3 -m venv target/py; then
    rm -rf target/py
    python3 -c 'import prometheus_client' 2>/dev/null ||
        python3 -m pip install -q --user --disable-pip-version-check --break-system-packages \
            -r tests/observability/requirements.txt
fi
if [ -x target/py/bin/python ] && ! target/py/bin/python -c 'import prometheus_client' 2>/dev/null; then
    target/py/bin/pip install -q --disable-pip-version-check -r tests/observability/requirements.txt
fi
if [ ! -d tests/observability/node_modules ] || [ tests/observability/package-lock.json -nt tests/observability/node_modules ]; then
    npm ci --prefix tests/observability --no-audit --no-fund
    touch tests/observability/node_modules
fi

cargo test --workspace "$@"

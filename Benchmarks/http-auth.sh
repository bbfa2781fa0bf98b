#!/usr/bin/env bash
# How many requests per second an authenticated read route serves against `/healthz`, on a release
# build, in a throwaway MOAT_HOME (owner and a `read` API token set up offline). Loopback only.
#
#   swift build -c release --product moat
#   Benchmarks/http-auth.sh                  # MOAT=… DURATION=10s CONNECTIONS=32 THREADS=2 ROUTE=/api/auth/session
#
# Needs wrk (`apt-get install -y wrk`). The token reaches wrk through a file read by a Lua script, never
# through argv. Docs/Performance.md records the results.
set -euo pipefail

MOAT=${MOAT:-.build/release/moat}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUTE=${ROUTE:-/api/auth/session}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[ -x "$MOAT" ] || { echo "no moat binary at $MOAT: swift build -c release --product moat" >&2; exit 1; }
MOAT=$(cd "$(dirname "$MOAT")" && pwd)/$(basename "$MOAT")

work=$(mktemp -d /tmp/moat-bench.XXXXXX)
chmod 700 "$work"
export MOAT_HOME="$work/home"
# The seal's machine key, as the tests use it (systemd-creds creates the file).
export SYSTEMD_CREDENTIAL_SECRET="$work/host-key.secret"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

start_server() {
    : > "$work/serve.log"
    "$MOAT" serve --log-format json --port 0 2>"$work/serve.log" >/dev/null &
    pid=$!
    port=""
    for _ in $(seq 1 600); do
        port=$(grep -o '"url":"http://[^"]*"' "$work/serve.log" | head -n 1 | sed -E 's/.*:([0-9]+)"$/\1/' || true)
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "moat serve did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
}

stop_server() {
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
}

# First start creates the state (vault, seal, database); the owner and the token are made offline.
start_server
stop_server
printf '%s\n' "a long benchmark passphrase" | "$MOAT" owner setup --owner-password-stdin >/dev/null
(umask 077 && "$MOAT" token create bench --scope read >"$work/token" 2>/dev/null)
cat >"$work/auth.lua" <<'LUA'
local file = assert(io.open(os.getenv("MOAT_BENCH_TOKEN_FILE")))
wrk.headers["Authorization"] = "Bearer " .. file:read("*l")
file:close()
LUA

start_server
url="http://127.0.0.1:$port"
run() {
    local name=$1
    shift
    echo "== $name" >&2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | tee "$work/$name.txt" >&2
    if grep -q 'Non-2xx or 3xx responses' "$work/$name.txt"; then
        echo "$name: some answers were errors; the numbers do not count" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ { print $2 }' "$work/$name.txt"
}
health=$(run healthz "$url/healthz")
authed=$(MOAT_BENCH_TOKEN_FILE="$work/token" run authenticated -s "$work/auth.lua" "$url$ROUTE")
stop_server
awk -v h="$health" -v a="$authed" -v route="$ROUTE" 'BEGIN {
    printf "/healthz: %.0f req/s; GET %s with a read token: %.0f req/s; ratio %.2f\n", h, route, a, a / h
}'

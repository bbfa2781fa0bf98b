#!/usr/bin/env bash
# The installed moat on its own: its size, the shared libraries it loads (no Swift runtime library),
# `moat --version` and `moat serve` (until /healthz answers) with the Swift toolchain hidden, the idle
# RSS of `moat serve`, and the start-up time of a CLI command. The figures in README.md come from here.
#
#   bench/installed-binary.sh                        # the moat on PATH, as ./install.sh installed it
#   bench/installed-binary.sh ~/.local/bin/moat      # a given binary (its moat-sandbox beside it)
#   CHECK_ONLY=1 bench/installed-binary.sh BINARY    # the checks alone, no timings (what CI runs)
#
# The toolchain is hidden by a tmpfs mounted over it in a private mount namespace (unshare -m as root,
# unshare -rm otherwise), so a binary that still needed a library from it fails here. Needs util-linux,
# curl and python3; the start-up times need hyperfine (apt-get install -y hyperfine).
set -euo pipefail

moat="$(readlink -f "${1:-$(command -v moat || true)}")"
[[ -x "$moat" ]] || { echo "no moat binary: give its path, or install it with ./install.sh" >&2; exit 64; }
launcher="$(dirname "$moat")/moat-sandbox"
check_only="${CHECK_ONLY:-0}"
work="$(mktemp -d)"
server=""
cleanup() {
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "binary: $moat"
printf 'size: moat %s bytes (%s), moat-sandbox %s bytes\n' "$(stat -c %s "$moat")" \
    "$(du -h "$moat" | cut -f1)" "$(stat -c %s "$launcher" 2>/dev/null || echo '-')"

# 1. No Swift runtime library among the shared libraries, and none missing.
libraries="$(ldd "$moat")"
echo "$libraries" | sed 's/^/  ldd: /'
if echo "$libraries" | grep -Eq 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|libXCTest|libTesting'; then
    fail "moat loads a Swift runtime library: build it with --static-swift-stdlib (./install.sh does)"
fi
if echo "$libraries" | grep -q 'not found'; then fail "a shared library moat needs is missing"; fi

# 2. It runs with the toolchain hidden: the directory above the `swift` driver's usr/bin.
toolchain=""
if command -v swift >/dev/null 2>&1; then
    toolchain="$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")")"
fi
hidden() { # execs "$@" with the toolchain (if any) behind an empty tmpfs; call it in a subshell: $(…) or &
    local unshare=(unshare -m)
    [[ "$(id -u)" -eq 0 ]] || unshare=(unshare -rm)
    exec "${unshare[@]}" sh -c 'if [ -n "$1" ]; then mount -t tmpfs -o ro,size=4k none "$1" || exit 90; fi; shift; exec "$@"' \
        hide "$toolchain" env -u LD_LIBRARY_PATH "$@"
}
[[ -z "$toolchain" ]] || echo "toolchain hidden while moat runs: $toolchain"
version="$(hidden "$moat" --version)" || fail "moat --version did not run with the toolchain hidden"
echo "moat --version: $version"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export MOAT_HOME="$work/home"
unset XDG_CONFIG_HOME XDG_STATE_HOME
start_server() {
    hidden "$moat" serve --port "$port" --log-format json >"$work/serve.log" 2>&1 </dev/null &
    server=$!
    for _ in $(seq 600); do
        if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
        kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; fail "moat serve stopped"; }
        sleep 0.1
    done
    cat "$work/serve.log" >&2
    fail "moat serve did not answer /healthz within 60 s"
}
stop_server() {
    kill -TERM "$server"
    wait "$server" || fail "moat serve did not stop cleanly (exit $?)"
    server=""
}
# The first start creates and seals the vault; the second is an ordinary (unattended) start.
start_server
stop_server
start_server
echo "moat serve answered /healthz on 127.0.0.1:$port with the toolchain hidden"

# 3. Idle memory of the ordinary start, after it settled.
sleep "${SETTLE_SECONDS:-5}"
grep -E '^(VmRSS|RssAnon|RssFile|RssShmem|Threads):' "/proc/$server/status" | sed 's/^/  idle serve: /'
stop_server

# 4. Start-up time of a CLI command against the launcher alone (both run /bin/true in a sandbox).
if [[ "$check_only" != 1 ]]; then
    if command -v hyperfine >/dev/null 2>&1; then
        printf '{"argv":["/bin/true"]}\n' >"$work/true.json"
        hyperfine -N --warmup 5 --runs "${RUNS:-50}" --style basic \
            "$moat --version" "$moat sandbox run -- /bin/true" "$launcher --spec $work/true.json"
    else
        echo "(hyperfine is not installed: no start-up times; apt-get install -y hyperfine)"
    fi
fi
echo "ok: no Swift runtime library; moat --version and moat serve ran without the toolchain"

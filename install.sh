#!/usr/bin/env bash
# Moat installer. Idempotent: running it again only does what is missing.
#
#   ./install.sh                 install system packages, build release, install moat (and moat-sandbox)
#   ./install.sh --deps          install only the system packages `swift test` and CI need, including
#                                the headless browser the tests drive (chromium, chromium-driver,
#                                python3-selenium); a plain ./install.sh never installs those
#   ./install.sh --prefix DIR    install the binaries into DIR (default: /usr/local/bin as root,
#                                ~/.local/bin otherwise)
set -euo pipefail

PACKAGES=(libsqlite3-dev libsodium-dev libargon2-dev libseccomp-dev libssl-dev libqrencode-dev pkg-config)
# Only for the tests (--deps): the real browser the login-page tests drive, curl, and the tools the
# attack tests use: openssl s_client (TLS suites), gdb's gcore (core dumps), chattr (a read-only
# moat.db as root), setpriv/unshare (util-linux), systemd-creds (the seal's host key), python3-venv (the
# official openai client checks the scripted model server, and tests/api-contract.sh runs schemathesis
# and its stub model, from venvs under ~/.cache/moat-test-venvs; python3-venv brings python3).
TEST_PACKAGES=(chromium chromium-driver python3-selenium curl openssl gdb e2fsprogs util-linux systemd python3-venv)
deps_only=0
prefix=""

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --deps) deps_only=1 ;;
        --prefix)
            [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory, e.g. --prefix ~/bin" >&2; exit 64; }
            prefix="$2"; shift ;;
        --prefix=*) prefix="${1#--prefix=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1'" >&2; usage >&2; exit 64 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*"; }

run_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install.sh: need root to install system packages, and sudo is not available." >&2
        echo "  As root, run: apt-get install -y ${PACKAGES[*]}" >&2
        exit 1
    fi
}

install_system_packages() {
    local missing=()
    local pkg
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        echo "install.sh: this machine has no apt-get; Moat's installer supports Debian and Ubuntu." >&2
        echo "  Install these libraries (development headers) with your package manager, then run" >&2
        echo "  swift build -c release: sqlite3, libsodium, libargon2, libseccomp, libqrencode, openssl, pkg-config" >&2
        exit 1
    fi
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "system packages present: ${PACKAGES[*]}"
        return
    fi
    say "installing system packages: ${missing[*]}"
    run_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    run_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

require_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        echo "install.sh: Swift is not installed (no 'swift' on PATH)." >&2
        echo "  Moat needs Swift 6.2 or newer: install a toolchain from swift.org, put its usr/bin on PATH," >&2
        echo "  then run ./install.sh again." >&2
        exit 1
    fi
}

if [ "$deps_only" -eq 1 ]; then
    PACKAGES+=("${TEST_PACKAGES[@]}")
fi
install_system_packages
if [ "$deps_only" -eq 1 ]; then
    say "dependencies installed; run the tests with: swift test"
    exit 0
fi

require_swift
cd "$(dirname "$0")"
say "building release (the first build takes a few minutes)"
# --static-swift-stdlib links the Swift runtime, Foundation (with its ICU data) and Dispatch into the
# binary, so the installed moat needs only the system libraries (libsodium, libargon2, libsqlite3,
# libqrencode, libstdc++, libc): no Swift toolchain on the machine that runs it.
swift build -c release --static-swift-stdlib --product moat
# The sandbox launcher: moat looks for it beside itself and runs no tool command without it. It is a
# static C program already (Package.swift).
swift build -c release --static-swift-stdlib --product moat-sandbox
bin_dir="$(swift build -c release --static-swift-stdlib --show-bin-path)"

if [ -z "$prefix" ]; then
    if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local/bin; else prefix="$HOME/.local/bin"; fi
fi
mkdir -p "$prefix"
for tool in moat moat-sandbox; do
    if [ -x "$bin_dir/$tool" ]; then
        # Stripped (-s): nothing at run time reads the symbol table and debug sections.
        install -s -m 0755 "$bin_dir/$tool" "$prefix/$tool.new"
        mv -f "$prefix/$tool.new" "$prefix/$tool"
        say "installed $prefix/$tool"
    fi
done

case ":$PATH:" in
    *":$prefix:"*) ;;
    *) say "note: $prefix is not on your PATH; add it, e.g.: export PATH=\"$prefix:\$PATH\"" ;;
esac

cat <<NEXT

Next:
  moat serve        start the gateway on http://127.0.0.1:18789 (Ctrl-C stops it)
  moat doctor       check the security posture of this installation
  moat --help       every command

Configuration: copy config.yaml.example to \${XDG_CONFIG_HOME:-~/.config}/moat/config.yaml
(or to \$MOAT_HOME/config.yaml) and edit it; see Docs/Configuration.md.
NEXT

#!/usr/bin/env bash
# A real Matrix homeserver (Synapse) on loopback, for the Matrix channel's tests and for trying Moat's
# Matrix channel by hand. The tests (MoatTestSupport.SynapseHomeserver) use `config` and run the server
# themselves; a person uses `start`, `register` and `stop`.
#
# Synapse comes from PyPI (matrix-synapse, wheels only: about 30 s, no compiler) into a venv outside the
# repository, the same one the tests use: ${XDG_CACHE_HOME:-~/.cache}/moat-test-venvs/synapse.
# Needs python3 and python3-venv (./install.sh --deps).
#
#   tests/synapse.sh install                      # once (idempotent)
#   tests/synapse.sh config DIR PORT              # a fresh homeserver.yaml, signing key and shared secret in DIR
#   tests/synapse.sh start DIR [PORT]             # config (when DIR has none) + start in the background; waits
#                                                 # for /_matrix/client/versions; default port 8008
#   tests/synapse.sh register DIR USER            # a user (asks for the password), through the shared-secret admin API
#   tests/synapse.sh stop DIR                     # SIGTERM to the PID in DIR/homeserver.pid, waits for the exit
#
# The server is named `localhost` (users are @USER:localhost), keeps its state in DIR (SQLite), listens
# on 127.0.0.1 only, has no federation listener, no open registration and relaxed rate limits. Then, in
# Moat's config.yaml: channels: {matrix: {homeserver_url: http://127.0.0.1:8008, user_id: "@bot:localhost",
# password_secret: MATRIX_PASSWORD}} (Docs/Channels.md, "Matrix").
set -euo pipefail

version='matrix-synapse==1.163.*'
venv="${XDG_CACHE_HOME:-$HOME/.cache}/moat-test-venvs/synapse"

die() { echo "synapse.sh: $*" >&2; exit 1; }

install() {
    [ -f "$venv/.moat-ready" ] && return
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || die "python3 cannot make a venv: install python3-venv (./install.sh --deps)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --timeout 30 --retries 1 "$version"
    touch "$venv/.moat-ready"  # the marker MoatTestSupport.PythonVenv looks for
}

# Writes DIR/homeserver.yaml, DIR/log.yaml, DIR/signing.key (all 0600) for a server on 127.0.0.1:PORT.
config() {
    local dir="$1" port="$2"
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, e.g. 8008"
    mkdir -p "$dir"
    chmod 700 "$dir"
    dir="$(cd "$dir" && pwd)"
    umask 077
    # An ed25519 signing key is "ed25519 VERSION SEED" with the 32-byte seed in unpadded base64.
    printf 'ed25519 a_moat %s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '=')" >"$dir/signing.key"
    local secret
    secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    cat >"$dir/log.yaml" <<EOF
version: 1
formatters:
  plain: {format: '%(asctime)s %(levelname)s %(name)s %(message)s'}
handlers:
  file: {class: logging.FileHandler, formatter: plain, filename: $dir/homeserver.log}
root: {level: WARNING, handlers: [file]}
disable_existing_loggers: false
EOF
    cat >"$dir/homeserver.yaml" <<EOF
server_name: localhost
public_baseurl: http://127.0.0.1:$port/
pid_file: $dir/homeserver.pid
signing_key_path: $dir/signing.key
log_config: $dir/log.yaml
media_store_path: $dir/media
report_stats: false
suppress_key_server_warning: true
trusted_key_servers: []
database:
  name: sqlite3
  args: {database: $dir/homeserver.db}
# Only the client API, on loopback: no federation listener.
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
federation_domain_whitelist: []
enable_registration: false
registration_shared_secret: "$secret"
url_preview_enabled: false
presence: {enabled: false}
# Tests send bursts: the limits stay on (M_LIMIT_EXCEEDED is real) but far above what a test sends.
rc_message: {per_second: 1000, burst_count: 1000}
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
rc_registration: {per_second: 1000, burst_count: 1000}
rc_joins:
  local: {per_second: 1000, burst_count: 1000}
  remote: {per_second: 1000, burst_count: 1000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 1000}
  per_user: {per_second: 1000, burst_count: 1000}
  per_issuer: {per_second: 1000, burst_count: 1000}
EOF
}

wait_ready() {
    local port="$1" tries=0
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/_matrix/client/versions" 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt 240 ] || die "the homeserver did not answer within 60 s; see its log"
        sleep 0.25
    done
}

port_of() { sed -n 's/^  - port: \([0-9]*\)$/\1/p' "$1/homeserver.yaml"; }

case "${1:-}" in
install)
    install
    "$venv/bin/python" -c 'import synapse; print("Synapse", synapse.__version__)'
    ;;
config)
    [ $# -eq 3 ] || die "usage: tests/synapse.sh config DIR PORT"
    config "$2" "$3"
    ;;
start)
    [ $# -ge 2 ] || die "usage: tests/synapse.sh start DIR [PORT]"
    install
    [ -f "$2/homeserver.yaml" ] || config "$2" "${3:-8008}"
    "$venv/bin/python" -m synapse.app.homeserver --config-path "$2/homeserver.yaml" --daemonize
    wait_ready "$(port_of "$2")"
    echo "Synapse answers at http://127.0.0.1:$(port_of "$2") (state and log in $2)"
    ;;
register)
    [ $# -eq 3 ] || die "usage: tests/synapse.sh register DIR USER"
    # Synapse's own client of the shared-secret API (nonce + HMAC-SHA1), reading the secret from the config.
    "$venv/bin/register_new_matrix_user" --config "$2/homeserver.yaml" --user "$3" --no-admin \
        "http://127.0.0.1:$(port_of "$2")"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: tests/synapse.sh stop DIR"
    [ -f "$2/homeserver.pid" ] || die "no $2/homeserver.pid: the homeserver is not running"
    pid="$(cat "$2/homeserver.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    echo "stopped"
    ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
    ;;
esac

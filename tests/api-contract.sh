#!/usr/bin/env bash
# The API contract: Docs/openapi.yaml checked against a real `moat serve` on loopback by schemathesis
# (PyPI), with an owner's admin API token and a bounded number of examples per operation. Any 5xx answer
# (check not_a_server_error) or any answer whose status, body or headers the spec does not describe
# (response_schema_conformance and status_code_conformance) fails the run. .ci/run runs it after the tests.
#
#   tests/api-contract.sh                      # the moat of `swift build` (built when missing)
#   MOAT=.build/release/moat tests/api-contract.sh
#   MAX_EXAMPLES=100 SEED=1 tests/api-contract.sh   # more cases per operation; a seed to replay a run
#   CHECKS=all tests/api-contract.sh           # every schemathesis check (to look for drift; not all hold)
#
# Schemathesis goes into a venv outside the repository, made when absent:
# ${XDG_CACHE_HOME:-~/.cache}/moat-test-venvs/schemathesis. Needs python3, python3-venv and curl
# (./install.sh --deps). The token reaches schemathesis through a 0600 config file, never argv or the
# environment; the whole MOAT_HOME is a throwaway directory.
#
# Left out, each for a reason of state, not of schema:
#   POST /api/auth/revoke-all and /api/auth/password: would end the token's own access (or the owner's
#     password) half-way through the run;
#   POST /api/setup and /api/auth/login: one-time link and the login rate limit (10 failures → 429 for 15
#     minutes), each Argon2id (tens of ms) per try;
#   GET /api/events: a live stream held open until its token expires (5 minutes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
max_examples="${MAX_EXAMPLES:-25}"
checks="${CHECKS:-not_a_server_error,status_code_conformance,response_schema_conformance}"
seed="${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
version='schemathesis==4.*'
venv="${XDG_CACHE_HOME:-$HOME/.cache}/moat-test-venvs/schemathesis"

die() { echo "api-contract.sh: $*" >&2; exit 1; }
for tool in python3 curl; do
    command -v "$tool" >/dev/null || die "missing $tool: ./install.sh --deps installs it"
done

moat="${MOAT:-}"
if [[ -z "$moat" ]]; then
    moat="$(cd "$root" && swift build --show-bin-path)/moat"
    [[ -x "$moat" ]] || (cd "$root" && swift build --product moat) || die "swift build --product moat failed"
fi
[[ -x "$moat" ]] || die "no moat binary at $moat"

if [[ ! -f "$venv/.moat-ready" ]]; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || die "python3 cannot make a venv: install python3-venv (./install.sh --deps)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --timeout 30 --retries 1 -q "$version" \
        || die "pip could not install $version into $venv"
    touch "$venv/.moat-ready"
fi

work="$(mktemp -d /tmp/moat-api-contract.XXXXXX)"
chmod 700 "$work"
export MOAT_HOME="$work/home"
unset XDG_CONFIG_HOME XDG_STATE_HOME
# The seal's machine key, as the tests use it (systemd-creds creates the file).
export SYSTEMD_CREDENTIAL_SECRET="$work/host-key.secret"
pid=""
model=""
cleanup() {
    if [[ -n "$pid" ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [[ -n "$model" ]]; then kill -TERM "$model" 2>/dev/null || true; wait "$model" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

start_server() {
    : >"$work/serve.log"
    "$moat" serve --log-format json --port 0 2>"$work/serve.log" >/dev/null </dev/null &
    pid=$!
    port=""
    for _ in $(seq 1 600); do
        port="$(grep -o '"url":"http://[^"]*"' "$work/serve.log" | head -n 1 | sed -E 's/.*:([0-9]+)"$/\1/' || true)"
        if [[ -n "$port" ]] && curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/serve.log" >&2
    die "moat serve did not start"
}
stop_server() {
    kill -TERM "$pid"
    wait "$pid" || die "moat serve did not stop cleanly"
    pid=""
}

# A model that answers every chat round at once with "ok" (the non-streamed OpenAI chat-completions
# answer), so POST /api/chat runs whole turns: without one every turn is the documented 500 "the model
# server is not running", which not_a_server_error counts as a failure.
cat >"$work/model.py" <<'PYTHON'
import http.server, json, os, sys
class Model(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"id": "chatcmpl-contract", "object": "chat.completion", "created": 0,
            "model": "contract", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *arguments):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Model)
with open(sys.argv[1] + ".tmp", "w") as file:
    file.write(str(server.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
PYTHON
python3 "$work/model.py" "$work/model.port" &
model=$!
for _ in $(seq 1 100); do [[ -f "$work/model.port" ]] && break; sleep 0.1; done
[[ -f "$work/model.port" ]] || die "the stub model did not start"
mkdir -p "$MOAT_HOME"
chmod 700 "$MOAT_HOME"
(
    umask 077
    printf 'providers:\n  local:\n    base_url: http://127.0.0.1:%s/v1\n    model: contract\n    stream: false\n' \
        "$(cat "$work/model.port")" >"$MOAT_HOME/config.yaml"
)

# The first start creates the state (vault, seal, database); the owner and its token are made offline.
start_server
stop_server
printf '%s\n' "a long contract-test passphrase" | "$moat" owner setup --owner-password-stdin >/dev/null
(umask 077 && "$moat" token create api-contract --scope admin >"$work/token" 2>/dev/null)
token="$(cat "$work/token")"
[[ "$token" == moat_* ]] || die "moat token create did not print a token"
(
    umask 077
    printf '[headers]\nAuthorization = "Bearer %s"\n' "$token" >"$work/schemathesis.toml"
)
unset token
start_server
echo "moat serve on 127.0.0.1:$port; schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}'), \
at most $max_examples examples per operation, seed $seed"

status=0
(cd "$work" && "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$root/Docs/openapi.yaml" \
    --url "http://127.0.0.1:$port" \
    --checks "$checks" \
    --max-examples "$max_examples" --seed "$seed" --workers 1 --no-color \
    --exclude-path /api/auth/revoke-all --exclude-path /api/auth/password \
    --exclude-path /api/setup --exclude-path /api/auth/login --exclude-path /api/events \
    --request-timeout 30 --max-failures 50 --suppress-health-check all --generation-database none) || status=$?
stop_server
if [[ "$status" -ne 0 ]]; then
    echo "api-contract.sh: schemathesis found answers Docs/openapi.yaml does not describe (exit $status);" \
        "replay with SEED=$seed" >&2
    exit "$status"
fi
echo "api-contract.sh: every answer matched Docs/openapi.yaml (no 5xx)"

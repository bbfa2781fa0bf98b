#!/usr/bin/env bash
# Spawn-to-exit time of /bin/true through moat-sandbox, through bubblewrap, and plain, measured with
# hyperfine in one run, unpinned and pinned to one CPU. The table in Docs/Sandbox.md comes from here.
#
#   bench/sandbox-spawn.sh                 # builds the launcher (gcc -static) into a temporary directory
#   MOAT_SANDBOX=.build/release/moat-sandbox bench/sandbox-spawn.sh    # the one install.sh installs
#   RUNS=1000 PIN_CPU=1 bench/sandbox-spawn.sh
#
# Needs: hyperfine, bubblewrap, python3 (Debian: apt-get install -y hyperfine bubblewrap python3),
# and gcc + libseccomp-dev when MOAT_SANDBOX is not given.
set -euo pipefail

runs="${RUNS:-500}"
warmup="${WARMUP:-50}"
pin_cpu="${PIN_CPU:-0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in hyperfine bwrap python3 taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y hyperfine bubblewrap python3 util-linux)" >&2; exit 1; }
done

launcher="${MOAT_SANDBOX:-}"
if [[ -z "$launcher" ]]; then
    launcher="$work/moat-sandbox"
    # Static, as `swift build -c release --product moat-sandbox` links the installed launcher.
    gcc -O2 -Wall -Wextra -Werror -static "$root"/sandbox/*.c -lseccomp -o "$launcher"
fi

spec="$work/true.json"
printf '{"argv":["/bin/true"]}\n' > "$spec"

# A sandbox that fails fast would look fast: check that it really ran the command.
result="$("$launcher" --spec "$spec")"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["status"]=="exited" and r["exit_code"]==0, r' "$result"

commands=(
    "$launcher --spec $spec"
    "bwrap --ro-bind / / --unshare-all --die-with-parent true"
    "/bin/true"
)
names=("moat-sandbox" "bwrap" "plain /bin/true")

measure() { # label, then the command prefix (empty or taskset)
    local label="$1"; shift
    "$@" hyperfine -N --warmup "$warmup" --runs "$runs" --style none \
        --export-json "$work/$label.json" "${commands[@]}" >/dev/null
}

measure unpinned
measure pinned taskset -c "$pin_cpu"

python3 - "$work" "${names[@]}" <<'EOF'
import json, sys
work, names = sys.argv[1], sys.argv[2:]
print(f"| {'':16} | {'unpinned median':>15} | {'unpinned mean':>13} | {'pinned median':>13} | {'pinned mean':>11} |")
print(f"|{'-'*18}|{'-'*17}:|{'-'*15}:|{'-'*15}:|{'-'*13}:|")
rows = {}
for label in ("unpinned", "pinned"):
    data = json.load(open(f"{work}/{label}.json"))["results"]
    for name, result in zip(names, data):
        rows.setdefault(name, {})[label] = result
for name in names:
    u, p = rows[name]["unpinned"], rows[name]["pinned"]
    print(f"| {name:16} | {u['median']*1e3:12.2f} ms | {u['mean']*1e3:10.2f} ms | {p['median']*1e3:10.2f} ms | {p['mean']*1e3:8.2f} ms |")
moat, bwrap, plain = (rows[n]["pinned"]["median"] * 1e3 for n in names)
print()
print(f"pinned: moat-sandbox - bwrap = {moat - bwrap:+.2f} ms (target <= 0), "
      f"moat-sandbox - plain = {moat - plain:+.2f} ms (target <= 3)")
EOF

#!/usr/bin/env bash
# Builds the libFuzzer harness for the launcher's spec parser and runs it for a bounded time.
#
#   sandbox/fuzz/run.sh                    fuzz for 60 s (FUZZ_SECONDS), then report the stats
#   FUZZ_SECONDS=1200 sandbox/fuzz/run.sh  a longer run
#   sandbox/fuzz/run.sh --replay           run every corpus file once (the regression cases) and stop
#
# The seed corpus is sandbox/fuzz/corpus (read only); what the fuzzer finds goes to .build/fuzz/corpus,
# a crashing input to .build/fuzz/crash-*. Exit 0: nothing found (or no libFuzzer here: skipped, with a
# message); 1: the fuzzer found a crash, a leak or undefined behaviour. Docs/Sandbox.md, "Fuzzing".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.build/fuzz"
seconds="${FUZZ_SECONDS:-60}"
mode="${1:-fuzz}"

# clang with libFuzzer: the Swift toolchain's clang has it (libclang_rt.fuzzer); Debian's gcc does not.
clang="${CLANG:-}"
if [ -z "$clang" ]; then
    for candidate in clang "$(dirname "$(command -v swift 2>/dev/null || echo /nonexistent)")/clang" /opt/swift/usr/bin/clang; do
        if command -v "$candidate" >/dev/null 2>&1; then clang="$(command -v "$candidate")"; break; fi
    done
fi
mkdir -p "$out/corpus"
probe_source="$out/has-libfuzzer.c"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe_source"
if [ -z "$clang" ] || ! "$clang" -fsanitize=fuzzer "$probe_source" -o "$out/has-libfuzzer" 2>/dev/null; then
    echo "sandbox/fuzz/run.sh: skipped — no clang with libFuzzer found (set CLANG=/path/to/clang; the Swift toolchain's clang has it)"
    exit 0
fi

harness="$out/fuzz_spec"
"$clang" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -fuse-ld=lld -Wall -Wextra -Werror \
    "$here/fuzz_spec.c" "$root/sandbox/json.c" "$root/sandbox/spec.c" -o "$harness"

common=(-dict="$here/spec.dict" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/"
    -print_final_stats=1)
if [ "$mode" = "--replay" ]; then
    # Each corpus file once: the seeds must be accepted or refused without a crash, leak or UB.
    exec "$harness" "${common[@]}" -runs=0 "$here/corpus"
fi
echo "== fuzzing the spec parser for ${seconds}s with $("$clang" --version | head -1)"
exec "$harness" "${common[@]}" -max_total_time="$seconds" "$out/corpus" "$here/corpus"

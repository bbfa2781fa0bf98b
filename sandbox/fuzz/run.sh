#!/usr/bin/env bash
# Builds the libFuzzer harnesses for the launcher's JSON code and runs them for a bounded time.
#
#   sandbox/fuzz/run.sh                      fuzz the spec parser for FUZZ_SECONDS (60), then report
#   sandbox/fuzz/run.sh result               fuzz the result writer (the command's output into JSON)
#   FUZZ_SECONDS=1200 sandbox/fuzz/run.sh    a longer run
#   sandbox/fuzz/run.sh --replay             run every spec corpus file once, whole (the regression cases)
#   sandbox/fuzz/run.sh --coverage           line and branch coverage of json.c and spec.c by the spec
#                                            corpus (the seeds plus what runs found in .build/fuzz/corpus)
#
# The seed corpus is sandbox/fuzz/corpus (read only); what the fuzzer finds goes to .build/fuzz/corpus
# (.build/fuzz/result-corpus for the writer), a crashing input to .build/fuzz/crash-* (leak-*, timeout-*).
# Exit 0: nothing found, or no libFuzzer on this machine (skipped, with a message); non-zero: the fuzzer
# found a crash, a leak, undefined behaviour or a broken property. Docs/Sandbox.md, "Fuzzing the spec parser".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.build/fuzz"
seconds="${FUZZ_SECONDS:-60}"
mode="${1:-spec}"

# clang with libFuzzer: the Swift toolchain's clang has it (libclang_rt.fuzzer); Debian's gcc does not.
clang="${CLANG:-}"
if [ -z "$clang" ]; then
    for candidate in clang "$(dirname "$(command -v swift 2>/dev/null || echo /nonexistent)")/clang" /opt/swift/usr/bin/clang; do
        if command -v "$candidate" >/dev/null 2>&1; then clang="$(command -v "$candidate")"; break; fi
    done
fi
mkdir -p "$out/corpus" "$out/result-corpus"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
    >"$out/has-libfuzzer.c"
if [ -z "$clang" ] || ! "$clang" -fsanitize=fuzzer "$out/has-libfuzzer.c" -o "$out/has-libfuzzer" 2>/dev/null; then
    echo "sandbox/fuzz/run.sh: skipped — no clang with libFuzzer found (set CLANG=/path/to/clang; the Swift toolchain's clang has it)"
    exit 0
fi
# lld where the toolchain has it (gold warns about every ASan symbol).
linker=()
if "$clang" -fuse-ld=lld "$out/has-libfuzzer.c" -fsanitize=fuzzer -o "$out/has-libfuzzer" 2>/dev/null; then linker=(-fuse-ld=lld); fi

build() { # NAME SOURCES...
    local name="$1"
    shift
    "$clang" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        "${linker[@]}" -Wall -Wextra -Werror "$@" -o "$out/$name"
}
# Inputs up to 16 KiB keep the fuzzer fast; the seeds past that size (the caps) run whole in --replay.
common=(-max_len=16384 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/" -print_final_stats=1)

case "$mode" in
spec)
    build fuzz_spec "$here/fuzz_spec.c" "$root/sandbox/json.c" "$root/sandbox/spec.c"
    echo "== fuzzing the spec parser for ${seconds}s with $("$clang" --version | head -1)"
    exec "$out/fuzz_spec" "${common[@]}" -dict="$here/spec.dict" -max_total_time="$seconds" "$out/corpus" "$here/corpus"
    ;;
result)
    build fuzz_result "$here/fuzz_result.c" "$root/sandbox/json.c"
    echo "== fuzzing the result writer for ${seconds}s"
    exec "$out/fuzz_result" "${common[@]}" -max_total_time="$seconds" "$out/result-corpus"
    ;;
--replay)
    # Each corpus file once and whole (files, unlike directories, are not cut at -max_len): the seeds
    # must be accepted or refused without a crash, leak or UB.
    build fuzz_spec "$here/fuzz_spec.c" "$root/sandbox/json.c" "$root/sandbox/spec.c"
    exec "$out/fuzz_spec" "${common[@]}" "$here"/corpus/*
    ;;
--coverage)
    tools="$(dirname "$clang")"
    "$clang" -g -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping "${linker[@]}" \
        "$here/fuzz_spec.c" "$root/sandbox/json.c" "$root/sandbox/spec.c" -o "$out/fuzz_spec_coverage"
    rm -f "$out"/coverage-*.profraw
    # What the fuzzer kept (cut at -max_len like any run), then every seed whole.
    LLVM_PROFILE_FILE="$out/coverage-%p.profraw" "$out/fuzz_spec_coverage" -runs=0 "$out/corpus" 2>&1 |
        grep -E "files found|DONE" || true
    LLVM_PROFILE_FILE="$out/coverage-%p.profraw" "$out/fuzz_spec_coverage" "$here"/corpus/* >/dev/null 2>&1
    "$tools/llvm-profdata" merge -sparse "$out"/coverage-*.profraw -o "$out/coverage.profdata"
    exec "$tools/llvm-cov" report "$out/fuzz_spec_coverage" -instr-profile="$out/coverage.profdata" \
        "$root/sandbox/json.c" "$root/sandbox/spec.c"
    ;;
*)
    echo "usage: sandbox/fuzz/run.sh [spec | result | --replay | --coverage]" >&2
    exit 2
    ;;
esac

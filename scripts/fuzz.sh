#!/usr/bin/env bash
# libFuzzer on hostile input: builds Sources/TokenmeterFuzz with -sanitize=fuzzer,address in its
# own scratch folder (.build-fuzz, so the normal .build is untouched) and runs it for SECONDS per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     TARGET: event (decoder + whole event path), toml (config parser),
#                                             secret (secret files), otlp (OTLP trace messages + event path)
#
# Defaults: 60 s, every target. The corpus grows in .build-fuzz/corpus-<target> (seeded with generated
# events of every shape and bad class, or the config files); crashes are written to .build-fuzz/crash-*
# with the input, and the script exits non-zero. Extra libFuzzer options: FUZZ_ARGS="-jobs=2 -workers=2";
# FUZZ_CONFIG=debug for a quicker build.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event toml secret otlp)

scratch=.build-fuzz
# Swift's crash backtracer reads the crashed process's memory in a way AddressSanitizer reports as a
# stack-buffer-underflow of its own; libFuzzer and ASan print the real stack.
export SWIFT_BACKTRACE=enable=no
# Release optimisation by default (fuzzing the code as it runs in production, with several times the
# executions of a debug build); FUZZ_CONFIG=debug builds faster (CI's short run). -DFUZZING turns the
# harness on; the sanitizer flags instrument every module compiled here.
config=${FUZZ_CONFIG:-release}
swift build -c "$config" --scratch-path "$scratch" --product tokenmeter-fuzz \
    -Xswiftc -DFUZZING -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
bin="$scratch/$config/tokenmeter-fuzz"

status=0
for t in "${targets[@]}"; do
    corpus="$scratch/corpus-$t"
    if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
        TOKENMETER_FUZZ=$t TOKENMETER_FUZZ_SEEDS="$corpus" \
            TOKENMETER_FUZZ_TOML_SEEDS="config/tokenmeter.toml:config/demo.toml:config/prices.toml" "$bin"
    fi
    echo "== fuzzing $t for ${seconds}s (corpus $corpus: $(ls "$corpus" | wc -l) inputs)"
    # -max_len: events up to 64 KiB (the 1 MiB limit is checked by a unit test; longer inputs only slow
    # the fuzzer down); -timeout: an input taking over 10 s is a hang.
    log="$scratch/fuzz-$t.log"
    set +e
    # shellcheck disable=SC2086
    TOKENMETER_FUZZ=$t "$bin" "$corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$scratch/crash-$t-" ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    # The last progress lines (pulse/done) and the final statistics.
    grep -E '^#[0-9]+' "$log" | tail -2
    if [ $rc != 0 ] || grep -q -E 'ERROR: (libFuzzer|AddressSanitizer)|Fatal error|fuzz invariant broken' "$log"; then
        grep -E -A20 'ERROR: |Fatal error|fuzz invariant broken' "$log" | head -60 >&2
        echo "!! $t: a crash or broken invariant (exit $rc); the input is in $scratch/crash-$t-*, the log in $log" >&2
        status=1
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
done
exit $status

#!/usr/bin/env bash
# The end-to-end scenarios (real broker, daemon, Prometheus, Alertmanager... processes) in two shards side
# by side, each running its tests one at a time.
#
#     scripts/end-to-end.sh            # after `swift build --build-tests`; E2E_SHARDS=1 runs one shard
#
# Why two: the scenarios mostly wait (for commits, files, restarts, timeouts); one at a time they keep
# the machine's two cores about 37% busy (829 CPU s in 1,128 s), so the suite took 17-19 minutes. Why
# not `swift test --parallel`: each scenario blocks a thread of Swift Testing's pool (two threads on two
# cores) for up to minutes, starving the others. Why the test binary and not `swift test`: SwiftPM locks
# `.build` for the whole run, so a second `swift test` waits for the first.
#
# Shard 1 holds the suites named below, shard 2 every other end-to-end suite (the same pattern is the
# filter of one and the skip of the other, so every test runs exactly once). The split balances the
# suites' durations measured one at a time: robustness 340 s, hostile input 96 s, report scale 44 s,
# memory bound 36 s, FOCUS 35 s (551 s) against scale-out 204 s and the rest (570 s).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(swift build --show-bin-path)/tokenmeterPackageTests.xctest"
[ -x "$bin" ] || { echo "end-to-end: $bin missing: run swift build --build-tests first" >&2; exit 1; }
first='EndToEndTests\.(RobustnessTests|HostileInputTests|ReportScaleTests|MemoryBoundTests|FocusExportTests)'
run() { "$bin" --testing-library swift-testing --no-parallel "$@"; }

if [ "${E2E_SHARDS:-2}" = 1 ]; then
    run --filter 'EndToEndTests\.'
    exit
fi

logs=$(mktemp -d /tmp/tokenmeter-e2e-XXXXXX)
trap 'rm -rf "$logs"' EXIT
start=$(date +%s)
run --filter "$first" > "$logs/1.log" 2>&1 & one=$!
run --filter 'EndToEndTests\.' --skip "$first" > "$logs/2.log" 2>&1 & two=$!
rc1=0 rc2=0
wait "$one" || rc1=$?
wait "$two" || rc2=$?
for i in 1 2; do
    echo "=== end-to-end shard $i of 2 ==="
    cat "$logs/$i.log"
done
echo "end-to-end: shard 1 exit $rc1, shard 2 exit $rc2, $(( $(date +%s) - start )) s"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ]

#!/usr/bin/env bash
# Profiles the daemon's part of `tokenmeter bench`: runs the bench once (one run of each measurement) and
# records the bench process with `perf record -g` only while the tokenmeter (daemon) measurement runs, so
# the fill, the raw consumer and the core rows stay out of the profile. Prints the top costs by symbol and
# by shared object, and leaves perf.data in the output folder for `perf report`.
#
#   scripts/profile-daemon.sh [BINARY] [OUTDIR] [-- extra bench options]
#   scripts/profile-daemon.sh .build/release/tokenmeter /tmp/profile-after -- --events 1000000
#
# Needs perf (Debian: linux-perf) and a release build. Not part of CI: a by-hand measurement.
set -euo pipefail
bin=${1:-.build/release/tokenmeter}
out=${2:-/tmp/tokenmeter-profile}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
"$bin" bench --runs 1 "$@" >"$out/bench.txt" 2>"$out/bench.err" &
bench=$!
# Progress goes to stderr every two seconds when it is not a terminal: the daemon's measurement has
# started once its "measuring  tokenmeter" line shows (messages are being counted by then).
until grep -q "measuring  tokenmeter" "$out/bench.err" 2>/dev/null; do
    kill -0 "$bench" 2>/dev/null || { cat "$out/bench.err"; echo "bench ended before the daemon run" >&2; exit 1; }
    sleep 0.2
done
perf record -g -F 999 -p "$bench" -o "$out/perf.data" 2>"$out/perf.err" &
perf=$!
until grep -q "tokenmeter run 1/1" "$out/bench.err" 2>/dev/null; do
    kill -0 "$bench" 2>/dev/null || break
    sleep 0.2
done
kill -INT "$perf"
wait "$perf" || true
wait "$bench" || true
cat "$out/bench.txt"
echo
echo "== top symbols (self), daemon measurement only =="
perf report -i "$out/perf.data" --no-children --sort dso,symbol --percent-limit 0.7 --stdio 2>/dev/null \
    | grep -v '^$' | grep -E '^ +[0-9]' | head -40
echo
echo "== by shared object =="
perf report -i "$out/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15
echo
echo "== by thread =="
perf report -i "$out/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15

#!/usr/bin/env bash
# Runs the README's shell blocks, so that the README stays true:
#
#     scripts/readme-test.sh [README]        (TOKENMETER_BIN_DIR: the folder holding the tokenmeter to test)
#
# Every ```sh block of the README must follow a marker line, a Markdown comment that readers do not see:
#   <!-- readme-test: run ... -->    the block is run
#   <!-- readme-test: skip ... -->   the block is not run; the marker says why (installs packages, needs
#                                    root and systemd, follows a topic for ever, ...)
# A block without a marker fails the test, so that a new block is a decision, not an omission.
#
# The run blocks are joined, in order, into one bash script (`set -euo pipefail`: the first failing command
# fails the test; variables and the working directory carry from block to block) and run in an empty
# temporary folder, with TOKENMETER_BIN_DIR first on the PATH, under an overall time limit
# (README_TEST_TIMEOUT seconds, default 300). The README's fixed ports, 9092 (Kafka) and 9464 (HTTP), are
# replaced by free ones, so that the test can run beside other brokers and daemons. Whatever the blocks
# leave running (a broker, a daemon) is ended afterwards: `timeout` runs the script in a process group of
# its own (not with --foreground), whose id is timeout's pid.
# Output: the blocks' output, then `readme-test: N blocks run, M skipped (script S, folder F)`; exit status
# that of the blocks.
set -euo pipefail
cd "$(dirname "$0")/.."
readme=$(realpath "${1:-README.md}")
bin_dir=$(realpath "${TOKENMETER_BIN_DIR:-.build/debug}")
limit=${README_TEST_TIMEOUT:-300}
[ -x "$bin_dir/tokenmeter" ] || { echo "readme-test: $bin_dir/tokenmeter not found (build first)" >&2; exit 1; }

work=$(mktemp -d /tmp/tokenmeter-readme-XXXXXX)
script=$work/readme-blocks.sh
run=$work/run
mkdir -p "$run"

# Two free loopback ports (bound, then released; another process could take one in between, rarely).
read -r kafka_port http_port < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')

# Extract the blocks: awk prints the run blocks and reports the counts (and unmarked blocks) on stderr.
counts=$(awk -v out="$script" -v kp="$kafka_port" -v hp="$http_port" '
    BEGIN { print "set -euo pipefail" > out }
    /^<!-- readme-test: run/  { mode = "run"; next }
    /^<!-- readme-test: skip/ { mode = "skip"; next }
    /^```sh[ \t]*$/ {
        inblock = 1; block++
        if (mode == "") { printf "readme-test: the sh block at line %d has no readme-test marker\n", NR > "/dev/stderr"; bad++ }
        else if (mode == "run") { ran++; printf "\n# README.md line %d\n", NR > out }
        else skipped++
        current = mode; mode = ""; next
    }
    /^```/ && inblock { inblock = 0; next }
    inblock && current == "run" { line = $0; gsub(/9092/, kp, line); gsub(/9464/, hp, line); print line > out }
    END { printf "%d %d %d\n", ran, skipped, bad }
' "$readme")
read -r ran skipped bad <<<"$counts"
if [ "$bad" -gt 0 ]; then echo "readme-test: $bad unmarked sh block(s) in $readme" >&2; exit 1; fi
if [ "$ran" -eq 0 ]; then echo "readme-test: no block to run in $readme" >&2; exit 1; fi

status=0
(
    cd "$run"
    export PATH="$bin_dir:$PATH"
    exec timeout --kill-after=10 "$limit" bash "$script"
) </dev/null &
pid=$!
wait $pid || status=$?
# End what the blocks left running in timeout's process group, and only that.
if pgrep -g "$pid" >/dev/null 2>&1; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 50); do pgrep -g "$pid" >/dev/null 2>&1 || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
fi
if [ "$status" -eq 124 ]; then echo "readme-test: the blocks did not finish within $limit s" >&2; fi
echo "readme-test: $ran blocks run, $skipped skipped (script $script, folder $run)"
# The folder is kept when the blocks fail (to look at), or when README_TEST_KEEP=1 (a caller checks it).
if [ "$status" -eq 0 ] && [ "${README_TEST_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
exit "$status"

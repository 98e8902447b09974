#!/usr/bin/env bash
# Throughput of 1, 2 and 3 instances in scale-out mode (changelog + spend topics) on this machine.
#
#   scripts/scaleout-bench.sh [EVENTS] [PARTITIONS]      (default 1000000 events, 96 partitions)
#   PLAIN=1 scripts/scaleout-bench.sh ...                 the same without changelog and spend topics
#   CHECKPOINT=5s scripts/scaleout-bench.sh ...           another state.checkpoint_interval (default 1s here)
#   TIMEOUT=600 scripts/scaleout-bench.sh ...             seconds per k before giving up (default 600)
#
# 300,000 events take 1-3 s here, too short to time well; the mock broker keeps about 5 MiB per partition,
# so 1,000,000 events (~380 MB) need 96 partitions: the script refuses a count that does not fit.
#
# One broker process (`tokenmeter broker`), the events produced once (keyed by id), then for k = 1, 2, 3 a
# fresh group of k daemons (release build) with their own changelog and spend topics, measured from the
# first start to the moment their /metrics say every message was consumed, and for their CPU time.
# Prints one line per k: instances, seconds from the first start (group joins and rebalances included),
# events/s, the span from the first consumed message to the last and the rate there, the CPU seconds per
# million events of the daemons and of the broker process (they all share this machine's cores, so the
# broker's CPU is part of the picture), the CPU seconds of the busiest thread of any daemon (compare with
# first->last: near it, that thread is the limit), and the megabytes of changelog records the daemons
# wrote (full partition snapshots, once per checkpoint per changed partition).
# `tokenmeter_messages_consumed_total` counts messages processed: after a hand-over the new owner resumes at
# the revoked owner's changelog record, so nothing is counted twice in a run without crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
PARTITIONS=${2:-96}
TIMEOUT=${TIMEOUT:-600}
[ -x .build/release/tokenmeter ] || swift build -c release >/dev/null
T=$PWD/.build/release/tokenmeter
W=$(mktemp -d /tmp/tm-scaleout.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

mkfifo "$W/ctl"
sleep 1000000 > "$W/ctl" &              # keeps the broker's stdin open (it exits at EOF)
PIDS+=($!)
topics=(--topic llm-usage --topic llm-alerts)
for k in 1 2 3; do topics+=(--topic "tm-changelog-$k" --topic "tm-spend-$k"); done
"$T" broker --partitions "$PARTITIONS" "${topics[@]}" < "$W/ctl" > "$W/broker.out" 2> "$W/broker.log" &
BROKER=$!
PIDS+=("$BROKER")
for _ in $(seq 100); do [ -s "$W/broker.out" ] && break; sleep 0.1; done
B=$(head -1 "$W/broker.out")
[ -n "$B" ] || { echo "broker printed no address; see $W/broker.log" >&2; exit 1; }
"$T" generate --events "$EVENTS" --seed 9 --start 2026-11-21T08:00:00Z --span 1h > "$W/events.jsonl"
EVENTS=$(wc -l < "$W/events.jsonl")   # the generator adds outcome events to the usage events asked for
size=$(stat -c %s "$W/events.jsonl")
if [ $((size / PARTITIONS)) -gt $((9 * 1024 * 1024 / 2)) ]; then
    echo "$EVENTS events ($size bytes) do not fit $PARTITIONS partitions of the mock broker (~5 MiB each): use more" >&2
    exit 1
fi
"$T" produce --brokers "$B" --topic llm-usage --key-field id "$W/events.jsonl" > "$W/produce.log" 2>&1 \
    || { echo "produce failed; see $W/produce.log" >&2; exit 1; }

cpu_seconds() {   # utime + stime of a pid, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
busiest_thread() {   # the CPU seconds of a pid's busiest thread
    local hz best=0 t v
    hz=$(getconf CLK_TCK)
    for t in /proc/"$1"/task/*/stat; do
        v=$(sed 's/.*) //' "$t" 2>/dev/null | awk -v hz="$hz" '{ print ($12 + $13) / hz }')
        [ -n "$v" ] && [ "$(echo "$v > $best" | bc -l)" = 1 ] && best=$v
    done
    echo "$best"
}
metric_sum() {    # metric_sum NAME PORT...: a metric summed over the daemons' /metrics
    local name=$1 sum=0 n
    shift
    for p in "$@"; do
        n=$(curl -sf --max-time 2 "http://127.0.0.1:$p/metrics" 2>/dev/null | awk -v m="$name" '$1 == m { print $2 }' || true)
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}

echo "$EVENTS events ($((size / 1000000)) MB), $PARTITIONS partitions, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %8s %9s %14s %15s %16s %15s %16s %13s\n' instances seconds events/s "first->last s" "events/s there" \
    "CPU s/M daemons" "CPU s/M broker" "busiest thread s" "changelog MB"
for k in 1 2 3; do
    ports=()
    daemons=()
    start=$(date +%s.%N)
    broker0=$(cpu_seconds "$BROKER")
    for i in $(seq "$k"); do
        cat > "$W/k$k-$i.toml" <<EOF
[kafka]
brokers = "$B"
group_id = "bench-$k"
topics = ["llm-usage"]
alerts_topic = "llm-alerts"
$([ "${PLAIN:-0}" = 1 ] || printf 'changelog_topic = "tm-changelog-%s"\nspend_topic = "tm-spend-%s"' "$k" "$k")
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
[rollups]
dir = "$W/k$k-$i/rollups"
windows = ["1m", "1h", "1d"]
instance = "i$i"
[state]
dir = "$W/k$k-$i/state"
$([ -z "${CHECKPOINT:-}" ] || printf 'checkpoint_interval = "%s"' "$CHECKPOINT")
[http]
listen = "127.0.0.1:0"    # a free port (another bench may be running): read from the log
[[price]]
model = "*"
input = 1.0
output = 2.0
[[budget]]
name = "company"
period = "month"
amount_usd = 100000
thresholds = [50, 100]
EOF
        "$T" run --config "$W/k$k-$i.toml" > "$W/k$k-$i.log" 2>&1 &
        daemons+=($!)
        PIDS+=($!)
    done
    for i in $(seq "$k"); do
        port=""
        for _ in $(seq 200); do
            port=$(sed -n 's/.*http listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$W/k$k-$i.log" | head -1)
            [ -n "$port" ] && break
            sleep 0.05
        done
        [ -n "$port" ] || { echo "k=$k: daemon $i logged no http address; see $W/k$k-$i.log" >&2; exit 1; }
        ports+=("$port")
    done
    first=""
    while :; do
        total=$(metric_sum tokenmeter_messages_consumed_total "${ports[@]}")
        if [ -z "$first" ] && [ "$total" -gt 0 ]; then first=$(date +%s.%N); fi
        [ "$total" -ge "$EVENTS" ] && break
        for p in "${daemons[@]}"; do
            kill -0 "$p" 2>/dev/null || { echo "k=$k: daemon $p exited; see $W/k$k-*.log" >&2; exit 1; }
        done
        if [ "$(echo "$(date +%s.%N) - $start > $TIMEOUT" | bc -l)" = 1 ]; then
            echo "k=$k: $total of $EVENTS consumed after ${TIMEOUT}s; see $W/k$k-*.log" >&2; exit 1
        fi
        sleep 0.05
    done
    end=$(date +%s.%N)
    broker1=$(cpu_seconds "$BROKER")
    clog=$(metric_sum tokenmeter_changelog_bytes_total "${ports[@]}")
    cpu=0
    thread=0
    for p in "${daemons[@]}"; do
        cpu=$(echo "$cpu + $(cpu_seconds "$p")" | bc -l)
        t=$(busiest_thread "$p")
        [ "$(echo "$t > $thread" | bc -l)" = 1 ] && thread=$t
    done
    for p in "${daemons[@]}"; do kill "$p"; done
    for p in "${daemons[@]}"; do wait "$p" 2>/dev/null || true; done
    secs=$(echo "$end - $start" | bc -l)
    busy=$(echo "$end - $first" | bc -l)
    printf '%-10s %8.1f %9.0f %14.1f %15.0f %16.1f %15.1f %16.1f %13.1f\n' "$k" "$secs" "$(echo "$EVENTS / $secs" | bc -l)" "$busy" \
        "$(echo "$EVENTS / $busy" | bc -l)" "$(echo "$cpu * 1000000 / $EVENTS" | bc -l)" \
        "$(echo "($broker1 - $broker0) * 1000000 / $EVENTS" | bc -l)" "$thread" "$(echo "$clog / 1000000" | bc -l)"
done
echo "(logs and files in $W)"

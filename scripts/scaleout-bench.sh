#!/usr/bin/env bash
# Throughput of 1, 2 and 3 instances in scale-out mode (changelog + spend topics) on this machine.
#
#   scripts/scaleout-bench.sh [EVENTS] [PARTITIONS]      (default 300000 events, 32 partitions)
#   PLAIN=1 scripts/scaleout-bench.sh ...                 the same without changelog and spend topics
#   CHECKPOINT=5s scripts/scaleout-bench.sh ...           another state.checkpoint_interval (default 1s here)
#
# One broker process (`tokenmeter broker`), the events produced once (keyed by id), then for k = 1, 2, 3 a
# fresh group of k daemons (release build) with their own changelog and spend topics, measured from the
# first start to the moment their /metrics say every message was consumed, and for their CPU time.
# Prints one line per k: instances, seconds from the first start (group joins and rebalances included),
# events/s, the span from the first consumed message to the last and the rate there, and the daemons'
# CPU seconds per million events.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-300000}
PARTITIONS=${2:-32}
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
PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/broker.out" ] && break; sleep 0.1; done
B=$(head -1 "$W/broker.out")
"$T" generate --events "$EVENTS" --seed 9 --start 2026-11-21T08:00:00Z --span 1h > "$W/events.jsonl"
EVENTS=$(wc -l < "$W/events.jsonl")   # the generator adds outcome events to the usage events asked for
"$T" produce --brokers "$B" --topic llm-usage --key-field id "$W/events.jsonl" > "$W/produce.log" 2>&1

cpu_seconds() {   # utime + stime of a pid, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

printf '%-10s %10s %12s %14s %16s %22s\n' instances seconds events/s "first->last s" "events/s there" "CPU s per M events"
for k in 1 2 3; do
    ports=()
    daemons=()
    start=$(date +%s.%N)
    for i in $(seq "$k"); do
        port=$((19600 + 10 * k + i))
        ports+=("$port")
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
listen = "127.0.0.1:$port"
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
    first=""
    while :; do
        total=0
        for p in "${ports[@]}"; do
            n=$(curl -sf "http://127.0.0.1:$p/metrics" 2>/dev/null | awk '/^tokenmeter_messages_consumed_total/ { print $2 }' || true)
            total=$((total + ${n:-0}))
        done
        if [ -z "$first" ] && [ "$total" -gt 0 ]; then first=$(date +%s.%N); fi
        [ "$total" -ge "$EVENTS" ] && break
        sleep 0.2
    done
    end=$(date +%s.%N)
    cpu=0
    for p in "${daemons[@]}"; do cpu=$(echo "$cpu + $(cpu_seconds "$p")" | bc -l); done
    for p in "${daemons[@]}"; do kill "$p"; done
    for p in "${daemons[@]}"; do wait "$p" 2>/dev/null || true; done
    secs=$(echo "$end - $start" | bc -l)
    busy=$(echo "$end - $first" | bc -l)
    printf '%-10s %10.1f %12.0f %14.1f %16.0f %22.1f\n' "$k" "$secs" "$(echo "$EVENTS / $secs" | bc -l)" "$busy" \
        "$(echo "$EVENTS / $busy" | bc -l)" "$(echo "$cpu * 1000000 / $EVENTS" | bc -l)"
done
echo "(logs and files in $W)"

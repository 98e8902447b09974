#!/usr/bin/env bash
# Alert latency from an event to its alert, with and without the spend topic.
#
#   scripts/alert-latency.sh spend 2     # 2 instances, changelog + spend topics (1s checkpoints)
#   scripts/alert-latency.sh plain 1     # 1 instance, alerts judged locally
#
# One broker process, N daemons (release build) in one group, a budget of $100 with thresholds 1..100%,
# then 100 events of exactly $1 each, 0.2 s apart: event k crosses threshold k. Latency of threshold k =
# the alert's `emitted_at` minus the moment event k was handed to the producer. Prints median, p90, max.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-spend}
N=${2:-2}
[ -x .build/release/tokenmeter ] || swift build -c release >/dev/null
T=$PWD/.build/release/tokenmeter
W=$(mktemp -d /tmp/tm-latency.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
mkfifo "$W/ctl"
sleep 1000000 > "$W/ctl" &
PIDS+=($!)
"$T" broker --partitions 8 --topic llm-usage --topic tm-changelog --topic tm-spend --topic llm-alerts < "$W/ctl" > "$W/broker.out" 2> "$W/broker.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/broker.out" ] && break; sleep 0.1; done
B=$(head -1 "$W/broker.out")
[ -n "$B" ] || { echo "the broker printed no address; see $W/broker.log" >&2; exit 1; }
for i in $(seq "$N"); do
    cat > "$W/i$i.toml" <<EOF
[kafka]
brokers = "$B"
group_id = "latency"
topics = ["llm-usage"]
alerts_topic = "llm-alerts"
$([ "$MODE" = spend ] && printf 'changelog_topic = "tm-changelog"\nspend_topic = "tm-spend"')
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
[rollups]
dir = "$W/rollups-$i"
instance = "i$i"
[state]
dir = "$W/state-$i"
[http]
listen = "127.0.0.1:0"
[[price]]
model = "*"
input = 1.0
output = 1.0
[[budget]]
name = "latency"
period = "day"
amount_usd = 100
thresholds = [$(seq -s, 1 100)]
EOF
    "$T" run --config "$W/i$i.toml" > "$W/i$i.log" 2>&1 &
    PIDS+=($!)
done
# Every instance ready (group joined), then a few seconds for the last rebalance to settle.
for _ in $(seq 300); do [ "$(grep -l "ready:" "$W"/i*.log 2>/dev/null | wc -l)" -ge "$N" ] && break; sleep 0.1; done
sleep 3
python3 - 2> "$W/sent.txt" <<'PY' | "$T" produce --brokers "$B" --topic llm-usage --key-field id - > "$W/produce.log" 2>&1
import datetime, json, sys, time
for i in range(100):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print("%d %.3f" % (i + 1, time.time()), file=sys.stderr, flush=True)
    print(json.dumps({"id": "e%d" % i, "timestamp": now, "workflow": "w%d" % (i % 7), "owner": "o", "model": "m",
                      "input_tokens": 1000000}), flush=True)
    time.sleep(0.2)
PY
sleep 4
timeout 15 "$T" alerts --brokers "$B" --topic llm-alerts --from-beginning --json > "$W/alerts.jsonl" 2>/dev/null || true
python3 - "$W/alerts.jsonl" "$W/sent.txt" <<'PY'
import datetime, json, statistics, sys
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
sent = {int(a): float(b) for a, b in (l.split() for l in open(sys.argv[2]))}
lat = sorted(t(a["emitted_at"]) - sent[int(a["threshold_pct"])] for a in map(json.loads, open(sys.argv[1])))
if not lat: sys.exit("no alerts read")
print("alerts %d  median %.3f s  p90 %.3f s  max %.3f s" % (len(lat), statistics.median(lat), lat[int(len(lat) * 0.9) - 1], lat[-1]))
PY
echo "(logs in $W)"

/// The configuration `tokenmeter demo` runs with. `config/demo.toml` is the same text for reading; a test
/// keeps the two identical.
public enum DemoConfiguration {
    public static let toml = #"""
# The configuration `tokenmeter demo` runs with (embedded in the binary; this copy is for reading).
# The demo replaces the broker address and the two directories with its own at start.

[kafka]
brokers = "127.0.0.1:9092"
group_id = "tokenmeter-demo"
topics = ["llm-usage", "otlp_spans"]
alerts_topic = "llm-alerts"
dead_letter_topic = "llm-usage-dlq"

# One workflow arrives as OpenTelemetry traces, as the Collector's Kafka exporter writes them (docs/otlp.md).
[kafka.input_formats]
"otlp_spans" = "otlp_proto"

[otlp.tags]
environment = "environment"

[rollups]
dir = "/tmp/tokenmeter-demo/rollups"
windows = ["1h", "1d"]    # a day of traffic is sent in seconds: minute files would be thousands
grace = "30s"
idle_close = "2s"          # the demo's traffic is yesterday's: close everything once input goes quiet
late_horizon = "7d"
tags = ["environment"]
instance = "demo"

[state]
dir = "/tmp/tokenmeter-demo/state"
checkpoint_interval = "1s"

[dedup]
window = "1h"

[http]
listen = "127.0.0.1:0"

# List prices, USD per 1M tokens (published 2025). The Bedrock Llama model is left unpriced on purpose:
# its tokens are counted and its cost reported as unpriced, never as $0.
[[price]]
model = "gpt-4o*"
input = 2.50
cache_read = 1.25
output = 10.00

[[price]]
model = "gpt-4o-mini*"
input = 0.15
cache_read = 0.075
output = 0.60

[[price]]
model = "gpt-4.1*"
input = 2.00
cache_read = 0.50
output = 8.00

[[price]]
model = "gpt-4.1-mini*"
input = 0.40
cache_read = 0.10
output = 1.60

[[price]]
model = "o3-mini*"
input = 1.10
cache_read = 0.55
output = 4.40

[[price]]
model = "o4-mini*"
input = 1.10
cache_read = 0.275
output = 4.40

[[price]]
model = "claude-sonnet-4-5*"
input = 3.00
cache_read = 0.30
cache_write = 3.75
output = 15.00

[[price]]
model = "claude-haiku-4-5*"
input = 1.00
cache_read = 0.10
cache_write = 1.25
output = 5.00

[[price]]
model = "claude-opus-4-1*"
input = 15.00
cache_read = 1.50
cache_write = 18.75
output = 75.00

[[price]]
model = "gemini-2.5-pro*"
input = 1.25
cache_read = 0.31
output = 10.00

[[price]]
model = "gemini-2.5-flash*"
input = 0.30
cache_read = 0.075
output = 2.50

# Guardrails tuned to the demo's day of traffic (about $780 in all, platform-eng about $180, and
# support-triage going from about $0.15 an hour to about $4 an hour at noon): the platform-eng budget
# crosses 50% and 80% during the day and its forecast passes 100%, the company-wide monthly budget crosses
# 50% near the end of the day, and the spike rule (hourly windows: a quiet workflow's few expensive calls
# are noise in 5 minutes, less so in an hour; factor 4 leaves the rest of the day's hourly noise alone)
# sees support-triage jump against its own baseline.
[[budget]]
name = "platform-eng-daily"
owner = "platform-eng"
period = "day"
amount_usd = 200
thresholds = [50, 80, 100]
forecast = true

[[budget]]
name = "company-monthly"
period = "month"
amount_usd = 1500
thresholds = [50, 80, 100]

[[spike]]
name = "workflow-spike"
by = "workflow"
window = "1h"
factor = 4.0
min_usd = 1.0

[[outcome_limit]]
name = "invoice-unit-cost"
workflow = "invoice-extraction"
outcome = "invoice_processed"
max_cost_usd = 0.05
period = "day"

"""#
}

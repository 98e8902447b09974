#!/usr/bin/env python3
"""A plain Python consumer of the usage topic, to compare the daemon's CPU per event with.

What it does per message, the way a small script would: `orjson.loads` into dicts, read the canonical
fields, the OpenTelemetry names and the common provider usage blocks, price the tokens in floats (USD per
million tokens, the `[[price]]` entries of a tokenmeter config, most specific glob first), and add them to
1-hour windows in a dict keyed by (window start, workflow, owner, model). No files, no checkpoints, no
dead letters, no de-duplication, no alerts: it is the floor of what any consumer of the topic pays in
Python, not a second implementation of tokenmeter. It prints its whole-process CPU seconds (librdkafka's
threads included) per million events.

Two commands:

  consume   the consumer alone, on a topic someone else filled:
            python-consumer-bench.py consume --brokers 127.0.0.1:PORT --topic usage --events 300000 \
                --prices config/demo.toml
  compare   the whole side-by-side measurement: starts `tokenmeter broker`, fills one topic with
            `tokenmeter generate` + `tokenmeter produce`, then measures the Python consumer and the daemon
            (`tokenmeter run`, 1h windows only, the same prices) on it, one after the other, each in a fresh
            consumer group, each as a whole process:
            python-consumer-bench.py compare --tokenmeter .build/release/tokenmeter --events 300000

Needs confluent-kafka and orjson from PyPI, in a virtual environment for example:
  python3 -m venv /var/cache/tokenmeter-ci/venv
  /var/cache/tokenmeter-ci/venv/bin/pip install confluent-kafka orjson
  /var/cache/tokenmeter-ci/venv/bin/python scripts/python-consumer-bench.py compare --tokenmeter .build/release/tokenmeter

A by-hand benchmark (docs/performance.md), not part of CI.
"""
import argparse
import datetime
import fnmatch
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

HOUR_MS = 3_600_000


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_prices(path):
    """[[price]] entries: (glob, rates per million tokens), the longest glob first (the most specific)."""
    with open(path, "rb") as f:
        entries = tomllib.load(f).get("price", [])
    out = []
    for e in entries:
        inp = float(e.get("input", 0))
        out.append((e["model"], {
            "input": inp,
            "cache_read": float(e.get("cache_read", inp)),
            "cache_write": float(e.get("cache_write", inp)),
            "output": float(e.get("output", 0)),
            "reasoning": float(e.get("reasoning", e.get("output", 0))),
        }))
    out.sort(key=lambda p: -len(p[0].replace("*", "")))
    return out


def event_time_ms(v):
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        try:
            return int(datetime.datetime.fromisoformat(v).timestamp() * 1000)
        except ValueError:
            return None
    return None


def tokens(ev):
    """(input, cache_read, cache_write, output, reasoning) from canonical fields, OpenTelemetry names or a
    provider's usage block; None when the event carries no usage."""
    if "input_tokens" in ev or "output_tokens" in ev:
        return (int(ev.get("input_tokens") or 0), int(ev.get("cache_read_tokens") or 0), int(ev.get("cache_write_tokens") or 0),
                int(ev.get("output_tokens") or 0), int(ev.get("reasoning_tokens") or 0))
    if "gen_ai.usage.input_tokens" in ev:
        cr = ev.get("gen_ai.usage.cache_read.input_tokens", ev.get("gen_ai.usage.cache_read_input_tokens")) or 0
        cw = ev.get("gen_ai.usage.cache_creation.input_tokens", ev.get("gen_ai.usage.cache_creation_input_tokens")) or 0
        rs = ev.get("gen_ai.usage.reasoning.output_tokens", ev.get("gen_ai.usage.reasoning_tokens")) or 0
        return (int(ev["gen_ai.usage.input_tokens"]), int(cr), int(cw), int(ev.get("gen_ai.usage.output_tokens") or 0), int(rs))
    u = ev.get("usage")
    if not isinstance(u, dict):
        return None
    if "prompt_tokens" in u:  # OpenAI Chat Completions (and Gemini's compatible endpoint)
        pd = u.get("prompt_tokens_details") or {}
        cd = u.get("completion_tokens_details") or {}
        p, c = u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0
        left_out = max(0, (u.get("total_tokens") or 0) - p - c)
        return (p, pd.get("cached_tokens") or 0, pd.get("cache_write_tokens") or 0, c + left_out,
                max(cd.get("reasoning_tokens") or 0, left_out))
    if "cache_read_input_tokens" in u or "cache_creation_input_tokens" in u:  # Anthropic
        cr, cw = u.get("cache_read_input_tokens") or 0, u.get("cache_creation_input_tokens") or 0
        od = u.get("output_tokens_details") or {}
        return ((u.get("input_tokens") or 0) + cr + cw, cr, cw, u.get("output_tokens") or 0, od.get("thinking_tokens") or 0)
    if "promptTokenCount" in u or "candidatesTokenCount" in u:  # Gemini
        th = u.get("thoughtsTokenCount") or 0
        return ((u.get("promptTokenCount") or 0) + (u.get("toolUsePromptTokenCount") or 0), u.get("cachedContentTokenCount") or 0, 0,
                (u.get("candidatesTokenCount") or 0) + th, th)
    if "input_tokens" in u:  # OpenAI Responses
        idt, odt = u.get("input_tokens_details") or {}, u.get("output_tokens_details") or {}
        return (u["input_tokens"], idt.get("cached_tokens") or 0, idt.get("cache_write_tokens") or 0, u.get("output_tokens") or 0,
                odt.get("reasoning_tokens") or 0)
    if "inputTokens" in u or "outputTokens" in u:  # Bedrock Converse
        cr, cw = u.get("cacheReadInputTokens") or 0, u.get("cacheWriteInputTokens") or 0
        return ((u.get("inputTokens") or 0) + cr + cw, cr, cw, u.get("outputTokens") or 0, 0)
    return None


class Consumer:
    def __init__(self, prices):
        self.prices = prices
        self.rates = {}          # model -> rates (or None: unpriced), the globs matched once per model
        self.windows = {}        # (window start, workflow, owner, model) -> [events, input, output, cost USD]
        self.counted = 0
        self.bad = 0

    def rate(self, model):
        if model not in self.rates:
            self.rates[model] = next((r for g, r in self.prices if fnmatch.fnmatchcase(model, g)), None)
        return self.rates[model]

    def handle(self, value):
        try:
            ev = orjson.loads(value)
        except orjson.JSONDecodeError:
            self.bad += 1
            return
        if not isinstance(ev, dict):
            self.bad += 1
            return
        if "specversion" in ev:  # a CloudEvent: the event is its data
            data = ev.get("data")
            if isinstance(data, str):
                try:
                    data = orjson.loads(data)
                except orjson.JSONDecodeError:
                    self.bad += 1
                    return
            if not isinstance(data, dict):
                self.bad += 1
                return
            data.setdefault("time", ev.get("time"))
            data.setdefault("owner", ev.get("subject"))
            ev = data
        if ev.get("type") == "outcome":
            self.counted += 1
            return
        t = event_time_ms(ev.get("timestamp", ev.get("ts", ev.get("time"))))
        workflow = ev.get("workflow") or ev.get("gen_ai.workflow.name")
        owner = ev.get("owner")
        model = ev.get("model") or ev.get("gen_ai.response.model") or ev.get("gen_ai.request.model")
        tk = tokens(ev)
        if t is None or not workflow or not owner or not model or tk is None:
            self.bad += 1
            return
        inp, cr, cw, out, rs = tk
        cost = ev.get("cost_usd")
        if cost is None:
            r = self.rate(model)
            if r is not None:
                plain = inp - cr - cw
                cost = (plain * r["input"] + cr * r["cache_read"] + cw * r["cache_write"]
                        + (out - rs) * r["output"] + rs * r["reasoning"]) / 1e6
        key = (t - t % HOUR_MS, workflow, owner, model)
        row = self.windows.get(key)
        if row is None:
            row = self.windows[key] = [0, 0, 0, 0.0]
        row[0] += 1
        row[1] += inp
        row[2] += out
        row[3] += float(cost or 0)
        self.counted += 1


def consume(args):
    global orjson
    import orjson
    from confluent_kafka import Consumer as KafkaConsumer
    prices = load_prices(args.prices)
    c = KafkaConsumer({
        "bootstrap.servers": args.brokers, "group.id": args.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "enable.auto.offset.store": False,
    })
    c.subscribe([args.topic])
    state = Consumer(prices)
    handle = (lambda v: orjson.loads(v)) if args.parse_only else state.handle
    seen = 0
    first = None
    last_progress = time.monotonic()
    while seen < args.events:
        batch = c.consume(num_messages=2000, timeout=0.1)
        if batch and first is None:
            first = (time.monotonic(), cpu_seconds())
        for m in batch:
            if m.error():
                continue
            handle(m.value())
            seen += 1
        if batch:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > args.stall_seconds:
            sys.exit(f"stalled at {seen} of {args.events} messages")
    end, cpu = time.monotonic(), cpu_seconds()
    c.close()
    result = {
        "consumer": "python, orjson.loads only" if args.parse_only else "python", "events": seen, "counted": state.counted, "bad": state.bad, "rows": len(state.windows),
        "seconds": round(end - first[0], 3), "events_per_second": round(seen / (end - first[0])),
        # Whole process from its start: interpreter start-up, the group join and librdkafka's threads included.
        "cpu_seconds": round(cpu, 3), "cpu_seconds_per_million": round(cpu / seen * 1e6, 2),
        "cpu_seconds_consuming": round(cpu - first[1], 3),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result))


# ---- compare: broker, fill, Python consumer, daemon ----

def daemon_config(brokers, topic, group, work, prices_path):
    with open(prices_path, "rb") as f:
        prices = tomllib.load(f).get("price", [])
    price_toml = ""
    for p in prices:
        price_toml += "[[price]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in p.items()) + "\n"
    return f"""
[kafka]
brokers = "{brokers}"
group_id = "{group}"
topics = ["{topic}"]
alerts_topic = "{topic}-alerts"
dead_letter_topic = "{topic}-dlq"

[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[rollups]
dir = "{work}/rollups"
windows = ["1h"]
grace = "30s"
idle_close = "2m"
late_horizon = "7d"
instance = "compare"

[state]
dir = "{work}/state"
checkpoint_interval = "5s"

[http]
listen = "127.0.0.1:0"

{price_toml}"""


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_max_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return 0


def run_daemon(args, brokers, work, prices_path):
    """`tokenmeter run` in a fresh group until its /metrics counts every message; its CPU from /proc."""
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "tokenmeter.toml")
    with open(cfg, "w") as f:
        f.write(daemon_config(brokers, args.topic, f"compare-daemon-{os.getpid()}-{os.path.basename(work)}", work, prices_path))
    log = open(os.path.join(work, "daemon.log"), "w")
    p = subprocess.Popen([args.tokenmeter, "run", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None:
            if time.monotonic() > deadline or p.poll() is not None:
                sys.exit(f"the daemon did not start its HTTP server; see {work}/daemon.log")
            time.sleep(0.2)
            with open(os.path.join(work, "daemon.log")) as f:
                m = re.search(r"http listening.*?127\.0\.0\.1:(\d+)", f.read())
            port = m.group(1) if m else None
        first, last_count, last_change = None, -1, time.monotonic()
        while True:
            time.sleep(0.1)
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            mm = re.search(r"^tokenmeter_messages_consumed_total (\d+)", text, re.M)
            n = int(mm.group(1)) if mm else 0
            if n > 0 and first is None:
                first = (time.monotonic(), proc_cpu_seconds(p.pid))
            if n != last_count:
                last_count, last_change = n, time.monotonic()
            if n >= args.events:
                break
            if time.monotonic() - last_change > args.stall_seconds:
                sys.exit(f"the daemon stalled at {n} of {args.events} messages; see {work}/daemon.log")
        end, cpu = time.monotonic(), proc_cpu_seconds(p.pid)
        rss = proc_max_rss_mb(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    return {
        "consumer": "tokenmeter", "events": args.events, "seconds": round(end - first[0], 3),
        "events_per_second": round(args.events / (end - first[0])),
        "cpu_seconds": round(cpu, 3), "cpu_seconds_per_million": round(cpu / args.events * 1e6, 2),
        "cpu_seconds_consuming": round(cpu - first[1], 3), "max_rss_mb": rss,
    }


def run_consumer(command):
    """Runs one `consume`; when it fails, ends the comparison with what it said (a stall, a broker error)
    rather than a bare exit status."""
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the Python consumer failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
    return out


def compare(args):
    tm = os.path.abspath(args.tokenmeter)
    work = tempfile.mkdtemp(prefix="tokenmeter-compare-")
    prices_path = os.path.abspath(args.prices)
    broker = subprocess.Popen([tm, "broker", "--partitions", str(args.partitions), "--topic", args.topic,
                               "--topic", args.topic + "-dlq", "--topic", args.topic + "-alerts"],
                              stdout=subprocess.PIPE, stderr=open(os.path.join(work, "broker.log"), "w"), text=True)
    try:
        brokers = broker.stdout.readline().strip()
        print(f"broker {brokers}; work folder {work}", file=sys.stderr)
        events = os.path.join(work, "events.jsonl")
        with open(events, "w") as f:
            subprocess.run([tm, "generate", "--events", str(args.events), "--span", "1h", "--seed", str(args.seed)],
                           stdout=f, check=True)
        # 1 MB batches: the mock broker answers a fetch with one stored batch per partition, so a topic
        # filled in small batches is read a few messages per round trip and both consumers wait for it
        # (docs/performance.md). A real broker fills a fetch from many batches.
        subprocess.run([tm, "produce", "--brokers", brokers, "--topic", args.topic, "--key-field", "id",
                        "--property", "linger.ms=1000", "--property", "batch.size=1000000", events], check=True)
        print(f"filled {args.topic} with {args.events} events; measuring", file=sys.stderr)
        results = []
        for i in range(args.runs):
            out = run_consumer([sys.executable, os.path.abspath(__file__), "consume", "--brokers", brokers, "--topic", args.topic,
                                "--group", f"compare-python-{os.getpid()}-{i}", "--events", str(args.events), "--prices", prices_path])
            results.append(json.loads(out.stdout))
            print(out.stdout.strip(), file=sys.stderr)
            # The floor of any Python consumer of this topic: the same loop doing nothing but parse.
            out = run_consumer([sys.executable, os.path.abspath(__file__), "consume", "--brokers", brokers, "--topic", args.topic,
                                "--group", f"compare-parse-{os.getpid()}-{i}", "--events", str(args.events), "--prices", prices_path,
                                "--parse-only"])
            results.append(json.loads(out.stdout))
            print(out.stdout.strip(), file=sys.stderr)
            d = run_daemon(args, brokers, os.path.join(work, f"daemon-{i}"), prices_path)
            results.append(d)
            print(json.dumps(d), file=sys.stderr)
    finally:
        broker.terminate()
        broker.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"{args.events} events, {args.partitions} partitions, 1h windows; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{os.cpu_count()} cores")
    print("| consumer | run | events/s | CPU s (whole process) | CPU s per million events | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, r in enumerate(results):
        print(f"| {r['consumer']} | {i // 3 + 1} | {r['events_per_second']} | {r['cpu_seconds']} | {r['cpu_seconds_per_million']} | {r['max_rss_mb']} |")
    py = sorted(r["cpu_seconds_per_million"] for r in results if r["consumer"] == "python")
    tmc = sorted(r["cpu_seconds_per_million"] for r in results if r["consumer"] == "tokenmeter")
    print(f"python / tokenmeter CPU per event (medians): {py[len(py) // 2] / tmc[len(tmc) // 2]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("consume", help="the Python consumer alone")
    c.add_argument("--brokers", required=True)
    c.add_argument("--topic", default="usage")
    c.add_argument("--group", default=f"python-consumer-{os.getpid()}")
    c.add_argument("--events", type=int, required=True, help="stop after this many messages")
    c.add_argument("--prices", default="config/demo.toml", help="a TOML file with [[price]] entries")
    c.add_argument("--stall-seconds", type=float, default=30)
    c.add_argument("--parse-only", action="store_true", help="only orjson.loads each message: the floor of a Python consumer")
    m = sub.add_parser("compare", help="broker, fill, then the Python consumer and the daemon on the same topic")
    m.add_argument("--tokenmeter", default=".build/release/tokenmeter")
    m.add_argument("--events", type=int, default=300_000)
    m.add_argument("--partitions", type=int, default=32, help="the mock broker keeps ~5 MiB per partition")
    m.add_argument("--topic", default="usage")
    m.add_argument("--runs", type=int, default=1)
    m.add_argument("--seed", type=int, default=2026)
    m.add_argument("--prices", default="config/demo.toml")
    m.add_argument("--stall-seconds", type=float, default=30)
    m.add_argument("--keep", action="store_true", help="keep the work folder (events, daemon logs, rollups)")
    args = ap.parse_args()
    consume(args) if args.command == "consume" else compare(args)


if __name__ == "__main__":
    main()

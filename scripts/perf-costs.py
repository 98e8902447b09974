#!/usr/bin/env python3
"""Shares of the daemon's CPU by part, from `perf script` output of a `perf record -g` profile.

Each sample is charged to the innermost frame of its call chain that names a part of the daemon (the
rollup files written inside a checkpoint count as rollup files, the pipeline inside the poll as the
core); samples of librdkafka's threads go to their thread. Used by scripts/profile-daemon.sh:

  perf script -i perf.data -F comm,tid,ip,sym | scripts/perf-costs.py
"""
import collections
import sys

# (part, substrings of a mangled or plain symbol), innermost match wins. Order only breaks ties within
# one frame.
PARTS = [
    ("core: Pipeline.process (decode, price, windows, alert rules)", ["8PipelineC7process_"]),
    ("rollup files: encode", ["13RollupEncoderV6encode"]),
    ("rollup files: create, write, fsync, rename", ["13DurableBatchC", "8PipelineC12writePending"]),
    ("checkpoint: encode the state", ["10CheckpointO6encode", "8PipelineC15checkpointBytes"]),
    ("checkpoint: write, de-duplication id segments", ["15LocalCheckpointC", "12DedupSegments"]),
    ("checkpoint: commit offsets", ["16commitAssigned", "8ConsumerC6commit"]),
    ("alert outbox and publisher", ["11AlertOutboxC", "14AlertPublisherC", "8AlertingC7publish"]),
    ("dead letters", ["15DeadLetterSinkC", "15DeadLetterSpill"]),
    ("progress and metrics snapshot", ["15publishProgress", "14fillOperations", "15DaemonProgressC", "15openWindowCount",
                                       "12openRowCount", "13dedupIdCount", "16SpendSeriesTable"]),
    ("memory estimate", ["11checkMemory", "19estimatedStateBytes"]),
    ("idle close", ["9closeIdle", "17closeIdleWindows"]),
    ("statistics JSON", ["18statisticsReceived", "15KafkaStatistics"]),
    ("operations tick (readiness, systemd)", ["14operationsTick"]),
    ("consumer poll (librdkafka calls on the polling thread)", ["8ConsumerC4poll", "rd_kafka_consumer_poll"]),
]


def part_of(frames):
    for sym in frames:  # leaf first
        for name, keys in PARTS:
            if any(k in sym for k in keys):
                return name
    return None


def main():
    counts = collections.Counter()
    total = 0
    comm = None
    frames = []

    def flush():
        nonlocal total
        if comm is None:
            return
        total += 1
        if comm.startswith("rdk:"):
            counts["librdkafka threads (" + ("broker" if "broker" in comm else comm[4:]) + ")"] += 1
            return
        p = part_of(frames)
        if p is None:
            joined = " ".join(frames)
            if "BenchCommand" in joined and "16TokenmeterDaemon0B0C" not in joined:
                p = "bench: the measuring thread"
            elif "HTTPServer" in joined:
                p = "HTTP server thread"
            elif "8DaemonC" in joined or "0B0C" in joined:
                p = "daemon loop, other"
            elif any(k in joined for k in ("ext4_create", "do_sys_openat2", "__ext4_new_inode")):
                p = "file creation in the kernel (the caller's stack not recorded)"
            elif frames and any(k in frames[0] for k in ("malloc", "_int_free", "cfree", "free@")):
                p = "malloc and free (the caller not recorded: glibc keeps no frame pointers)"
            else:
                p = "other (" + comm + ")"
        counts[p] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, frames = None, []
            continue
        if not line.startswith((" ", "\t")):
            flush()
            comm = line.split()[0]
            frames = []
        else:
            parts = line.split(None, 1)
            frames.append(parts[1].strip() if len(parts) > 1 else "")
    flush()
    for name, n in counts.most_common():
        print(f"{100.0 * n / total:6.2f}%  {name}")
    print(f"{total} samples")


if __name__ == "__main__":
    main()

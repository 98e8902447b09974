import TokenmeterCore

/// What the binary was built from: `version`, and the git commit when the build knew it (`scripts/install.sh`
/// passes it; a plain `swift build` says "unknown").
public enum BuildInfo {
    public static let version = "0.1.0"
    public static var gitCommit: String { buildGitCommit }
}

/// `/metrics` in the Prometheus text exposition format 0.0.4. One prefix (`tokenmeter_`), base units
/// (seconds, messages, USD for money), `_total` on counters. The daemon's own metrics use labels with
/// bounded value sets (`result`, `reason`, `topic`, `partition`, `version`, `commit`); the spend metrics
/// (`tokenmeter_spend_*`) are labelled by `metrics.dimensions`, at most `metrics.max_series` label sets plus
/// the `__other__` series, and the rule gauges by rule (see docs/metrics.md).
public enum MetricsRenderer {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ s: DaemonProgress.Snapshot, startTimeMs: Int64, nowMs: Int64) -> String {
        var out = ""
        out.reserveCapacity(8192)
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP tokenmeter_\(name) \(help)\n# TYPE tokenmeter_\(name) \(type)\n"
            for (labels, value) in samples { out += "tokenmeter_\(name)\(labels) \(value)\n" }
        }
        func one(_ name: String, _ type: String, _ help: String, _ value: String) { metric(name, type, help, [("", value)]) }
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            out += "# HELP tokenmeter_\(name) \(help)\n# TYPE tokenmeter_\(name) histogram\n"
            for (i, b) in h.bounds.enumerated() { out += "tokenmeter_\(name)_bucket{le=\"\(b)\"} \(h.counts[i])\n" }
            out += "tokenmeter_\(name)_bucket{le=\"+Inf\"} \(h.count)\ntokenmeter_\(name)_sum \(h.sum)\ntokenmeter_\(name)_count \(h.count)\n"
        }
        let m = s.pipeline.metrics

        metric("build_info", "gauge", "Always 1; the version and git commit the binary was built from.",
               [("{version=\"\(escape(BuildInfo.version))\",commit=\"\(escape(BuildInfo.gitCommit))\"}", "1")])
        one("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.", seconds(startTimeMs))
        one("ready", "gauge",
            "1 while consuming: group joined, partitions assigned and a broker reachable (or less than kafka.ready_grace without); 0 otherwise and while stopping.",
            s.readiness.ready && !s.readiness.stopping ? "1" : "0")

        one("messages_consumed_total", "counter", "Kafka messages consumed from the input topics.", "\(m.messages)")
        let counted = m.usageEvents + m.outcomeEvents - m.lateEvents
        metric("events_processed_total", "counter",
               "Consumed messages by result: counted (in an open window), late (counted in a late row), duplicate (repeated id, not counted), rejected (bad input).",
               [("{result=\"counted\"}", "\(counted)"), ("{result=\"late\"}", "\(m.lateEvents)"),
                ("{result=\"duplicate\"}", "\(m.duplicates)"), ("{result=\"rejected\"}", "\(m.rejectedTotal)")])
        metric("events_counted_total", "counter", "Counted events (on time or late) by kind.",
               [("{kind=\"usage\"}", "\(m.usageEvents)"), ("{kind=\"outcome\"}", "\(m.outcomeEvents)")])
        metric("dead_letters_total", "counter",
               "Rejected messages by reason (copied to kafka.dead_letter_topic when one is configured).",
               RejectReason.Code.allCases.map { ("{reason=\"\($0.rawValue)\"}", "\(m.rejected[$0] ?? 0)") })
        if m.readsTraces {
            metric("otlp_spans_total", "counter",
                   "Spans of the OTLP trace topics by result: llm (became an event, then counted, late or duplicate), ignored (no GenAI usage), rejected (bad span; its message still counts).",
                   [("{result=\"llm\"}", "\(m.llmSpans)"), ("{result=\"ignored\"}", "\(m.spansIgnored)"),
                    ("{result=\"rejected\"}", "\(m.spansRejectedTotal)")])
            metric("otlp_spans_rejected_total", "counter", "Rejected spans of the OTLP trace topics by reason.",
                   RejectReason.Code.allCases.map { ("{reason=\"\($0.rawValue)\"}", "\(m.spansRejected[$0] ?? 0)") })
        }
        one("dead_letters_spilled_total", "counter",
            "Dead letters the dead-letter topic could not take (too large, refused, undelivered), kept unchanged in <state.dir>/dead-letters/spill.",
            "\(s.deadLetters.spilled)")
        one("dead_letters_spill_dropped_total", "counter",
            "Dead letters larger than the spill file may grow: neither on the topic nor in the spill file, only counted and logged.",
            "\(s.deadLetters.dropped)")
        one("dead_letter_spill_bytes", "gauge", "Size of the dead-letter spill files (spill and spill.1).", "\(s.deadLetters.bytes)")
        one("unpriced_requests_total", "counter", "Requests of models with no matching price (tokens counted, cost not invented).", "\(m.unpricedRequests)")
        one("unrecognized_usage_total", "counter", "Requests whose usage block no provider rule reads (zero tokens, cost unknown, in unpriced_requests).", "\(m.unrecognizedUsage)")

        metric("kafka_consumer_lag_messages", "gauge",
               "Messages between the partition's high watermark and the group's committed offset (librdkafka statistics).",
               s.consumer.lag.map { ("{topic=\"\(escape($0.topic))\",partition=\"\($0.partition)\"}", "\($0.lag)") })
        one("kafka_assigned_partitions", "gauge", "Input partitions assigned to this instance.", "\(s.consumer.assignedPartitions)")
        one("kafka_rebalances_total", "counter", "Consumer group rebalances (assignments and revocations) seen by this instance.", "\(s.consumer.rebalances)")

        one("open_windows", "gauge", "Open (not yet closed) windows across assigned partitions and window sizes.", "\(s.pipeline.openWindows)")
        one("open_rows", "gauge", "Rows held in open windows and late buckets (keys in memory).", "\(s.pipeline.openRows)")
        one("interned_names", "gauge",
            "Distinct names (workflows, owners, models, providers, tag values, outcomes) in memory; names no longer used are released when the table has doubled since its last rebuild.",
            "\(s.memory.internedNames)")
        one("interned_bytes", "gauge", "Approximate memory held by the interned names, in bytes.", "\(s.memory.internedBytes)")
        one("name_table_rebuilds_total", "counter", "Rebuilds of the name table that released names no longer in use.",
            "\(m.nameCompactions)")
        one("state_memory_bytes", "gauge",
            "The state held (open rows, dedup ids, interned names) by the memory model that state.max_memory is compared with.",
            "\(s.memory.stateBytes)")
        one("memory_paused", "gauge", "1 while consuming is paused because the state is over state.max_memory.",
            s.memory.paused ? "1" : "0")
        one("windows_closed_total", "counter", "Windows closed (final files; late and partial files not included).", "\(m.windowsClosed)")
        one("rollup_files_written_total", "counter", "Rollup files written (final, late and partial).", "\(m.filesWritten)")
        one("rollup_pending_files", "gauge", "Closed windows waiting to be written by the next checkpoint (they stay while the rollup directory is failing).", "\(s.pipeline.pendingFiles)")
        histogram("rollup_flush_duration_seconds", "Time to write a batch of closed windows (files flushed, renamed, folders fsynced).",
                  s.checkpoint.rollupFlushSeconds)
        histogram("alert_latency_seconds", "From consuming the message that raised an alert to the broker acknowledging the alert.",
                  s.alerts.latencySeconds)

        let since = s.checkpoint.lastWall > 0 ? s.checkpoint.lastWall : startTimeMs
        one("checkpoint_age_seconds", "gauge", "Seconds since the last durable checkpoint (since start when none yet).", seconds(max(nowMs - since, 0)))
        one("checkpoint_duration_seconds", "gauge", "Duration of the last checkpoint (files, dead letters, state file, commit).", "\(s.checkpoint.lastSeconds)")
        one("checkpoints_total", "counter", "Durable checkpoints written.", "\(s.checkpoint.written)")
        one("checkpoint_failures_total", "counter", "Checkpoints postponed because a step failed.", "\(s.checkpoint.failures)")
        one("checkpoint_cpu_seconds_total", "counter", "CPU time the polling thread spent in checkpoints.", "\(s.checkpoint.cpuSeconds)")
        one("state_bytes_written_total", "counter",
            "Bytes written to the local checkpoint and the de-duplication id segments (changelog records are counted apart).",
            "\(s.checkpoint.stateBytesWritten)")
        one("dedup_segments", "gauge", "De-duplication id segment files in the state directory.", "\(s.checkpoint.idSegments)")
        one("rollup_write_failing", "gauge",
            "1 while the rollup directory cannot be written (consuming paused, no commit past the rows in memory).",
            s.disk.rollupFailing ? "1" : "0")
        one("rollup_write_failures_total", "counter", "Attempts to write rollup files that failed (retried until they succeed).",
            "\(s.disk.rollupFailures)")
        one("state_write_failing", "gauge",
            "1 while the state directory (checkpoint, alert outbox) cannot be written (consuming paused, no offset committed).",
            s.disk.stateFailing ? "1" : "0")
        one("state_write_failures_total", "counter", "Writes to the state directory (checkpoint, alert outbox) that failed.",
            "\(s.disk.stateFailures)")

        one("changelog_records_total", "counter", "Partition and alert-shard state records written to kafka.changelog_topic.", "\(s.scaleOut.changelogRecords)")
        one("changelog_bytes_total", "counter", "Bytes of those records (before compression).", "\(s.scaleOut.changelogBytes)")
        one("alert_shards", "gauge", "Alert shards (kafka.spend_topic partitions) this instance judges.", "\(s.scaleOut.alertShards)")
        one("spend_ranges_applied_total", "counter", "Spend delta messages applied by this instance's alert shards.", "\(s.scaleOut.spendApplied)")
        one("spend_ranges_skipped_total", "counter", "Spend delta messages skipped: already applied (a re-send after a restore) or another group's.",
            "\(s.scaleOut.spendSkipped)")

        one("alerts_published_total", "counter", "Alerts delivered to the alerts topic.", "\(s.alerts.published)")
        one("alerts_failed_total", "counter", "Alert deliveries that failed (the alert stays in the outbox and is retried).", "\(s.alerts.failed)")
        one("alerts_rejected_total", "counter",
            "Alerts that can never be produced (refused by the producer or the broker for good), moved to <state.dir>/outbox/rejected/.",
            "\(s.alerts.rejected)")
        one("alert_outbox_depth", "gauge", "Alerts in the durable outbox not yet delivered.", "\(s.alerts.outboxDepth)")

        one("config_reload_success", "gauge", "1 when the last configuration (re)load succeeded, 0 when the last SIGHUP reload was refused.",
            s.reload.succeeded ? "1" : "0")
        one("config_reload_timestamp_seconds", "gauge", "Time of the last configuration load or reload attempt since the Unix epoch.",
            seconds(s.reload.wall))
        one("config_reloads_total", "counter", "SIGHUP reload attempts (successful or refused).", "\(s.reload.count)")
        renderSpend(s.spend, into: &out)
        return out
    }

    /// The spend counters and the rule gauges, after the daemon's own metrics.
    static func renderSpend(_ s: DaemonProgress.Snapshot.SpendStatus, into out: inout String) {
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP tokenmeter_\(name) \(help)\n# TYPE tokenmeter_\(name) \(type)\n"
            for (labels, value) in samples { out += "tokenmeter_\(name)\(labels) \(value)\n" }
        }
        let sp = s.series
        let labelSets = sp.labels.map { values in
            zip(sp.labelNames, values).map { "\($0)=\"\(escape($1))\"" }.joined(separator: ",")
        }
        func perSeries(_ value: (SpendSeriesCounters) -> String) -> [(String, String)] {
            sp.counters.indices.map { ("{\(labelSets[$0])}", value(sp.counters[$0])) }
        }
        family("spend_cost_usd_total", "counter",
               "Cost of counted requests in USD since the process started, by metrics.dimensions (the rollup files hold the exact record).",
               perSeries { usd($0.cost) })
        family("spend_requests_total", "counter", "Counted requests (billed calls) since the process started.",
               perSeries { "\($0.requests)" })
        family("spend_errors_total", "counter", "Counted requests that reported an error.", perSeries { "\($0.errors)" })
        var tokens: [(String, String)] = []
        for (i, c) in sp.counters.enumerated() {
            let sep = labelSets[i].isEmpty ? "" : ","
            for (kind, n) in [("input", c.input), ("cache_read", c.cacheRead), ("cache_write", c.cacheWrite),
                              ("output", c.output), ("reasoning", c.reasoning)] {
                tokens.append(("{\(labelSets[i])\(sep)kind=\"\(kind)\"}", "\(n)"))
            }
        }
        family("spend_tokens_total", "counter", "Tokens of counted requests by kind (input includes cache reads and writes).", tokens)
        family("spend_unpriced_requests_total", "counter", "Counted requests with no price (tokens counted, cost unknown).",
               perSeries { "\($0.unpricedRequests)" })
        family("spend_outcomes_total", "counter", "Outcomes counted (the events' counts).", perSeries { "\($0.outcomes)" })
        family("spend_series", "gauge", "Label sets of the spend metrics in use, the __other__ series not included.",
               [("", "\(sp.seriesCount)")])
        family("spend_series_limit", "gauge", "metrics.max_series: label sets past it go to the __other__ series.",
               [("", "\(sp.maxSeries)")])
        family("spend_overflow_events_total", "counter",
               "Counted requests and outcome events whose values went to the __other__ series (past metrics.max_series).",
               [("", "\(sp.overflowEvents)")])

        let budgetLabels = s.budgets.map { "{rule=\"\(escape($0.rule))\",scope=\"\(escape($0.scope))\",period=\"\($0.period)\"}" }
        func perBudget(_ value: (BudgetGauge) -> String?) -> [(String, String)] {
            s.budgets.indices.compactMap { i in value(s.budgets[i]).map { (budgetLabels[i], $0) } }
        }
        family("budget_amount_usd", "gauge", "The budget of the rule for one period.", perBudget { usd($0.amount) })
        family("budget_spent_usd", "gauge", "Spent in the rule's current period (the newest period with spend, by event time).",
               perBudget { usd($0.spent) })
        family("budget_used_ratio", "gauge", "Spent divided by the budget (1 = all used).",
               perBudget { $0.amount > .zero ? "\(ratio($0.spent, $0.amount))" : nil })
        family("budget_projected_usd", "gauge",
               "Projected spend at the end of the current period (absent until 10% of the period and 5% of the budget have passed).",
               perBudget { $0.projected.map(usd) })
        family("budget_period_end_timestamp_seconds", "gauge", "End of the rule's current period since the Unix epoch.",
               perBudget { seconds($0.periodEnd) })

        let limitLabels = s.outcomeLimits.map {
            "{rule=\"\(escape($0.rule))\",scope=\"\(escape($0.scope))\",outcome=\"\(escape($0.outcome))\",period=\"\($0.period)\"}"
        }
        func perLimit(_ value: (OutcomeLimitGauge) -> String?) -> [(String, String)] {
            s.outcomeLimits.indices.compactMap { i in value(s.outcomeLimits[i]).map { (limitLabels[i], $0) } }
        }
        family("outcome_limit_max_cost_usd", "gauge", "The highest cost per outcome the rule allows.", perLimit { usd($0.maxCostPerOutcome) })
        family("outcome_limit_spent_usd", "gauge", "Spend of the rule's scope in its current period.", perLimit { usd($0.spent) })
        family("outcome_limit_outcomes", "gauge", "Outcomes counted in the rule's current period.", perLimit { "\($0.outcomes)" })
        family("outcome_limit_cost_per_outcome_usd", "gauge", "Spend divided by outcomes in the current period (absent without outcomes).",
               perLimit { $0.outcomes > 0 ? "\($0.spent.approximateDollars / Double($0.outcomes))" : nil })
        family("outcome_limit_used_ratio", "gauge", "Cost per outcome divided by the limit (above 1: over the limit).",
               perLimit { $0.outcomes > 0 && $0.maxCostPerOutcome > .zero
                   ? "\(ratio($0.spent, Money(femtos: $0.maxCostPerOutcome.femtos * Int128($0.outcomes))))" : nil })
        family("outcome_limit_period_end_timestamp_seconds", "gauge", "End of the rule's current period since the Unix epoch.",
               perLimit { seconds($0.periodEnd) })
    }

    /// Exact USD (15 decimals at most, trailing zeros dropped); Prometheus reads it as a float.
    static func usd(_ m: Money) -> String { m.decimalString(decimals: 15) }

    static func ratio(_ a: Money, _ b: Money) -> Double { Double(a.femtos) / Double(b.femtos) }

    static func seconds(_ ms: Int64) -> String {
        let whole = ms / 1000, frac = ms % 1000
        return frac == 0 ? "\(whole)" : "\(whole).\(String(frac + 1000).dropFirst())"
    }

    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "\\": o += "\\\\"
            case "\"": o += "\\\""
            case "\n": o += "\\n"
            default: o.append(c)
            }
        }
        return o
    }
}

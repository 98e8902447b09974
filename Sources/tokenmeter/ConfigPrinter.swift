import TokenmeterCore
import TokenmeterDaemon
#if canImport(Glibc)
import Glibc
#endif

/// `check-config --print`: the effective configuration as TOML, defaults filled in. Secrets never appear:
/// a `kafka.secret_files` property is shown as `<from file PATH>` (PATH resolved against
/// `$CREDENTIALS_DIRECTORY` when relative), and a `[kafka.properties]` value whose name looks sensitive
/// (password, secret, key, token, oauthbearer config) as `<hidden>`.
enum ConfigPrinter {
    static func text(_ c: TokenmeterConfig, file: String) -> String {
        var o = "# Effective configuration of \(file), defaults filled in. Secrets are not shown.\n"
            + "# tokenmeter \(BuildInfo.version) (commit \(BuildInfo.gitCommit))\n\n"
        func q(_ s: String) -> String {
            var r = "\""
            for ch in s.unicodeScalars {
                switch ch {
                case "\"": r += "\\\""
                case "\\": r += "\\\\"
                case "\n": r += "\\n"
                case "\t": r += "\\t"
                default: r.unicodeScalars.append(ch)
                }
            }
            return r + "\""
        }
        func list(_ a: [String]) -> String { "[" + a.map(q).joined(separator: ", ") + "]" }
        func line(_ k: String, _ v: String) { o += "\(k) = \(v)\n" }

        o += "[kafka]\n"
        line("brokers", q(c.kafka.brokers))
        line("group_id", q(c.kafka.groupId))
        line("topics", list(c.kafka.topics))
        line("alerts_topic", q(c.kafka.alertsTopic))
        if let d = c.kafka.deadLetterTopic { line("dead_letter_topic", q(d)) } else { o += "# dead_letter_topic: none\n" }
        if let t = c.kafka.changelogTopic { line("changelog_topic", q(t)) } else { o += "# changelog_topic: none (partition state in the local checkpoint only)\n" }
        if let t = c.kafka.spendTopic { line("spend_topic", q(t)) } else { o += "# spend_topic: none (rules judged per instance)\n" }
        o += "\n[kafka.properties]\n"
        for p in c.kafka.properties { line(q(p.key), q(isSensitive(p.key) ? "<hidden>" : p.value)) }
        let creds = getenv("CREDENTIALS_DIRECTORY").map { String(cString: $0) }
        for s in c.kafka.secretFiles {
            let path = s.value.hasPrefix("/") || creds == nil ? s.value : creds! + "/" + s.value
            line(q(s.key), q("<from file \(path)>"))
        }

        o += "\n[rollups]\n"
        line("dir", q(c.rollups.dir))
        line("windows", list(c.rollups.windows.map(\.label)))
        line("grace", q(c.rollups.grace.label))
        line("idle_close", q(c.rollups.idleClose.label))
        line("late_horizon", q(c.rollups.lateHorizon.label))
        line("max_future", q(c.rollups.maxFuture.label))
        line("tags", list(c.rollups.tags))
        if let i = c.rollups.instance { line("instance", q(i)) } else { o += "# instance: the host name\n" }
        o += "\n[state]\n"
        line("dir", q(c.state.dir))
        line("checkpoint_interval", q(c.state.checkpointInterval.label))
        if let m = c.state.maxMemory { line("max_memory", q(m.label)) } else { o += "# max_memory: none (no ceiling on state memory)\n" }
        o += "\n[dedup]\n"
        line("window", q(c.dedup.window.label))
        o += "\n[http]\n"
        line("listen", q(c.http.listen))
        o += "\n[metrics]\n"
        line("dimensions", list(c.metrics.dimensions.map(\.name)))
        line("max_series", "\(c.metrics.maxSeries)")
        o += "\n[focus]\n"
        line("billing_account_id", q(c.focus.billingAccountId))
        line("billing_account_name", q(c.focus.billingAccountName))

        o += "\n# The provider of an event that names none, from its model name: the longest matching prefix\n"
        o += "# (ASCII case ignored). The built-in table with this file's entries added.\n"
        o += "[provider_prefixes]\n"
        for e in ProviderPrefixes(extra: c.providerPrefixes).entries.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
            line(q(e.key), q(e.value))
        }

        for p in c.prices {
            o += "\n[[price]]" + (p.origin.isEmpty ? "" : "  # \(p.origin)") + "\n"
            line("model", q(p.model))
            if let v = p.provider { line("provider", q(v)) }
            if let v = p.serviceTier { line("service_tier", q(v)) }
            if let v = p.minInputTokens { line("min_input_tokens", "\(v)") }
            line("input", "\(p.input)")
            if let v = p.cacheRead { line("cache_read", "\(v)") }
            if let v = p.cacheWrite { line("cache_write", "\(v)") }
            if let v = p.cacheWrite1h { line("cache_write_1h", "\(v)") }
            line("output", "\(p.output)")
            if let v = p.reasoning { line("reasoning", "\(v)") }
            if let v = p.effectiveFrom { line("effective_from", q(RFC3339.format(v))) }
        }
        for b in c.budgets {
            o += "\n[[budget]]\n"
            line("name", q(b.name))
            if let v = b.owner { line("owner", q(v)) }
            if let v = b.workflow { line("workflow", q(v)) }
            line("period", q(b.period.rawValue))
            line("amount_usd", b.amount.decimalString())
            line("thresholds", "[" + b.thresholds.map(String.init).joined(separator: ", ") + "]")
            line("forecast", "\(b.forecast)")
        }
        for s in c.spikes {
            o += "\n[[spike]]\n"
            line("name", q(s.name))
            line("by", q(s.by.rawValue))
            line("window", q(s.window.label))
            line("factor", FixedDecimal.format(Int128(s.factorMilli), scale: 3, maxDecimals: 3, minDecimals: 1))
            line("min_usd", s.min.decimalString())
        }
        for l in c.outcomeLimits {
            o += "\n[[outcome_limit]]\n"
            line("name", q(l.name))
            if let v = l.workflow { line("workflow", q(v)) }
            if let v = l.owner { line("owner", q(v)) }
            line("outcome", q(l.outcome))
            line("max_cost_usd", l.maxCost.decimalString())
            line("period", q(l.period.rawValue))
        }
        return o
    }

    static func isSensitive(_ name: String) -> Bool {
        let n = name.lowercased()
        return ["password", "secret", "key", "token", "oauthbearer.config", "sasl.jaas"].contains { n.contains($0) }
    }
}

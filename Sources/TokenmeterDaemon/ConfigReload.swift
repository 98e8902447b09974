import TokenmeterCore

/// The guardrail rules a reload replaces at once (the alert engine reads them from `Daemon.rules`).
public struct AlertRules: Sendable, Equatable {
    public var budgets: [BudgetRule]
    public var spikes: [SpikeRule]
    public var outcomeLimits: [OutcomeLimitRule]

    public init(_ c: TokenmeterConfig) {
        budgets = c.budgets; spikes = c.spikes; outcomeLimits = c.outcomeLimits
    }

    public var count: Int { budgets.count + spikes.count + outcomeLimits.count }
}

/// What a SIGHUP may change in a running daemon, and what needs a restart.
enum ConfigReload {
    /// Keys that changed between `old` and `new` but take effect only after a restart: they shape the
    /// Kafka clients, the files, the windows and the listener, all built once at start.
    static func restartKeys(old: TokenmeterConfig, new: TokenmeterConfig) -> [String] {
        var keys: [String] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { keys.append(name) } }
        check("kafka.brokers", old.kafka.brokers, new.kafka.brokers)
        check("kafka.group_id", old.kafka.groupId, new.kafka.groupId)
        check("kafka.topics", old.kafka.topics, new.kafka.topics)
        check("kafka.alerts_topic", old.kafka.alertsTopic, new.kafka.alertsTopic)
        check("kafka.dead_letter_topic", old.kafka.deadLetterTopic, new.kafka.deadLetterTopic)
        check("kafka.changelog_topic", old.kafka.changelogTopic, new.kafka.changelogTopic)
        check("kafka.spend_topic", old.kafka.spendTopic, new.kafka.spendTopic)
        check("kafka.static_membership", old.kafka.staticMembership, new.kafka.staticMembership)
        check("kafka.ready_grace", old.kafka.readyGrace, new.kafka.readyGrace)
        check("kafka.properties", old.kafka.properties, new.kafka.properties)
        check("kafka.secret_files", old.kafka.secretFiles, new.kafka.secretFiles)
        check("rollups.dir", old.rollups.dir, new.rollups.dir)
        check("rollups.windows", old.rollups.windows, new.rollups.windows)
        check("rollups.grace", old.rollups.grace, new.rollups.grace)
        check("rollups.idle_close", old.rollups.idleClose, new.rollups.idleClose)
        check("rollups.late_horizon", old.rollups.lateHorizon, new.rollups.lateHorizon)
        check("rollups.max_future", old.rollups.maxFuture, new.rollups.maxFuture)
        check("rollups.max_keys_per_window", old.rollups.maxKeysPerWindow, new.rollups.maxKeysPerWindow)
        check("rollups.tags", old.rollups.tags, new.rollups.tags)
        check("rollups.instance", old.rollups.instance, new.rollups.instance)
        check("state.dir", old.state.dir, new.state.dir)
        check("dedup.window", old.dedup.window, new.dedup.window)
        check("http.listen", old.http.listen, new.http.listen)
        check("kafka.handover_timeout", old.kafka.handoverTimeout, new.kafka.handoverTimeout)
        check("provider_prefixes", old.providerPrefixes, new.providerPrefixes)
        check("metrics.dimensions", old.metrics.dimensions, new.metrics.dimensions)
        check("metrics.max_series", old.metrics.maxSeries, new.metrics.maxSeries)
        return keys
    }

    /// When a reload changes keys that take effect at the next restart, the start checks of the new file
    /// (librdkafka properties, secret files, listen address, folders): a problem they find would stop that
    /// restart with exit 78, so it is better said now. Nothing of it is applied.
    static func problemsForTheNextStart(old: TokenmeterConfig, new: TokenmeterConfig, instance: String) -> [ConfigDiagnostic] {
        let startKeys: Set = ["kafka.brokers", "kafka.group_id", "kafka.properties", "kafka.secret_files", "rollups.dir",
                              "rollups.instance", "state.dir", "http.listen"]
        guard restartKeys(old: old, new: new).contains(where: { startKeys.contains($0) }) else { return [] }
        return StartupChecks.run(new, instance: instance).errors
    }

    /// `current` with everything a reload applies at once taken from `new`: prices, budgets, spikes,
    /// outcome limits, the checkpoint interval and the memory ceiling. The rest stays as the daemon started with it.
    static func applied(_ current: TokenmeterConfig, _ new: TokenmeterConfig) -> TokenmeterConfig {
        var c = current
        c.prices = new.prices
        c.budgets = new.budgets
        c.spikes = new.spikes
        c.outcomeLimits = new.outcomeLimits
        c.state.checkpointInterval = new.state.checkpointInterval
        c.state.maxMemory = new.state.maxMemory
        return c
    }
}

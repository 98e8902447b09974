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

/// What a SIGHUP may change in a running daemon, and what needs a restart: the reload class of each key
/// in `ConfigKeys`.
enum ConfigReload {
    /// Keys that changed between `old` and `new` but take effect only after a restart: they shape the
    /// Kafka clients, the files, the windows and the listener, all built once at start.
    static func restartKeys(old: TokenmeterConfig, new: TokenmeterConfig) -> [String] {
        ConfigKeys.changes(from: old, to: new).filter { $0.reload == .restart }.map(\.path)
    }

    /// The warning a reload logs when it changed keys that wait for a restart, naming each.
    static func restartNeeded(_ keys: [String]) -> String {
        "restart needed: the configuration file changes \(keys.joined(separator: ", ")), which the daemon keeps "
            + "at its running value until it restarts (systemctl restart tokenmeter)"
    }

    /// When a reload changes keys that take effect at the next restart, the start checks of the new file
    /// (librdkafka properties, secret files, listen address, folders): a problem they find would stop that
    /// restart with exit 78, so it is better said now. Nothing of it is applied.
    static func problemsForTheNextStart(old: TokenmeterConfig, new: TokenmeterConfig, instance: String) -> [ConfigDiagnostic] {
        let changes = ConfigKeys.changes(from: old, to: new)
        guard changes.contains(where: { $0.reload == .restart && $0.startChecked }) else { return [] }
        return StartupChecks.run(new, instance: instance).errors
    }

    /// `current` with everything a reload applies at once taken from `new` (prices, rules, the checkpoint
    /// interval, the memory ceiling: the keys of class `atOnce`). The rest stays as the daemon started with it.
    static func applied(_ current: TokenmeterConfig, _ new: TokenmeterConfig) -> TokenmeterConfig {
        ConfigKeys.applyingReload(current, from: new)
    }
}

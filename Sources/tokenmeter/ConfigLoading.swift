import TokenmeterCore
import TokenmeterDaemon
#if canImport(Glibc)
import Glibc
#endif

/// Loads the configuration or prints every problem as `FILE:LINE:COL: error: ...` and exits 78.
func loadConfigOrExit(_ path: String) -> TokenmeterConfig {
    switch ConfigLoader.load(path: path) {
    case .success(let config):
        return config
    case .failure(let errors):
        for d in errors.diagnostics { printError(d.description) }
        exit(exitConfigError)
    }
}

/// The checks `run` makes before it connects (`StartupChecks`): prints warnings, and on any error prints
/// every problem as `FILE:LINE:COL: error: ...` and exits 78, exactly as `check-config` does.
func startupChecksOrExit(_ config: TokenmeterConfig, requireBrokers: Bool = true) -> StartupChecks {
    let checks = StartupChecks.run(config, instance: config.rollups.instance ?? WallClock.hostName())
    let missing = requireBrokers ? brokersMissing(config) : nil
    for d in (missing.map { [$0] } ?? []) + checks.diagnostics { printError(d.description) }
    if !checks.errors.isEmpty || missing != nil { exit(exitConfigError) }
    return checks
}

/// `kafka.brokers` is what `run` connects to, and a file without it would quietly mean 127.0.0.1:9092:
/// a daemon that then waits for a broker that is not there, instead of a configuration error. `run` and
/// `check-config` ask for it; `replay`, `report` and `prices` read the same file without Kafka and do not,
/// and neither does `check-config` of a price list (`isPriceList`).
func brokersMissing(_ config: TokenmeterConfig) -> ConfigDiagnostic? {
    let o = config.origins
    guard o.values["kafka.brokers"] == nil && o.keys["kafka.brokers"] == nil else { return nil }
    return o.error("kafka.brokers", "`kafka.brokers` is not set: name the Kafka bootstrap servers, "
                   + "such as brokers = \"kafka-1:9092,kafka-2:9092\" in [kafka]")
}

/// A file of `[[price]]` entries and nothing else (config/prices.toml, what `prices import` prints, a file
/// to `include`): not a daemon's configuration, so `check-config` does not ask it for `kafka.brokers`.
func isPriceList(_ config: TokenmeterConfig) -> Bool {
    var bare = TokenmeterConfig()
    bare.prices = config.prices
    return !config.prices.isEmpty && config == bare && config.origins.keys.isEmpty && config.origins.values.isEmpty
}

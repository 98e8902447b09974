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
func startupChecksOrExit(_ config: TokenmeterConfig) -> StartupChecks {
    let checks = StartupChecks.run(config, instance: config.rollups.instance ?? WallClock.hostName())
    for d in checks.diagnostics { printError(d.description) }
    if !checks.errors.isEmpty { exit(exitConfigError) }
    return checks
}

import TokenmeterCore
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

import ArgumentParser
import TokenmeterCore
import TokenmeterDaemon
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `tokenmeter check-config --config FILE`: validate the configuration, exit 0 or 78 (EX_CONFIG).
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file.",
        discussion: """
            Prints every problem as FILE:LINE:COL: error: MESSAGE on standard error and exits 78 (EX_CONFIG), \
            or prints a one-line summary and exits 0. kafka.brokers must be set (run connects there), except in \
            a file of [[price]] entries only (a price list). Besides the file itself it runs every check `run` makes \
            before connecting: librdkafka accepts every property, the secret files can be read (64 KiB at \
            most; a warning when the group or others may read them), http.listen resolves to an address of \
            this machine, and the state and rollup folders exist or can be created (--file-only skips these, \
            for a file meant for another machine). With --print, the \
            effective configuration comes first, every key with its value (secrets never: a secret file is \
            shown by its path, a property whose name says it is secret as <hidden>).
            """
    )

    @Option(name: .long, help: ArgumentHelp("The configuration file.", valueName: "FILE"))
    var config: String = ConfigLoader.defaultPath

    @Flag(name: .long, help: "Print the effective configuration (every key, defaults filled in, secrets hidden).")
    var print = false

    /// docs/configuration-reference.md is this output (checked by a test).
    @Flag(name: .long, help: .hidden)
    var reference = false

    @Flag(name: .customLong("file-only"),
          help: "Check the file alone, not what `run` checks on this machine (secret files, librdkafka, http.listen, folders).")
    var fileOnly = false

    func run() throws {
        if reference {
            writeOut(ConfigReference.markdown())
            return
        }
        switch ConfigLoader.load(path: config) {
        case .success(let c):
            let requireBrokers = !isPriceList(c)
            if !fileOnly { _ = startupChecksOrExit(c, requireBrokers: requireBrokers) } else if requireBrokers, let d = brokersMissing(c) {
                printError(d.description)
                throw ExitCode(78)
            }
            if self.print {
                let header = ["Effective configuration of \(config): every key, defaults filled in. Secrets are not shown.",
                              "tokenmeter \(BuildInfo.version) (commit \(BuildInfo.gitCommit))"]
                let credentials = getenv("CREDENTIALS_DIRECTORY").map { String(cString: $0) }
                writeOut(ConfigPrinter.text(c, header: header, credentialsDirectory: credentials) + "\n")
            }
            Swift.print("\(config): ok (\(ConfigLoader.summary(c)))")
        case .failure(let errors):
            for d in errors.diagnostics { printError(d.description) }
            throw ExitCode(78)
        }
    }
}

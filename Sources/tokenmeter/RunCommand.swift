import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import TokenmeterCore
import TokenmeterDaemon

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: consume usage events, write rollups, publish alerts.",
        discussion: """
            Signals: SIGTERM/SIGINT stop after a final checkpoint (exit 0; exit 1 when the shutdown deadline \
            passes first); SIGHUP re-reads the configuration file. Under systemd (Type=notify) it reports \
            READY, STATUS, WATCHDOG, RELOADING and STOPPING on $NOTIFY_SOCKET.
            """)

    @OptionGroup var options: ConfigOption

    @Option(name: .customLong("log-level"), help: "trace | debug | info | notice | warning | error")
    var logLevel: LogLevelArgument = .init(.info)

    @Option(name: .customLong("shutdown-timeout"), help: "Seconds a stop may take before the daemon exits 1 anyway.")
    var shutdownTimeout: Double = 20

    func validate() throws {
        guard shutdownTimeout > 0 else { throw ValidationError("--shutdown-timeout must be positive") }
    }

    func run() throws {
        let config = loadConfigOrExit(options.config)
        // Secret files are read here, once: the daemon is handed the properties built from them.
        let checks = startupChecksOrExit(config)
        let log = makeLogger("tokenmeter", level: logLevel.level)
        let stop = StopSignal(handleReload: true)
        do {
            let daemon = try Daemon(config: config, configPath: options.config, log: log, stop: stop,
                                    kafkaProperties: checks.kafkaProperties)
            daemon.shutdownDeadlineSeconds = shutdownTimeout
            daemon.onShutdownDeadline = { Glibc.exit(1) }
            try daemon.run()
        } catch let failure as DaemonFailure {
            // Logged where it happened; the exit code tells systemd to restart us (see DaemonFailure).
            throw ExitCode(failure.exitCode)
        } catch {
            log.critical("tokenmeter stopped on an error: \(error)")
            throw ExitCode(1)
        }
    }
}

struct LogLevelArgument: ExpressibleByArgument {
    let level: Logger.Level
    init(_ level: Logger.Level) { self.level = level }
    init?(argument: String) {
        guard let l = Logger.Level(rawValue: argument.lowercased()), l != .critical else { return nil }
        level = l
    }
    var defaultValueDescription: String { level.rawValue }
    static var allValueStrings: [String] { ["trace", "debug", "info", "notice", "warning", "error"] }
}

func makeLogger(_ label: String, level: Logger.Level = .info) -> Logger {
    var logger = Logger(label: label) { StderrLogHandler(label: $0) }
    logger.logLevel = level
    return logger
}

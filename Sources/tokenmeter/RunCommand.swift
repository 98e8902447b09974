import ArgumentParser
import Logging
import TokenmeterCore
import TokenmeterDaemon

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: consume usage events, write rollups, publish alerts.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = loadConfigOrExit(options.config)
        let log = makeLogger("tokenmeter")
        let stop = StopSignal(handleReload: true)
        do {
            let daemon = try Daemon(config: config, log: log, stop: stop)
            try daemon.run()
        } catch {
            log.critical("tokenmeter stopped on an error: \(error)")
            throw ExitCode(1)
        }
    }
}

func makeLogger(_ label: String) -> Logger {
    var logger = Logger(label: label) { StderrLogHandler(label: $0) }
    logger.logLevel = .info
    return logger
}

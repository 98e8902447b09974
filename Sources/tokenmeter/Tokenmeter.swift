import ArgumentParser
import TokenmeterCore
import TokenmeterDaemon

@main
struct Tokenmeter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenmeter",
        abstract: "Meters what AI workflows cost: LLM usage events from Kafka to priced rollups and alerts.",
        // `tokenmeter --version` (and `-V`'s long form in the help): the version and the commit it was built from.
        version: "tokenmeter \(BuildInfo.version) (commit \(BuildInfo.gitCommit))",
        subcommands: [
            RunCommand.self,
            DemoCommand.self,
            BenchCommand.self,
            BrokerCommand.self,
            CheckConfigCommand.self,
            ReplayCommand.self,
            ProduceCommand.self,
            GenerateCommand.self,
            PricesCommand.self,
            AlertsCommand.self,
            ReportCommand.self,
            NotifyCommand.self,
        ]
    )
}

/// `--config FILE`, shared by the commands that read the configuration.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file (TOML).")
    var config: String = ConfigLoader.defaultPath
}

/// sysexits.h EX_CONFIG: systemd's `RestartPreventExitStatus=78` keeps a bad config from restart-looping.
let exitConfigError: Int32 = 78

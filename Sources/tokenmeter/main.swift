import ArgumentParser

// Temporary root for the Kafka branch; the integrator merges the real one.
struct Tokenmeter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenmeter",
        abstract: "LLM usage metering from Kafka.",
        subcommands: [BrokerCommand.self, ProduceCommand.self])
}

Tokenmeter.main()

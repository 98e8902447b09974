// TEMPORARY (config worktree): a root command listing check-config, for testing. The integrator merges main.swift.
import ArgumentParser

struct Tokenmeter: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenmeter", subcommands: [CheckConfigCommand.self])
}

Tokenmeter.main()

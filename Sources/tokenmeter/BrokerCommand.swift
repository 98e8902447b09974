import ArgumentParser
import Foundation
import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `tokenmeter broker`: librdkafka's mock cluster on loopback, for development, demos and tests.
struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a development Kafka broker on loopback (librdkafka's mock cluster).",
        discussion: """
            Prints the bootstrap address (127.0.0.1:PORT; a comma-separated list with several brokers \
            and no --port) as the first line of stdout, then runs until \
            SIGTERM or SIGINT. Data lives in memory only; each partition keeps about 5 MiB. Topics not \
            created with --topic are auto-created on first use with 4 partitions (a fixed mock default). \
            With --port, a loopback forwarder on that port carries the bootstrap connection; the brokers \
            themselves listen on ephemeral ports, which clients learn from metadata.

            Fault injection for tests, one command per line on stdin: `down [BROKER]`, `up [BROKER]` \
            (all brokers when none is named), `rtt BROKER MS`, `leader TOPIC PARTITION BROKER`, \
            `coordinator group|transaction KEY BROKER`. Each answers `ok ...` or `error ...` on stderr.
            """)

    @Option(help: "Bootstrap port on 127.0.0.1 (0 = any free port).")
    var port: Int = 0

    @Option(help: "Partitions for each --topic.")
    var partitions: Int = 4

    @Option(name: .customLong("topic"), help: "Create this topic up front (repeatable).")
    var topics: [String] = []

    @Option(help: "Number of brokers in the cluster.")
    var brokers: Int = 1

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (1...10_000).contains(partitions) else { throw ValidationError("--partitions must be 1...10000") }
        guard (1...32).contains(brokers) else { throw ValidationError("--brokers must be 1...32") }
        for t in topics where t.isEmpty { throw ValidationError("--topic must not be empty") }
    }

    func run() throws {
        // Block the signals before librdkafka starts its threads (they inherit the mask), then take them
        // synchronously with sigwait: no async-signal-safety concerns, and a clean teardown afterwards.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let cluster: MockCluster
        do {
            cluster = try MockCluster(brokers: brokers, port: UInt16(port))
            for topic in topics {
                try cluster.createTopic(topic, partitions: Int32(partitions))
            }
        } catch let error as KafkaError {
            printError("tokenmeter broker: \(error.reason)")
            throw ExitCode.failure
        }
        writeOut(cluster.bootstrapServers + "\n")
        var note = "tokenmeter broker: \(brokers) broker(s), bootstrap \(cluster.bootstrapServers)"
        if port != 0 { note += " (forwarded to \(cluster.brokerAddresses))" }
        if !topics.isEmpty { note += ", topics \(topics.joined(separator: ",")) with \(partitions) partition(s)" }
        printError(note + "; stop with SIGTERM or SIGINT")
        Self.acceptControlCommands(cluster)

        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        printError("tokenmeter broker: signal \(received), shutting down")
        withExtendedLifetime(cluster) {}
    }
}

extension BrokerCommand {
    /// Reads fault-injection commands from stdin on a thread of its own (it inherits the blocked signals).
    static func acceptControlCommands(_ cluster: MockCluster) {
        Thread.detachNewThread {
            while let line = readLine() {
                let words = line.split(separator: " ").map(String.init)
                guard let verb = words.first else { continue }
                let ids: [Int32] = words.count > 1 ? [Int32(words[1]) ?? -1] : (1...Int32(cluster.brokerCount)).map { $0 }
                do {
                    switch verb {
                    case "down": for id in ids { try cluster.setBrokerDown(id) }
                    case "up": for id in ids { try cluster.setBrokerUp(id) }
                    case "rtt":
                        guard words.count == 3, let ms = Int32(words[2]) else { throw ValidationError("usage: rtt BROKER MS") }
                        try cluster.setRTT(ids[0], ms: ms)
                    case "leader":
                        guard words.count == 4, let p = Int32(words[2]), let b = Int32(words[3]) else {
                            throw ValidationError("usage: leader TOPIC PARTITION BROKER")
                        }
                        try cluster.setPartitionLeader(topic: words[1], partition: p, broker: b)
                    case "coordinator":
                        guard words.count == 4, let b = Int32(words[3]) else {
                            throw ValidationError("usage: coordinator group|transaction KEY BROKER")
                        }
                        try cluster.setCoordinator(keyType: words[1], key: words[2], broker: b)
                    default: throw ValidationError("unknown command \(verb) (down, up, rtt, leader, coordinator)")
                    }
                    printError("tokenmeter broker: ok \(line)")
                } catch {
                    printError("tokenmeter broker: error \(line): \(error)")
                }
            }
        }
    }
}

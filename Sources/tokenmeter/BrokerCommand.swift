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
            SIGTERM or SIGINT. Data lives in memory only; each partition keeps about 5 MiB. \
            --partitions applies to the --topic topics: a topic a client creates by using it gets 4 \
            partitions, a default librdkafka 2.0.2's mock cluster does not let us change; the broker \
            then says so on stderr, naming the topic. List every topic you use with --topic. \
            With --port, a loopback forwarder on that port carries the bootstrap connection; the brokers \
            themselves listen on ephemeral ports, which clients learn from metadata.

            Fault injection for tests, one command per line on stdin: `down [BROKER]`, `up [BROKER]` \
            (all brokers when none is named), `rtt BROKER MS`, `leader TOPIC PARTITION BROKER`, \
            `coordinator group|transaction KEY BROKER`. Each answers `ok ...` or `error ...` on stderr.
            """)

    @Option(help: "Bootstrap port on 127.0.0.1 (0 = any free port).")
    var port: Int = 0

    @Option(parsing: .unconditional, help: "Partitions for each --topic (topics clients create by using them get 4).")
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
        Self.reportAutoCreatedTopics(cluster, listed: Set(topics), partitions: partitions)

        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        printError("tokenmeter broker: signal \(received), shutting down")
        withExtendedLifetime(cluster) {}
    }
}

extension BrokerCommand {
    /// The mock cluster creates a topic a client names in a metadata request (a producer's first message, a
    /// consumer's subscription) with its fixed default of 4 partitions, and librdkafka 2.0.2 has no call to
    /// change that default or to refuse the creation. So the broker watches its own topic list and names
    /// every such topic once on stderr: a user who asked for `--partitions 128` learns at once which topic
    /// has 4 instead, and that listing it with `--topic` is the fix.
    static func reportAutoCreatedTopics(_ cluster: MockCluster, listed: Set<String>, partitions: Int) {
        let bootstrap = cluster.brokerAddresses
        Thread.detachNewThread {
            let reader: KafkaPartitionReader
            do {
                reader = try KafkaPartitionReader(properties: [("bootstrap.servers", bootstrap), ("log_level", "0")])
            } catch {
                printError("tokenmeter broker: cannot watch for auto-created topics: \(error)")
                return
            }
            var known = listed
            while true {
                if let counts = try? reader.topicPartitionCounts(timeoutMs: 5_000) {
                    for (topic, n) in counts.sorted(by: { $0.key < $1.key }) where !known.contains(topic) {
                        known.insert(topic)
                        guard !topic.hasPrefix("__") else { continue }  // the broker's own (__consumer_offsets)
                        var line = "tokenmeter broker: warning: topic '\(topic)' was created by a client that used it, with \(n) "
                            + "partition(s) (the mock cluster's fixed default)"
                        if n != partitions { line += ", not --partitions \(partitions); list it with --topic \(topic) to get \(partitions)" }
                        printError(line)
                    }
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }

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

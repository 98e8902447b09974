import ArgumentParser
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
            writeAll(2, "tokenmeter broker: \(error.reason)\n")
            throw ExitCode.failure
        }
        writeAll(1, cluster.bootstrapServers + "\n")
        var note = "tokenmeter broker: \(brokers) broker(s), bootstrap \(cluster.bootstrapServers)"
        if port != 0 { note += " (forwarded to \(cluster.brokerAddresses))" }
        if !topics.isEmpty { note += ", topics \(topics.joined(separator: ",")) with \(partitions) partition(s)" }
        writeAll(2, note + "; stop with SIGTERM or SIGINT\n")

        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        writeAll(2, "tokenmeter broker: signal \(received), shutting down\n")
        withExtendedLifetime(cluster) {}
    }
}

/// Unbuffered write of the whole string, so the address line is out before anyone waits on it.
private func writeAll(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 { if errno == EINTR { continue } else { return } }
        done += n
    }
}

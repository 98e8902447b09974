import ArgumentParser
import Foundation
import TokenmeterDaemon
import TokenmeterKafka

/// `tokenmeter alerts`: follows the alerts topic and prints one line per alert. Also the reference for a
/// downstream consumer: read the value as JSON, drop an `alert_id` already seen, act on the rest.
struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Follow the alerts topic and print each alert on one line.",
        discussion: """
            Human lines are `EVENT_TIME SEVERITY TYPE RULE SCOPE MESSAGE`; --json prints each message value \
            unchanged. Alerts are de-duplicated by alert_id (the daemon may resend an alert after a crash; \
            it always has the same id) unless --keep-duplicates is given. Without --group a fresh consumer \
            group is used and nothing is committed; with --group the group's offsets are committed after \
            each printed batch, so the next run continues where this one stopped. --from-beginning starts a \
            group with no committed offsets at the oldest retained alert (auto.offset.reset=earliest); \
            otherwise it starts at new alerts only. Runs until SIGINT or SIGTERM.
            """)

    @Option(help: "Bootstrap servers, e.g. 127.0.0.1:9092.")
    var brokers: String

    @Option(help: "The alerts topic.")
    var topic: String = "llm-alerts"

    @Flag(help: "Start with the oldest alert the topic still holds (a fresh group starts at new alerts otherwise).")
    var fromBeginning = false

    @Flag(help: "Print each message value (the alert's JSON) unchanged.")
    var json = false

    @Option(help: "Consumer group; its offsets are committed. Default: a fresh group, nothing committed.")
    var group: String?

    @Flag(help: "Print a repeated alert_id again instead of dropping it.")
    var keepDuplicates = false

    @Option(name: .customLong("property"), help: "librdkafka consumer property k=v (repeatable).")
    var properties: [String] = []

    func validate() throws {
        guard !topic.isEmpty else { throw ValidationError("--topic must not be empty") }
        if let group, group.isEmpty { throw ValidationError("--group must not be empty") }
        for p in properties where !p.contains("=") { throw ValidationError("--property expects k=v") }
    }

    func run() throws {
        let stop = StopSignal()
        let groupID = group ?? "tokenmeter-alerts-\(ProcessInfo.processInfo.processIdentifier)-\(Int(Date().timeIntervalSince1970 * 1000))"
        let overrides: [(String, String)] = properties.map { p in
            let eq = p.firstIndex(of: "=")!
            return (String(p[..<eq]), String(p[p.index(after: eq)...]))
        }
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(properties: [
                ("bootstrap.servers", brokers),
                ("group.id", groupID),
                ("auto.offset.reset", fromBeginning ? "earliest" : "latest"),
            ] + overrides, topics: [topic], rebalance: nil)
        } catch let error as KafkaError {
            printError("tokenmeter alerts: \(error.reason)")
            throw ExitCode(78)
        }
        // The first thing a new user runs after the demo: say what this waits for, on stderr (stdout is the
        // alerts), so an empty screen is not taken for "no alerts ever".
        printError(fromBeginning
            ? "tokenmeter alerts: following \(topic) from its oldest retained alert; Ctrl-C to stop"
            : "tokenmeter alerts: waiting for new alerts on \(topic) (--from-beginning shows the ones already there); Ctrl-C to stop")
        var reportedErrors = 0
        consumer.onError = { error in
            reportedErrors += 1
            if reportedErrors <= 5 || reportedErrors % 100 == 0 { printError("tokenmeter alerts: \(error.reason)") }
        }
        var seen = Set<String>()
        var next: [TopicPartition: Int64] = [:]
        while !stop.stopRequested {
            let n = consumer.poll(maxMessages: 500, timeoutMs: 200) { message in
                next[TopicPartition(topic: topic, partition: message.partition)] = message.offset + 1
                let value = Array(message.payload)
                let fields = (try? JSONSerialization.jsonObject(with: Data(value))) as? [String: Any]
                if !keepDuplicates, let id = fields?["alert_id"] as? String {
                    guard seen.insert(id).inserted else { return }
                }
                if json {
                    writeOut(String(decoding: value, as: UTF8.self) + "\n")
                } else if let fields {
                    writeOut(AlertsCommand.line(fields, key: message.key.map { String(decoding: $0, as: UTF8.self) }) + "\n")
                } else {
                    writeOut("(not an alert) " + String(decoding: value.prefix(200), as: UTF8.self) + "\n")
                }
            }
            if n > 0, group != nil, !next.isEmpty {
                do {
                    try consumer.commit(next.map { TopicPartitionOffset($0.key, offset: $0.value) })
                } catch let error as KafkaError {
                    printError("tokenmeter alerts: commit: \(error.reason)")
                }
            }
        }
        consumer.close()
    }

    /// `2026-11-21T14:03:00Z warning budget_threshold finance-monthly owner=finance-ops 80% of $5000.00 used
    /// ($4012.35), 9 days left, projected $6110.00`: the message without its leading `rule: `.
    static func line(_ a: [String: Any], key: String?) -> String {
        let rule = a["rule"] as? String ?? "-"
        var message = a["message"] as? String ?? ""
        if message.hasPrefix(rule + ": ") { message.removeFirst(rule.count + 2) }
        var scope = key ?? ""
        if scope.isEmpty {
            let pairs = (a["scope"] as? [String: Any] ?? [:]).map { "\($0.key)=\($0.value)" }.sorted()
            scope = pairs.isEmpty ? "all" : pairs.joined(separator: ",")
        }
        return [a["event_time"] as? String ?? "-", a["severity"] as? String ?? "-", a["type"] as? String ?? "-",
                rule, scope, message].joined(separator: " ")
    }
}

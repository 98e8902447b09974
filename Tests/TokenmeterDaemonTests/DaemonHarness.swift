import Foundation
import Logging
import TokenmeterCore
import TokenmeterKafka
@testable import TokenmeterDaemon

/// One daemon run in-process: an in-memory broker, a manual clock, real files in a temporary folder. A
/// "crash" is the harness dropping a daemon without its shutdown: only what it made durable (files, the
/// checkpoint, the broker's commits and topics) is seen by the next daemon started on the same folder.
final class DaemonHarness {
    let dir: String
    let broker: InMemoryBroker
    let clock: ManualClock
    let extraConfig: String
    private(set) var clients: InMemoryClients!
    private(set) var daemon: Daemon!
    let stop = StopSignal()
    let topic = "usage"
    let partitions: [Int32]
    /// Changelog mode (`kafka.changelog_topic = "changelog"`).
    let changelog: Bool

    /// Event time of the first generated event: a day behind the clock, so windows close as event time moves.
    var firstEventMs: Int64 { clock.now() - 86_400_000 }

    init(partitions: [Int32] = [0, 1], extraConfig: String = "", changelog: Bool = false, broker: InMemoryBroker = InMemoryBroker(),
         clock: ManualClock = ManualClock(), dir: String? = nil) {
        self.changelog = changelog
        if changelog && broker.partitionCount("changelog") == 0 { broker.createTopic("changelog", partitions: 2) }
        self.dir = dir ?? NSTemporaryDirectory() + "tm-daemon-\(UUID().uuidString.prefix(8))"
        self.broker = broker
        self.clock = clock
        self.extraConfig = extraConfig
        self.partitions = partitions
        if broker.partitionCount(topic) == 0 { broker.createTopic(topic, partitions: partitions.count) }
        try? FileManager.default.createDirectory(atPath: self.dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    var rollupDir: String { dir + "/rollups" }
    var stateDir: String { dir + "/state" }

    func configText(group: String = "g", instance: String = "t") -> String {
        """
        [kafka]
        brokers = "in-memory:9092"
        group_id = "\(group)"
        topics = ["\(topic)"]
        alerts_topic = "alerts"
        dead_letter_topic = "dlq"
        handover_timeout = "30s"
        \(changelog ? "changelog_topic = \"changelog\"" : "")
        [rollups]
        dir = "\(rollupDir)"
        windows = ["1m", "1h"]
        grace = "0s"
        idle_close = "5s"
        instance = "\(instance)"
        [state]
        dir = "\(stateDir)"
        checkpoint_interval = "1s"
        [http]
        listen = "127.0.0.1:0"
        [[price]]
        model = "m1"
        input = 1.0
        output = 2.0
        \(extraConfig)
        """
    }

    func config(group: String = "g", instance: String = "t") throws -> TokenmeterConfig {
        try ConfigLoader.parse(text: configText(group: group, instance: instance), file: "test.toml").get()
    }

    /// A fresh daemon on this harness's folder and broker, started (checkpoint restored, consumer made).
    @discardableResult
    func startDaemon(group: String = "g", instance: String = "t", config: TokenmeterConfig? = nil) throws -> Daemon {
        var log = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        log.logLevel = .critical
        let clients = InMemoryClients(broker)
        let d = try Daemon(config: config ?? self.config(group: group, instance: instance), log: log, stop: stop,
                           kafkaProperties: [("bootstrap.servers", "in-memory:9092")], clients: clients, clock: clock)
        try d.start()
        self.clients = clients
        self.daemon = d
        return d
    }

    var consumer: InMemoryConsumer { clients.consumer }

    /// The group assigns the harness's partitions to the daemon.
    func assignAll() { consumer.assign(partitions.map { TopicPartition(topic: topic, partition: $0) }) }

    /// Usage events: `count` per partition, a second apart in event time (so minute windows close as
    /// event time moves), with input i+1 and output 2(i+1) tokens of model m1.
    @discardableResult
    func produceEvents(_ count: Int, startIndex: Int = 0, workflow: String = "wf", spacingMs: Int64 = 1000,
                       firstMs: Int64? = nil) -> (requests: Int, input: Int64, output: Int64) {
        var input: Int64 = 0, output: Int64 = 0
        let firstEventMs = firstMs ?? self.firstEventMs
        for p in partitions {
            for i in startIndex..<(startIndex + count) {
                let ts = firstEventMs + Int64(i) * spacingMs
                let inTok = Int64(i + 1), outTok = Int64(2 * (i + 1))
                input += inTok; output += outTok
                let json = #"{"id":"e-\#(p)-\#(i)","timestamp":\#(ts),"workflow":"\#(workflow)","owner":"team","model":"m1","provider":"p","input_tokens":\#(inTok),"output_tokens":\#(outTok)}"#
                broker.append(topic, partition: p, value: Array(json.utf8), timestampMs: ts)
            }
        }
        return (count * partitions.count, input, output)
    }

    /// A run without any fault: `events` per partition consumed and drained; its rollup files (what a run
    /// with crashes must write byte for byte) and what was produced.
    static func uninterruptedRun(events: Int, extraConfig: String = "", changelog: Bool = false) throws
        -> (files: [String: [UInt8]], produced: (requests: Int, input: Int64, output: Int64)) {
        let clean = DaemonHarness(extraConfig: extraConfig, changelog: changelog)
        let produced = clean.produceEvents(events)
        try clean.startDaemon()
        clean.assignAll()
        try clean.drainAndStop()
        return (clean.rollupFiles(), produced)
    }

    /// Turns of the loop, the clock moving `stepMs` before each, until `done` holds (at most `limit` turns).
    @discardableResult
    func iterate(until done: () -> Bool = { false }, stepMs: Int64 = 100, limit: Int = 2_000) throws -> Bool {
        for _ in 0..<limit {
            if done() { return true }
            clock.advance(ms: stepMs)
            try daemon.iterate()
        }
        return done()
    }

    struct NotConsumed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs until every partition assigned to the daemon is consumed to its end (and none is awaited).
    func consumeAll(limit: Int = 2_000) throws {
        let ok = try iterate(until: {
            let held = consumer.assignment()
            return !held.isEmpty && daemon.ownership.awaitingHandover.isEmpty && held.allSatisfy { tp in
                daemon.pipeline.assigned.contains { $0.state.partition == tp.partition && $0.state.nextOffset == broker.end(tp.topic, tp.partition) }
            }
        }, limit: limit)
        if !ok { throw NotConsumed(description: "the daemon did not consume its partitions to their end") }
    }

    /// Lets every window close by the wall clock (idle close), then stops the daemon cleanly.
    func drainAndStop() throws {
        try consumeAll()
        try iterate(until: { false }, stepMs: 1_000, limit: 8)
        try daemon.finish()
        daemon.operationsFinish()
    }

    /// Drops the daemon as a kill -9 would: nothing more happens in it (its HTTP listener is closed).
    func crash() {
        daemon.operationsFinish()
        daemon = nil
        clients = nil
    }

    // MARK: Reading what was written

    /// Every rollup file: relative path -> bytes.
    func rollupFiles() -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        guard let e = FileManager.default.enumerator(atPath: rollupDir) else { return out }
        for case let rel as String in e where rel.hasSuffix(".jsonl") && !rel.split(separator: "/").last!.hasPrefix(".") {
            out[rel] = Array(FileManager.default.contents(atPath: rollupDir + "/" + rel) ?? Data())
        }
        return out
    }

    struct Totals: Equatable {
        var requests: Int64 = 0
        var input: Int64 = 0
        var output: Int64 = 0
        var costNanos: Int64 = 0
    }

    /// Sums of the rows of one window size's files (e.g. "1h"), parsed from the text (cost exactly).
    func totals(window: String) -> Totals { Self.totals(of: rollupFiles(), window: window) }

    static func totals(of files: [String: [UInt8]], window: String) -> Totals {
        var t = Totals()
        for (rel, bytes) in files where rel.hasPrefix(window + "/") {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                t.requests += field(line, "requests")
                t.input += field(line, "input_tokens")
                t.output += field(line, "output_tokens")
                t.costNanos += nanos(line, "cost_usd")
            }
        }
        return t
    }

    private static func raw(_ line: Substring, _ name: String) -> Substring? {
        guard let r = line.range(of: "\"\(name)\":") else { return nil }
        let rest = line[r.upperBound...]
        return rest.prefix { $0 != "," && $0 != "}" }
    }

    private static func field(_ line: Substring, _ name: String) -> Int64 { raw(line, name).flatMap { Int64($0) } ?? 0 }

    private static func nanos(_ line: Substring, _ name: String) -> Int64 {
        guard let text = raw(line, name)?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) else { return 0 }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let whole = Int64(parts[0]) ?? 0
        var frac = parts.count > 1 ? String(parts[1]) : ""
        frac = String((frac + "000000000").prefix(9))
        return whole * 1_000_000_000 + (Int64(frac) ?? 0)
    }

    /// What the generated events must add up to: m1 costs 1 USD per million input tokens and 2 per
    /// million output tokens, that is 1,000 and 2,000 nano-dollars a token.
    static func expected(_ produced: (requests: Int, input: Int64, output: Int64)) -> Totals {
        Totals(requests: Int64(produced.requests), input: produced.input, output: produced.output,
               costNanos: produced.input * 1_000 + produced.output * 2_000)
    }

    func committed(_ p: Int32, group: String = "g") -> (offset: Int64, metadata: String?)? {
        broker.committed[group]?[TopicPartition(topic: topic, partition: p)]
    }

    /// The claim the partition's committed metadata makes (whatever watermark it carries).
    func claim(_ p: Int32, group: String = "g") -> OwnershipClaim {
        OwnershipClaim(metadata: committed(p, group: group)?.metadata)
    }
}

/// Stops the daemon right after the `nth` completion of `step`.
final class CrashAfter: DaemonFaults {
    let step: CheckpointStep
    let nth: Int
    private(set) var seen = 0
    init(_ step: CheckpointStep, nth: Int = 1) { self.step = step; self.nth = nth }
    func completed(_ s: CheckpointStep) throws(DaemonFailure) {
        guard s == step else { return }
        seen += 1
        if seen == nth { throw .injectedCrash(after: s) }
    }
}

import Crdkafka
import Synchronization

/// Routes librdkafka's own log lines (`log_cb`) to a Swift closure, for every client created after
/// `setHandler`. librdkafka calls it from its internal threads, so the handler must be thread-safe.
/// librdkafka never logs property values marked sensitive (`sasl.password`, `ssl.key.password`, ...); the
/// daemon's handler also redacts every secret value it knows before logging a line.
public enum KafkaLog {
    /// `level` is the syslog level librdkafka uses (0 emergency ... 7 debug); `facility` its subsystem
    /// (`FAIL`, `REQTMOUT`, `CONFWARN`...).
    public typealias Handler = @Sendable (_ level: Int32, _ facility: String, _ message: String) -> Void

    private static let handler = Mutex<Handler?>(nil)
    /// The last error lines forwarded (level 3 or worse), newest last, with when they came.
    private static let recentErrors = Mutex<[(text: String, at: ContinuousClock.Instant)]>([])

    public static func setHandler(_ h: Handler?) { handler.withLock { $0 = h } }

    static var current: Handler? { handler.withLock { $0 } }

    /// Installs the forwarding callback on `conf` when a handler is set (otherwise librdkafka keeps its
    /// default: lines on stderr).
    static func install(on conf: OpaquePointer) {
        guard current != nil else { return }
        rd_kafka_conf_set_log_cb(conf) { _, level, fac, buf in
            guard let h = KafkaLog.current else { return }
            let text = KafkaLog.partitionsAsOurs(buf.map { String(cString: $0) } ?? "")
            if level <= 3 { KafkaLog.remember(text) }
            h(level, fac.map { String(cString: $0) } ?? "", text)
        }
    }

    /// librdkafka writes a partition `llm-usage [0]`; every line of ours writes `llm-usage[0]`
    /// (`TopicPartition`): one notation in the whole log, so one search finds a partition's lines.
    public static func partitionsAsOurs(_ text: String) -> String {
        guard text.contains(" [") else { return text }
        let b = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            // " [" after a name character, then digits and "]": drop the space.
            if b[i] == 0x20, i > 0, b[i - 1] != 0x20, i + 2 < b.count, b[i + 1] == 0x5B {
                var j = i + 2
                while j < b.count, (0x30...0x39).contains(b[j]) { j += 1 }
                if j > i + 2, j < b.count, b[j] == 0x5D { i += 1; continue }
            }
            out.append(b[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// librdkafka reports a broker failure twice: as a log line (facility `FAIL`) and to the error callback,
    /// with the same text. The error callbacks mark an error whose text ended an error line forwarded in
    /// the last 10 s (`KafkaError.alreadyLogged`), so that it is logged once.
    static func remember(_ text: String) {
        let now = ContinuousClock.now
        recentErrors.withLock { recent in
            recent.removeAll { now - $0.at > .seconds(10) }
            if recent.count >= 16 { recent.removeFirst() }
            recent.append((text, now))
        }
    }

    static func loggedRecently(_ reason: String) -> Bool {
        guard !reason.isEmpty else { return false }
        let now = ContinuousClock.now
        return recentErrors.withLock { recent in
            recent.contains { now - $0.at <= .seconds(10) && $0.text.hasSuffix(reason) }
        }
    }
}

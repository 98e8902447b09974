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

    public static func setHandler(_ h: Handler?) { handler.withLock { $0 = h } }

    static var current: Handler? { handler.withLock { $0 } }

    /// Installs the forwarding callback on `conf` when a handler is set (otherwise librdkafka keeps its
    /// default: lines on stderr).
    static func install(on conf: OpaquePointer) {
        guard current != nil else { return }
        rd_kafka_conf_set_log_cb(conf) { _, level, fac, buf in
            guard let h = KafkaLog.current else { return }
            h(level, fac.map { String(cString: $0) } ?? "", buf.map { String(cString: $0) } ?? "")
        }
    }
}

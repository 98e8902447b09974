import Crdkafka

/// Turns ordered `(name, value)` pairs into an `rd_kafka_conf_t`.
///
/// Order matters because librdkafka applies properties one by one and later ones win, so callers put
/// defaults first and user overrides after. Values are never echoed in errors: properties carry
/// passwords and keys, and librdkafka's own message quotes the rejected value.
public enum KafkaProperties {
    /// Returns a new conf the caller owns (hand it to `KafkaClientFactory.make`, or `rd_kafka_conf_destroy` it).
    static func makeConf(
        _ properties: [(String, String)],
        file: String = #fileID,
        line: Int = #line
    ) throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        KafkaLog.install(on: conf)
        do {
            for (name, value) in properties {
                try set(conf, name, value, file: file, line: line)
            }
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }
        return conf
    }

    static func set(
        _ conf: OpaquePointer, _ name: String, _ value: String, file: String, line: Int
    ) throws(KafkaError) {
        var errstr = [CChar](repeating: 0, count: 512)
        let res = rd_kafka_conf_set(conf, name, value, &errstr, errstr.count)
        switch res {
        case RD_KAFKA_CONF_OK:
            return
        case RD_KAFKA_CONF_UNKNOWN:
            throw KafkaError(
                code: KafkaError.invalidArgument, reason: "unknown Kafka property '\(name)'",
                file: file, line: line)
        default:
            let detail = redact(errstr.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, value)
            throw KafkaError(
                code: KafkaError.invalidArgument,
                reason: "invalid value for Kafka property '\(name)': \(detail)", file: file, line: line)
        }
    }

    // MARK: Checking a configuration before any client exists

    /// Which client a property list is for: librdkafka checks some combinations only when a client is made
    /// (`acks` against `enable.idempotence`, an `ssl.ca.location` that cannot be loaded, ...).
    public enum ClientKind: Sendable { case consumer, producer }

    /// One property librdkafka refuses, in words safe to print (no value, no secret).
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            /// librdkafka has no property of that name.
            case unknown
            /// The value is refused by `rd_kafka_conf_set`.
            case invalidValue
            /// Every value was accepted alone, but the client refuses the combination; `property` is the
            /// first property named in librdkafka's reason, if any.
            case rejectedByClient
        }
        public var kind: Kind
        public var property: String?
        public var message: String
        public var description: String { message }
    }

    /// Every property in `properties` set on a real librdkafka configuration (`rd_kafka_conf_set`), each
    /// problem reported, not just the first; then, when all were accepted, each of `clients` built and
    /// destroyed at once (`rd_kafka_new`) from its own list. Nothing connects: `bootstrap.servers` (and
    /// `metadata.broker.list`) are left out of the clients built here, so librdkafka has no broker to reach.
    /// librdkafka's log lines are dropped. Every value in `hide` (secrets) and every value refused by
    /// `rd_kafka_conf_set` is cut out of the messages.
    public static func validate(
        _ properties: [(String, String)], clients: [(ClientKind, [(String, String)])], hide: [String] = []
    ) -> [Problem] {
        var problems: [Problem] = []
        let conf = rd_kafka_conf_new()!
        defer { rd_kafka_conf_destroy(conf) }
        for (name, value) in properties {
            do {
                try set(conf, name, value, file: #fileID, line: #line)
            } catch {
                var message = error.reason
                for secret in hide { message = redact(message, secret) }
                let unknown = error.reason.hasPrefix("unknown Kafka property")
                problems.append(Problem(kind: unknown ? .unknown : .invalidValue, property: name, message: message))
            }
        }
        guard problems.isEmpty else { return problems }
        for (kind, list) in clients {
            // The one value KafkaConsumer refuses itself (see its init): librdkafka 2.0.2 accepts it, then aborts.
            if kind == .consumer, list.contains(where: { $0.0 == "partition.assignment.strategy" && $0.1.contains("cooperative-sticky") }) {
                problems.append(Problem(kind: .invalidValue, property: "partition.assignment.strategy",
                                        message: "cooperative-sticky is not supported with librdkafka 2.0.2 (it aborts "
                                            + "on close, librdkafka #4312); use range or roundrobin"))
                continue
            }
            let own = list.filter { $0.0 != "bootstrap.servers" && $0.0 != "metadata.broker.list" }
            guard let clientConf = try? makeQuietConf(own) else { continue }
            var reason: String
            do {
                rd_kafka_destroy(try KafkaClientFactory.create(kind, conf: clientConf))
                continue
            } catch {
                reason = error.reason
            }
            // The caller's property named in the reason (longest first: `ssl.key.location` before `ssl.key`),
            // else the one whose value it quotes (`Unsupported SASL mechanism: X`).
            let named = properties.map(\.0).sorted { $0.count > $1.count }.first { reason.contains($0) }
                ?? properties.first { $0.1.utf8.count >= 4 && reason.contains($0.1) }?.0
            for secret in hide { reason = redact(reason, secret) }
            let client = kind == .consumer ? "consumer" : "producer"
            let problem = Problem(kind: .rejectedByClient, property: named,
                                  message: "librdkafka refuses to create the \(client): \(reason)")
            if !problems.contains(where: { $0.property == named && $0.message.hasSuffix(reason) }) { problems.append(problem) }
        }
        return problems
    }

    /// Names librdkafka knows (global and topic properties with a default), for "did you mean" hints.
    public static func knownNames() -> [String] {
        var names: [String] = []
        func take(_ dump: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ count: Int) {
            guard let dump else { return }
            for i in stride(from: 0, to: count, by: 2) { if let p = dump[i] { names.append(String(cString: p)) } }
            rd_kafka_conf_dump_free(dump, count)
        }
        let conf = rd_kafka_conf_new()!
        var count = 0
        take(rd_kafka_conf_dump(conf, &count), count)
        rd_kafka_conf_destroy(conf)
        let topic = rd_kafka_topic_conf_new()!
        take(rd_kafka_topic_conf_dump(topic, &count), count)
        rd_kafka_topic_conf_destroy(topic)
        return names
    }

    /// A conf with librdkafka's log lines dropped (a check prints its own messages).
    private static func makeQuietConf(_ properties: [(String, String)]) throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        rd_kafka_conf_set_log_cb(conf) { _, _, _, _ in }
        do {
            for (name, value) in properties { try set(conf, name, value, file: #fileID, line: #line) }
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }
        return conf
    }

    /// librdkafka writes `Invalid value "VALUE" for configuration property "NAME"`; strip the value.
    static func redact(_ message: String, _ value: String) -> String {
        guard !value.isEmpty else { return message }
        var out = message.replacingAll("\"\(value)\"", with: "(value hidden)")
        // A value short enough to occur by chance in prose is left; a long one is a leak if it remains.
        if value.utf8.count >= 4 { out = out.replacingAll(value, with: "(value hidden)") }
        return out
    }
}

extension String {
    // Foundation-free replace; only used on error paths.
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        let hay = Array(utf8), needle = Array(target.utf8)
        guard !needle.isEmpty, hay.count >= needle.count else { return self }
        var out: [UInt8] = []
        out.reserveCapacity(hay.count)
        var i = 0
        while i < hay.count {
            if i + needle.count <= hay.count, hay[i..<(i + needle.count)].elementsEqual(needle) {
                out.append(contentsOf: replacement.utf8)
                i += needle.count
            } else {
                out.append(hay[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

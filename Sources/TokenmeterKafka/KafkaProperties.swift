import Crdkafka

/// Turns ordered `(name, value)` pairs into an `rd_kafka_conf_t`.
///
/// Order matters because librdkafka applies properties one by one and later ones win, so callers put
/// defaults first and user overrides after. Values are never echoed in errors: properties carry
/// passwords and keys, and librdkafka's own message quotes the rejected value.
enum KafkaProperties {
    /// Returns a new conf the caller owns (hand it to `rd_kafka_new`, or `rd_kafka_conf_destroy` it).
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

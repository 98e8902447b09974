import Crdkafka

/// The one place a librdkafka client (`rd_kafka_t`) is made: the consumer, the producer, the partition
/// reader, the mock cluster's host client and the configuration check all come through here.
///
/// Ownership of the configuration is the part easy to get wrong: `rd_kafka_new` takes the conf only when
/// it succeeds, so on failure the conf is destroyed here and the caller never touches it again either way.
/// Callers build the conf themselves (`KafkaProperties.makeConf`, plus their callbacks and opaque), because
/// what goes on it is what differs between clients.
enum KafkaClientFactory {
    /// librdkafka refused to make the client; `reason` is its own message (it may quote a property value:
    /// redact before showing it).
    struct Refusal: Error {
        var reason: String
    }

    /// A new client of `kind` that owns `conf` from now on (destroyed here when the client cannot be made).
    /// A consumer's events (rebalances, errors, statistics) are routed to its consumer poll
    /// (`rd_kafka_poll_set_consumer`), so one thread calling `poll` serves all of them.
    /// `what` names the client in the error (`cannot create consumer: ...`).
    static func make(
        _ kind: KafkaProperties.ClientKind, conf: OpaquePointer, what: String, file: String, line: Int
    ) throws(KafkaError) -> OpaquePointer {
        let client: OpaquePointer
        do {
            client = try create(kind, conf: conf)
        } catch {
            throw KafkaError(code: KafkaError.invalidArgument, reason: "cannot create \(what): \(error.reason)",
                             file: file, line: line)
        }
        if kind == .consumer { rd_kafka_poll_set_consumer(client) }
        return client
    }

    /// `rd_kafka_new` alone, its error buffer turned into a `Refusal`; `conf` is the client's or destroyed.
    static func create(_ kind: KafkaProperties.ClientKind, conf: OpaquePointer) throws(Refusal) -> OpaquePointer {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let client = rd_kafka_new(kind == .consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf,
                                        &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw Refusal(reason: errstr.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return client
    }
}

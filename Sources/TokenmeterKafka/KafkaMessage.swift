import Crdkafka

/// A consumed message, borrowed from librdkafka: every buffer is valid only inside the closure passed to
/// `KafkaConsumer.poll`. Copy what must outlive it. Not `Sendable` on purpose.
public struct KafkaMessage {
    /// The value; empty for a null value.
    public let payload: UnsafeRawBufferPointer
    /// The key; nil for a null key.
    public let key: UnsafeRawBufferPointer?
    /// Index into the topic list the consumer subscribed with.
    public let topicIndex: Int
    public let partition: Int32
    public let offset: Int64
    /// The message's create or log-append time; nil when the broker sent none.
    public let timestampMs: Int64?

    let raw: UnsafeMutablePointer<rd_kafka_message_t>

    init(raw: UnsafeMutablePointer<rd_kafka_message_t>, topicIndex: Int) {
        let m = raw.pointee
        self.raw = raw
        self.payload = UnsafeRawBufferPointer(start: m.payload, count: m.payload == nil ? 0 : m.len)
        self.key = m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) }
        self.topicIndex = topicIndex
        self.partition = m.partition
        self.offset = m.offset
        var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(raw, &tsType)
        self.timestampMs = tsType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || ts < 0 ? nil : ts
    }

    /// The last header with this name (empty buffer for a null header value), or nil when absent.
    /// Parses the headers lazily: messages that never ask pay nothing.
    public func header(named name: String) -> UnsafeRawBufferPointer? {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
            return nil
        }
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(headers, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return nil
        }
        return UnsafeRawBufferPointer(start: value, count: value == nil ? 0 : size)
    }

    /// All headers as copies, in order; for dead letters and tests, not the hot path.
    public func headers() -> [(String, [UInt8])] {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
            return []
        }
        var out: [(String, [UInt8])] = []
        var idx = 0
        while true {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_all(headers, idx, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR,
                let name
            else { break }
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            out.append((String(cString: name), bytes))
            idx += 1
        }
        return out
    }
}

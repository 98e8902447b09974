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

    /// librdkafka's message (headers are read from it); nil for a message built by a test double.
    let raw: UnsafeMutablePointer<rd_kafka_message_t>?

    /// A message that did not come from librdkafka: for in-memory test doubles of the consumer. It has no
    /// headers. The buffers must stay valid for as long as the message is used (inside the poll callback).
    public init(payload: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, topicIndex: Int, partition: Int32,
                offset: Int64, timestampMs: Int64?) {
        self.raw = nil
        self.payload = payload
        self.key = key
        self.topicIndex = topicIndex
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
    }

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
        guard let raw, rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
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
        guard let raw, rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
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

import Crdkafka

/// An error from librdkafka or from this wrapper's own validation.
///
/// `code` is the raw `rd_kafka_resp_err_t` so callers can match on it without importing the C module;
/// the call site is kept because librdkafka's own reasons rarely say which of our calls failed.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int32
    public var reason: String
    public var file: String
    public var line: Int
    /// librdkafka's own log line already said this (it reports a broker failure both as a log line and to
    /// the error callback): a caller that logs every error can skip this one.
    public var alreadyLogged = false

    public init(code: Int32, reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// librdkafka's symbolic name for the code, e.g. `_QUEUE_FULL` or `UNKNOWN_MEMBER_ID`.
    public var name: String {
        String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code)))
    }

    public var description: String {
        "KafkaError(\(name) [\(code)]): \(reason) (\(file):\(line))"
    }

    // Raw codes callers commonly branch on; the values are librdkafka's ABI and never change.
    public static let invalidArgument: Int32 = RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue
    public static let queueFull: Int32 = RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue
    public static let timedOut: Int32 = RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue
    public static let messageTimedOut: Int32 = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue
    public static let state: Int32 = RD_KAFKA_RESP_ERR__STATE.rawValue
    /// A commit refused while the group rebalances (the broker takes it again once the member rejoined).
    public static let rebalanceInProgress: Int32 = RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS.rawValue
    public static let allBrokersDown: Int32 = RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue

    /// Whether the error is about the message itself and producing it again can never succeed: larger
    /// than `message.max.bytes` (checked by librdkafka before queueing, or by the broker against the
    /// topic's limit) or refused by the broker as an invalid record. Errors about the client, the broker or
    /// the topic as a whole (fatal idempotence errors, an unknown topic, authorization) are not: the same
    /// message may go through later.
    public var isMessageRejected: Bool {
        switch rd_kafka_resp_err_t(rawValue: code) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE, RD_KAFKA_RESP_ERR_INVALID_MSG,
             RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR__BAD_MSG:
            return true
        default:
            return false
        }
    }

    init(_ err: rd_kafka_resp_err_t, _ reason: String? = nil, file: String = #fileID, line: Int = #line) {
        let text = reason ?? String(cString: rd_kafka_err2str(err))
        self.init(code: err.rawValue, reason: text, file: file, line: line)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, file: String = #fileID, line: Int = #line) {
        let code = rd_kafka_error_code(error)
        let reason = String(cString: rd_kafka_error_string(error))
        rd_kafka_error_destroy(error)
        self.init(code: code.rawValue, reason: reason, file: file, line: line)
    }
}

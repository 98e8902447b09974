import Crdkafka
import Synchronization

/// An idempotent producer owned by ONE thread: `produce`, `poll` and `flush` must not race, and delivery
/// reports run inside `poll`/`flush`/`produce` (while waiting out a full queue) on that thread.
/// Not `Sendable` on purpose.
public final class KafkaProducer {
    /// Called once per message with the token given to `produce` and nil, or the delivery error.
    public var onDelivery: ((UInt64, KafkaError?) -> Void)? {
        get { context.onDelivery }
        set { context.onDelivery = newValue }
    }

    /// Called, before `onDelivery`, for each message that was not delivered, with the message as it was
    /// produced: key (nil: none), value and headers, valid only during the call. For keeping a copy of what
    /// would otherwise be lost.
    public var onUndelivered: ((UInt64, KafkaError, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, [(String, [UInt8])]) -> Void)? {
        get { context.onUndelivered }
        set { context.onUndelivered = newValue }
    }

    /// Inside `onDelivery`: the time from `produce` to the broker's acknowledgement, in microseconds; -1
    /// when unknown. librdkafka's `rd_kafka_message_latency` reads the clock when it is called, that is
    /// when the report is served on the owning thread, which a long checkpoint can delay by a second;
    /// with `timingAcknowledgements` the time is taken on librdkafka's broker thread as the
    /// acknowledgement arrives (an interceptor), so it says when the message reached the broker.
    public var deliveryLatencyMicros: Int64 { context.latencyMicros }

    /// Client-level errors (all brokers down, fatal idempotence errors).
    public var onError: ((KafkaError) -> Void)? {
        get { context.onError }
        set { context.onError = newValue }
    }

    private let handle: OpaquePointer
    private let context: ProducerContext
    // A producer writes to a handful of topics; a linear scan over names beats a dictionary of Strings.
    private var topicHandles: [(name: String, rkt: OpaquePointer)] = []

    /// `enable.idempotence=true` first, so `properties` can override it; everything in `properties`
    /// goes to librdkafka in order (e.g. `message.timeout.ms=0` to keep messages through an outage).
    /// `timingAcknowledgements`: see `deliveryLatencyMicros` (a lock and a table entry per message, on
    /// librdkafka's thread and on ours: for a producer of few messages, such as alerts).
    public init(properties: [(String, String)], timingAcknowledgements: Bool = false,
                file: String = #fileID, line: Int = #line) throws {
        let conf = try KafkaProperties.makeConf([("enable.idempotence", "true")] + properties, file: file, line: line)
        let context = ProducerContext(timingAcknowledgements: timingAcknowledgements)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        if let times = context.acknowledgements {
            // The interceptor is registered on the client as librdkafka creates it (`on_new`); both
            // callbacks get the table through their opaque pointer, which the context keeps alive.
            rd_kafka_conf_interceptor_add_on_new(conf, "tokenmeter-ack-time", { rk, _, opaque, _, _ in
                rd_kafka_interceptor_add_on_acknowledgement(rk, "tokenmeter-ack-time", { _, msg, opaque in
                    guard let msg, let opaque else { return RD_KAFKA_RESP_ERR_NO_ERROR }
                    Unmanaged<AcknowledgementTimes>.fromOpaque(opaque).takeUnretainedValue()
                        .record(UInt64(UInt(bitPattern: msg.pointee._private)), micros: rd_kafka_message_latency(msg))
                    return RD_KAFKA_RESP_ERR_NO_ERROR
                }, opaque)
            }, Unmanaged.passUnretained(times).toOpaque())
        }
        rd_kafka_conf_set_dr_msg_cb(conf) { _, msg, opaque in
            guard let msg, let opaque else { return }
            Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue().delivered(msg)
        }
        rd_kafka_conf_set_error_cb(conf) { _, err, reason, opaque in
            guard let opaque else { return }
            let ctx = Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue()
            var e = KafkaError(code: err, reason: reason.map { String(cString: $0) } ?? "")
            e.alreadyLogged = KafkaLog.loggedRecently(e.reason)
            ctx.onError?(e)
        }
        self.handle = try KafkaClientFactory.make(.producer, conf: conf, what: "producer", file: file, line: line)
        self.context = context
    }

    deinit {
        for entry in topicHandles { rd_kafka_topic_destroy(entry.rkt) }
        rd_kafka_destroy(handle)
    }

    /// Enqueues one message (payload, key and headers are copied). A full local queue is waited out by
    /// serving delivery reports, so this blocks rather than fails under backpressure.
    ///
    /// `token` comes back in `onDelivery`; `partition` nil lets the partitioner choose.
    public func produce(
        topic: String,
        key: UnsafeRawBufferPointer?,
        value: UnsafeRawBufferPointer,
        headers: [(String, [UInt8])] = [],
        partition: Int32? = nil,
        token: UInt64,
        file: String = #fileID,
        line: Int = #line
    ) throws {
        let rkt = try topicHandle(topic, file: file, line: line)
        // librdkafka owns the headers list once produceva succeeds; until then it is ours.
        var hdrs: OpaquePointer? = nil
        if !headers.isEmpty {
            hdrs = rd_kafka_headers_new(headers.count)
            for (name, bytes) in headers {
                _ = bytes.withUnsafeBytes { rd_kafka_header_add(hdrs, name, -1, $0.baseAddress, $0.count) }
            }
        }
        var vus = (rd_kafka_vu_t(), rd_kafka_vu_t(), rd_kafka_vu_t(), rd_kafka_vu_t(),
                   rd_kafka_vu_t(), rd_kafka_vu_t(), rd_kafka_vu_t())
        var count = 0
        withUnsafeMutableBytes(of: &vus) { raw in
            let v = raw.bindMemory(to: rd_kafka_vu_t.self)
            v[count].vtype = RD_KAFKA_VTYPE_RKT; v[count].u.rkt = rkt; count += 1
            v[count].vtype = RD_KAFKA_VTYPE_PARTITION; v[count].u.i32 = partition ?? RD_KAFKA_PARTITION_UA; count += 1
            v[count].vtype = RD_KAFKA_VTYPE_MSGFLAGS; v[count].u.i = RD_KAFKA_MSG_F_COPY; count += 1
            v[count].vtype = RD_KAFKA_VTYPE_VALUE
            v[count].u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
            v[count].u.mem.size = value.count; count += 1
            if let key {
                v[count].vtype = RD_KAFKA_VTYPE_KEY
                // A non-nil zero-length key is an empty key, not a null one: keep a non-nil pointer.
                v[count].u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress ?? UnsafeRawPointer(bitPattern: 1))
                v[count].u.mem.size = key.count; count += 1
            }
            v[count].vtype = RD_KAFKA_VTYPE_OPAQUE; v[count].u.ptr = UnsafeMutableRawPointer(bitPattern: UInt(token)); count += 1
            if let hdrs { v[count].vtype = RD_KAFKA_VTYPE_HEADERS; v[count].u.headers = hdrs; count += 1 }
        }
        while true {
            let error = withUnsafeBytes(of: &vus) { raw in
                rd_kafka_produceva(handle, raw.bindMemory(to: rd_kafka_vu_t.self).baseAddress, count)
            }
            guard let error else { return }
            let code = rd_kafka_error_code(error)
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_error_destroy(error)
                rd_kafka_poll(handle, 10)
                continue
            }
            if let hdrs { rd_kafka_headers_destroy(hdrs) }
            // A message refused here has no report; the interceptor may have timed its failure.
            context.acknowledgements?.take(token)
            throw KafkaError(consuming: error, file: file, line: line)
        }
    }

    /// Serves delivery reports and errors; returns the number of events served.
    @discardableResult
    public func poll(timeoutMs: Int32 = 0) -> Int {
        Int(rd_kafka_poll(handle, timeoutMs))
    }

    /// Waits until every queued message has a delivery report (served here); false on timeout.
    public func flush(timeoutMs: Int32) -> Bool {
        rd_kafka_flush(handle, timeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// Acknowledgements timed on librdkafka's thread whose report is not yet served (tests).
    var acknowledgementsTimed: Int { context.acknowledgements?.count ?? 0 }

    /// Messages (and requests) not yet acknowledged: queued, in flight, or awaiting their report.
    public var outstanding: Int { Int(rd_kafka_outq_len(handle)) }

    private func topicHandle(_ name: String, file: String, line: Int) throws -> OpaquePointer {
        for entry in topicHandles where entry.name == name { return entry.rkt }
        guard let rkt = rd_kafka_topic_new(handle, name, nil) else {
            let err = rd_kafka_last_error()
            throw KafkaError(err, "topic '\(name)': \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
        topicHandles.append((name, rkt))
        return rkt
    }
}

/// What the C callbacks reach through librdkafka's opaque pointer; owned by the producer, which outlives rk.
final class ProducerContext {
    var onDelivery: ((UInt64, KafkaError?) -> Void)?
    var onUndelivered: ((UInt64, KafkaError, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, [(String, [UInt8])]) -> Void)?
    var onError: ((KafkaError) -> Void)?
    var latencyMicros: Int64 = -1
    let acknowledgements: AcknowledgementTimes?

    init(timingAcknowledgements: Bool) {
        acknowledgements = timingAcknowledgements ? AcknowledgementTimes() : nil
    }

    func delivered(_ msg: UnsafePointer<rd_kafka_message_t>) {
        let token = UInt64(UInt(bitPattern: msg.pointee._private))
        latencyMicros = acknowledgements?.take(token) ?? rd_kafka_message_latency(msg)
        let err = msg.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            onDelivery?(token, nil)
            return
        }
        // POSSIBLY_PERSISTED means a retry could duplicate: the caller must know it is not a clean failure.
        let status: String
        switch rd_kafka_message_status(msg) {
        case RD_KAFKA_MSG_STATUS_PERSISTED: status = "persisted"
        case RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED: status = "possibly persisted"
        default: status = "not persisted"
        }
        let reason = String(cString: rd_kafka_err2str(err))
        let error = KafkaError(err, "delivery failed (\(status)): \(reason)")
        if let onUndelivered {
            let m = msg.pointee
            let key = m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) }
            let value = UnsafeRawBufferPointer(start: m.payload, count: m.payload == nil ? 0 : m.len)
            onUndelivered(token, error, key, value, Self.headers(msg))
        }
        onDelivery?(token, error)
    }

    private static func headers(_ msg: UnsafePointer<rd_kafka_message_t>) -> [(String, [UInt8])] {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var out: [(String, [UInt8])] = []
        var i = 0
        while true {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR, let name else { break }
            out.append((String(cString: name), value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []))
            i += 1
        }
        return out
    }
}

/// Latencies taken on librdkafka's broker thread as acknowledgements arrive, by message token, until the
/// report of the message is served on the owning thread. Holds at most the messages in flight.
final class AcknowledgementTimes: Sendable {
    private let times = Mutex<[UInt64: Int64]>([:])

    func record(_ token: UInt64, micros: Int64) {
        times.withLock { $0[token] = micros }
    }

    @discardableResult
    func take(_ token: UInt64) -> Int64? {
        times.withLock { $0.removeValue(forKey: token) }
    }

    var count: Int { times.withLock { $0.count } }
}

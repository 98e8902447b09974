import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka

/// Where what notify gives up goes: alerts a sink refused or never accepted, alerts that found a sink's
/// queue full, and messages that are not alerts.
///
/// Without `delivery.dead_letter_topic`: the dead-letter file, durable (fdatasync'ed) when `write` returns.
/// With it: the topic, the value unchanged (the alert as published, so any consumer, or `tokenmeter
/// produce`, can take it up again) and the reason in headers. A dead letter on the topic counts as written
/// only once the broker acknowledges it: until then the message's offset waits, as it waits for a
/// delivery. One the topic refuses (too large) or never acknowledges (`message.timeout.ms`) goes to the
/// file instead, so nothing given up is lost and nothing waits forever.
///
/// Owned by the loop's thread: the producer's delivery reports are served in `poll`, on that thread.
public final class DeadLetters {
    public struct Record: Sendable {
        public var sink: String
        public var alertID: String?
        public var reason: String
        public var attempts: Int
        public var at: EpochMillis
        /// The alert as published, or the message's value when it is not an alert.
        public var value: [UInt8]
        public var isAlert: Bool
        /// Where the message was consumed (partition, offset).
        public var source: OffsetTracker.Token

        public init(sink: String, alertID: String?, reason: String, attempts: Int, at: EpochMillis, value: [UInt8],
                    isAlert: Bool, source: OffsetTracker.Token) {
            self.sink = sink; self.alertID = alertID; self.reason = reason; self.attempts = attempts; self.at = at
            self.value = value; self.isAlert = isAlert; self.source = source
        }
    }

    public let file: DeadLetterFile
    public let topic: String?
    /// The alerts topic, named in each dead letter's `tokenmeter-topic` header.
    let sourceTopic: String
    let producer: (any MessageProducer)?
    let metrics: NotifyMetrics
    let log: NotifyLog
    private var nextToken: UInt64 = 0
    /// Produced, not yet acknowledged: the record (for the file, should the topic fail) and the messages
    /// whose routes finish with it.
    private var inFlight: [UInt64: (record: Record, waiting: [OffsetTracker.Token])] = [:]
    /// Acknowledged (or written to the file after the topic failed) since the last `poll`.
    private var finished: [OffsetTracker.Token] = []
    /// A file write that failed inside a delivery report, thrown by the next `poll`.
    private var failure: DeliveredLog.Failure?

    public init(file: DeadLetterFile, topic: String? = nil, sourceTopic: String, producer: (any MessageProducer)? = nil,
                metrics: NotifyMetrics, log: NotifyLog) {
        self.file = file; self.topic = topic; self.sourceTopic = sourceTopic; self.producer = topic == nil ? nil : producer
        self.metrics = metrics; self.log = log
        self.producer?.onDelivery = { [weak self] token, error in self?.acknowledged(token, error) }
    }

    /// Messages waiting for the topic's acknowledgement.
    public var outstanding: Int { inFlight.count }

    /// Writes one dead letter. True: durable now (the file). False: on its way to the topic; its
    /// `waiting` messages come back from a later `poll` once it is acknowledged (or kept in the file).
    public func write(_ r: Record, waiting: [OffsetTracker.Token]) throws(DeliveredLog.Failure) -> Bool {
        guard let producer, let topic else {
            try toFile(r)
            return true
        }
        nextToken &+= 1
        let headers: [(String, [UInt8])] = [
            ("tokenmeter-error", Array(Alert.bounded(r.reason, 1024).utf8)),
            ("tokenmeter-sink", Array(r.sink.utf8)),
            ("tokenmeter-attempts", Array(String(r.attempts).utf8)),
            ("tokenmeter-given-up-at", Array(RFC3339.format(r.at, fraction: true).utf8)),
            ("tokenmeter-topic", Array(sourceTopic.utf8)),
            ("tokenmeter-partition", Array(String(r.source.partition).utf8)),
            ("tokenmeter-offset", Array(String(r.source.offset).utf8)),
        ]
        // Keyed by alert_id, so that a consumer of the topic de-duplicates as it does on the alerts topic.
        let key = r.alertID.map { Array($0.utf8) }
        do {
            try r.value.withUnsafeBytes { value in
                if let key {
                    try key.withUnsafeBytes { k in
                        try producer.produce(topic: topic, key: k, value: value, headers: headers, partition: nil, token: nextToken)
                    }
                } else {
                    try producer.produce(topic: topic, key: nil, value: value, headers: headers, partition: nil, token: nextToken)
                }
            }
        } catch {
            log.log("dead-letter topic \(topic) refused \(r.alertID.map { "alert \($0)" } ?? "a message"): \(error); written to \(file.path)",
                    now: r.at)
            try toFile(r)
            return true
        }
        inFlight[nextToken] = (r, waiting)
        return false
    }

    /// Serves the producer's delivery reports; returns the messages whose dead letters are now durable.
    public func poll(timeoutMs: Int32 = 0) throws(DeliveredLog.Failure) -> [OffsetTracker.Token] {
        if let producer, !inFlight.isEmpty { producer.poll(timeoutMs: timeoutMs) }
        if let f = failure { failure = nil; throw f }
        defer { finished.removeAll(keepingCapacity: true) }
        return finished
    }

    /// Forgets the waiting messages of partitions taken away (their dead letters still go to the topic).
    public func drop(_ partitions: [Int32]) {
        for key in Array(inFlight.keys) { inFlight[key]!.waiting.removeAll { partitions.contains($0.partition) } }
        finished.removeAll { partitions.contains($0.partition) }
    }

    private func acknowledged(_ token: UInt64, _ error: KafkaError?) {
        guard let entry = inFlight.removeValue(forKey: token) else { return }
        if let error {
            log.log("dead-letter topic \(topic ?? ""): \(entry.record.alertID.map { "alert \($0)" } ?? "a message") not delivered "
                    + "(\(error.reason)); written to \(file.path)", now: entry.record.at)
            do { try toFile(entry.record) } catch {
                // Not finished: the message stays uncommitted, and the loop stops on this failure.
                failure = error
                return
            }
        } else {
            metrics.deadLettersOnTopic.add(1, ordering: .relaxed)
        }
        finished.append(contentsOf: entry.waiting)
    }

    private func toFile(_ r: Record) throws(DeliveredLog.Failure) {
        try file.write(sink: r.sink, alertID: r.alertID, reason: r.reason, attempts: r.attempts, at: r.at, value: r.value,
                       valueIsJSON: r.isAlert)
        metrics.deadLettersInFile.add(1, ordering: .relaxed)
    }
}

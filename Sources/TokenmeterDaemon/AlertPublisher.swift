import Logging
import TokenmeterCore
import TokenmeterKafka

/// Publishes alerts to the alerts topic without ever losing one.
///
/// Each alert is written to the durable outbox (`<state.dir>/outbox/<alert_id>.alert`) before it is handed
/// to the producer. On a successful delivery report it becomes a `.sent` marker, kept until the next
/// checkpoint records its crossing as published: a replay after a crash raises the same crossing again,
/// and the marker keeps it from being published twice. The producer is idempotent and never gives up
/// (`message.timeout.ms=0`), so a broker outage only delays alerts; a restart resends whatever is still
/// pending. The one duplicate left is an alert delivered whose report was lost in a crash: its `alert_id`
/// is the same, so consumers drop it.
///
/// No alert may stop the daemon. Alerts are fitted before they enter the outbox (every name and the message
/// bounded, see `Alert.fittedForPublishing`), so their size stays far below the producer's limit; one that
/// the producer or the broker still refuses for good (its size against a lowered `message.max.bytes`, an
/// invalid record) is moved aside to `outbox/rejected/`, counted (`tokenmeter_alerts_rejected_total`) and
/// logged, at start as at any later send. Any other failure keeps the alert in the outbox and retries it.
final class AlertPublisher {
    let topic: String
    let producer: any MessageProducer
    let outbox: AlertOutbox
    let log: Logger
    let clock: any DaemonClock
    private var inFlight: [UInt64: (id: String, sentNanos: Int64, consumedNanos: Int64?)] = [:]
    /// Seconds from consuming the message that raised an alert to the broker's acknowledgement of it.
    private(set) var latency = Histogram(bounds: Histogram.alertLatencyBounds)
    /// The same latencies, the most recent `latencySampleLimit`, for medians (the bench).
    private(set) var latencySamples: [Double] = []
    static let latencySampleLimit = 100_000
    private var nextToken: UInt64 = 0
    private(set) var published: Int64 = 0
    private(set) var failed: Int64 = 0
    /// Alerts moved aside because they can never be produced.
    private(set) var rejected: Int64 = 0
    private(set) var lastAlert: String?
    /// Alerts whose delivery failed (a fatal producer error, a refused produce): sent again after a pause.
    private var retry = RetryQueue()

    init(topic: String, properties: [(String, String)], stateDir: String, clients: any KafkaClients,
         log: Logger, clock: any DaemonClock) throws {
        self.topic = topic
        self.log = log
        self.clock = clock
        self.outbox = try AlertOutbox(dir: stateDir + "/outbox")
        self.producer = try clients.producer(properties: properties + [
            ("enable.idempotence", "true"), ("message.timeout.ms", "0"), ("linger.ms", "5"),
        ], timingAcknowledgements: true)
        producer.onDelivery = { [unowned self] token, error in self.delivered(token: token, error: error) }
    }

    /// Alerts in the outbox, kept as a count (listing the folder per batch would cost a syscall storm).
    private(set) var outboxDepth = 0

    /// Sends what a previous run left in the outbox (before anything new). Throws only when the outbox
    /// folder cannot be read: an alert that cannot be sent never keeps the daemon from starting.
    func resendOutbox() throws {
        let left = try outbox.pending()
        if !left.isEmpty { log.notice("resending alerts left in the outbox", metadata: ["count": "\(left.count)"]) }
        outboxDepth = left.count
        for e in left { send(e.id, key: e.key, value: e.value) }
    }

    /// Makes new alerts durable, then hands them to the producer. `consumedNanos`: when the message that
    /// raised them was consumed (monotonic), for the latency metric; nil when unknown.
    func publish(_ alerts: [Alert], consumedNanos: Int64? = nil) throws {
        guard !alerts.isEmpty else { return }
        let fresh = try outbox.add(alerts.map { $0.fittedForPublishing() })
        outboxDepth += fresh.count
        for a in fresh {
            send(a.id, key: a.kafkaKey, value: a.jsonBytes, consumedNanos: consumedNanos)
            lastAlert = "\(a.kind) \(a.rule) \(a.kafkaKey)"
        }
    }

    /// Hands one alert to the producer; a refusal is handled here (moved aside or retried), never thrown.
    private func send(_ id: String, key: String, value: [UInt8], consumedNanos: Int64? = nil) {
        nextToken &+= 1
        let token = nextToken
        inFlight[token] = (id, clock.monotonicNanos(), consumedNanos)
        var k = Array(key.utf8)
        do {
            try k.withUnsafeMutableBytes { kb in
                try value.withUnsafeBytes { vb in
                    try producer.produce(topic: topic, key: UnsafeRawBufferPointer(kb), value: vb, token: token)
                }
            }
        } catch {
            inFlight[token] = nil
            let e = error as? KafkaError ?? KafkaError(code: KafkaError.invalidArgument, reason: "\(error)")
            failed += 1
            if e.isMessageRejected {
                setAside(id, bytes: value.count + k.count, error: e)
            } else {
                log.error("alert not queued; kept in the outbox and retried", metadata: ["alert_id": "\(id)", "error": "\(e)"])
                retry.add((id, key, value), now: clock.monotonicMillis())
            }
        }
    }

    /// An alert the producer or the broker refuses for good leaves the outbox for `rejected/`: resending
    /// it at every start would be refused every time.
    private func setAside(_ id: String, bytes: Int, error: KafkaError) {
        rejected += 1
        outboxDepth = max(0, outboxDepth - 1)
        do {
            let kept = try outbox.reject(id)
            log.error("alert can never be published; moved out of the outbox", metadata: [
                "alert_id": "\(id)", "bytes": "\(bytes)", "error": "\(error)",
                "moved_to": "\(kept ? outbox.rejectedDir : "nowhere: deleted, \(outbox.rejectedDir) is full")"])
        } catch {
            log.error("alert can never be published, and cannot be moved out of the outbox (it is retried at the next start)",
                      metadata: ["alert_id": "\(id)", "error": "\(error)"])
        }
    }

    private func delivered(token: UInt64, error: KafkaError?) {
        guard let sent = inFlight.removeValue(forKey: token) else { return }
        let id = sent.id
        if let error {
            failed += 1
            guard let entry = try? outbox.pending().first(where: { $0.id == id }) else { return }
            if error.isMessageRejected {
                setAside(id, bytes: entry.value.count + entry.key.utf8.count, error: error)
                return
            }
            log.error("alert not delivered; kept in the outbox and retried", metadata: ["alert_id": "\(id)", "error": "\(error)"])
            retry.add((entry.id, entry.key, entry.value), now: clock.monotonicMillis())
            return
        }
        published += 1
        let acked = producer.deliveryLatencyMicros
        if let consumed = sent.consumedNanos, acked >= 0 {
            // The acknowledgement time as librdkafka's broker thread saw it, not when this report is
            // served (a checkpoint can hold the report back; the alert was on the topic already).
            let seconds = Double(sent.sentNanos - consumed) / 1e9 + Double(acked) / 1e6
            latency.observe(seconds)
            if latencySamples.count >= AlertPublisher.latencySampleLimit { latencySamples.removeFirst(latencySamples.count / 2) }
            latencySamples.append(seconds)
        }
        do {
            try outbox.markSent(id)
            outboxDepth = max(0, outboxDepth - 1)
        } catch {
            log.warning("cannot remove a delivered alert from the outbox (it will be sent again at start)",
                        metadata: ["alert_id": "\(id)", "error": "\(error)"])
        }
    }

    /// The checkpoint now records every crossing delivered so far: their markers are no longer needed.
    func checkpointed() {
        do { try outbox.forgetSent() } catch {
            log.warning("cannot clear delivered-alert markers", metadata: ["error": "\(error)"])
        }
    }

    /// Serves delivery reports; re-sends failed alerts after a pause.
    func poll() {
        producer.poll(timeoutMs: 0)
        if !retry.entries.isEmpty && clock.monotonicMillis() >= retry.at {
            let again = retry.entries
            retry.entries.removeAll()
            for e in again { send(e.id, key: e.key, value: e.value) }
        }
    }

    /// True once every alert handed to `publish` is acknowledged by the broker (waiting up to `timeoutMs`).
    func delivered(timeoutMs: Int32) -> Bool {
        retry.entries.isEmpty && (producer.outstanding == 0 || producer.flush(timeoutMs: timeoutMs)) && retry.entries.isEmpty
    }

    /// Waits up to `timeoutMs` for outstanding alerts; what is left stays in the outbox for the next start.
    func flush(timeoutMs: Int32) {
        if !producer.flush(timeoutMs: timeoutMs) {
            log.warning("alerts not yet delivered at shutdown stay in the outbox", metadata: ["count": "\(producer.outstanding)"])
        }
    }
}

/// Alerts whose delivery failed (a fatal producer error, a refused produce), sent again after a pause.
private struct RetryQueue {
    var entries: [(id: String, key: String, value: [UInt8])] = []
    /// Monotonic ms of the next attempt.
    var at: Int64 = 0
    static let pauseMs: Int64 = 5_000

    mutating func add(_ e: (id: String, key: String, value: [UInt8]), now: Int64) {
        entries.append(e)
        at = now + Self.pauseMs
    }
}

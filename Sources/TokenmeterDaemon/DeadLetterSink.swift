import Logging
import TokenmeterCore
import TokenmeterKafka

/// Where rejected messages go, unchanged with the reason in headers: the dead-letter topic, or, when the
/// topic cannot take one (too large for it, refused, undelivered for good), the spill file
/// `<state.dir>/dead-letters/spill`, fsynced before the checkpoint that passes the message's offset.
///
/// Both are steps of the checkpoint: dead letters still only in the producer's memory are waited for
/// (`delivered`), and those waiting for the spill file are written (`writeSpill`), before the offsets that
/// passed their messages may be checkpointed.
final class DeadLetterSink {
    /// nil without `kafka.dead_letter_topic`: rejected messages are then only counted and logged.
    let producer: (any MessageProducer)?
    let topic: String?
    let spill: DeadLetterSpill
    private let log: Logger
    private let clock: any DaemonClock
    private var token: UInt64 = 0
    private(set) var deliveryFailures = 0
    /// Dead letters for the spill file whose write failed: retried before the next checkpoint (which waits
    /// for them, as it waits for undelivered dead letters).
    private var pendingSpill: [(topic: String, partition: Int32, offset: Int64, reason: String, key: [UInt8]?, value: [UInt8])] = []
    private let spillLog = RateLimitedLog(perMinute: 20, what: "dead letters kept in the spill file")
    private let rejectLog = RateLimitedLog(perMinute: 20, what: "rejected messages")
    /// Called when the spill file cannot be written (the state folder's trouble: consuming pauses).
    var onSpillFailure: ((Error) -> Void)?

    init(topic: String?, stateDir: String, producer: (any MessageProducer)?, log: Logger, clock: any DaemonClock) {
        self.topic = topic
        self.producer = producer
        self.spill = DeadLetterSpill(stateDir: stateDir)
        self.log = log
        self.clock = clock
        producer?.onDelivery = { [weak self] _, error in
            if let error, let self {
                self.deliveryFailures += 1
                self.log.error("dead letter not delivered", metadata: ["error": "\(error)"])
            }
        }
        producer?.onUndelivered = { [weak self] _, error, key, value, headers in
            guard let self else { return }
            func header(_ name: String) -> String { headers.first { $0.0 == name }.map { String(decoding: $0.1, as: UTF8.self) } ?? "" }
            self.keep(topic: header("tokenmeter-topic"), partition: Int32(header("tokenmeter-partition")) ?? -1,
                      offset: Int64(header("tokenmeter-offset")) ?? -1, reason: header("tokenmeter-error"),
                      key: key.map { Array($0) }, value: Array(value), error: error)
        }
    }

    /// How many rejected-message and spill lines the rate limits held back, once their minute is over (the
    /// consume loop's once-a-second tick).
    func reportSuppressed(now: Int64) {
        rejectLog.reportSuppressed(now: now, log: log)
        spillLog.reportSuppressed(now: now, log: log)
    }

    /// A message the pipeline rejected, from `sourceTopic`: logged (rate-limited) and sent on.
    func reject(_ m: KafkaMessage, sourceTopic: String, reason: RejectReason) {
        if rejectLog.allow(now: clock.monotonicMillis(), log: log) {
            log.warning("rejected message", metadata: ["reason": "\(reason)", "topic": "\(sourceTopic)",
                                                       "partition": "\(m.partition)", "offset": "\(m.offset)"])
        }
        guard let producer, let topic else { return }
        token &+= 1
        let headers: [(String, [UInt8])] = [
            ("tokenmeter-error", Array(reason.description.utf8)),
            ("tokenmeter-topic", Array(sourceTopic.utf8)),
            ("tokenmeter-partition", Array(String(m.partition).utf8)),
            ("tokenmeter-offset", Array(String(m.offset).utf8)),
        ]
        do {
            try producer.produce(topic: topic, key: m.key, value: m.payload, headers: headers, token: token)
        } catch {
            // Too large for the topic (message.max.bytes), or refused otherwise: the offset will be committed,
            // so the message is kept in the spill file instead.
            keep(topic: sourceTopic, partition: m.partition, offset: m.offset, reason: reason.description,
                 key: m.key.map { Array($0) }, value: Array(m.payload), error: error)
        }
    }

    /// Keeps a dead letter the topic cannot take in the spill file (see `DeadLetterSpill`); when the file
    /// cannot be written, in memory until it can.
    private func keep(topic: String, partition: Int32, offset: Int64, reason: String, key: [UInt8]?, value: [UInt8], error: Error) {
        if spillLog.allow(now: clock.monotonicMillis(), log: log) {
            log.error("dead letter cannot go to the dead-letter topic; kept in the spill file", metadata: [
                "error": "\(error)", "bytes": "\(value.count)", "topic": "\(topic)", "partition": "\(partition)",
                "offset": "\(offset)", "spill": "\(spill.path)", "spilled_before": "\(spill.spilled)"])
        }
        pendingSpill.append((topic, partition, offset, reason, key, value))
        _ = writeSpill()
    }

    /// Serves delivery reports (refused dead letters move to the spill file inside).
    func poll() { producer?.poll(timeoutMs: 0) }

    /// Checkpoint step: every dead letter handed to the producer is acknowledged (or reported refused),
    /// waiting up to `timeoutMs`. The loop must keep polling through a broker outage, so a short wait,
    /// then the checkpoint is postponed.
    func delivered(timeoutMs: Int32) -> Bool {
        guard let producer, producer.outstanding > 0 else { return true }
        return producer.flush(timeoutMs: timeoutMs)
    }

    var outstanding: Int { producer?.outstanding ?? 0 }

    /// Checkpoint step: appends the dead letters waiting for the spill file; false while it cannot be
    /// written (`onSpillFailure` is told).
    func writeSpill() -> Bool {
        while let d = pendingSpill.first {
            do {
                if try !spill.append(topic: d.topic, partition: d.partition, offset: d.offset, reason: d.reason, key: d.key, value: d.value) {
                    log.error("dead letter larger than the spill file may grow; dropped, only counted", metadata: [
                        "bytes": "\(d.value.count)", "topic": "\(d.topic)", "partition": "\(d.partition)", "offset": "\(d.offset)",
                        "max_bytes": "\(spill.maxFileBytes)"])
                }
            } catch {
                onSpillFailure?(error)
                return false
            }
            pendingSpill.removeFirst()
        }
        return true
    }

    /// At shutdown: the last dead letters, waited for up to `timeoutMs`.
    func finish(timeoutMs: Int32) {
        if let producer, !producer.flush(timeoutMs: timeoutMs) {
            log.warning("some dead letters were not delivered before the deadline", metadata: ["outstanding": "\(producer.outstanding)"])
        }
    }
}

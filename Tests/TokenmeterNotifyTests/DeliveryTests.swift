import Foundation
import Synchronization
import Testing
import TokenmeterCore
import TokenmeterKafka
@testable import TokenmeterNotify

@Suite struct RetryTests {
    @Test func answersAreJudged() {
        #expect(RetryPolicy.judge(.success(HTTPResponse(status: 204)), now: 0) == .delivered)
        #expect(RetryPolicy.judge(.success(HTTPResponse(status: 503)), now: 0) == .retry(reason: "HTTP 503", retryAfterMillis: nil))
        #expect(RetryPolicy.judge(.success(HTTPResponse(status: 429, retryAfter: "3")), now: 0) == .retry(reason: "HTTP 429", retryAfterMillis: 3000))
        #expect(RetryPolicy.judge(.failure(TransportError("refused")), now: 0) == .retry(reason: "refused", retryAfterMillis: nil))
        guard case .reject = RetryPolicy.judge(.success(HTTPResponse(status: 404, bodyPrefix: "no such hook")), now: 0) else {
            Issue.record("a 404 is not retried"); return
        }
    }

    @Test func retryAfterTakesSecondsOrAnHTTPDate() {
        let now = RFC3339.parse("2026-10-21T07:27:00Z")!
        #expect(RetryPolicy.parseRetryAfter("120", now: now) == 120_000)
        #expect(RetryPolicy.parseRetryAfter(" 2\r\n", now: now) == 2_000)   // as the header line arrives
        #expect(RetryPolicy.parseRetryAfter("Wed, 21 Oct 2026 07:28:00 GMT", now: now) == 60_000)
        #expect(RetryPolicy.parseRetryAfter("soon", now: now) == nil)
    }

    @Test func backoffDoublesWithJitterUpToTheCap() {
        var p = RetryPolicy()
        p.initialBackoffMillis = 1000
        p.maxBackoffMillis = 8000
        #expect(p.backoff(afterAttempt: 1, random: 0) == 500)
        #expect(p.backoff(afterAttempt: 1, random: 1) == 1000)
        #expect(p.backoff(afterAttempt: 3, random: 0) == 2000)
        #expect(p.backoff(afterAttempt: 3, random: 1) == 4000)
        #expect(p.backoff(afterAttempt: 10, random: 1) == 8000)
        #expect(p.backoff(afterAttempt: 64, random: 0.5) == 6000)
    }

    /// 500, then 429 with Retry-After, then a timeout, then 200: delivered once, on the 4th attempt, and
    /// each wait is the one the policy asks for (the Retry-After replacing the shorter backoff).
    @Test func workerRetriesUntilDelivered() throws {
        let clock = ManualClock()
        let transport = ScriptedTransport([.success(HTTPResponse(status: 500)),
                                           .success(HTTPResponse(status: 429, retryAfter: "7")),
                                           .failure(TransportError("timed out", timedOut: true))])
        let waits = Mutex<[Int64]>([])
        var policy = RetryPolicy()
        policy.initialBackoffMillis = 1000
        let w = SinkWorker(sink: Sink(name: "hook", kind: .webhook, url: "http://x"), capacity: 4, transport: transport,
                           policy: policy, clock: clock, random: { 1.0 },
                           onRetry: { _, _, _, _, wait in waits.withLock { $0.append(wait) } }, completion: { _, _, _ in })
        let start = clock.nowMillis()
        #expect(w.deliver(try Sample.notifyAlert()) == .delivered(attempts: 4))
        #expect(transport.count == 4)
        #expect(waits.withLock { $0 } == [1000, 7000, 4000])
        #expect(clock.nowMillis() - start == 12_000)
    }

    @Test func workerGivesUpOnARefusalAndWhenAttemptsRunOut() throws {
        let refused = ScriptedTransport([.success(HTTPResponse(status: 400, bodyPrefix: "bad payload"))])
        let w1 = SinkWorker(sink: Sink(name: "a", kind: .webhook, url: "http://x"), capacity: 1, transport: refused,
                            policy: RetryPolicy(), clock: ManualClock(), completion: { _, _, _ in })
        #expect(w1.deliver(try Sample.notifyAlert()) == .gaveUp(reason: "HTTP 400: bad payload", attempts: 1))

        var p = RetryPolicy()
        p.maxAttempts = 3
        let down = ScriptedTransport(Array(repeating: .failure(TransportError("connection refused")), count: 10))
        let w2 = SinkWorker(sink: Sink(name: "b", kind: .webhook, url: "http://x"), capacity: 1, transport: down,
                            policy: p, clock: ManualClock(), completion: { _, _, _ in })
        guard case .gaveUp(_, let attempts) = w2.deliver(try Sample.notifyAlert()) else { Issue.record("not given up"); return }
        #expect(attempts == 3)
        #expect(down.count == 3)
    }
}

@Suite struct RoutingTests {
    @Test func routesMatchByGlobsAndStopWhenAsked() throws {
        var critical = Route(sinks: ["pager"])
        critical.severities = [Glob("critical")]
        critical.continueMatching = false
        var finance = Route(sinks: ["slack", "pager"])
        finance.owners = [Glob("finance-*")]
        finance.types = [Glob("budget_*")]
        var wf = Route(sinks: ["hook"])
        wf.workflows = [Glob("invoice-*")]
        let routes = [critical, finance, wf]
        let warning = try Sample.notifyAlert()
        #expect(Router.sinks(for: warning, routes: routes) == ["slack", "pager"])
        let crit = try Sample.notifyAlert(Sample.alert(severity: .critical))
        #expect(Router.sinks(for: crit, routes: routes) == ["pager"])
        let scoped = try Sample.notifyAlert(Sample.alert(scope: [KeyValue("owner", "support"), KeyValue("workflow", "invoice-x")]))
        #expect(Router.sinks(for: scoped, routes: routes) == ["hook"])
    }

    @Test func offsetsAreCommittableOnlyUpToTheFirstUnfinishedMessage() {
        var t = OffsetTracker()
        let a = OffsetTracker.Token(partition: 0, offset: 10), b = OffsetTracker.Token(partition: 0, offset: 11)
        t.begin(a, routes: 2)
        t.begin(b, routes: 1)
        t.begin(OffsetTracker.Token(partition: 1, offset: 5), routes: 0)
        #expect(t.committable().map { "\($0.0):\($0.1)" } == ["0:10", "1:6"])
        t.markCommitted(t.committable())
        t.finish(b)
        t.finish(a)
        #expect(t.committable().isEmpty)      // a still has a route open
        t.finish(a)
        #expect(t.committable().map { "\($0.0):\($0.1)" } == ["0:12"])
        #expect(t.pending == 0)
    }
}

@Suite struct DeliveredLogTests {
    @Test func deliveriesSurviveARestartAndExpire() throws {
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now: Int64 = 1_000_000
        do {
            let log = try DeliveredLog(dir: dir, retentionMillis: 1000, maxPerSink: 10, now: now)
            try log.record(sink: "pager", id: "aaaa", periodEnd: now + 5000, now: now)
            try log.record(sink: "pager", id: "bbbb", periodEnd: now - 5000, now: now)
            try log.record(sink: "hook", id: "aaaa", periodEnd: now, now: now)
        }
        // A crash mid-append leaves a torn line: it is ignored.
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/delivered.log"))
        fh.seekToEndOfFile(); fh.write(Data("99999999 pager cccc".utf8)); fh.closeFile()
        let again = try DeliveredLog(dir: dir, retentionMillis: 1000, maxPerSink: 10, now: now + 10)
        #expect(again.contains(sink: "pager", id: "aaaa", now: now + 10))
        #expect(again.contains(sink: "pager", id: "bbbb", now: now + 10))   // period over, kept for the retention
        #expect(!again.contains(sink: "pager", id: "cccc", now: now + 10))
        #expect(again.contains(sink: "hook", id: "aaaa", now: now + 10))
        #expect(!again.contains(sink: "hook", id: "bbbb", now: now + 10))
        // Past the period end plus retention, an id is forgotten, and the rewrite at start drops it.
        let later = try DeliveredLog(dir: dir, retentionMillis: 1000, maxPerSink: 10, now: now + 2000)
        #expect(!later.contains(sink: "pager", id: "bbbb", now: now + 2000))
        #expect(later.contains(sink: "pager", id: "aaaa", now: now + 2000))
        #expect(later.count == 1)
    }

    @Test func rememberedIdsAreBoundedPerSink() throws {
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try DeliveredLog(dir: dir, retentionMillis: 0, maxPerSink: 3, now: 0)
        for i in 0..<10 { try log.record(sink: "s", id: "id\(i)", periodEnd: Int64(100 + i), now: 0) }
        #expect(log.count(sink: "s") == 3)
        #expect(log.contains(sink: "s", id: "id9", now: 0))
        #expect(!log.contains(sink: "s", id: "id0", now: 0))
    }
}

@Suite struct DispatcherTests {
    func make(dir: String, transports: [String: ScriptedTransport], queue: Int = 10, clock: ManualClock = ManualClock()) throws -> Dispatcher {
        let sinks = transports.keys.sorted().map { Sink(name: $0, kind: .webhook, url: "http://127.0.0.1/\($0)") }
        return Dispatcher(sinks: sinks, routes: [Route(sinks: sinks.map(\.name))], queueSize: queue, policy: RetryPolicy(),
                          delivered: try DeliveredLog(dir: dir, retentionMillis: 86_400_000, maxPerSink: 100, now: clock.nowMillis()),
                          deadLetters: try DeadLetterFile(path: dir + "/dead.jsonl", maxBytes: 1 << 20),
                          clock: clock, log: NotifyLog { _ in }, transport: { transports[$0.name]! })
    }

    /// Drains outcomes until `condition` holds (the workers are real threads), at most 5 s.
    func await(_ d: Dispatcher, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(5)
        while !condition() && Date() < deadline { try d.drainOutcomes(waitMillis: 20) }
        #expect(condition())
    }

    /// A sink that hangs does not hold up another sink; the commit waits for the slow one; once it answers,
    /// the offset moves; a restart with the same state sends nothing again; a duplicate message is not sent.
    @Test func aHangingSinkDelaysOnlyItselfAndDeliveriesAreRememberedAcrossRestarts() throws {
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gate = DispatchSemaphore(value: 0)
        let slow = ScriptedTransport(gate: gate), fast = ScriptedTransport()
        let d = try make(dir: dir, transports: ["fast": fast, "slow": slow])
        d.start()
        let a1 = Sample.alert(id: "0000000000000001").jsonBytes, a2 = Sample.alert(id: "0000000000000002").jsonBytes
        try d.handle(partition: 0, offset: 0, value: a1)
        try d.handle(partition: 0, offset: 1, value: a2)
        try d.handle(partition: 0, offset: 2, value: a1)   // the daemon's rare duplicate
        try self.await(d) { d.metrics.delivered("fast") == 2 }
        #expect(fast.ids == ["0000000000000001", "0000000000000002"])
        #expect(d.metrics.delivered("fast") == 2)
        #expect(d.committable().map(\.1) == [0])            // nothing finished for "slow" yet
        gate.signal(); gate.signal()
        try self.await(d) { d.committable().map(\.1) == [3] }
        #expect(slow.ids == ["0000000000000001", "0000000000000002"])
        d.stop(timeoutMillis: 1000)

        let fast2 = ScriptedTransport(), slow2 = ScriptedTransport()
        let restarted = try make(dir: dir, transports: ["fast": fast2, "slow": slow2])
        restarted.start()
        for (i, v) in [a1, a2].enumerated() { try restarted.handle(partition: 0, offset: Int64(i), value: v) }
        #expect(restarted.committable().map(\.1) == [2])
        #expect(restarted.metrics.duplicates("fast") == 2)
        restarted.stop(timeoutMillis: 1000)
        #expect(fast2.count == 0 && slow2.count == 0)
    }

    /// A partition taken away and given back while its message is still in delivery: the message consumed
    /// again waits for the deliveries in flight, and one sink's answer does not count for the other.
    @Test func aPartitionGivenBackMidDeliveryIsTrackedAfresh() throws {
        let gateA = DispatchSemaphore(value: 0), gateC = DispatchSemaphore(value: 0)
        let a = ScriptedTransport(gate: gateA), c = ScriptedTransport(gate: gateC)
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try make(dir: dir, transports: ["a": a, "c": c])
        d.start()
        let x = Sample.alert(id: "77").jsonBytes
        try d.handle(partition: 0, offset: 0, value: x)
        d.dropPartitions([0])
        try d.handle(partition: 0, offset: 0, value: x)
        #expect(d.committable().map(\.1) == [0])
        gateA.signal()
        try self.await(d) { d.metrics.delivered("a") == 1 }
        #expect(d.committable().map(\.1) == [0])      // "c" has not answered
        gateC.signal()
        try self.await(d) { d.committable().map(\.1) == [1] }
        #expect(a.count == 1 && c.count == 1)
        d.stop(timeoutMillis: 1000)
    }

    @Test func aFullQueueAndANonAlertGoToTheDeadLetters() throws {
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gate = DispatchSemaphore(value: 0)
        let stuck = ScriptedTransport(gate: gate)
        let d = try make(dir: dir, transports: ["stuck": stuck], queue: 1)
        d.start()
        try d.handle(partition: 0, offset: 0, value: Sample.alert(id: "01").jsonBytes)
        // Wait for the worker to take the first alert, so the queue has room for exactly one more.
        let deadline = Date().addingTimeInterval(5)
        while stuck.began == 0 && Date() < deadline { usleep(1000) }
        try d.handle(partition: 0, offset: 1, value: Sample.alert(id: "02").jsonBytes)
        try d.handle(partition: 0, offset: 2, value: Sample.alert(id: "03").jsonBytes)
        try d.handle(partition: 0, offset: 3, value: Array("{oops".utf8))
        let lines = try String(contentsOfFile: dir + "/dead.jsonl", encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try #require(try Sample.json(Array($0.utf8)) as? [String: Any]) }
        #expect(records.compactMap { $0["alert_id"] as? String }.contains("03"))
        #expect(records.contains { ($0["reason"] as? String)?.hasPrefix("queue full") == true })
        #expect(records.contains { ($0["reason"] as? String)?.hasPrefix("not an alert") == true && $0["value"] as? String == "{oops" })
        #expect(d.metrics.gaveUp("stuck") >= 1)
        gate.signal(); gate.signal(); gate.signal()
        try self.await(d) { d.committable().map(\.1) == [4] }
        d.stop(timeoutMillis: 1000)
    }

    /// With a dead-letter topic, a given-up alert goes to the topic unchanged, keyed by its alert_id, with
    /// the reason in headers, and its message's offset waits for the topic's acknowledgement; one the topic
    /// does not acknowledge, and one it refuses outright, go to the file, and their offsets move on.
    @Test func givenUpAlertsGoToTheDeadLetterTopicAndWaitForItsAcknowledgement() throws {
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let refusing = ScriptedTransport((0..<3).map { _ in .success(HTTPResponse(status: 400)) })
        let producer = HeldProducer()
        let sinks = [Sink(name: "hook", kind: .webhook, url: "http://127.0.0.1/hook")]
        let clock = ManualClock()
        let d = Dispatcher(sinks: sinks, routes: [Route(sinks: ["hook"])], queueSize: 10, policy: RetryPolicy(),
                           delivered: try DeliveredLog(dir: dir, retentionMillis: 86_400_000, maxPerSink: 100, now: clock.nowMillis()),
                           deadLetters: try DeadLetterFile(path: dir + "/dead.jsonl", maxBytes: 1 << 20),
                           deadLetterTopic: "alerts-dead", sourceTopic: "alerts", producer: producer,
                           clock: clock, log: NotifyLog { _ in }, transport: { _ in refusing })
        d.start()
        defer { d.stop(timeoutMillis: 1000) }
        let a1 = Sample.alert(id: "00000000000000a1")
        try d.handle(partition: 2, offset: 40, value: a1.jsonBytes)
        try self.await(d) { producer.produced.count == 1 }
        let m = try #require(producer.produced.first)
        #expect(m.topic == "alerts-dead" && m.value == a1.jsonBytes && m.key == Array("00000000000000a1".utf8))
        #expect(m.headers["tokenmeter-error"]?.hasPrefix("HTTP 400") == true && m.headers["tokenmeter-sink"] == "hook")
        #expect(m.headers["tokenmeter-topic"] == "alerts" && m.headers["tokenmeter-partition"] == "2" && m.headers["tokenmeter-offset"] == "40")
        #expect(m.headers["tokenmeter-attempts"] == "1")
        // Given up, but not yet acknowledged: the offset to commit does not pass the message.
        #expect(d.committable().map(\.1) == [40] && d.pendingMessages == 1)
        producer.settle()
        try self.await(d) { d.committable().map(\.1) == [41] }
        #expect(d.metrics.deadLettersOnTopic.load(ordering: .relaxed) == 1)

        // Not delivered to the topic: kept in the file, then committable.
        try d.handle(partition: 2, offset: 41, value: Sample.alert(id: "00000000000000a2").jsonBytes)
        try self.await(d) { producer.produced.count == 2 }
        #expect(d.committable().map(\.1) == [41])
        producer.settle(KafkaError(code: -192, reason: "Local: Message timed out"))
        try self.await(d) { d.committable().map(\.1) == [42] }
        // Refused at once (too large for the topic): the file, at once.
        producer.refuseNext = KafkaError(code: 10, reason: "Broker: Message size too large")
        try d.handle(partition: 2, offset: 42, value: Sample.alert(id: "00000000000000a3").jsonBytes)
        try self.await(d) { d.committable().map(\.1) == [43] }
        let lines = try String(contentsOfFile: dir + "/dead.jsonl", encoding: .utf8).split(separator: "\n")
        let ids = try lines.map { try #require(try Sample.json(Array($0.utf8)) as? [String: Any])["alert_id"] as? String }
        #expect(ids == ["00000000000000a2", "00000000000000a3"])
        #expect(d.metrics.deadLettersInFile.load(ordering: .relaxed) == 2)
        #expect(producer.produced.count == 2)
    }
}

import Testing
@testable import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#endif

@Suite("Kafka producer and consumer against the mock cluster", .timeLimit(.minutes(1)))
struct KafkaConsumerTests {
    let cluster = Shared.cluster

    @Test func producesWithKeysAndHeadersAndConsumesInGroup() throws {
        let topic = uniqueName("usage")
        let other = uniqueName("other")
        try cluster.createTopic(topic, partitions: 4)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers)])
        var reports: [UInt64: KafkaError?] = [:]
        producer.onDelivery = { token, err in reports[token] = err }
        let n = 200
        for i in 0..<n {
            let value = Array("{\"id\":\"\(i)\"}".utf8)
            let key = Array("key-\(i)".utf8)
            try value.withUnsafeBytes { v in
                try key.withUnsafeBytes { k in
                    try producer.produce(topic: topic, key: k, value: v,
                                         headers: [("h-index", Array("\(i)".utf8)), ("h-empty", [])], token: UInt64(1000 + i))
                }
            }
        }
        #expect(producer.flush(timeoutMs: 15_000))
        #expect(producer.outstanding == 0)
        #expect(reports.count == n)
        #expect(reports.values.allSatisfy { $0 == nil })
        #expect(Set(reports.keys) == Set((0..<n).map { UInt64(1000 + $0) }))
        try produce(cluster, topic: other, count: 3, prefix: "o")

        let handler = RecordingHandler()
        let consumer = try KafkaConsumer(properties: consumerProperties(cluster, group: uniqueName("g")),
                                         topics: [other, topic], rebalance: handler)
        var errors: [KafkaError] = []
        consumer.onError = { errors.append($0) }
        var seen: [Int: (key: String?, header: String?, headers: Int, topicIndex: Int, ts: Int64?)] = [:]
        var others = 0
        let done = waitUntil(step: {
            consumer.poll(maxMessages: 100, timeoutMs: 100) { m in
                if m.topicIndex == 0 { others += 1; return }
                let value = String(decoding: m.payload, as: UTF8.self)
                let id = Int(value.split(separator: "\"")[3])!
                seen[id] = (m.key.map { String(decoding: $0, as: UTF8.self) },
                            m.header(named: "h-index").map { String(decoding: $0, as: UTF8.self) },
                            m.headers().count, m.topicIndex, m.timestampMs)
            }
        }) { seen.count == n && others == 3 }
        #expect(done)
        #expect(handler.assigned.count == 8)
        for (id, s) in seen {
            #expect(s.key == "key-\(id)")
            #expect(s.header == "\(id)")
            #expect(s.headers == 2)
            #expect(s.topicIndex == 1)
            #expect(s.ts != nil)
        }
        #expect(consumer.rebalanceCount >= 1)
        consumer.close()
        #expect(errors.isEmpty, "\(errors)")
    }

    @Test func startOffsetsFromHandlerTakeEffect() throws {
        let topic = uniqueName("start")
        try cluster.createTopic(topic, partitions: 2)
        try produce(cluster, topic: topic, count: 10, partition: 0)
        try produce(cluster, topic: topic, count: 4, from: 100, partition: 1)
        let handler = RecordingHandler()
        handler.startOffsets[TopicPartition(topic: topic, partition: 0)] = 6
        let consumer = try KafkaConsumer(properties: consumerProperties(cluster, group: uniqueName("g")),
                                         topics: [topic], rebalance: handler)
        var got: [Received] = []
        #expect(waitUntil(step: { drain(consumer, into: &got) }) { got.count >= 8 })
        // One more short poll: anything before offset 6 would have arrived first anyway.
        drain(consumer, into: &got)
        let p0 = got.filter { $0.partition == 0 }.map(\.offset).sorted()
        let p1 = got.filter { $0.partition == 1 }.map(\.offset).sorted()
        #expect(p0 == [6, 7, 8, 9])
        #expect(p1 == [0, 1, 2, 3])
        #expect(Set(handler.assigned) == [TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 1)])
        consumer.close()
    }

    @Test func secondConsumerResumesFromCommittedOffsets() throws {
        let topic = uniqueName("resume")
        let group = uniqueName("g")
        try cluster.createTopic(topic, partitions: 4)
        try produce(cluster, topic: topic, count: 40)

        var first: [Received] = []
        do {
            let handler = RecordingHandler()
            let consumer = try KafkaConsumer(properties: consumerProperties(cluster, group: group), topics: [topic], rebalance: handler)
            #expect(waitUntil(step: { drain(consumer, into: &first) }) { first.count == 40 })
            var next: [TopicPartition: Int64] = [:]
            for r in first { next[TopicPartition(topic: topic, partition: r.partition)] = max(next[TopicPartition(topic: topic, partition: r.partition)] ?? 0, r.offset + 1) }
            let offsets = next.map { TopicPartitionOffset($0.key, offset: $0.value) }
            try consumer.commit(offsets, metadata: "checkpoint-1")
            let committed = try consumer.committed(offsets.map(\.topicPartition), timeoutMs: 20_000)
            #expect(committed == offsets.map { Optional($0.offset) })
            // The metadata survives: it rides on the explicit commit list, not on offsets_store.
            let withMetadata = try consumer.committedWithMetadata(offsets.map(\.topicPartition), timeoutMs: 20_000)
            #expect(withMetadata.allSatisfy { $0.metadata == "checkpoint-1" })
            consumer.close()
        }
        try produce(cluster, topic: topic, count: 20, from: 40)

        let consumer = try KafkaConsumer(properties: consumerProperties(cluster, group: group), topics: [topic], rebalance: nil)
        var second: [Received] = []
        #expect(waitUntil(step: { drain(consumer, into: &second) }) { second.count >= 20 })
        // Anything re-read would sit before the new messages in its partition and have arrived by now.
        drain(consumer, into: &second)
        #expect(Set(second.map(\.value)) == Set((40..<60).map { "m-\($0)" }))
        #expect(second.count == 20)
        #expect(Set(first.map(\.value)) == Set((0..<40).map { "m-\($0)" }))
        consumer.close()
    }

    @Test func revokeRunsBeforeUnassignOnCloseAndCanCommit() throws {
        let topic = uniqueName("revoke")
        let group = uniqueName("g")
        try cluster.createTopic(topic, partitions: 2)
        try produce(cluster, topic: topic, count: 10, partition: 0)

        let handler = RecordingHandler()
        let consumer = try KafkaConsumer(properties: consumerProperties(cluster, group: group), topics: [topic], rebalance: handler)
        var got: [Received] = []
        #expect(waitUntil(step: { drain(consumer, into: &got) }) { got.count == 10 })
        var assignmentAtRevoke: [TopicPartition] = []
        var commitError: (any Error)?
        handler.onRevoke = { [unowned consumer] partitions, lost in
            assignmentAtRevoke = consumer.assignment()
            guard !lost else { return }
            do { try consumer.commit([TopicPartitionOffset(topic: topic, partition: 0, offset: 10)], metadata: "on-revoke") }
            catch { commitError = error }
        }
        let testThread = pthread_self()
        consumer.close()
        #expect(handler.events.last == "revoke 2 lost=false")
        #expect(Set(assignmentAtRevoke) == [TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 1)])
        #expect(commitError == nil)
        // Rebalance callbacks ran inside poll/close on this thread, never on a librdkafka thread.
        #expect(handler.threads.allSatisfy { pthread_equal($0, testThread) != 0 })

        let check = try KafkaConsumer(properties: consumerProperties(cluster, group: group), topics: [topic], rebalance: nil)
        // A generous limit: the test suite shares one mock cluster among many parallel tests.
        let committed = try check.committed([TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 1)], timeoutMs: 20_000)
        #expect(committed == [10, nil])
        check.close()
    }

    @Test func statisticsAndErrorsRunOnPollingThread() throws {
        let topic = uniqueName("stats")
        let consumer = try KafkaConsumer(
            properties: consumerProperties(cluster, group: uniqueName("g"), [("statistics.interval.ms", "100")]),
            topics: [topic], rebalance: nil)
        let testThread = pthread_self()
        var stats: [String] = []
        var onOtherThread = false
        consumer.onStatistics = { json in
            if pthread_equal(pthread_self(), testThread) == 0 { onOtherThread = true }
            stats.append(json)
        }
        #expect(waitUntil(timeoutMs: 10_000, step: { consumer.poll(maxMessages: 10, timeoutMs: 50) { _ in } }) { !stats.isEmpty })
        #expect(!onOtherThread)
        #expect(stats.first?.hasPrefix("{") == true)
        consumer.close()
    }

    @Test func cooperativeStickyIsRejected() {
        #expect(throws: KafkaError.self) {
            _ = try KafkaConsumer(
                properties: consumerProperties(cluster, group: "g", [("partition.assignment.strategy", "cooperative-sticky")]),
                topics: ["t"], rebalance: nil)
        }
    }

    @Test func propertyErrorsNameThePropertyNeverTheValue() {
        do {
            _ = try KafkaProducer(properties: [("sasl.password", "hunter2-secret"), ("no.such.property", "s3cr3t-value")])
            Issue.record("expected an error")
        } catch let error as KafkaError {
            #expect(error.description.contains("no.such.property"))
            #expect(!error.description.contains("s3cr3t-value"))
            #expect(!error.description.contains("hunter2"))
        } catch { Issue.record("\(error)") }
        do {
            _ = try KafkaProducer(properties: [("acks", "sekrit-acks")])
            Issue.record("expected an error")
        } catch let error as KafkaError {
            #expect(error.description.contains("'acks'"))
            #expect(!error.description.contains("sekrit-acks"))
        } catch { Issue.record("\(error)") }
    }
}

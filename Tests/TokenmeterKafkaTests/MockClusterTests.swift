import Testing
@testable import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#endif

@Suite("Mock cluster faults and the fixed-port forwarder", .timeLimit(.minutes(1)))
struct MockClusterTests {
    @Test func producerKeepsMessagesThroughBrokerOutage() throws {
        let cluster = try MockCluster(brokers: 1)
        let topic = "alerts"
        try cluster.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(properties: [
            ("bootstrap.servers", cluster.bootstrapServers), ("message.timeout.ms", "0"), ("log_level", "2"),
        ])
        var delivered: [UInt64] = []
        var failures: [KafkaError] = []
        producer.onDelivery = { token, err in if let err { failures.append(err) } else { delivered.append(token) } }
        // Make sure the producer is connected and has its producer id before the outage.
        try Array("warmup".utf8).withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, token: 99) }
        #expect(producer.flush(timeoutMs: 10_000))

        try cluster.setBrokerDown(1)
        for i in 0..<5 {
            try Array("alert-\(i)".utf8).withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, token: UInt64(i)) }
        }
        // A second and a half without a broker: nothing may be reported, neither success nor failure.
        let until = monotonicMs() + 1500
        while monotonicMs() < until { producer.poll(timeoutMs: 100) }
        #expect(delivered == [99])
        #expect(failures.isEmpty)
        #expect(producer.outstanding >= 5)

        try cluster.setBrokerUp(1)
        #expect(waitUntil(timeoutMs: 30_000, step: { producer.poll(timeoutMs: 100) }) { delivered.count == 6 })
        #expect(Set(delivered) == [99, 0, 1, 2, 3, 4])
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func queueFullIsWaitedOutNotThrown() throws {
        let cluster = Shared.cluster
        let topic = uniqueName("backpressure")
        let producer = try KafkaProducer(properties: [
            ("bootstrap.servers", cluster.bootstrapServers), ("queue.buffering.max.messages", "10"), ("linger.ms", "0"),
        ])
        var delivered = 0
        producer.onDelivery = { _, err in if err == nil { delivered += 1 } }
        for i in 0..<500 {
            try Array("v\(i)".utf8).withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, token: UInt64(i)) }
            // The queue bound, plus messages counted while their delivery reports are being served (16 seen
            // on a loaded machine): bounded, not growing with the 500 sent.
            #expect(producer.outstanding <= 2 * 10)
        }
        #expect(producer.flush(timeoutMs: 15_000))
        #expect(delivered == 500)
    }

    @Test func lostAssignmentIsReportedAsLost() throws {
        let cluster = try MockCluster()
        let topic = "lost"
        try cluster.createTopic(topic, partitions: 2)
        let handler = RecordingHandler()
        let consumer = try KafkaConsumer(
            properties: consumerProperties(cluster, group: "lost-g", [("heartbeat.interval.ms", "200")]),
            topics: [topic], rebalance: handler)
        #expect(waitUntil(step: { consumer.poll(maxMessages: 10, timeoutMs: 100) { _ in } }) { handler.assigned.count == 2 })
        var lostCommitError: KafkaError?
        handler.onRevoke = { [unowned consumer] partitions, lost in
            guard lost else { return }
            do { try consumer.commit(partitions.map { TopicPartitionOffset($0, offset: 0) }) }
            catch { lostCommitError = error as? KafkaError }
        }
        // Heartbeat (API 12) answered with UNKNOWN_MEMBER_ID (25): the member is out of the group.
        cluster.pushRequestErrors(apiKey: 12, errors: [25])
        #expect(waitUntil(step: { consumer.poll(maxMessages: 10, timeoutMs: 100) { _ in } }) {
            handler.events.contains("revoke 2 lost=true") && handler.events.last == "assign 2"
        }, "\(handler.events)")
        #expect(consumer.rebalanceCount >= 3)
        #expect(lostCommitError?.code == KafkaError.state)
        consumer.close()
    }

    @Test func fixedPortForwardsBootstrap() throws {
        let port = try freePort()
        let cluster = try MockCluster(brokers: 2, port: port)
        #expect(cluster.bootstrapServers == "127.0.0.1:\(port)")
        #expect(cluster.brokerAddresses != cluster.bootstrapServers)
        let topic = "fwd"
        try cluster.createTopic(topic, partitions: 3)
        try produce(cluster, topic: topic, count: 30)
        let consumer = try KafkaConsumer(properties: consumerProperties(cluster, group: "fwd-g"), topics: [topic], rebalance: nil)
        var got: [Received] = []
        #expect(waitUntil(step: { drain(consumer, into: &got) }) { got.count == 30 })
        consumer.close()
    }

    @Test func pushedRequestErrorsAreReturned() throws {
        let cluster = try MockCluster()
        let topic = "errs"
        try cluster.createTopic(topic, partitions: 1)
        try produce(cluster, topic: topic, count: 1)
        let consumer = try KafkaConsumer(properties: consumerProperties(cluster, group: "errs-g"), topics: [topic], rebalance: nil)
        var got: [Received] = []
        #expect(waitUntil(step: { drain(consumer, into: &got) }) { got.count == 1 })
        // OffsetCommit (API key 8) failing with a non-retriable error surfaces from commit.
        cluster.pushRequestErrors(apiKey: 8, errors: [Int32(30)])  // GROUP_AUTHORIZATION_FAILED
        #expect(throws: KafkaError.self) { try consumer.commit([TopicPartitionOffset(topic: topic, partition: 0, offset: 1)]) }
        cluster.clearRequestErrors(apiKey: 8)
        try consumer.commit([TopicPartitionOffset(topic: topic, partition: 0, offset: 1)])
        consumer.close()
    }
}

/// A port nobody listens on right now (bind to 0, read it back, release it).
func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: addr.sin_port)
}

@Suite("Messages the producer can never send")
struct ProducerLimitTests {
    /// A message over `message.max.bytes` is refused before it is queued, and the error says the message
    /// itself is the problem (so callers set it aside instead of retrying it forever); a client-level
    /// error is not such an error.
    @Test func oversizedMessageIsRefusedAsTheMessagesFault() throws {
        let producer = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:1"), ("message.max.bytes", "1000"), ("log_level", "0")])
        let big = [UInt8](repeating: 0x61, count: 2_000)
        var caught: KafkaError?
        do { try big.withUnsafeBytes { try producer.produce(topic: "t", key: nil, value: $0, token: 1) } } catch let e as KafkaError { caught = e }
        #expect(caught?.name == "MSG_SIZE_TOO_LARGE")
        #expect(caught?.isMessageRejected == true)
        #expect(!KafkaError(code: KafkaError.allBrokersDown, reason: "down").isMessageRejected)
    }
}

import Testing
@testable import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#endif

/// Raw produce and consume rates against the in-process mock; opt-in because it measures, not checks:
/// `TOKENMETER_KAFKA_BENCH=1 swift test -c release --filter KafkaThroughput`.
@Suite("Kafka throughput (opt-in)", .enabled(if: getenv("TOKENMETER_KAFKA_BENCH") != nil), .timeLimit(.minutes(1)))
struct KafkaThroughputTests {
    @Test func produceAndConsumeRates() throws {
        let cluster = try MockCluster()
        let topic = "bench"
        try cluster.createTopic(topic, partitions: 64)
        let n = 200_000
        let producer = try KafkaProducer(properties: [
            ("bootstrap.servers", cluster.bootstrapServers), ("linger.ms", "5"), ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "1000000"),
        ])
        var delivered = 0
        producer.onDelivery = { _, err in if err == nil { delivered += 1 } }
        var value = Array(#"{"id":"00000000","workflow":"invoice-extraction","owner":"finance-ops","model":"gpt-4o","provider":"openai","input_tokens":1200,"output_tokens":300,"timestamp":"2026-11-29T10:00:00Z"}"#.utf8)
        var key = [UInt8](repeating: 0, count: 8)
        let t0 = monotonicMs()
        for i in 0..<n {
            withUnsafeBytes(of: UInt64(i)) { src in key.withUnsafeMutableBytes { $0.copyMemory(from: src) } }
            value[7] = UInt8(48 + i % 10)
            try value.withUnsafeBytes { v in try key.withUnsafeBytes { k in try producer.produce(topic: topic, key: k, value: v, token: UInt64(i)) } }
            if i & 1023 == 0 { producer.poll() }
        }
        #expect(producer.flush(timeoutMs: 30_000))
        let t1 = monotonicMs()
        #expect(delivered == n)

        let consumer = try KafkaConsumer(
            properties: consumerProperties(cluster, group: "bench-g", [("fetch.message.max.bytes", "1048576")]),
            topics: [topic], rebalance: nil)
        var consumed = 0
        var bytes = 0
        var firstAt: Int64 = 0
        #expect(waitUntil(timeoutMs: 40_000, step: {
            consumer.poll(maxMessages: 10_000, timeoutMs: 100) { m in
                if consumed == 0 { firstAt = monotonicMs() }
                consumed += 1
                bytes &+= m.payload.count
            }
        }) { consumed >= n })
        let t2 = monotonicMs()
        consumer.close()
        print("produce: \(n) in \(t1 - t0) ms = \(Int64(n) * 1000 / max(t1 - t0, 1))/s; "
              + "consume: \(consumed) in \(t2 - firstAt) ms after first message = \(Int64(consumed) * 1000 / max(t2 - firstAt, 1))/s")
    }
}

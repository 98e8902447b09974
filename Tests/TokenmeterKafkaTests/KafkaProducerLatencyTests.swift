import Testing
@testable import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#endif

@Suite("Delivery latency: when the broker acknowledged, not when the report was served", .timeLimit(.minutes(1)))
struct KafkaProducerLatencyTests {
    /// The owning thread stalls (as in a long checkpoint) after the acknowledgement has arrived: a producer
    /// timing acknowledgements reports the time to the broker, one without reports the stall too.
    @Test func aStalledOwnerDoesNotLengthenTheTimedLatency() throws {
        let topic = uniqueName("latency")
        try Shared.cluster.createTopic(topic, partitions: 1)
        let properties = [("bootstrap.servers", Shared.cluster.bootstrapServers), ("linger.ms", "1"), ("log_level", "2")]
        let stallMs: Int64 = 400

        func deliveredLatency(timing: Bool) throws -> (latency: Int64, ackedWithinMs: Int64) {
            let producer = try KafkaProducer(properties: properties, timingAcknowledgements: timing)
            var latency: Int64?
            producer.onDelivery = { _, err in if err == nil { latency = producer.deliveryLatencyMicros } }
            // Connected, with a producer id, so the timed message is not the one that waits for those.
            try Array("warmup".utf8).withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, token: 1) }
            #expect(producer.flush(timeoutMs: 10_000))
            latency = nil

            let sent = monotonicMs()
            try Array("alert".utf8).withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, token: 2) }
            var ackedWithin = stallMs
            if timing {
                // Not polled: the acknowledgement is seen on librdkafka's thread alone.
                #expect(waitUntil(timeoutMs: 10_000, step: { usleep(1_000) }) { producer.acknowledgementsTimed == 1 })
                ackedWithin = monotonicMs() - sent
            }
            // The stall: nothing serves the report until it is over.
            while monotonicMs() - sent < stallMs + ackedWithin { usleep(10_000) }
            #expect(waitUntil(timeoutMs: 10_000, step: { producer.poll(timeoutMs: 50) }) { latency != nil })
            #expect(producer.acknowledgementsTimed == 0)
            return (latency ?? -1, ackedWithin)
        }

        let timed = try deliveredLatency(timing: true)
        #expect(timed.latency >= 0)
        #expect(timed.latency <= (timed.ackedWithinMs + 1) * 1000, "\(timed)")
        #expect(timed.latency < stallMs * 1000, "\(timed)")
        let untimed = try deliveredLatency(timing: false)
        #expect(untimed.latency >= stallMs * 1000, "\(untimed)")
    }
}

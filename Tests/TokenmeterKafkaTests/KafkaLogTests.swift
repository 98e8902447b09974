import Testing
@testable import TokenmeterKafka

/// How librdkafka's own log lines are passed on: partitions in our notation, failures remembered so that
/// the error callback's copy of the same text is marked as already logged.
@Suite("librdkafka log lines")
struct KafkaLogTests {
    @Test func partitionsAreWrittenTheWayOurLinesWriteThem() {
        #expect(KafkaLog.partitionsAsOurs("llm-usage [0]: offset reset (at offset 12) to END") == "llm-usage[0]: offset reset (at offset 12) to END")
        #expect(KafkaLog.partitionsAsOurs("Topic a.b-c [12] and d [3]") == "Topic a.b-c[12] and d[3]")
        // Not a partition: brackets without a number, or not after a name.
        #expect(KafkaLog.partitionsAsOurs("[thrd:main]: x [ab] y  [4] z [5") == "[thrd:main]: x [ab] y  [4] z [5")
        #expect(KafkaLog.partitionsAsOurs("no brackets") == "no brackets")
    }

    @Test func anErrorLoggedJustBeforeIsRecognised() {
        let line = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (test \(#line))"
        #expect(!KafkaLog.loggedRecently(line))
        KafkaLog.remember("[thrd:127.0.0.1:1/bootstrap]: " + line)
        #expect(KafkaLog.loggedRecently(line))
        #expect(!KafkaLog.loggedRecently("1/1 brokers are down"))
        #expect(!KafkaLog.loggedRecently(""))
    }
}

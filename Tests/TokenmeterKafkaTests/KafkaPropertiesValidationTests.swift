import Testing
@testable import TokenmeterKafka

/// `KafkaProperties.validate`: librdkafka's own verdict on a configuration, before any client connects.
@Suite("Kafka property validation")
struct KafkaPropertiesValidationTests {
    @Test func everyRefusedPropertyIsReportedNotJustTheFirst() {
        let problems = KafkaProperties.validate(
            [("bootstrap.servers", "127.0.0.1:1"), ("socket.timeout.msx", "100"), ("socket.timeout.ms", "many"),
             ("fetch.wait.max.ms", "100")],
            clients: [])
        #expect(problems.map(\.property) == ["socket.timeout.msx", "socket.timeout.ms"])
        #expect(problems.map(\.kind) == [.unknown, .invalidValue])
        #expect(!problems[1].message.contains("many"), "\(problems[1].message)")
    }

    @Test func aCombinationIsJudgedWhenTheClientIsBuilt() {
        let base = [("bootstrap.servers", "127.0.0.1:1"), ("acks", "1")]
        // Alone, `acks = 1` is a valid value; with the idempotent producer the daemon builds, it is not.
        #expect(KafkaProperties.validate(base, clients: []).isEmpty)
        let problems = KafkaProperties.validate(base, clients: [(.producer, [("enable.idempotence", "true")] + base)])
        #expect(problems.count == 1)
        #expect(problems.first?.kind == .rejectedByClient)
        #expect(problems.first?.property == "acks")
        #expect(problems.first?.message.hasPrefix("librdkafka refuses to create the producer: `acks` must be set to `all`") == true)
        let consumer = [("group.id", "g")] + base.filter { $0.0 != "acks" }
        #expect(KafkaProperties.validate(consumer, clients: [(.consumer, consumer)]).isEmpty)
        let sticky = consumer + [("partition.assignment.strategy", "cooperative-sticky")]
        #expect(KafkaProperties.validate(sticky, clients: [(.consumer, sticky)]).first?.property == "partition.assignment.strategy")
    }

    @Test func secretsAreCutFromLibrdkafkasReasons() {
        // librdkafka quotes the value it cannot use: a value to hide is cut out, and the reason still
        // points at its property.
        let value = "Pw7SECRETMECH"
        let list = [("group.id", "g"), ("security.protocol", "sasl_plaintext"), ("sasl.mechanisms", value)]
        let shown = KafkaProperties.validate(list, clients: [(.consumer, list)])
        #expect(shown.first?.message == "librdkafka refuses to create the consumer: Unsupported SASL mechanism: \(value)")
        let hidden = KafkaProperties.validate(list, clients: [(.consumer, list)], hide: [value])
        #expect(hidden.first?.property == "sasl.mechanisms")
        #expect(hidden.first?.message == "librdkafka refuses to create the consumer: Unsupported SASL mechanism: (value hidden)")
    }

    @Test func knownNamesComeFromLibrdkafka() {
        let names = KafkaProperties.knownNames()
        #expect(names.contains("socket.timeout.ms"))
        #expect(names.contains("acks") || names.contains("request.required.acks"))
    }
}

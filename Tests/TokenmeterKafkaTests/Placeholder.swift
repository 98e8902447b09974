import Testing

@Test func placeholder_TokenmeterKafkaTests() { #expect(1 + 1 == 2) }

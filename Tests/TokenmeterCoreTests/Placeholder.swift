import Testing

@Test func placeholder_TokenmeterCoreTests() { #expect(1 + 1 == 2) }

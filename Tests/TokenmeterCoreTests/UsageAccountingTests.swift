import Testing
@testable import TokenmeterCore

/// How an event's counts are settled (`UsageAccounting`), called with plain values: no JSON, no decoder.
/// The same rules through whole messages are in `EventDecoderTests`.
@Suite struct UsageAccountingTests {
    let block = TokenCounts(input: 1000, cacheRead: 300, cacheWrite: 200, cacheWrite1h: 150, output: 80, reasoning: 30)

    @Test func withoutCanonicalFieldsTheBlockStands() {
        #expect(UsageAccounting.applying(CanonicalTokens(), to: block) == block)
    }

    @Test func eachCanonicalFieldReplacesOnlyItsOwnBucket() {
        #expect(UsageAccounting.applying(CanonicalTokens(input: 5000), to: block)
            == TokenCounts(input: 5000, cacheRead: 300, cacheWrite: 200, cacheWrite1h: 150, output: 80, reasoning: 30))
        #expect(UsageAccounting.applying(CanonicalTokens(cacheRead: 0), to: block)
            == TokenCounts(input: 1000, cacheRead: 0, cacheWrite: 200, cacheWrite1h: 150, output: 80, reasoning: 30))
        #expect(UsageAccounting.applying(CanonicalTokens(output: 90), to: block)
            == TokenCounts(input: 1000, cacheRead: 300, cacheWrite: 200, cacheWrite1h: 150, output: 90, reasoning: 30))
        #expect(UsageAccounting.applying(CanonicalTokens(reasoning: 0), to: block)
            == TokenCounts(input: 1000, cacheRead: 300, cacheWrite: 200, cacheWrite1h: 150, output: 80, reasoning: 0))
        #expect(UsageAccounting.applying(CanonicalTokens(input: 1, cacheRead: 2, cacheWrite: 3, output: 4, reasoning: 5), to: block)
            == TokenCounts(input: 1, cacheRead: 2, cacheWrite: 3, cacheWrite1h: 3, output: 4, reasoning: 5))
    }

    @Test func aCanonicalCacheWriteCapsTheBlocksOneHourPart() {
        // Below the block's 1-hour part: capped at the new whole.
        #expect(UsageAccounting.applying(CanonicalTokens(cacheWrite: 100), to: block).cacheWrite1h == 100)
        // Above it: the block's part stands.
        #expect(UsageAccounting.applying(CanonicalTokens(cacheWrite: 400), to: block).cacheWrite1h == 150)
        #expect(UsageAccounting.applying(CanonicalTokens(cacheWrite: 0), to: block).cacheWrite1h == 0)
    }

    @Test func anyCanonicalField() {
        #expect(!CanonicalTokens().any)
        #expect(CanonicalTokens(input: 0).any)
        #expect(CanonicalTokens(cacheRead: 0).any)
        #expect(CanonicalTokens(cacheWrite: 0).any)
        #expect(CanonicalTokens(output: 0).any)
        #expect(CanonicalTokens(reasoning: 0).any)
    }

    @Test func iterationsAreExpandedOnlyForAnAnthropicBlockWithoutCanonicalFields() {
        var withIterations = RawUsage()
        withIterations.has = [.inputTokens, .outputTokens, .iterations]
        var without = RawUsage()
        without.has = [.inputTokens, .outputTokens]
        #expect(UsageAccounting.expandsIterations(withIterations, row: .anthropic, canonical: CanonicalTokens()))
        #expect(!UsageAccounting.expandsIterations(withIterations, row: .anthropic, canonical: CanonicalTokens(output: 7)))
        #expect(!UsageAccounting.expandsIterations(without, row: .anthropic, canonical: CanonicalTokens()))
        for row in BlockRow.allCases where row != .anthropic {
            #expect(!UsageAccounting.expandsIterations(withIterations, row: row, canonical: CanonicalTokens()), "\(row)")
        }
    }

    @Test func aBlockIsUnrecognisedOnlyWhenPresentUnreadAndNotOverridden() {
        #expect(UsageAccounting.isUnrecognized(blockPresent: true, row: .none, canonical: CanonicalTokens()))
        #expect(!UsageAccounting.isUnrecognized(blockPresent: false, row: .none, canonical: CanonicalTokens()))
        #expect(!UsageAccounting.isUnrecognized(blockPresent: true, row: .none, canonical: CanonicalTokens(input: 10)))
        for row in BlockRow.allCases where row != .none {
            #expect(!UsageAccounting.isUnrecognized(blockPresent: true, row: row, canonical: CanonicalTokens()), "\(row)")
        }
    }

    @Test func theOwnModelKeepsTheLargerOfTopLevelAndIterationsPerBucket() {
        let top = TokenCounts(input: 100, cacheRead: 50, cacheWrite: 0, cacheWrite1h: 0, output: 10, reasoning: 0)
        let iterations = TokenCounts(input: 80, cacheRead: 60, cacheWrite: 20, cacheWrite1h: 5, output: 30, reasoning: 4)
        #expect(UsageAccounting.ownModelCounts(topLevel: top, iterations: iterations)
            == TokenCounts(input: 100, cacheRead: 60, cacheWrite: 20, cacheWrite1h: 5, output: 30, reasoning: 4))
        #expect(UsageAccounting.ownModelCounts(topLevel: top, iterations: TokenCounts()) == top)
    }

    @Test func partsLargerThanTheirWholeInCheckingOrder() {
        // Equal is fine.
        #expect(UsageAccounting.partExceedingWhole(TokenCounts(input: 10, cacheRead: 6, cacheWrite: 4, cacheWrite1h: 4,
                                                               output: 5, reasoning: 5)) == nil)
        #expect(UsageAccounting.partExceedingWhole(TokenCounts(input: 9, cacheRead: 6, cacheWrite: 4)) == .cacheOverInput)
        #expect(UsageAccounting.partExceedingWhole(TokenCounts(output: 4, reasoning: 5)) == .reasoningOverOutput)
        #expect(UsageAccounting.partExceedingWhole(TokenCounts(input: 10, cacheWrite: 4, cacheWrite1h: 5))
            == .cacheWrite1hOverCacheWrite)
        // Several at once: the cache over the input is reported first, then reasoning.
        #expect(UsageAccounting.partExceedingWhole(TokenCounts(input: 1, cacheRead: 2, output: 0, reasoning: 1)) == .cacheOverInput)
        #expect(UsageAccounting.partExceedingWhole(TokenCounts(input: 10, cacheWrite: 1, cacheWrite1h: 2, output: 0, reasoning: 1))
            == .reasoningOverOutput)
    }
}

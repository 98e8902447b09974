import Testing
@testable import TokenmeterCore

/// The spend metrics' table on its own: keys to series by label values, the cap, the overflow series and
/// the name table's rebuild (ids that change meaning).
@Suite("Spend series table")
struct SpendSeriesTableTests {
    static func settings(_ dims: [SpendDimension], max: Int = 1_000) -> MetricsSettings {
        var m = MetricsSettings()
        m.dimensions = dims
        m.maxSeries = max
        return m
    }

    static func key(_ d: inout Dimensions, owner: String, model: String?, workflow: String = "wf") -> SeriesKey {
        SeriesKey(workflow: d.names.intern(workflow), owner: d.names.intern(owner),
                  model: model.map { d.names.intern($0) } ?? SeriesKey.none, provider: SeriesKey.none, tags: Dimensions.noTags)
    }

    @Test func modelsOfOneFamilyShareASeriesAndUnusedFieldsAreIgnored() {
        var d = Dimensions(tagNames: [])
        var t = SpendSeriesTable(Self.settings([.modelFamily]))
        let tokens = TokenCounts(input: 10, cacheRead: 4, output: 3, reasoning: 1)
        t.addUsage(Self.key(&d, owner: "a", model: "gpt-4o-mini"), tokens, cost: Money(nanos: 5), isError: false, names: { d })
        t.addUsage(Self.key(&d, owner: "b", model: "gpt-4o-mini-2024-07-18"), tokens, cost: nil, isError: true, names: { d })
        t.addUsage(Self.key(&d, owner: "a", model: "claude-x", workflow: "other"), tokens, cost: Money(nanos: 7), isError: false, names: { d })
        let s = t.snapshot()
        #expect(s.labelNames == ["model_family"])
        #expect(s.labels == [["gpt-4o-mini"], ["claude-x"]])
        #expect(s.seriesCount == 2)
        #expect(s.counters[0].requests == 2)
        #expect(s.counters[0].errors == 1)
        #expect(s.counters[0].unpricedRequests == 1)
        #expect(s.counters[0].cost == Money(nanos: 5))
        #expect(s.counters[0].input == 20 && s.counters[0].cacheRead == 8 && s.counters[0].output == 6 && s.counters[0].reasoning == 2)
        #expect(s.counters[1].cost == Money(nanos: 7))
    }

    @Test func pastTheCapValuesGoToTheOverflowSeries() {
        var d = Dimensions(tagNames: [])
        var t = SpendSeriesTable(Self.settings([.owner], max: 2))
        for i in 0..<5 {
            for _ in 0..<3 { t.addUsage(Self.key(&d, owner: "o\(i)", model: "m"), TokenCounts(input: 1), cost: Money(nanos: 1), isError: false, names: { d }) }
        }
        t.addOutcome(Self.key(&d, owner: "o4", model: nil), count: 6, names: { d })
        let s = t.snapshot()
        #expect(s.labels == [["__other__"], ["o0"], ["o1"]])
        #expect(s.seriesCount == 2)
        #expect(s.counters.map(\.requests) == [9, 3, 3])
        #expect(s.counters[0].outcomes == 6)
        #expect(s.overflowEvents == 10)   // nine requests and one outcome event of o2, o3, o4
        #expect(s.counters.reduce(Money.zero) { $0 + $1.cost } == Money(nanos: 15))
    }

    @Test func theOverflowSeriesIsShownOnlyOnceUsed() {
        var d = Dimensions(tagNames: [])
        var t = SpendSeriesTable(Self.settings([.owner, .workflow]))
        t.addUsage(Self.key(&d, owner: "o", model: "m"), TokenCounts(), cost: .zero, isError: false, names: { d })
        #expect(t.snapshot().labels == [["o", "wf"]])
    }

    /// After the name table is rebuilt, ids mean other names: the same label values must find their series
    /// again, and a name that now has the old id of another must not land in that one's series.
    @Test func keysAreForgottenWhenNamesAreRebuilt() {
        var d = Dimensions(tagNames: [])
        var t = SpendSeriesTable(Self.settings([.owner]))
        t.addUsage(Self.key(&d, owner: "a", model: "m"), TokenCounts(), cost: Money(nanos: 1), isError: false, names: { d })
        t.addUsage(Self.key(&d, owner: "b", model: "m"), TokenCounts(), cost: Money(nanos: 2), isError: false, names: { d })
        var fresh = Dimensions(tagNames: [])
        _ = fresh.names.intern("b")   // "b" now has the id "a" had
        t.forgetKeys()
        t.addUsage(Self.key(&fresh, owner: "b", model: "m"), TokenCounts(), cost: Money(nanos: 10), isError: false, names: { fresh })
        t.addUsage(Self.key(&fresh, owner: "a", model: "m"), TokenCounts(), cost: Money(nanos: 20), isError: false, names: { fresh })
        let s = t.snapshot()
        #expect(s.labels == [["a"], ["b"]])
        #expect(s.counters.map(\.cost) == [Money(nanos: 21), Money(nanos: 12)])
    }

    @Test func tagLabelNamesAreValidPrometheusNames() {
        #expect(SpendDimension.tag("cost-center.eu").labelName == "tag_cost_center_eu")
        #expect(SpendDimension.tag("Team_1").labelName == "tag_Team_1")
        #expect(SpendDimension.tag("équipe").labelName == "tag__quipe")
    }

    /// Keys past the limit empty the key table instead of growing it; counting goes on into the same series.
    @Test func theKeyTableStaysBounded() {
        var d = Dimensions(tagNames: [])
        var t = SpendSeriesTable(Self.settings([.owner], max: 1))
        let n = t.keyLimit + 10
        for i in 0..<n { t.addUsage(Self.key(&d, owner: "o\(i)", model: nil), TokenCounts(), cost: Money(nanos: 1), isError: false, names: { d }) }
        t.addUsage(Self.key(&d, owner: "o0", model: nil), TokenCounts(), cost: Money(nanos: 1), isError: false, names: { d })
        let s = t.snapshot()
        #expect(s.labels == [["__other__"], ["o0"]])
        #expect(s.counters.map(\.requests) == [Int64(n - 1), 2])
        #expect(s.overflowEvents == Int64(n - 1))
    }
}

import Testing
import TokenmeterCore

/// `rollups.max_future`: an event time further ahead of the wall clock than the setting is bad input, so one
/// skewed producer clock cannot move a partition's stream time ahead and make every later event late.
@Suite struct FutureEventTests {
    static func pipeline(maxFuture: String? = nil) -> Pipeline {
        let text = """
            [rollups]
            dir = "/nonexistent/future-event-test"
            windows = ["1m"]
            grace = "0s"
            \(maxFuture.map { "max_future = \"\($0)\"" } ?? "")
            """
        guard case .success(let c) = ConfigLoader.parse(text: text, file: "future.toml") else { fatalError("test config") }
        return Pipeline(config: c, instance: "t")
    }

    static let wall = RFC3339.parse("2026-11-21T08:00:00Z")!

    static func event(_ id: String, at time: EpochMillis) -> [UInt8] {
        Array(#"{"id":"\#(id)","timestamp":\#(time),"workflow":"w","owner":"o","model":"m","input_tokens":5}"#.utf8)
    }

    static func process(_ p: Pipeline, _ bytes: [UInt8], offset: Int64, wallNow: EpochMillis) -> Pipeline.Result {
        bytes.withUnsafeBytes { p.process($0, topicIndex: 0, partition: 0, offset: offset, messageTime: nil, wallNow: wallNow) }
    }

    @Test func theDefaultAllowsFiveMinutesOfSkew() {
        let p = Self.pipeline()
        #expect(Self.process(p, Self.event("a", at: Self.wall + 300_000), offset: 0, wallNow: Self.wall) == .counted)
        guard case .rejected(let r) = Self.process(p, Self.event("b", at: Self.wall + 300_001), offset: 1, wallNow: Self.wall) else {
            Issue.record("an event more than 5 minutes ahead was accepted"); return
        }
        #expect(r.code == .badTimestamp)
        #expect(r.detail.contains("rollups.max_future (5m)"))
    }

    @Test func aSkewedEventDoesNotMakeLaterEventsLate() {
        let p = Self.pipeline()
        #expect(Self.process(p, Self.event("a", at: Self.wall - 120_000), offset: 0, wallNow: Self.wall) == .counted)
        // A producer whose clock is 23 hours ahead: refused, the stream time stays where it was.
        guard case .rejected = Self.process(p, Self.event("skewed", at: Self.wall + 23 * 3_600_000), offset: 1, wallNow: Self.wall)
        else { Issue.record("a 23-hour skew was accepted"); return }
        // With the skewed event counted, this one would be late (its minute closed by the jump).
        #expect(Self.process(p, Self.event("b", at: Self.wall - 60_000), offset: 2, wallNow: Self.wall) == .counted)
    }

    @Test func theSettingIsConfigurableAndReplaysIgnoreIt() {
        let p = Self.pipeline(maxFuture: "2d")
        #expect(Self.process(p, Self.event("a", at: Self.wall + 86_400_000), offset: 0, wallNow: Self.wall) == .counted)
        // A replay has no wall clock (0): historic and future times alike are kept.
        let replay = Self.pipeline()
        #expect(Self.process(replay, Self.event("a", at: Self.wall + 86_400_000), offset: 0, wallNow: 0) == .counted)
    }

    @Test func aZeroSettingIsAConfigError() {
        let text = "[rollups]\nmax_future = \"0s\"\n"
        guard case .failure(let diagnostics) = ConfigLoader.parse(text: text, file: "f.toml") else {
            Issue.record("max_future = 0s was accepted"); return
        }
        #expect(diagnostics.description.contains("f.toml:2:14"))
    }
}

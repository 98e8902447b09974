import Testing
import TokenmeterCore

/// The wall-clock idle close of `Pipeline`: a partition whose messages are only waiting behind other
/// partitions' (a backlog after a restart or a pause) is not quiet, for a while.
@Suite struct IdleCloseTests {
    static let config: TokenmeterConfig = {
        let text = """
            [rollups]
            dir = "/nonexistent/idle-close-test"
            windows = ["1m"]
            grace = "0s"
            idle_close = "2s"
            """
        guard case .success(let c) = ConfigLoader.parse(text: text, file: "idle.toml") else { fatalError("test config") }
        return c
    }()

    static let t0 = RFC3339.parse("2026-11-21T08:00:00Z")!

    /// A pipeline with one event counted on partition 0 at wall time `wall`.
    func pipelineWithOneEvent(wall: EpochMillis) -> Pipeline {
        let p = Pipeline(config: Self.config, instance: "t")
        let event = #"{"id":"a","timestamp":"2026-11-21T08:00:10Z","workflow":"w","owner":"o","model":"m","input_tokens":5}"#
        let r = Array(event.utf8).withUnsafeBytes {
            p.process($0, topicIndex: 0, partition: 0, offset: 7, messageTime: nil, wallNow: wall)
        }
        #expect(r == .counted)
        return p
    }

    @Test func aQuietPartitionClosesAfterIdleClose() {
        let wall = Self.t0 + 86_400_000
        let p = pipelineWithOneEvent(wall: wall)
        p.closeIdle(wallNow: wall + 1_999) { _, _, _ in false }
        #expect(p.pending.isEmpty, "not yet idle")
        p.closeIdle(wallNow: wall + 2_000) { _, _, _ in false }
        #expect(p.pending.count == 1)
    }

    @Test func aPartitionWithABacklogStaysOpenThenClosesAfterThePatience() {
        let wall = Self.t0 + 86_400_000
        let p = pipelineWithOneEvent(wall: wall)
        var asked: [(Int, Int32, Int64)] = []
        p.closeIdle(wallNow: wall + 2_000) { t, part, next in asked.append((t, part, next)); return true }
        #expect(p.pending.isEmpty, "messages still waiting: not idle")
        #expect(asked.count == 1 && asked[0].0 == 0 && asked[0].1 == 0 && asked[0].2 == 8, "asked with the next offset")
        let patience = Pipeline.backlogPatience(2_000)
        #expect(patience == 60_000)
        p.closeIdle(wallNow: wall + 2_000 + patience - 1) { _, _, _ in true }
        #expect(p.pending.isEmpty)
        // Offsets that never come as messages (transaction markers) do not keep windows open for ever.
        p.closeIdle(wallNow: wall + 2_000 + patience) { _, _, _ in true }
        #expect(p.pending.count == 1)
    }

    /// Late rows flushed by the idle close are named by the partition's offset, not the wall clock: a
    /// restart from a checkpoint taken before the flush, idle again later, writes the same file name with
    /// the same rows instead of a second file with a new stamp (which would count them twice).
    @Test func lateRowsFlushedByTheIdleCloseAreNamedByOffset() {
        func run(idleAt wall2: EpochMillis) -> [String: String] {
            let wall = Self.t0 + 86_400_000
            let p = pipelineWithOneEvent(wall: wall)
            p.closeIdle(wallNow: wall + 2_000)    // the minute closes by the wall clock
            let late = #"{"id":"b","timestamp":"2026-11-21T08:00:20Z","workflow":"w","owner":"o","model":"m","input_tokens":3}"#
            let r = Array(late.utf8).withUnsafeBytes {
                p.process($0, topicIndex: 0, partition: 0, offset: 8, messageTime: nil, wallNow: wall + 3_000)
            }
            #expect(r == .late)
            p.closeIdle(wallNow: wall2)
            var files: [String: String] = [:]
            for (w, writer) in p.pending {
                files[p.writer.relativePath(w, writer: writer)] = String(decoding: RollupEncoder().encode(
                    w, label: "1m", size: 60_000, dimensions: p.dimensions), as: UTF8.self)
            }
            return files
        }
        let first = run(idleAt: Self.t0 + 86_400_000 + 5_000)
        let again = run(idleAt: Self.t0 + 86_400_000 + 9_999)
        #expect(first.keys.sorted() == ["1m/2026-11-21/20261121T080000Z-t-p0-late-idle-o9.jsonl", "1m/2026-11-21/20261121T080000Z-t-p0.jsonl"])
        #expect(first == again, "the same names and rows whenever the idle close happens")
        #expect(first["1m/2026-11-21/20261121T080000Z-t-p0-late-idle-o9.jsonl"]?.contains(#""input_tokens":3,"#) == true)
    }
}

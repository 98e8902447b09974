import Testing
import TokenmeterCore

/// `state.max_memory` and the memory model it is compared with.
@Suite struct MemoryConfigTests {
    @Test func sizesParseWithBinaryAndDecimalUnits() {
        #expect(ByteSize.parse("512MiB")?.bytes == 512 << 20)
        #expect(ByteSize.parse("2GiB")?.bytes == 2 << 30)
        #expect(ByteSize.parse("1GB")?.bytes == 1_000_000_000)
        #expect(ByteSize.parse("4096B")?.bytes == 4096)
        for bad in ["", "MiB", "12", "1.5GiB", "-1MiB", "10mib", "99999999999TiB"] { #expect(ByteSize.parse(bad) == nil, "\(bad)") }
    }

    @Test func theCeilingIsOptionalAndCheckedWithItsPosition() {
        guard case .success(let none) = ConfigLoader.parse(text: "", file: "m.toml") else { Issue.record("empty config"); return }
        #expect(none.state.maxMemory == nil)
        guard case .success(let set) = ConfigLoader.parse(text: "[state]\nmax_memory = \"2GiB\"\n", file: "m.toml") else {
            Issue.record("a valid ceiling was refused"); return
        }
        #expect(set.state.maxMemory?.bytes == 2 << 30)
        for bad in ["\"2 GiB\"", "2147483648", "\"0MiB\""] {
            guard case .failure(let e) = ConfigLoader.parse(text: "[state]\nmax_memory = \(bad)\n", file: "m.toml") else {
                Issue.record("max_memory = \(bad) was accepted"); continue
            }
            #expect(e.description.hasPrefix("m.toml:2:14: error: `state.max_memory` must be a size"), "\(e)")
        }
    }

    @Test func theModelCountsRowsDedupIdsAndNames() {
        guard case .success(let c) = ConfigLoader.parse(text: "[rollups]\nwindows = [\"1h\"]\n", file: "m.toml") else { return }
        let p = Pipeline(config: c, instance: "t")
        let empty = p.estimatedStateBytes()
        for i in 0..<100 {
            let e = #"{"id":"m\#(i)","timestamp":"2026-11-21T08:00:10Z","workflow":"w\#(i)","owner":"o","input_tokens":1}"#
            _ = Array(e.utf8).withUnsafeBytes { p.process($0, topicIndex: 0, partition: 0, offset: Int64(i), messageTime: nil, wallNow: 0) }
        }
        let grown = p.estimatedStateBytes() - empty
        #expect(grown >= 100 * (Pipeline.bytesPerOpenRow + Pipeline.bytesPerDedupId))
        #expect(grown < 100 * (Pipeline.bytesPerOpenRow + Pipeline.bytesPerDedupId + 200))

        // The memory a checkpoint was encoded in is kept for the next one, and counted, until it is let go
        // (the daemon does when paused over its memory ceiling).
        let before = p.estimatedStateBytes()
        let record = p.checkpointBytes()
        let kept = p.estimatedStateBytes() - before
        #expect(kept >= record.count, "the kept output buffer holds at least the record")
        p.releaseCheckpointMemory()
        #expect(p.estimatedStateBytes() == before)
    }
}

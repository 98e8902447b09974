import Foundation
import Testing
import TokenmeterCore

/// `<repo>/../shared/testdata/<relative>` (in CI, `shared/` sits beside the clone).
func sharedTestdataPath(_ relative: String, file: String = #filePath) -> String {
    URL(fileURLWithPath: file)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared/testdata").appendingPathComponent(relative).path
}

/// Runs the real binary, capturing stdout and stderr.
func runTokenmeter(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Harness.binary)
    p.arguments = args
    // stderr goes to a file so that neither output can fill a pipe and block the child.
    let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("tokenmeter-stderr-\(UUID().uuidString)").path
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let errData = FileManager.default.contents(atPath: errPath) ?? Data()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// End to end: all real payloads of both recorded sets through `tokenmeter replay` with their prices.toml,
/// into rollup rows read back with Foundation's JSON parser (money from the line's text, never a Double),
/// checked per model against sums over expected.jsonl.
@Suite struct RealPayloadReplayTests {
    struct Sums: Equatable, CustomStringConvertible {
        var requests: Int64 = 0, input: Int64 = 0, cacheRead: Int64 = 0, cacheWrite: Int64 = 0
        var output: Int64 = 0, reasoning: Int64 = 0, unpriced: Int64 = 0
        var cost = Money.zero
        var description: String {
            "req=\(requests) in=\(input) cr=\(cacheRead) cw=\(cacheWrite) out=\(output) reas=\(reasoning) "
                + "unpriced=\(unpriced) cost=\(cost.decimalString(decimals: 15))"
        }
    }

    /// A set: its folder, events, contributions, and unpriced contributions under the corrected contract.
    static let sets: [(String, Int, Int64, Int64)] = [("real-payloads", 84, 86, 3), ("real-payloads-2", 99, 101, 7)]

    @Test(arguments: 0..<2)
    func replayOfAllRealPayloadsGivesTheExpectedRollups(_ setIndex: Int) throws {
        let (set, events, contributions, unpriced) = Self.sets[setIndex]
        let dir = try Harness.tempDir("realreplay")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let prices = try String(contentsOfFile: sharedTestdataPath("\(set)/prices.toml"), encoding: .utf8)
        let config = dir + "/tokenmeter.toml"
        try """
        [rollups]
        dir = "\(dir)/rollups"
        windows = ["1h"]
        instance = "golden"

        [state]
        dir = "\(dir)/state"

        \(prices)
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let dead = dir + "/dead.jsonl"
        let r = try runTokenmeter(["replay", "--config", config, "--dead-letters", dead,
                                   sharedTestdataPath("\(set)/events.jsonl")])
        #expect(r.status == 0, "replay failed: \(r.stderr)")
        #expect(r.stderr.contains("replayed \(events) lines: \(events) usage, 0 outcomes, 0 rejected, 0 duplicates, 0 late"), "\(r.stderr)")
        #expect((try? String(contentsOfFile: dead, encoding: .utf8)) == "")

        // Expected: sums per model over expected.jsonl.
        var want: [String: Sums] = [:]
        for line in try String(contentsOfFile: sharedTestdataPath("\(set)/expected.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            // real-70's block holds only `totalTokenCount`, which no row reads: under the corrected contract
            // (1b) its request counts as one whose cost is unknown (the first set's file predates that).
            let unrecognized = o["id"] as? String == "real-70"
            for c in try #require(o["contributions"] as? [[String: Any]]) {
                func n(_ k: String) -> Int64 { (c[k] as? NSNumber)?.int64Value ?? -1 }
                let model = (c["model"] as? String) ?? "<null>"
                var s = want[model] ?? Sums()
                s.requests += n("requests"); s.input += n("input"); s.cacheRead += n("cache_read")
                s.cacheWrite += n("cache_write"); s.output += n("output"); s.reasoning += n("reasoning")
                s.unpriced += unrecognized ? 1 : n("unpriced")
                let costText = try #require(c["cost"] as? String)
                s.cost += try #require(Money.parse(costText))
                want[model] = s
            }
        }

        // Got: the rollup rows.
        var got: [String: Sums] = [:]
        var files = 0
        let root = dir + "/rollups"
        let e = try #require(FileManager.default.enumerator(atPath: root))
        for case let rel as String in e where rel.hasSuffix(".jsonl") {
            files += 1
            #expect(rel.hasPrefix("1h/2026-11-20/20261120T120000Z-golden"), "\(rel)")
            for line in try String(contentsOfFile: root + "/" + rel, encoding: .utf8).split(separator: "\n") {
                let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                func n(_ k: String) -> Int64 { (o[k] as? NSNumber)?.int64Value ?? -1 }
                #expect(o["window"] as? String == "1h")
                #expect(o["late"] as? Bool == false)
                #expect(n("errors") == 0)
                let model = (o["model"] as? String) ?? "<null>"
                var s = got[model] ?? Sums()
                s.requests += n("requests"); s.input += n("input_tokens"); s.cacheRead += n("cache_read_tokens")
                s.cacheWrite += n("cache_write_tokens"); s.output += n("output_tokens"); s.reasoning += n("reasoning_tokens")
                s.unpriced += n("unpriced_requests")
                let costText = RollupSums.numberText(line, field: "cost_usd")
                let cost = try #require(Money.parse(costText), "cost_usd \(costText) in \(line)")
                // At most 9 decimals, exact.
                #expect(!costText.contains("e") && (costText.split(separator: ".").dropFirst().first?.count ?? 0) <= 9)
                s.cost += cost
                got[model] = s
            }
        }
        #expect(files == 1)
        #expect(Set(got.keys) == Set(want.keys))
        for (model, w) in want.sorted(by: { $0.key < $1.key }) {
            #expect(got[model] == w, "\(model):\n  got  \(got[model]?.description ?? "no rows")\n  want \(w)")
        }
        let total = want.values.reduce(Money.zero) { $0 + $1.cost }
        #expect(got.values.reduce(Money.zero) { $0 + $1.cost } == total)
        #expect(got.values.reduce(0) { $0 + $1.requests } == contributions)
        #expect(got.values.reduce(0) { $0 + $1.unpriced } == unpriced)
    }
}

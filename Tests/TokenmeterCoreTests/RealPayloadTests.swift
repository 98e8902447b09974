import Foundation
import Testing
@testable import TokenmeterCore

/// The repository's sibling `shared/testdata` (in CI, `shared/` is copied beside the clone).
func sharedTestdata(_ relative: String, file: String = #filePath) -> URL {
    // <repo>/Tests/TokenmeterCoreTests/X.swift -> <repo>/../shared/testdata/<relative>
    URL(fileURLWithPath: file)
        .deletingLastPathComponent()   // TokenmeterCoreTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // <repo>
        .deletingLastPathComponent()   // parent of <repo>
        .appendingPathComponent("shared/testdata")
        .appendingPathComponent(relative)
}

func jsonLines(_ url: URL) throws -> [String] {
    let text = try String(contentsOf: url, encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
}

struct Buckets: Equatable, CustomStringConvertible {
    var requests = 0
    var input: Int64 = 0, cacheRead: Int64 = 0, cacheWrite: Int64 = 0, cacheWrite1h: Int64 = 0
    var output: Int64 = 0, reasoning: Int64 = 0
    var description: String {
        "req=\(requests) in=\(input) cr=\(cacheRead) cw=\(cacheWrite) cw1h=\(cacheWrite1h) out=\(output) reas=\(reasoning)"
    }
}

/// Per-model token buckets of the decoder's current event (requests = contributions per model).
func bucketsByModel(_ d: EventDecoder) -> [String: Buckets] {
    var out: [String: Buckets] = [:]
    for c in d.event.contributions {
        let m = d.string(c.model) ?? "<null>"
        var b = out[m] ?? Buckets()
        b.requests += 1
        b.input += c.tokens.input; b.cacheRead += c.tokens.cacheRead; b.cacheWrite += c.tokens.cacheWrite
        b.cacheWrite1h += c.tokens.cacheWrite1h; b.output += c.tokens.output; b.reasoning += c.tokens.reasoning
        out[m] = b
    }
    return out
}

@Suite("Real provider payloads")
struct RealPayloadTests {
    @Test(arguments: [("real-payloads", 84), ("real-payloads-2", 99)])
    func everyPayloadMatchesExpectedBuckets(_ set: String, _ count: Int) throws {
        let events = try jsonLines(sharedTestdata("\(set)/events.jsonl"))
        let expected = try jsonLines(sharedTestdata("\(set)/expected.jsonl"))
        #expect(events.count == count)
        #expect(expected.count == events.count)
        var wantByID: [String: [String: Buckets]] = [:]
        for line in expected {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try #require(obj["id"] as? String)
            var per: [String: Buckets] = [:]
            for c in try #require(obj["contributions"] as? [[String: Any]]) {
                let model = (c["model"] as? String) ?? "<null>"
                func n(_ k: String) -> Int64 { (c[k] as? NSNumber)?.int64Value ?? -1 }
                per[model] = Buckets(requests: Int(n("requests")), input: n("input"), cacheRead: n("cache_read"),
                                     cacheWrite: n("cache_write"), cacheWrite1h: n("cache_write_1h"),
                                     output: n("output"), reasoning: n("reasoning"))
            }
            wantByID[id] = per
        }
        let d = EventDecoder()
        var checked = 0
        for line in events {
            let r = d.decode(line)
            #expect(r == nil, "\(line.prefix(80)): \(r?.description ?? "")")
            guard r == nil else { continue }
            let id = try #require(d.string(d.event.id))
            let want = try #require(wantByID[id], "no expectation for \(id)")
            let got = bucketsByModel(d)
            #expect(got == want, "\(id): got \(got), want \(want)")
            #expect(d.string(d.event.workflow)?.hasPrefix("real-") == true)
            #expect(d.string(d.event.owner) == "real-data")
            #expect(d.event.timestamp == RFC3339.parse("2026-11-20T12:00:00Z"))
            checked += 1
        }
        #expect(checked == count)
    }

    @Test func realPayloadProvidersAndTiers() throws {
        let events = try jsonLines(sharedTestdata("real-payloads/events.jsonl"))
        let d = EventDecoder()
        var byID: [String: String] = [:]
        for line in events { byID[String(line.split(separator: "\"")[3])] = line }
        func decode(_ id: String) throws {
            let r = d.decode(try #require(byID[id]))
            #expect(r == nil)
        }
        try decode("real-36"); #expect(d.string(d.event.serviceTier) == "standard")   // from the Anthropic block
        try decode("real-72"); #expect(d.string(d.event.provider) == "google-gla")    // gen_ai.system
        try decode("real-75"); #expect(d.string(d.event.provider) == "openai")        // gen_ai.provider.name
        try decode("real-82"); #expect(d.event.provider.isAbsent)                     // no block, no provider
        #expect(d.event.contributions.first?.model.isAbsent == true)
    }
}

import Foundation
import Testing
import TokenmeterCore

/// The demo's generated traffic (`tokenmeter generate`, every wire shape, events with and without a
/// `provider`) through `tokenmeter replay` with the demo's configuration: no rollup row has a null
/// provider for a model whose name starts with a prefix of the provider table (contract 1b), so
/// `report --by model,provider` shows one row per model, not a named one and a `-` one.
@Suite struct DemoProvidersTests {
    @Test func replayOfTheDemosTrafficNamesAProviderForEveryKnownModel() throws {
        let dir = try Harness.tempDir("demoproviders")
        let events = dir + "/events.jsonl"
        let gen = try runTokenmeter(["generate", "--events", "3000", "--seed", "7", "--start", "2026-11-20T00:00:00Z", "--span", "6h"])
        #expect(gen.status == 0, "\(gen.stderr)")
        try gen.stdout.write(toFile: events, atomically: true, encoding: .utf8)
        // The input really has events that name no provider (else this test would prove nothing).
        let withoutProvider = gen.stdout.split(separator: "\n").filter {
            !$0.contains("\"provider\"") && !$0.contains("gen_ai.provider.name") && !$0.contains("gen_ai.system")
                && !$0.contains("\"type\":\"outcome\"") && $0.contains("\"model\"")
        }
        #expect(withoutProvider.count > 100, "\(withoutProvider.count)")

        let demo = try String(contentsOfFile: CommandLineTests.repoRoot + "/config/demo.toml", encoding: .utf8)
            .replacingOccurrences(of: "/tmp/tokenmeter-demo", with: dir)
        try demo.write(toFile: dir + "/demo.toml", atomically: true, encoding: .utf8)
        let r = try runTokenmeter(["replay", "--config", dir + "/demo.toml", events])
        #expect(r.status == 0, "\(r.stderr)")

        let table = ProviderPrefixes()
        var rows = 0, named = 0
        let root = dir + "/rollups"
        let e = try #require(FileManager.default.enumerator(atPath: root))
        for case let rel as String in e where rel.hasSuffix(".jsonl") {
            for line in try String(contentsOfFile: root + "/" + rel, encoding: .utf8).split(separator: "\n") {
                let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                guard let model = o["model"] as? String else { continue }   // outcome rows
                rows += 1
                // The block's or the event's provider may differ from the name's (Gemini through its
                // OpenAI-compatible endpoint is `openai`), but it is never missing.
                guard table.provider(forModel: model) != nil else { continue }
                named += 1
                #expect(o["provider"] as? String != nil, "null provider for \(model) in \(rel)")
            }
        }
        #expect(rows > 0 && named == rows, "\(named) of \(rows) rows have a model in the table")
    }

    /// `check-config --print` shows the effective prefix table: built-in entries, the file's additions and
    /// its overrides; a bad entry is a `FILE:LINE:COL` problem and exit 78.
    @Test func checkConfigPrintsTheEffectiveProviderTable() throws {
        let dir = try Harness.tempDir("prefixes")
        let path = dir + "/t.toml"
        try "[provider_prefixes]\n\"llama-\" = \"meta\"\n\"grok-\" = \"x-ai\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runTokenmeter(["check-config", "--config", path, "--print"])
        #expect(r.status == 0, "\(r.stderr)")
        let section = r.stdout.components(separatedBy: "[provider_prefixes]\n").dropFirst().first?.components(separatedBy: "\n\n").first ?? ""
        let lines = Set(section.split(separator: "\n").map(String.init))
        #expect(lines.isSuperset(of: ["\"llama-\" = \"meta\"", "\"grok-\" = \"x-ai\"", "\"claude-\" = \"anthropic\"",
                                      "\"us.anthropic.\" = \"bedrock\""]), "\(section)")
        #expect(!lines.contains("\"grok-\" = \"xai\""))
        try "[provider_prefixes]\n\"llama-\" = 7\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = try runTokenmeter(["check-config", "--config", path])
        #expect(bad.status == 78)
        #expect(bad.stderr.contains("\(path):2:12: error: `provider_prefixes.\"llama-\"` must be a provider name"), "\(bad.stderr)")
    }
}

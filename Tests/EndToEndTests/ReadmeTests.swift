import Foundation
import Testing

/// The README stays true: its quick start runs as written (scripts/readme-test.sh: every marked shell
/// block in order, in an empty folder, with the development broker and this build's binary), and the
/// pages it links to exist.
@Suite struct ReadmeTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs a script of the repository; its stdout and stderr, together, go to `log`.
    static func script(_ name: String, _ args: [String] = [], environment: [String: String] = [:], log: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [repository.appendingPathComponent(name).path] + args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        FileManager.default.createFile(atPath: log, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test(.timeLimit(.minutes(5)))
    func quickStartRunsAsWritten() throws {
        let dir = try Harness.tempDir("readme")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/readme-test.log"
        let bin = URL(fileURLWithPath: Harness.binary).deletingLastPathComponent().path
        let status = try Self.script("scripts/readme-test.sh",
                                     environment: ["TOKENMETER_BIN_DIR": bin, "README_TEST_TIMEOUT": "240", "README_TEST_KEEP": "1"],
                                     log: log)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        // The script's folder (kept for this check): `... (script S, folder F)`.
        let folder = output.range(of: ", folder ").map { r in String(output[r.upperBound...].prefix { $0 != ")" }) }
        defer { if let folder { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: folder).deletingLastPathComponent().path) } }
        #expect(status == 0, "scripts/readme-test.sh failed:\n\(output.suffix(4000))")
        // Every block of the set-up and quick start is either run or skipped with a stated reason.
        #expect(output.contains("readme-test: 4 blocks run, 4 skipped"), "\(output.suffix(2000))")
        // What the README says the quick start shows: spend by owner, and the alerts of its rules.
        #expect(output.contains("finance-ops") && output.contains("platform-eng"))
        #expect(output.contains("budget_threshold company-daily"), "\(output.suffix(3000))")
        #expect(output.contains("unpriced_model"), "\(output.suffix(3000))")

        // The daemon counted every event by the time the README stops it: its files give the same report
        // as a replay of the same events with the same configuration.
        let tryDir = try #require(folder, "no folder in the script's output") + "/tokenmeter-try"
        let config = try String(contentsOfFile: tryDir + "/tokenmeter.toml", encoding: .utf8)
            .replacingOccurrences(of: "dir = \"rollups\"", with: "dir = \"\(dir)/replay-rollups\"")
            .replacingOccurrences(of: "dir = \"state\"", with: "dir = \"\(dir)/replay-state\"")
        try config.write(toFile: dir + "/replay.toml", atomically: true, encoding: .utf8)
        let replay = try runTokenmeter(["replay", "--config", dir + "/replay.toml", tryDir + "/events.jsonl"])
        #expect(replay.status == 0, "\(replay.stderr)")
        // Every figure per owner; not the last column, `rollup_rows`: four partitions write more rows than one.
        func report(_ rollups: String) throws -> [Substring] {
            let r = try runTokenmeter(["report", "--dir", rollups, "--window", "1d", "--by", "owner", "--format", "csv"])
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\r\n")
            #expect(lines.first?.hasSuffix(",rollup_rows") == true)
            return lines.map { $0[..<($0.lastIndex(of: ",") ?? $0.endIndex)] }
        }
        let fromDaemon = try report(tryDir + "/rollups")
        #expect(fromDaemon.count == 9 && fromDaemon.contains { $0.hasPrefix("finance-ops,") }, "\(fromDaemon)")
        #expect(fromDaemon == (try report(dir + "/replay-rollups")))
    }

    /// The README's sample events (its ```json blocks) are accepted as they are written, by `replay`.
    @Test(.timeLimit(.minutes(2)))
    func sampleEventsAreAccepted() throws {
        let dir = try Harness.tempDir("readme-events")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        var events: [String] = []
        var block: [Substring]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```json") { block = []; continue }
            if line.hasPrefix("```"), let b = block {
                // One event per block, written over several lines: one line for replay.
                let object = try JSONSerialization.jsonObject(with: Data(b.joined(separator: "\n").utf8))
                events.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
                block = nil
                continue
            }
            block?.append(line)
        }
        #expect(events.count == 2, "a usage event and an outcome event")
        try events.joined(separator: "\n").write(toFile: dir + "/events.jsonl", atomically: true, encoding: .utf8)
        try "[rollups]\ndir = \"\(dir)/rollups\"\n[state]\ndir = \"\(dir)/state\"\n"
            .write(toFile: dir + "/c.toml", atomically: true, encoding: .utf8)
        let (status, out, err) = try runTokenmeter(["replay", "--config", dir + "/c.toml", dir + "/events.jsonl"])
        #expect(status == 0, "\(err)")
        #expect((out + err).contains("1 usage, 1 outcomes, 0 rejected"), "\(out)\(err)")
    }

    @Test func everyLinkOfTheDocumentationResolves() throws {
        let dir = try Harness.tempDir("doc-links")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let status = try Self.script("scripts/doc-links.sh", log: dir + "/doc-links.log")
        #expect(status == 0, "\((try? String(contentsOfFile: dir + "/doc-links.log", encoding: .utf8)) ?? "")")
    }

    @Test func readmeIsShortAndTheRepositoryStandsAlone() throws {
        let readme = try Data(contentsOf: Self.repository.appendingPathComponent("README.md"))
        #expect(readme.count < 25_000, "README.md is \(readme.count) bytes: move detail to docs/")
        // Nothing a user reads, builds or installs may send them outside the repository.
        var offenders: [String] = []
        for top in ["README.md", "docs", "Sources", "config", "systemd"] {
            let root = Self.repository.appendingPathComponent(top)
            let files: [URL]
            if top.hasSuffix(".md") {
                files = [root]
            } else {
                files = (FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL }) ?? []
            }
            for f in files {
                guard let text = try? String(contentsOf: f, encoding: .utf8) else { continue }
                if text.contains("../shared") { offenders.append(f.path) }
            }
        }
        #expect(offenders.isEmpty, "these refer to ../shared: \(offenders)")
    }
}

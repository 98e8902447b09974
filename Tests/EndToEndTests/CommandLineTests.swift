import Foundation
import Testing
import TokenmeterCore
import TokenmeterDaemon

/// The command line as a user meets it: exit codes and messages of the real binary.
@Suite struct CommandLineTests {
    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    func runCapturing(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func badConfigGivesEveryProblemWithPositionAndExit78() throws {
        let dir = try Harness.tempDir("badconfig")
        let path = dir + "/bad.toml"
        try """
        [kafka]
        brokers = "127.0.0.1:9092"
        topicz = ["llm-usage"]

        [rollups]
        grace = "soon"

        [[price]]
        model = "gpt-4o"
        input = "cheap"
        output = 10.0
        """.write(toFile: path, atomically: true, encoding: .utf8)
        for command in ["check-config", "run"] {
            let r = try runCapturing([command, "--config", path])
            #expect(r.status == 78, "\(command) must exit 78")
            let lines = r.stderr.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("\(path):3:1: error:") && $0.contains("topicz") && $0.contains("topics") })
            #expect(lines.contains { $0.hasPrefix("\(path):6:9: error:") })
            #expect(lines.contains { $0.hasPrefix("\(path):10:9: error:") })
        }
    }

    @Test func exampleConfigIsValid() throws {
        let path = Self.repoRoot + "/config/tokenmeter.toml"
        let r = try runCapturing(["check-config", "--file-only", "--config", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(": ok ("))
        // On this machine the example's secret file does not exist: the start checks say so at its line.
        guard !FileManager.default.fileExists(atPath: "/run/credentials/tokenmeter.service/kafka-password") else { return }
        let full = try runCapturing(["check-config", "--config", path])
        #expect(full.status == 78)
        // The position of the secret file's path in the example (line counted here, so comments may move it).
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let line = (lines.firstIndex { $0.hasPrefix("\"sasl.password\" = ") } ?? -1) + 1
        // The value's opening quote: the character before its first "/".
        let column = lines.first { $0.hasPrefix("\"sasl.password\" = ") }?.firstIndex(of: "/")?.utf16Offset(in: lines[line - 1]) ?? -1
        #expect(full.stderr.contains("\(path):\(line):\(column): error: `kafka.secret_files.\"sasl.password\"`: cannot open "
                                     + "/run/credentials/tokenmeter.service/kafka-password: No such file or directory"), "\(full.stderr)")
    }

    @Test func versionNamesTheVersionAndTheCommit() throws {
        let r = try runCapturing(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("tokenmeter \(BuildInfo.version) (commit "), "\(r.stdout)")
        #expect(r.stdout.contains(BuildInfo.gitCommit), "\(r.stdout)")
    }

    /// `produce` to an address where no broker answers gives up after `--timeout` with exit 69 (EX_UNAVAILABLE),
    /// naming the address, instead of waiting for librdkafka's default 300 s.
    @Test func produceToNoBrokerGivesUpAfterItsTimeout() throws {
        let dir = try Harness.tempDir("produce-timeout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"workflow":"w","owner":"o"}"#.write(toFile: dir + "/one.jsonl", atomically: true, encoding: .utf8)
        let started = Date()
        let r = try runCapturing(["produce", "--brokers", "127.0.0.1:1", "--topic", "t", "--timeout", "2s", dir + "/one.jsonl"])
        let seconds = Date().timeIntervalSince(started)
        #expect(r.status == 69)
        #expect(seconds >= 2 && seconds < 20, "took \(seconds) s")
        #expect(r.stderr.contains("no broker at 127.0.0.1:1 took the messages within 2s"), "\(r.stderr)")
    }

    /// A missing input is EX_NOINPUT (66) for every command that reads one.
    @Test func aMissingInputIsExit66Everywhere() throws {
        let missing = "/nonexistent/tokenmeter-input"
        for args in [["produce", "--brokers", "127.0.0.1:1", "--topic", "t", missing],
                     ["replay", "--config", Self.repoRoot + "/config/demo.toml", missing],
                     ["report", "--dir", missing]] {
            let r = try runCapturing(args)
            #expect(r.status == 66, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains(missing), "\(args[0]): \(r.stderr)")
        }
    }

    /// `alerts` says on stderr what it waits for, so that an empty screen is not read as "no alerts".
    @Test func alertsSaysWhatItWaitsFor() throws {
        let dir = try Harness.tempDir("alerts-hint")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-alerts"], log: dir + "/broker.log")
        defer { broker.stop() }
        for (args, hint) in [([String](), "--from-beginning shows the ones already there"),
                             (["--from-beginning"], "from its oldest retained alert")] {
            let log = dir + "/alerts.log"
            let p = try Harness.start(["alerts", "--brokers", broker.bootstrap] + args, log: log)
            let said = Harness.await(seconds: 20) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(hint) }
            kill(p.processIdentifier, SIGINT)
            p.waitUntilExit()
            #expect(said, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            #expect(p.terminationStatus == 0)
        }
    }

    @Test func demoConfigFileIsTheEmbeddedOne() throws {
        let file = try String(contentsOfFile: Self.repoRoot + "/config/demo.toml", encoding: .utf8)
        #expect(file == DemoConfiguration.toml)
        if case .failure(let e) = ConfigLoader.parse(text: DemoConfiguration.toml, file: "demo.toml") {
            Issue.record("demo config invalid: \(e)")
        }
    }
}

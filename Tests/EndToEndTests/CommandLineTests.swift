import Foundation
import Testing
import TokenmeterCore
import TokenmeterDaemon
import TrafficGenerator

/// The command line as a user meets it: exit codes and messages of the real binary.
@Suite struct CommandLineTests {
    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    func runCapturing(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
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
        defer { try? FileManager.default.removeItem(atPath: dir) }
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

    /// The example config includes config/prices.toml: `--print` shows each included price with its file and
    /// line, and `prices check` of generated traffic finds a price for every model but the one the generator
    /// leaves unpriced on purpose (its Bedrock Llama, which the unpriced-model alert is tested with).
    @Test(.timeLimit(.minutes(1)))
    func exampleConfigIncludesThePriceList() throws {
        let dir = try Harness.tempDir("example-prices")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = Self.repoRoot + "/config/tokenmeter.toml"
        let printed = try runCapturing(["check-config", "--file-only", "--print", "--config", path])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("[[price]]  # \(Self.repoRoot)/config/prices.toml:"), "\(printed.stdout.prefix(3000))")
        let generated = try runCapturing(["generate", "--events", "3000", "--seed", "7"])
        try generated.stdout.write(toFile: dir + "/events.jsonl", atomically: true, encoding: .utf8)
        let check = try runCapturing(["prices", "check", "--json", "--config", path, dir + "/events.jsonl"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any], "\(check.stderr)")
        let models = try #require(json["models"] as? [[String: Any]])
        #expect(models.count > 10)
        let unpriced = Set(models.filter { ($0["unpriced_requests"] as? Int ?? 0) > 0 }.compactMap { $0["model"] as? String })
        #expect(unpriced == ["meta.llama3-3-70b-instruct-v1:0"], "\(unpriced)")
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

    /// A mistake on a subcommand's line is exit 64 with that subcommand's usage (not the top-level one), and a
    /// negative number is a bad value, not a missing one.
    @Test func subcommandMistakesPrintTheSubcommandsUsage() throws {
        let cases: [([String], String)] = [
            (["replay", "--bogus", "x"], "Unknown option '--bogus'"),
            (["report", "--dir", "/tmp", "--by", "nope"], "unknown --by key 'nope'"),
            (["report", "--dir", "/tmp", "--format", "xx"], "--format must be one of"),
            (["report", "--dir", "/tmp", "--top", "-1"], "--top must be at least 1"),
            (["report", "--dir", "/tmp", "--from", "yesterday"], "--from: not RFC 3339 or a date"),
            (["generate", "--events", "-5"], "--events must be positive, got -5"),
            (["generate", "--late", "2"], "--late must be a share from 0 to 1"),
            (["broker", "--partitions", "0"], "--partitions must be 1...10000"),
            (["demo", "--events", "-3"], "--events must be positive, got -3"),
        ]
        for (args, message) in cases {
            let r = try runCapturing(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("Error: \(message)"), "\(args): \(r.stderr)")
            #expect(r.stderr.contains("Usage: tokenmeter \(args[0]) "), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("tokenmeter <subcommand>"), "\(args): \(r.stderr)")
        }
    }

    /// Rollups of a few hours of generated traffic, replayed with the end-to-end config (tags = ["environment"]).
    static func replayedRollups(_ dir: String) throws -> (rollups: String, config: String) {
        let config = dir + "/c.toml"
        try Harness.configText(brokers: "127.0.0.1:9", group: "g", topic: "t", dlq: "t-dlq", rollups: dir + "/rollups",
                               state: dir + "/state", idleClose: "2s", windows: ["1h", "1d"])
            .write(toFile: config, atomically: true, encoding: .utf8)
        var c = TrafficConfig(seed: 20, start: RFC3339.parse("2026-11-10T00:00:00Z")!, events: 600, spanMillis: 6 * 3_600_000)
        c.badFraction = 0
        var gen = TrafficGenerator(c)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: [])
        try gen.write(count: 600, toFile: dir + "/events.jsonl", into: &expected)
        guard try Harness.run(["replay", "--config", config, dir + "/events.jsonl"], log: dir + "/replay.log") == 0 else {
            throw HarnessError("replay failed; see \(dir)/replay.log")
        }
        return (dir + "/rollups", config)
    }

    /// `report --help` at the default width of 80 columns: no line is wider, and every example, copied as
    /// printed (continuation lines included) with DIR and CONFIG filled in, runs and exits 0.
    @Test(.timeLimit(.minutes(2)))
    func reportHelpExamplesRunAsPrinted() throws {
        let dir = try Harness.tempDir("report-help")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let help = try runCapturing(["report", "--help"], environment: ["COLUMNS": "80"])
        #expect(help.status == 0)
        let lines = help.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for l in lines { #expect(l.count <= 80, "wider than 80 columns: \(l)") }
        var examples: [String] = []
        var current: String? = nil
        for l in lines {
            let t = l.trimmingCharacters(in: .whitespaces)
            if current == nil && !t.hasPrefix("tokenmeter report ") { continue }
            current = (current.map { $0 + " " } ?? "") + (t.hasSuffix("\\") ? String(t.dropLast()).trimmingCharacters(in: .whitespaces) : t)
            if !t.hasSuffix("\\") { examples.append(current!); current = nil }
        }
        #expect(examples.count >= 6, "\(help.stdout)")
        #expect(examples.contains { $0.contains("--format focus > focus.csv") && $0.contains("--to 2026-12-01") })
        let (rollups, config) = try Self.replayedRollups(dir)
        let binDir = URL(fileURLWithPath: Harness.binary).deletingLastPathComponent().path
        for example in examples {
            let command = example.replacingOccurrences(of: "DIR", with: rollups).replacingOccurrences(of: "CONFIG", with: config)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            p.environment = ProcessInfo.processInfo.environment.merging(["PATH": binDir + ":/usr/bin:/bin"]) { $1 }
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(example): \(e)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/focus.csv") && FileManager.default.fileExists(atPath: dir + "/spend.html"))
    }

    /// Grouping or filtering by a tag no rollup row carries says so on stderr, naming the tags the rows do carry.
    @Test func aTagTheRollupsDoNotKeepIsWarnedAbout() throws {
        let dir = try Harness.tempDir("report-tag")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (rollups, _) = try Self.replayedRollups(dir)
        let missing = try runCapturing(["report", "--dir", rollups, "--by", "tag:customer"])
        #expect(missing.status == 0)
        #expect(missing.stderr.contains("warning: no rollup row read carries the tag 'customer'; the rows carry the tags: environment"),
                "\(missing.stderr)")
        let filtered = try runCapturing(["report", "--dir", rollups, "--tag", "team=ml"])
        #expect(filtered.stderr.contains("the tag 'team'"), "\(filtered.stderr)")
        let kept = try runCapturing(["report", "--dir", rollups, "--by", "tag:environment"])
        #expect(kept.status == 0 && !kept.stderr.contains("warning"), "\(kept.stderr)")
        #expect(kept.stdout.contains("production") || kept.stdout.contains("staging"), "\(kept.stdout)")
    }

    /// The mock cluster gives a topic a client creates by using it 4 partitions, whatever `--partitions` says
    /// (librdkafka 2.0.2 cannot change that): the broker names such a topic on stderr, with the fix.
    @Test(.timeLimit(.minutes(1)))
    func brokerNamesTheTopicsClientsCreate() throws {
        let dir = try Harness.tempDir("broker-autocreate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try Harness.Broker(partitions: 8, topics: ["listed"], log: dir + "/broker.log")
        defer { broker.stop() }
        try #"{"workflow":"w","owner":"o"}"#.write(toFile: dir + "/one.jsonl", atomically: true, encoding: .utf8)
        for topic in ["listed", "unlisted"] {
            #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", topic, "--timeout", "20s", dir + "/one.jsonl"],
                                    log: dir + "/produce.log") == 0)
        }
        let expected = "warning: topic 'unlisted' was created by a client that used it, with 4 partition(s) (the mock cluster's "
            + "fixed default), not --partitions 8; list it with --topic unlisted to get 8"
        let said = Harness.await(seconds: 10) { ((try? String(contentsOfFile: broker.log, encoding: .utf8)) ?? "").contains(expected) }
        let log = (try? String(contentsOfFile: broker.log, encoding: .utf8)) ?? ""
        #expect(said, "\(log)")
        #expect(!log.contains("topic 'listed'"), "\(log)")
        #expect(log.components(separatedBy: "topic 'unlisted'").count == 2, "said once: \(log)")
    }

    /// A configuration without `kafka.brokers` is a configuration error for what connects (check-config, run),
    /// at the [kafka] table (or the top of a file without one); replay reads the same file without Kafka and
    /// does not need it.
    @Test func aConfigWithoutBrokersIsAConfigError() throws {
        let dir = try Harness.tempDir("no-brokers")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/c.toml"
        try """
        # no brokers
        [kafka]
        topics = ["llm-usage"]

        [rollups]
        dir = "\(dir)/rollups"

        [state]
        dir = "\(dir)/state"
        """.write(toFile: path, atomically: true, encoding: .utf8)
        for args in [["check-config", "--config", path], ["check-config", "--file-only", "--config", path], ["run", "--config", path]] {
            let r = try runCapturing(args)
            #expect(r.status == 78, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("\(path):2:2: error: `kafka.brokers` is not set"), "\(args): \(r.stderr)")
        }
        try #"{"workflow":"w","owner":"o","model":"gpt-4o","timestamp":"2026-11-10T10:00:00Z","usage":{"prompt_tokens":1,"completion_tokens":1}}"#
            .write(toFile: dir + "/one.jsonl", atomically: true, encoding: .utf8)
        let replay = try runCapturing(["replay", "--config", path, dir + "/one.jsonl"])
        #expect(replay.status == 0, "\(replay.stderr)")
        // A price list (only [[price]] entries, as config/prices.toml) is not a daemon's config: no brokers asked.
        let prices = try runCapturing(["check-config", "--config", Self.repoRoot + "/config/prices.toml"])
        #expect(prices.status == 0, "\(prices.stderr)")
        try "".write(toFile: dir + "/empty.toml", atomically: true, encoding: .utf8)
        #expect(try runCapturing(["check-config", "--file-only", "--config", dir + "/empty.toml"]).status == 78)
    }

    /// librdkafka reports a broker it cannot reach both as a log line and to the error callback: the daemon
    /// logs it once.
    @Test(.timeLimit(.minutes(1)))
    func anUnreachableBrokerIsLoggedOncePerFailure() throws {
        let dir = try Harness.tempDir("kafka-once")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/c.toml"
        try Harness.configText(brokers: "127.0.0.1:1", group: "g", topic: "t", dlq: "t-dlq", rollups: dir + "/rollups",
                               state: dir + "/state", idleClose: "2s")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let log = dir + "/run.log"
        let p = try Harness.start(["run", "--config", config], log: log)
        func text() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        // Two failed connection attempts of the consumer, and its "all brokers down".
        let seen = Harness.await(seconds: 20) {
            text().contains("brokers are down") && text().components(separatedBy: "Connect to ipv4#127.0.0.1:1 failed").count > 3
        }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(seen, "\(text())")
        let lines = text().split(separator: "\n")
        #expect(lines.contains { $0.contains("librdkafka:") && $0.contains("Connect to ipv4#127.0.0.1:1 failed") })
        #expect(!lines.contains { $0.contains("kafka: KafkaError") && $0.contains("Connect to ipv4#127.0.0.1:1 failed") }, "\(text())")
    }

    /// The demo's last line is "Finished in ...": every Kafka client and the broker are gone before it, so
    /// nothing of theirs can print after it.
    @Test(.timeLimit(.minutes(2)))
    func demoPrintsNothingAfterFinished() throws {
        let dir = try Harness.tempDir("demo-finished")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = ["demo", "--events", "2000", "--seconds", "1", "--dir", dir + "/demo"]
        let both = Pipe()
        p.standardOutput = both
        p.standardError = both
        try p.run()
        let out = String(decoding: both.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(out)")
        let lines = out.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(lines.last?.hasPrefix("Finished in ") == true, "\(out.suffix(2000))")
        #expect(!lines.contains { $0.hasPrefix("%") }, "raw librdkafka lines: \(out)")
    }

    @Test func demoConfigFileIsTheEmbeddedOne() throws {
        let file = try String(contentsOfFile: Self.repoRoot + "/config/demo.toml", encoding: .utf8)
        #expect(file == DemoConfiguration.toml)
        if case .failure(let e) = ConfigLoader.parse(text: DemoConfiguration.toml, file: "demo.toml") {
            Issue.record("demo config invalid: \(e)")
        }
    }
}

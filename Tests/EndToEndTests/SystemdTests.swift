import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TokenmeterCore
import TrafficGenerator
import TokenmeterDaemon

/// The daemon as systemd and an SRE meet it: the unit file, sd_notify, SIGHUP reloads and /metrics,
/// against real `tokenmeter broker` and `tokenmeter run` processes.
@Suite struct SystemdTests {
    static var unitPath: String { CommandLineTests.repoRoot + "/systemd/tokenmeter.service" }

    /// `systemd-analyze`, or a test failure: CI (`.ci/run`) installs it; a skip would hide a broken unit.
    static func systemdAnalyze() throws -> String {
        for p in ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        throw HarnessError("systemd-analyze is not installed (apt-get install systemd); .ci/run installs it")
    }

    static func capture(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The unit with its binary path pointing at the tokenmeter under test (verify checks it is executable), in
    /// a temporary folder of its own: the caller removes the folder.
    static func unitUnderTest() throws -> String {
        let dir = try Harness.tempDir("unit")
        let text = try String(contentsOfFile: unitPath, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/tokenmeter", with: Harness.binary)
        let path = dir + "/tokenmeter.service"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func unitVerifiesWithoutWarnings() throws {
        let analyze = try Self.systemdAnalyze()
        let unit = try Self.unitUnderTest()
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: unit).deletingLastPathComponent().path) }
        let r = try Self.capture(analyze, ["verify", unit])
        #expect(r.status == 0, "systemd-analyze verify failed: \(r.output)")
        #expect(r.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze verify warned:\n\(r.output)")
        let text = try String(contentsOfFile: Self.unitPath, encoding: .utf8)
        for line in ["Type=notify", "WatchdogSec=", "RestartPreventExitStatus=78", "Restart=on-failure", "StartLimitBurst=",
                     "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectoryMode=0750", "LoadCredential=kafka-password:",
                     "SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM", "TimeoutStopSec=30s", "--shutdown-timeout 20"] {
            #expect(text.contains(line), "the unit lacks \(line)")
        }
        let settings = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(!settings.contains { $0.hasPrefix("SystemCallFilter=") && $0.contains("@resources") }, "~@resources kills a Swift binary (libdispatch calls setpriority)")
    }

    @Test func securityExposureIsAtMostTwo() throws {
        let analyze = try Self.systemdAnalyze()
        let unit = try Self.unitUnderTest()
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: unit).deletingLastPathComponent().path) }
        let r = try Self.capture(analyze, ["security", "--offline=true", unit])
        let line = r.output.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = line.flatMap { l in l.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) } }
        #expect(score != nil, "no score in: \(r.output.suffix(500))")
        if let score { #expect(score <= 2.0, "exposure \(score) > 2.0") ; print("systemd-analyze security: \(score)") }
    }

    // MARK: sd_notify

    /// A fake `$NOTIFY_SOCKET`: a Unix datagram socket that records every message.
    final class NotifyListener: @unchecked Sendable {
        let path: String
        private let fd: Int32
        private let lock = NSLock()
        private var received: [String] = []
        private var closed = false

        init(dir: String) throws {
            path = dir + "/notify.sock"
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard fd >= 0, rc == 0 else { throw HarnessError("cannot bind \(path)") }
            var tv = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            Thread.detachNewThread { [self] in
                var buf = [UInt8](repeating: 0, count: 4096)
                while !isClosed {
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n > 0 { lock.withLock { received.append(String(decoding: buf[0..<n], as: UTF8.self)) } }
                }
            }
        }

        var isClosed: Bool { lock.withLock { closed } }
        var messages: [String] { lock.withLock { received } }
        func close() { lock.withLock { closed = true } }
        deinit { Glibc.close(fd) }
    }

    @Test(.timeLimit(.minutes(3)))
    func notifiesReadyWatchdogReloadAndStopping() throws {
        let dir = try Harness.tempDir("notify")
        let broker = try Harness.Broker(partitions: 2, topics: ["notify", "notify-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }
        let config = dir + "/tokenmeter.toml"
        try Harness.configText(brokers: broker.bootstrap, group: "notify", topic: "notify", dlq: "notify-dlq",
                               rollups: dir + "/rollups", state: dir + "/state", idleClose: "2s")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let listener = try NotifyListener(dir: dir)
        defer { listener.close() }
        let daemon = try Harness.start(["run", "--config", config], log: dir + "/run.log",
                                       environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000"])
        defer { if daemon.isRunning { daemon.terminate() } }
        func index(_ prefix: String, after start: Int = 0) -> Int? {
            let m = listener.messages
            return m.indices.first { $0 >= start && m[$0].split(separator: "\n").contains { $0.hasPrefix(prefix) } }
        }

        #expect(Harness.await(seconds: 30) { index("READY=1") != nil }, "no READY=1; see \(dir)/run.log; got \(listener.messages)")
        let ready = index("READY=1") ?? 0

        // Consuming: watchdog pings keep coming from the loop.
        var gen = TrafficGenerator(TrafficConfig(seed: 3, start: RFC3339.parse("2026-11-20T10:00:00Z")!, events: 2000, spanMillis: 3_600_000))
        _ = try gen.write(count: 2000, toFile: dir + "/events.jsonl")
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "notify", dir + "/events.jsonl"], log: dir + "/produce.log") == 0)
        #expect(Harness.await(seconds: 20) { listener.messages[ready...].filter { $0 == "WATCHDOG=1" }.count >= 3 },
                "fewer than 3 WATCHDOG=1 after READY: \(listener.messages)")
        #expect(Harness.await(seconds: 10) { listener.messages.contains { $0.hasPrefix("STATUS=consuming: ") && $0.contains("events/s") } },
                "no live STATUS line: \(listener.messages)")

        // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
        let beforeReload = listener.messages.count
        kill(daemon.processIdentifier, SIGHUP)
        #expect(Harness.await(seconds: 10) {
            guard let r = index("RELOADING=1", after: beforeReload) else { return false }
            return index("READY=1", after: r + 1) != nil
        }, "no RELOADING=1 then READY=1 after SIGHUP: \(listener.messages[beforeReload...])")
        if let r = index("RELOADING=1", after: beforeReload) {
            #expect(listener.messages[r].contains("MONOTONIC_USEC="))
        }

        // SIGTERM: STOPPING=1 and a clean exit.
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationReason == .exit && daemon.terminationStatus == 0, "see \(dir)/run.log")
        #expect(index("STOPPING=1") != nil, "no STOPPING=1: \(listener.messages.suffix(5))")
        try? FileManager.default.removeItem(atPath: dir)
    }

    // MARK: Reload and metrics

    /// The `http listening address=HOST:PORT` line of a daemon's log.
    static func httpAddress(log: String) -> String? {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8),
              let r = text.range(of: "http listening address=") else { return nil }
        return String(text[r.upperBound...].prefix { $0 != " " && $0 != "\n" })
    }

    static func get(_ url: String) -> (status: Int, body: String)? {
        let sem = DispatchSemaphore(value: 0)
        let box = ResultBox()
        var req = URLRequest(url: URL(string: url)!)
        req.timeoutInterval = 5
        URLSession.shared.dataTask(with: req) { data, resp, _ in
            if let h = resp as? HTTPURLResponse { box.set((h.statusCode, String(decoding: data ?? Data(), as: UTF8.self))) }
            sem.signal()
        }.resume()
        sem.wait()
        return box.value
    }

    final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var v: (Int, String)?
        func set(_ x: (Int, String)) { lock.withLock { v = x } }
        var value: (status: Int, body: String)? { lock.withLock { v.map { (status: $0.0, body: $0.1) } } }
    }

    /// `name{labels} value` lines of a Prometheus text page (comments skipped).
    static func samples(_ page: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in page.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sp = line.lastIndex(of: " "), let v = Double(line[line.index(after: sp)...]) else { continue }
            out[String(line[..<sp])] = v
        }
        return out
    }

    static func reloadConfig(_ base: String, inputPrice: String, budget: Bool) -> String {
        base + """


        [[price]]
        model = "reload-model"
        input = \(inputPrice)
        output = 1.00
        """ + (budget ? """


        [[budget]]
        name = "reload-budget"
        owner = "reload-team"
        period = "day"
        amount_usd = 100
        """ : "") + "\n"
    }

    static func events(from: Int, count: Int, second: Int) -> String {
        (0..<count).map { i in
            "{\"id\":\"reload-\(from + i)\",\"timestamp\":\"2026-11-20T10:00:\(String(format: "%02d", second + i))Z\",\"workflow\":\"wf-reload\",\"owner\":\"reload-team\",\"model\":\"reload-model\",\"input_tokens\":1000000,\"output_tokens\":0}"
        }.joined(separator: "\n") + "\n"
    }

    /// SIGHUP with new prices: events after the reload are priced at the new rate, the open window keeps
    /// what it counted before; an invalid file is refused, the daemon runs on with the old prices, and
    /// /metrics says the reload failed.
    @Test(.timeLimit(.minutes(3)))
    func reloadAppliesPricesKeepsTotalsAndRefusesInvalidConfig() throws {
        let dir = try Harness.tempDir("reload")
        let broker = try Harness.Broker(partitions: 1, topics: ["reload", "reload-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }
        let config = dir + "/tokenmeter.toml", log = dir + "/run.log", rollups = dir + "/rollups"
        let base = Harness.configText(brokers: broker.bootstrap, group: "reload", topic: "reload", dlq: "reload-dlq",
                                      rollups: rollups, state: dir + "/state", idleClose: "1h", windows: ["1h", "1d"])
        try Self.reloadConfig(base, inputPrice: "1.00", budget: false).write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try Harness.start(["run", "--config", config], log: log)
        defer { if daemon.isRunning { daemon.terminate() } }
        let commits = try Harness.CommitWatcher(brokers: broker.bootstrap, group: "reload", topic: "reload", partitions: 1)
        func produce(_ text: String, _ name: String) throws {
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
            #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "reload", dir + "/" + name], log: dir + "/produce.log") == 0)
        }
        #expect(Harness.await(seconds: 20) { Self.httpAddress(log: log) != nil }, "no http address in \(log)")
        let metricsURL = "http://\(Self.httpAddress(log: log) ?? "127.0.0.1:1")/metrics"
        func metric(_ name: String) -> Double? { Self.get(metricsURL).flatMap { Self.samples($0.body)[name] } }

        // 10 events at $1 per 1M input tokens.
        try produce(Self.events(from: 0, count: 10, second: 1), "p1.jsonl")
        #expect(try Harness.await(seconds: 60) { try commits.total() == 10 }, "see \(log)")

        // Reload: $2, and a budget. The 10:00 windows stay open (idle_close 1h).
        try Self.reloadConfig(base, inputPrice: "2.00", budget: true).write(toFile: config, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        #expect(Harness.await(seconds: 10) { metric("tokenmeter_config_reloads_total") == 1 })
        #expect(metric("tokenmeter_config_reload_success") == 1)
        try produce(Self.events(from: 10, count: 10, second: 20), "p2.jsonl")
        #expect(try Harness.await(seconds: 30) { try commits.total() == 20 }, "see \(log)")

        // An invalid file: refused, old prices ($2) kept, the daemon keeps running, the metric says 0.
        try (Self.reloadConfig(base, inputPrice: "1.00", budget: true) + "\n[rollups]\ngrace = \"soon\"\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        #expect(Harness.await(seconds: 10) { metric("tokenmeter_config_reloads_total") == 2 })
        #expect(metric("tokenmeter_config_reload_success") == 0)
        #expect(daemon.isRunning)
        // One more event at $2, and one two days later whose stream time closes the 10:00 hour and the day.
        try produce(Self.events(from: 20, count: 1, second: 40)
                    + "{\"id\":\"reload-closer\",\"timestamp\":\"2026-11-23T00:00:00Z\",\"workflow\":\"wf-closer\",\"owner\":\"reload-team\",\"model\":\"reload-model\",\"input_tokens\":1,\"output_tokens\":0}\n",
                    "p3.jsonl")
        let hour = ExpectedWindowKey(windowMillis: 3_600_000, windowStart: RFC3339.parse("2026-11-20T10:00:00Z")!,
                                     workflow: "wf-reload", owner: "reload-team", model: "reload-model")
        let day = ExpectedWindowKey(windowMillis: 86_400_000, windowStart: RFC3339.parse("2026-11-20T00:00:00Z")!,
                                    workflow: "wf-reload", owner: "reload-team", model: "reload-model")
        var sums = try RollupSums(dir: rollups)
        let closed = try Harness.await(seconds: 30) {
            sums = try RollupSums(dir: rollups)
            return sums.rows[hour] != nil && sums.rows[day] != nil
        }
        #expect(closed, "the 10:00 windows did not close; see \(log)")
        // 10 x $1 before the reload + 11 x $2 after it (the refused file's $1 never applied), one open window.
        for key in [hour, day] {
            #expect(sums.rows[key]?.requests == 21)
            #expect(sums.rows[key]?.inputTokens == 21_000_000)
            #expect(sums.rows[key]?.cost == Money.parse("32"), "\(key): \(String(describing: sums.rows[key]?.cost))")
        }
        #expect(sums.lateRows == 0 && sums.files == 2, "one final file per window, no late or partial rows: \(sums.files) files")

        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("configuration reloaded") && text.contains("prices_changed=true") && text.contains("rules=1"))
        #expect(text.contains("configuration reload refused"))
        #expect(text.contains("\(config):"), "each problem of the refused file is logged as FILE:LINE:COL")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// /metrics scraped while the daemon consumes generated traffic: the counters equal what was sent.
    @Test(.timeLimit(.minutes(3)))
    func metricsMatchTheEventsSent() throws {
        let dir = try Harness.tempDir("metrics")
        let broker = try Harness.Broker(partitions: 4, topics: ["metrics", "metrics-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }
        let config = dir + "/tokenmeter.toml", log = dir + "/run.log"
        try Harness.configText(brokers: broker.bootstrap, group: "metrics", topic: "metrics", dlq: "metrics-dlq",
                               rollups: dir + "/rollups", state: dir + "/state", idleClose: "2s")
            .write(toFile: config, atomically: true, encoding: .utf8)
        var c = TrafficConfig(seed: 5, start: RFC3339.parse("2026-11-20T22:30:00Z")!, events: 6000, spanMillis: 3 * 3_600_000)
        c.badFraction = 0.02
        c.lateFraction = 0.01
        c.duplicateFraction = 0
        var gen = TrafficGenerator(c)
        let effects = try gen.write(count: 6000, toFile: dir + "/events.jsonl")
        let expected = ExpectedTotals(effects, windows: [])
        var usage = 0, outcomes = 0
        for e in effects {
            if case .usage = e { usage += 1 }
            if case .outcome = e { outcomes += 1 }
        }
        let bad = expected.deadLetters.values.reduce(0, +)

        let daemon = try Harness.start(["run", "--config", config], log: log)
        defer { if daemon.isRunning { daemon.terminate() } }
        #expect(Harness.await(seconds: 20) { Self.httpAddress(log: log) != nil }, "no http address in \(log)")
        let addr = Self.httpAddress(log: log) ?? "127.0.0.1:1"
        #expect(Harness.await(seconds: 30) { Self.get("http://\(addr)/-/ready")?.status == 200 }, "never ready; see \(log)")
        #expect(Self.get("http://\(addr)/-/healthy")?.status == 200)
        #expect(Self.get("http://\(addr)/nothing-here")?.status == 404)

        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "metrics", dir + "/events.jsonl"], log: dir + "/produce.log") == 0)
        var m: [String: Double] = [:]
        let done = Harness.await(seconds: 60) {
            guard let page = Self.get("http://\(addr)/metrics") else { return false }
            m = Self.samples(page.body)
            let lag = m.filter { $0.key.hasPrefix("tokenmeter_kafka_consumer_lag_messages{") }
            return m["tokenmeter_messages_consumed_total"] == 6000 && lag.count == 4 && lag.values.allSatisfy { $0 == 0 }
        }
        #expect(done, "consumed \(String(describing: m["tokenmeter_messages_consumed_total"])); see \(log)")
        #expect(m["tokenmeter_events_processed_total{result=\"rejected\"}"] == Double(bad))
        #expect(m["tokenmeter_events_processed_total{result=\"duplicate\"}"] == 0)
        let counted = (m["tokenmeter_events_processed_total{result=\"counted\"}"] ?? 0) + (m["tokenmeter_events_processed_total{result=\"late\"}"] ?? 0)
        #expect(counted == Double(usage + outcomes))
        #expect((m["tokenmeter_events_processed_total{result=\"late\"}"] ?? 0) > 0, "the traffic has late events")
        #expect(m["tokenmeter_events_counted_total{kind=\"usage\"}"] == Double(usage))
        #expect(m["tokenmeter_events_counted_total{kind=\"outcome\"}"] == Double(outcomes))
        let deadLetters = m.filter { $0.key.hasPrefix("tokenmeter_dead_letters_total{") }.values.reduce(0, +)
        #expect(deadLetters == Double(bad))
        #expect(m["tokenmeter_kafka_assigned_partitions"] == 4)
        #expect(m["tokenmeter_ready"] == 1)
        #expect((m["tokenmeter_kafka_rebalances_total"] ?? 0) >= 1)
        #expect(m["tokenmeter_config_reload_success"] == 1)
        #expect(m["tokenmeter_build_info{version=\"0.1.0\",commit=\"unknown\"}"] == 1 || m.keys.contains { $0.hasPrefix("tokenmeter_build_info{") })
        #expect((m["tokenmeter_process_start_time_seconds"] ?? 0) > 1_700_000_000)
        #expect(m["tokenmeter_alert_outbox_depth"] != nil && m["tokenmeter_alerts_published_total"] != nil)
        // The traffic's unpriced Bedrock model raises alerts; each one acknowledged has its latency observed.
        #expect(Harness.await(seconds: 20) {
            let s = Self.get("http://\(addr)/metrics").map { Self.samples($0.body) } ?? [:]
            let published = s["tokenmeter_alerts_published_total"] ?? 0
            return published > 0 && s["tokenmeter_alert_latency_seconds_count"] == published
                && s["tokenmeter_alert_latency_seconds_bucket{le=\"+Inf\"}"] == published
                && (s["tokenmeter_alert_latency_seconds_sum"] ?? -1) > 0
        }, "alert latency observed for every published alert")
        // Windows close by idle (2 s): files, flushes and checkpoints show up.
        #expect(Harness.await(seconds: 20) {
            let s = Self.get("http://\(addr)/metrics").map { Self.samples($0.body) } ?? [:]
            return (s["tokenmeter_rollup_files_written_total"] ?? 0) > 0 && (s["tokenmeter_rollup_flush_duration_seconds_count"] ?? 0) > 0
                && (s["tokenmeter_checkpoints_total"] ?? 0) > 0 && (s["tokenmeter_checkpoint_age_seconds"] ?? 99) < 10
        })
        #expect(!(Self.get("http://\(addr)/metrics")?.body.contains("workflow=") ?? true), "no per-workflow labels")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// The pieces on their own: the HTTP server's bounds and the notifier's abstract socket.
@Suite struct OperationsPartsTests {
    /// Sends `request` on a fresh connection and returns the whole response (the server closes it).
    static func exchange(_ address: String, _ request: [UInt8], sendOnly: Bool = false) throws -> (fd: Int32, response: String) {
        let parts = address.split(separator: ":")
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
        addr.sin_addr.s_addr = inet_addr(String(parts[0]))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw HarnessError("connect \(address)") }
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sendOnly { return (fd, "") }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        close(fd)
        return (-1, String(decoding: out, as: UTF8.self))
    }

    @Test func httpServerAnswersAndStaysBounded() throws {
        let server = try HTTPServer(listen: "127.0.0.1:0") { path in
            path == "/x" ? .init(status: 200, body: "x\n") : .init(status: 404, body: "no\n")
        }
        server.start()
        defer { server.stop() }
        let a = server.boundAddress
        #expect(a.hasPrefix("127.0.0.1:") && !a.hasSuffix(":0"))
        // A silent client holds a connection open; others are still served at once.
        let silent = try Self.exchange(a, Array("GET /x HTTP/1.1\r\n".utf8), sendOnly: true)
        defer { close(silent.fd) }
        let ok = try Self.exchange(a, Array("GET /x?y=1 HTTP/1.1\r\nHost: t\r\n\r\n".utf8)).response
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n") && ok.contains("Content-Length: 2\r\n") && ok.hasSuffix("\r\n\r\nx\n"))
        #expect(try Self.exchange(a, Array("GET /nope HTTP/1.1\r\n\r\n".utf8)).response.hasPrefix("HTTP/1.1 404 "))
        #expect(try Self.exchange(a, Array("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n".utf8)).response.hasPrefix("HTTP/1.1 405 "))
        #expect(try Self.exchange(a, Array("garbage\r\n\r\n".utf8)).response.hasPrefix("HTTP/1.1 400 "))
        let head = try Self.exchange(a, Array("HEAD /x HTTP/1.1\r\n\r\n".utf8)).response
        #expect(head.hasPrefix("HTTP/1.1 200 ") && head.hasSuffix("\r\n\r\n"))
        let huge = Array("GET /x HTTP/1.1\r\nX: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 20_000)
        #expect(try Self.exchange(a, huge).response.hasPrefix("HTTP/1.1 431 "))
    }

    @Test func notifierSendsToAnAbstractSocket() throws {
        let name = "tokenmeter-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = [UInt8(0)] + Array(name.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        #expect(rc == 0)
        let env = ["NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "3000000"]
        let n = SystemdNotifier(environment: { env[$0] })
        #expect(n.enabled && n.watchdogIntervalMs == 1500)
        n.ready(status: "line one\nline two")
        var buf = [UInt8](repeating: 0, count: 512)
        let got = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        #expect(got > 0 && String(decoding: buf[0..<max(got, 0)], as: UTF8.self) == "READY=1\nSTATUS=line one line two")
        #expect(!SystemdNotifier(environment: { _ in nil }).enabled)
        let other = SystemdNotifier(environment: { ["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"][$0] })
        #expect(other.watchdogIntervalMs == nil, "a watchdog meant for another PID is not ours")
    }
}

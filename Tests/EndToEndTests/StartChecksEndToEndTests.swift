import Foundation
import Testing
import TokenmeterCore

/// What `run` refuses, `check-config` refuses first, at the same FILE:LINE:COL and with the same exit 78;
/// no secret reaches a message; and the HTTP listener neither spins nor starves the checkpoint when the
/// process runs short of file descriptors.
@Suite struct StartChecksEndToEndTests {
    func runCapturing(_ args: [String], seconds: Double = 20) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Each of these made `check-config` pass and `run` exit 1; now both exit 78 and point at the line.
    @Test(.timeLimit(.minutes(1))) func checkConfigRefusesWhatRunWouldRefuse() throws {
        let dir = try Harness.tempDir("startchecks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("in the way".utf8).write(to: URL(fileURLWithPath: dir + "/file"))
        try Data("Vq4-not-for-logs\n".utf8).write(to: URL(fileURLWithPath: dir + "/open-secret"))
        #expect(chmod(dir + "/open-secret", 0o644) == 0)
        let path = dir + "/bad.toml"
        try """
        [kafka]
        brokers = "127.0.0.1:1"

        [kafka.properties]
        "socket.timeout.msx" = "1000"
        "acks" = "1"

        [kafka.secret_files]
        "sasl.password" = "/dev/zero"
        "ssl.key.password" = "\(dir)/open-secret"

        [state]
        dir = "\(dir)/file/state"

        [http]
        listen = "no-such-host.invalid:9464"
        """.write(toFile: path, atomically: true, encoding: .utf8)
        for command in ["check-config", "run"] {
            let clock = ContinuousClock()
            let start = clock.now
            let r = try runCapturing([command, "--config", path])
            #expect(clock.now - start < .seconds(10), "\(command) must fail fast")
            #expect(r.status == 78, "\(command) must exit 78: \(r.stderr)")
            let lines = r.stderr.split(separator: "\n").map(String.init)
            func has(_ prefix: String, _ words: String...) -> Bool {
                lines.contains { line in line.hasPrefix("\(path):\(prefix)") && words.allSatisfy { line.contains($0) } }
            }
            #expect(has("5:1: error:", "unknown librdkafka property `socket.timeout.msx`", "did you mean `socket.timeout.ms`"), "\(command): \(lines)")
            #expect(has("9:19: error:", "/dev/zero holds more than 64 KiB"), "\(command): \(lines)")
            #expect(has("10:22: warning:", "may be read by its group and every user"), "\(command): \(lines)")
            #expect(has("13:7: error:", "`state.dir`", "is a file"), "\(command): \(lines)")
            #expect(has("16:10: error:", "cannot resolve the host \"no-such-host.invalid\""), "\(command): \(lines)")
            #expect(!r.stderr.contains("Vq4-not-for-logs"))
        }
        // With the secret fixed, librdkafka's own check of the clients finds `acks` against idempotence.
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\"/dev/zero\"", with: "\"\(dir)/open-secret\"")
            .replacingOccurrences(of: "\"socket.timeout.msx\"", with: "\"socket.timeout.ms\"")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runCapturing(["check-config", "--config", path])
        #expect(r.status == 78)
        #expect(r.stderr.contains("\(path):6:10: error: librdkafka refuses to create the producer: `acks` must be set to `all`"), "\(r.stderr)")
    }

    /// An unquoted secret is a syntax error whose message shows where and what kind of token, not the token:
    /// in `check-config`'s output, and in the daemon's log when a SIGHUP reload reads it.
    @Test(.timeLimit(.minutes(2))) func anUnquotedSecretIsNeverEchoed() throws {
        let secret = "Xk9-hunter2-Qz"
        let dir = try Harness.tempDir("secretecho")
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-usage"], log: dir + "/broker.log")
        defer { broker.stop() }
        let path = dir + "/c.toml"
        let good = Harness.configText(brokers: broker.bootstrap, group: "echo", topic: "llm-usage", dlq: "llm-usage-dlq",
                                      rollups: dir + "/rollups", state: dir + "/state", idleClose: "2s")
        let bad = good.replacingOccurrences(of: "\"heartbeat.interval.ms\" = \"500\"",
                                            with: "\"heartbeat.interval.ms\" = \"500\"\n\"sasl.password\" = \(secret)")
        #expect(bad != good)
        try bad.write(toFile: path, atomically: true, encoding: .utf8)
        let checked = try runCapturing(["check-config", "--config", path])
        #expect(checked.status == 78)
        #expect(checked.stderr.contains("invalid value: an unquoted word of 14 characters"), "\(checked.stderr)")
        #expect(!checked.stderr.contains("hunter2"), "\(checked.stderr)")

        try good.write(toFile: path, atomically: true, encoding: .utf8)
        let log = dir + "/run.log"
        let daemon = try Harness.start(["run", "--config", path], log: log)
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        #expect(Harness.await(seconds: 20) { SystemdTests.httpAddress(log: log) != nil }, "no http address in \(log)")
        try bad.write(toFile: path, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        #expect(Harness.await(seconds: 20) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("configuration reload refused")
        }, "no refused reload in \(log)")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("invalid value: an unquoted word of 14 characters"), "\(text)")
        #expect(!text.contains("hunter2"), "the secret is in the log: \(log)")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// CPU seconds (user + system) the process has used, from /proc.
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14, stime 15 (so indices 11 and 12 here).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// A daemon limited to 70 file descriptors (about 25 are in use once it runs), 150 clients holding
    /// HTTP connections open and one holding a refused one: the HTTP thread must not spin on `accept` (the process stays under 15 %
    /// of a core), checkpoints go on without a failure, and /metrics still answers.
    @Test(.timeLimit(.minutes(2))) func aLowFileLimitNeitherSpinsNorStopsCheckpoints() throws {
        let dir = try Harness.tempDir("lowfiles")
        let broker = try Harness.Broker(partitions: 2, topics: ["llm-usage"], log: dir + "/broker.log")
        defer { broker.stop() }
        let path = dir + "/c.toml"
        try Harness.configText(brokers: broker.bootstrap, group: "lowfiles", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: dir + "/rollups", state: dir + "/state", idleClose: "2s")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let log = dir + "/run.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        daemon.arguments = ["--nofile=70:70", Harness.binary, "run", "--config", path]
        daemon.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        daemon.standardOutput = FileHandle.nullDevice
        daemon.standardInput = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        #expect(Harness.await(seconds: 20) { SystemdTests.httpAddress(log: log) != nil }, "no http address in \(log)")
        let address = SystemdTests.httpAddress(log: log) ?? "127.0.0.1:1"
        #expect(Harness.await(seconds: 30) { RobustnessTests.metrics(address)["tokenmeter_ready"] == 1 }, "not ready; see \(log)")

        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        let parts = address.split(separator: ":")
        for _ in 0..<150 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
            addr.sin_addr.s_addr = inet_addr(String(parts[0]))
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            _ = Array("GET /metrics HTTP/1.1\r\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            held.append(fd)
        }
        // And one client that sent a refused request (505) and neither reads nor closes: the server waits
        // for it without spinning.
        if let refused = held.last {
            let extra = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
            addr.sin_addr.s_addr = inet_addr(String(parts[0]))
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(extra, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            _ = Array("GET /metrics HTTP/1.7\r\n\r\n".utf8).withUnsafeBytes { send(extra, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            held.insert(extra, at: held.firstIndex(of: refused) ?? 0)
        }
        // A scrape may be turned away while the server is still going through the crowd (each new
        // connection replaces the oldest silent one); it must get through once that is done.
        var before: [String: Double] = [:]
        #expect(Harness.await(seconds: 10) { before = RobustnessTests.metrics(address); return !before.isEmpty },
                "/metrics does not answer with 150 held connections")
        let cpu0 = Self.cpuSeconds(daemon.processIdentifier) ?? 0
        let wall0 = Date()
        // A measured interval, not a wait for a condition: CPU use is a rate.
        Thread.sleep(forTimeInterval: 3)
        let cpu = (Self.cpuSeconds(daemon.processIdentifier) ?? 99) - cpu0
        let share = cpu / Date().timeIntervalSince(wall0)
        #expect(share < 0.15, "the daemon used \(Int(share * 100))% of a core with 150 held connections; see \(log)")
        var after: [String: Double] = [:]
        #expect(Harness.await(seconds: 10) { after = RobustnessTests.metrics(address); return !after.isEmpty },
                "/metrics does not answer with 150 held connections")
        #expect((after["tokenmeter_checkpoints_total"] ?? 0) > (before["tokenmeter_checkpoints_total"] ?? .infinity),
                "no checkpoint while the connections were held; see \(log)")
        #expect(after["tokenmeter_checkpoint_failures_total"] == 0, "a checkpoint failed; see \(log)")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(!text.contains("Too many open files"), "see \(log)")
        for fd in held { close(fd) }
        held = []
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

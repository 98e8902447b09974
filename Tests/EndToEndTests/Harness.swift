import Foundation
import TokenmeterCore
import TokenmeterKafka
import TrafficGenerator

/// Real processes for the end-to-end scenarios: the `tokenmeter` binary built next to the test bundle.
enum Harness {
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["TOKENMETER_BIN"] { return b }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return dir.appendingPathComponent("tokenmeter").path
    }

    /// A new folder under the temporary directory; the test removes it when done (or keeps it, for its
    /// logs, when the scenario failed).
    static func tempDir(_ name: String) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("tokenmeter-\(name)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Starts `tokenmeter ARGS`, with stderr going to `log` (read it when a test fails).
    static func start(_ args: [String], log: String, stdout: Pipe? = nil, environment: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = stdout ?? FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs `tokenmeter ARGS` to completion; returns its exit status.
    @discardableResult
    static func run(_ args: [String], log: String) throws -> Int32 {
        let p = try start(args, log: log)
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// A `tokenmeter broker` process; its bootstrap address is the first line it prints.
    final class Broker {
        let process: Process
        let bootstrap: String
        let log: String
        /// Fault-injection commands (`down`, `up`) go to the broker's stdin.
        let control = Pipe()

        init(partitions: Int, topics: [String], log: String, brokers: Int = 1) throws {
            let pipe = Pipe()
            self.log = log
            process = Process()
            process.executableURL = URL(fileURLWithPath: Harness.binary)
            process.arguments = ["broker", "--partitions", String(partitions), "--brokers", String(brokers)]
                + topics.flatMap { ["--topic", $0] }
            FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = pipe
            process.standardInput = control
            try process.run()
            var line = Data()
            let handle = pipe.fileHandleForReading
            while true {
                let byte = handle.readData(ofLength: 1)
                if byte.isEmpty || byte.first == 0x0A { break }
                line.append(byte)
            }
            bootstrap = String(decoding: line, as: UTF8.self)
            guard !bootstrap.isEmpty else { throw HarnessError("broker printed no address; see \(log)") }
        }

        func send(_ command: String) {
            control.fileHandleForWriting.write(Data((command + "\n").utf8))
        }

        /// Sends a control command and waits until the broker has applied it (its `ok` line in the log).
        func command(_ command: String, seconds: Double = 10) throws {
            let before = (try? String(contentsOfFile: log, encoding: .utf8))?.components(separatedBy: "ok \(command)\n").count ?? 1
            send(command)
            let done = Harness.await(seconds: seconds) {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if text.contains("error \(command)") { return true }
                return text.components(separatedBy: "ok \(command)\n").count > before
            }
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard done, !text.contains("error \(command)") else { throw HarnessError("broker command '\(command)' failed; see \(log)") }
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// kill -9: no checkpoint, no commit, no goodbye to the group.
    static func kill9(_ p: Process) {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// A point `seconds` ahead on the monotonic clock: the wall clock can jump (a virtual machine resumed
    /// from a snapshot had a 30 s wait end after 6 s).
    struct Deadline {
        let end: UInt64
        init(seconds: Double) { end = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, seconds) * 1e9) }
        var passed: Bool { DispatchTime.now().uptimeNanoseconds >= end }
    }

    /// Polls `consumer` (up to `maxMessages` a poll) into `body` until `seconds` pass, or until `enough()`
    /// holds and `quiet` more seconds passed: reading a little past the expected count, so that extra
    /// (duplicate) messages show up too.
    static func pollUntilQuiet(_ consumer: KafkaConsumer, seconds: Double, quiet: Double, maxMessages: Int,
                               enough: () -> Bool, _ body: (KafkaMessage) -> Void) {
        let deadline = Deadline(seconds: seconds)
        var quietUntil: Deadline?
        while !deadline.passed {
            consumer.poll(maxMessages: maxMessages, timeoutMs: 100, body)
            if enough() {
                if quietUntil == nil { quietUntil = Deadline(seconds: quiet) }
                if quietUntil!.passed { break }
            }
        }
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass; returns whether it held.
    static func await(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Harness.Deadline(seconds: seconds)
        while !deadline.passed {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    /// Reads a consumer group's committed offsets without joining it (no rebalance of the daemon).
    final class CommitWatcher {
        let consumer: KafkaConsumer
        let partitions: [TopicPartition]
        init(brokers: String, group: String, topic: String, partitions: Int) throws {
            consumer = try KafkaConsumer(properties: [("bootstrap.servers", brokers), ("group.id", group)], topics: [], rebalance: nil)
            self.partitions = (0..<partitions).map { TopicPartition(topic: topic, partition: Int32($0)) }
        }
        /// The committed offsets summed over the partitions: the number of messages consumed for good.
        func total() throws -> Int64 {
            try consumer.committed(partitions, timeoutMs: 5000).reduce(0) { $0 + max($1 ?? 0, 0) }
        }
        deinit { consumer.close() }
    }

    /// Every message of `topic` (read from the start by a fresh group) with its headers.
    static func readAll(brokers: String, topic: String, expected: Int, seconds: Double) throws -> [(value: [UInt8], headers: [(String, [UInt8])])] {
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", brokers), ("group.id", "reader-\(UUID().uuidString)"),
                                                      ("auto.offset.reset", "earliest")], topics: [topic], rebalance: nil)
        defer { consumer.close() }
        var out: [(value: [UInt8], headers: [(String, [UInt8])])] = []
        pollUntilQuiet(consumer, seconds: seconds, quiet: 1, maxMessages: 1000, enough: { out.count >= expected }) { m in
            out.append((Array(m.payload), m.headers()))
        }
        return out
    }

    static func configText(brokers: String, group: String, topic: String, dlq: String, rollups: String, state: String,
                           idleClose: String, windows: [String] = ["1m", "1h", "1d"], instance: String = "e2e",
                           alertsTopic: String = "llm-alerts", changelogTopic: String? = nil, spendTopic: String? = nil) -> String {
        """
        [kafka]
        brokers = "\(brokers)"
        group_id = "\(group)"
        topics = ["\(topic)"]
        alerts_topic = "\(alertsTopic)"
        dead_letter_topic = "\(dlq)"
        \(changelogTopic.map { "changelog_topic = \"\($0)\"" } ?? "")
        \(spendTopic.map { "spend_topic = \"\($0)\"" } ?? "")

        [kafka.properties]
        # The mock broker forgets a member that left only when its session times out: keep restarts quick.
        "session.timeout.ms" = "6000"
        "heartbeat.interval.ms" = "500"

        [rollups]
        dir = "\(rollups)"
        windows = [\(windows.map { "\"\($0)\"" }.joined(separator: ", "))]
        grace = "30s"
        idle_close = "\(idleClose)"
        late_horizon = "7d"
        tags = ["environment"]
        instance = "\(instance)"

        [state]
        dir = "\(state)"
        checkpoint_interval = "500ms"

        [http]
        listen = "127.0.0.1:0"    # any free port: tests run in parallel; the daemon logs the address

        \(Catalogue.referencePricesTOML())
        """
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Rollup rows summed per (window, window start, workflow, owner, model), read with Foundation's JSON
/// parser: independent of tokenmeter's own reader.
struct RollupSums: Equatable {
    var rows: [ExpectedWindowKey: ExpectedRow] = [:]
    var files = 0
    var lateRows = 0

    static let windowMillis: [String: Int64] = ["1m": 60_000, "1h": 3_600_000, "1d": 86_400_000]

    /// Paths found in more than one folder whose bytes differ (see `init(dirs:)`).
    var conflicts: [String] = []

    init(dir: String) throws { try self.init(dirs: [dir]) }

    /// The union of several instances' folders by relative path: in changelog mode whichever instance
    /// closes a window writes the same name with the same bytes, so a path counts once (and any path whose
    /// copies differ is a conflict).
    init(dirs: [String]) throws {
        var seen: [String: Data] = [:]
        for dir in dirs {
            guard let e = FileManager.default.enumerator(atPath: dir) else { continue }
            for case let rel as String in e where rel.hasSuffix(".jsonl") && !(rel as NSString).lastPathComponent.hasPrefix(".") {
                let file = try ParsedFile.read(dir + "/" + rel)
                if let first = seen[rel] {
                    if first != file.data { conflicts.append(rel) }
                    continue
                }
                seen[rel] = file.data
                files += 1
                lateRows += file.lateRows
                for (key, r) in file.rows { rows[key, default: ExpectedRow()].add(r) }
            }
        }
    }

    /// A rollup file read and parsed once: the scenarios await exact totals by reading every folder many
    /// times while daemons write more files, and parsing thousands of files again on every poll took more
    /// CPU than the daemons under test. Files are only ever replaced whole (rename), so a path whose inode,
    /// size and modification time are unchanged holds the same bytes.
    private struct ParsedFile {
        var data: Data
        var rows: [(ExpectedWindowKey, ExpectedRow)]
        var lateRows: Int
        struct Signature: Equatable { var inode: UInt64, size: Int64, mtime: Int, mtimeNanos: Int }

        nonisolated(unsafe) private static var cache: [String: (Signature, ParsedFile)] = [:]
        private static let lock = NSLock()

        static func read(_ path: String) throws -> ParsedFile {
            var st = stat()
            guard stat(path, &st) == 0 else { throw HarnessError("cannot stat \(path)") }
            let sig = Signature(inode: UInt64(st.st_ino), size: Int64(st.st_size), mtime: st.st_mtim.tv_sec, mtimeNanos: st.st_mtim.tv_nsec)
            if let hit = lock.withLock({ cache[path] }), hit.0 == sig { return hit.1 }
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            var file = ParsedFile(data: data, rows: [], lateRows: 0)
            try file.parse()
            lock.withLock { cache[path] = (sig, file) }
            return file
        }

        private mutating func parse() throws {
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n") {
                let (key, r, late) = try RollupSums.row(line)
                rows.append((key, r))
                if late { lateRows += 1 }
            }
        }
    }

    private static func row(_ line: Substring) throws -> (ExpectedWindowKey, ExpectedRow, Bool) {
        let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        let key = ExpectedWindowKey(windowMillis: Self.windowMillis[o["window"] as! String]!,
                                    windowStart: RFC3339.parse(o["window_start"] as! String)!,
                                    workflow: o["workflow"] as! String, owner: o["owner"] as! String,
                                    model: o["model"] as? String)
        var r = ExpectedRow()
        r.requests = (o["requests"] as! NSNumber).int64Value
        r.errors = (o["errors"] as! NSNumber).int64Value
        r.inputTokens = (o["input_tokens"] as! NSNumber).int64Value
        r.cacheReadTokens = (o["cache_read_tokens"] as! NSNumber).int64Value
        r.cacheWriteTokens = (o["cache_write_tokens"] as! NSNumber).int64Value
        r.outputTokens = (o["output_tokens"] as! NSNumber).int64Value
        r.reasoningTokens = (o["reasoning_tokens"] as! NSNumber).int64Value
        r.unpricedRequests = (o["unpriced_requests"] as! NSNumber).int64Value
        // Money is compared exactly: take the number's text from the line, not a Double.
        r.cost = Money.parse(Self.numberText(line, field: "cost_usd"))!
        r.outcomeValue = Money.parse(Self.numberText(line, field: "outcome_value_usd"))!
        for (k, v) in o["outcomes"] as! [String: Any] { r.outcomes[k] = (v as! NSNumber).int64Value }
        return (key, r, o["late"] as! Bool)
    }

    static func numberText(_ line: Substring, field: String) -> String {
        let marker = "\"\(field)\":"
        guard let r = line.range(of: marker) else { return "" }
        return String(line[r.upperBound...].prefix { $0 == "-" || $0 == "." || $0 == "e" || $0 == "E" || $0 == "+" || $0.isNumber })
    }

    func total(window: Int64) -> ExpectedRow {
        var t = ExpectedRow()
        for (k, v) in rows where k.windowMillis == window { t.add(v) }
        return t
    }
}

extension ExpectedTotals {
    /// Expected rows with zero-count keys dropped (a key that only had rejected events has no row).
    var windowRows: [ExpectedWindowKey: ExpectedRow] { byWindow }
}

/// A small tmpfs mounted over a folder: a disk that really fills up (writes fail with ENOSPC), for the
/// disk-full scenarios. Mounting needs root (CI runs as root); `available` says whether it works here.
final class Tmpfs: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var filling = false
    private var filler: Thread?
    private let fillerDone = DispatchSemaphore(value: 0)

    /// Whether this process may mount a tmpfs (probed once with a throwaway mount).
    static let available: Bool = {
        guard getuid() == 0, let dir = try? Harness.tempDir("tmpfs-probe") else { return false }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard (try? Tmpfs.mount(dir, bytes: 1 << 16)) != nil else { return false }
        return Tmpfs.umount(dir)
    }()

    init(at path: String, bytes: Int) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Tmpfs.mount(path, bytes: bytes)
    }

    private static func mount(_ path: String, bytes: Int) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw HarnessError("mount tmpfs on \(path) failed") }
    }

    @discardableResult
    private static func umount(_ path: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = ["-l", path]
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Fills the disk and keeps it full: a thread appends to `<path>/filler.bin` until ENOSPC and goes on
    /// taking every page freed later (a failed write removes its temporary file; a rename frees the file
    /// it replaced), so that every write of the daemon fails until `free()`.
    func fill() {
        lock.lock(); filling = true; lock.unlock()
        let t = Thread { [self] in
            defer { fillerDone.signal() }
            let fd = open(path + "/filler.bin", O_WRONLY | O_CREAT | O_APPEND, 0o644)
            guard fd >= 0 else { return }
            defer { close(fd) }
            let chunk = [UInt8](repeating: 0x55, count: 1 << 16)
            while isFilling {
                var wrote = false
                for size in [1 << 16, 4096] {
                    while isFilling, chunk.withUnsafeBytes({ write(fd, $0.baseAddress, size) }) > 0 { wrote = true }
                }
                if !wrote { usleep(1_000) }
            }
        }
        filler = t
        t.start()
    }

    private var isFilling: Bool { lock.lock(); defer { lock.unlock() }; return filling }

    /// Stops filling and deletes the filler: the disk has room again.
    func free() {
        lock.lock(); filling = false; lock.unlock()
        // The file is removed once the thread stopped appending to it.
        if filler != nil { fillerDone.wait(); filler = nil }
        unlink(path + "/filler.bin")
    }

    /// Free space in bytes (statvfs).
    var freeBytes: Int {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return -1 }
        return Int(st.f_bavail) * Int(st.f_frsize)
    }

    func unmount() {
        free()
        Tmpfs.umount(path)
    }
}

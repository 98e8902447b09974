import TokenmeterCore
#if canImport(Glibc)
import Glibc
#endif

/// Which `alert_id`s each sink has received, across restarts: `<state.dir>/delivered.log`.
///
/// One line per delivery, `EXPIRES_MS SINK ALERT_ID`, appended and fdatasync'ed before the message's
/// offset may be committed: after a crash or a rebalance a message is consumed again, and the id found
/// here is not sent again. An id is remembered until its alert's period has ended plus `retention` (a
/// replayed or late duplicate arrives within days, not months), and at most `maxPerSink` ids per sink
/// (the ones expiring first are forgotten first), so the file and the memory stay bounded whatever the
/// volume. The file is rewritten (temp file, fsync, rename, folder fsync) at start and whenever it holds
/// twice the live lines. A line cut short by a crash is ignored.
public final class DeliveredLog {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let path: String
    public let retentionMillis: Int64
    public let maxPerSink: Int
    private var bySink: [String: [String: EpochMillis]] = [:]
    private var fd: Int32 = -1
    private var linesInFile = 0

    public init(dir: String, retentionMillis: Int64, maxPerSink: Int, now: EpochMillis) throws(Failure) {
        self.path = dir + "/delivered.log"
        self.retentionMillis = retentionMillis
        self.maxPerSink = max(1, maxPerSink)
        if let text = DeliveredLog.readAll(path) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 3, let expires = Int64(parts[0]), expires > now else { continue }
                let sink = String(parts[1]), id = String(parts[2])
                guard Sink.validName(sink), id.utf8.count <= NotifyAlert.maxIDBytes else { continue }
                bySink[sink, default: [:]][id] = max(expires, bySink[sink]?[id] ?? 0)
            }
        }
        for sink in bySink.keys { trim(sink) }
        try compact()
    }

    deinit { if fd >= 0 { close(fd) } }

    public func contains(sink: String, id: String, now: EpochMillis) -> Bool {
        guard let e = bySink[sink]?[id] else { return false }
        return e > now
    }

    public var count: Int { bySink.values.reduce(0) { $0 + $1.count } }
    public func count(sink: String) -> Int { bySink[sink]?.count ?? 0 }

    /// Remembers the delivery durably (written and fdatasync'ed when this returns).
    public func record(sink: String, id: String, periodEnd: EpochMillis, now: EpochMillis) throws(Failure) {
        let expires = max(periodEnd, now) + retentionMillis
        bySink[sink, default: [:]][id] = expires
        trim(sink)
        let line = Array("\(expires) \(sink) \(id)\n".utf8)
        try writeAll(fd, line)
        guard fdatasync(fd) == 0 else { throw Failure(description: "fdatasync \(path): \(String(cString: strerror(errno)))") }
        linesInFile += 1
        if linesInFile > 2 * count + 1024 { try compact(now: now) }
    }

    private func trim(_ sink: String) {
        guard var ids = bySink[sink], ids.count > maxPerSink else { return }
        let drop = ids.sorted { $0.value < $1.value }.prefix(ids.count - maxPerSink)
        for (id, _) in drop { ids[id] = nil }
        bySink[sink] = ids
    }

    /// Rewrites the file with the live ids only.
    public func compact(now: EpochMillis? = nil) throws(Failure) {
        if let now {
            for (sink, ids) in bySink { bySink[sink] = ids.filter { $0.value > now } }
        }
        var text = ""
        var n = 0
        for (sink, ids) in bySink.sorted(by: { $0.key < $1.key }) {
            for (id, expires) in ids.sorted(by: { $0.key < $1.key }) { text += "\(expires) \(sink) \(id)\n"; n += 1 }
        }
        let tmp = path + ".tmp"
        let t = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard t >= 0 else { throw Failure(description: "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        defer { close(t) }
        try writeAll(t, Array(text.utf8))
        guard fsync(t) == 0 else { throw Failure(description: "fsync \(tmp): \(String(cString: strerror(errno)))") }
        guard rename(tmp, path) == 0 else { throw Failure(description: "rename \(tmp): \(String(cString: strerror(errno)))") }
        DeliveredLog.fsyncFolder(of: path)
        if fd >= 0 { close(fd) }
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        linesInFile = n
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "write \(path): \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    static func fsyncFolder(of path: String) {
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let d = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { _ = fsync(d); close(d) }
    }

    static func readAll(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        // A torn last line (a crash mid-append) has no newline: drop it.
        if let last = out.lastIndex(of: 0x0A) { out.removeSubrange((last + 1)...) } else { out = [] }
        return String(decoding: out, as: UTF8.self)
    }
}

/// What was given up: `<state.dir>/dead-letters.jsonl` (or the configured path), one JSON line each,
/// `{"sink","alert_id","reason","attempts","given_up_at","alert"}` with the alert's value as published (or,
/// for a value that is not an alert, its first 4 KiB as a string). fdatasync'ed before the message's offset
/// may be committed. At `maxBytes` the file is renamed to `.1` (replacing the previous one) and a new one
/// begun: two files at most.
public final class DeadLetterFile {
    public let path: String
    public let maxBytes: Int
    private var fd: Int32 = -1
    private var size = 0

    public init(path: String, maxBytes: Int) throws(DeliveredLog.Failure) {
        self.path = path
        self.maxBytes = max(4096, maxBytes)
        try reopen()
    }

    deinit { if fd >= 0 { close(fd) } }

    private func reopen() throws(DeliveredLog.Failure) {
        if fd >= 0 { close(fd) }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DeliveredLog.Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    public func write(sink: String, alertID: String?, reason: String, attempts: Int, at now: EpochMillis,
                      value: [UInt8], valueIsJSON: Bool) throws(DeliveredLog.Failure) {
        var w = JSONTextWriter()
        w.beginObject()
        w.field("sink", sink)
        w.field("alert_id", alertID)
        w.field("reason", Alert.bounded(reason, 1024))
        w.field("attempts", Int64(attempts))
        w.field("given_up_at", RFC3339.format(now, fraction: true))
        if valueIsJSON {
            w.key("alert"); w.number(String(decoding: value, as: UTF8.self))
        } else {
            w.field("value", String(decoding: value.prefix(4096), as: UTF8.self))
        }
        w.endObject()
        let line = Array((w.text + "\n").utf8)
        if size > 0 && size + line.count > maxBytes {
            if Glibc.rename(path, path + ".1") != 0 {
                throw DeliveredLog.Failure(description: "rename \(path): \(String(cString: strerror(errno)))")
            }
            try reopen()
        }
        var off = 0
        while off < line.count {
            let n = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DeliveredLog.Failure(description: "write \(path): \(String(cString: strerror(errno)))")
            }
            off += n
        }
        guard fdatasync(fd) == 0 else { throw DeliveredLog.Failure(description: "fdatasync \(path): \(String(cString: strerror(errno)))") }
        size += line.count
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The durable outbox of alerts not yet acknowledged by Kafka: one file per alert id in a folder
/// (`<state.dir>/outbox/<alert_id>.alert`).
///
/// Protocol (the daemon's side):
/// 1. `add` every alert the engine raised (written to a temporary file, fsynced, renamed, folder fsynced)
///    BEFORE producing it and before the checkpoint that records the crossing as published;
/// 2. produce it (idempotent producer, `message.timeout.ms=0`: librdkafka retries through broker outages);
/// 3. `remove` it when the delivery report says it was stored;
/// 4. on start, `pending()` and produce all of them again, before consuming.
///
/// Why nothing is lost: an alert exists either only in the engine's memory (then the checkpoint does not
/// yet say it was published, so after a crash the replay from the committed offsets raises the same
/// crossing again, with the same id), or in the outbox (then it is resent until a delivery report
/// confirms it). The file is removed only after Kafka acknowledged the message, so no crash point leaves an
/// alert neither in the outbox nor in Kafka. The price is a rare duplicate (a crash between the broker's
/// acknowledgement and `remove`): it carries the same `alert_id`, and consumers drop it.
///
/// An alert that can never be produced (larger than the producer's `message.max.bytes`, or refused by the
/// broker as invalid) is moved aside to `rejected/` (`reject`): it would otherwise be resent, and refused,
/// at every start, and block nothing else but stay forever. Its id still counts as present, so a replay
/// does not raise it again; moving the file back into the outbox folder resends it at the next start.
/// `rejected/` keeps at most `maxRejected` files; past that a rejected alert is deleted (the caller logs it).
///
/// Adding an id that is already in the outbox does nothing (the same crossing is the same alert).
/// `remove` does not fsync the folder: a removal lost in a power cut only resends a duplicate.
/// Not thread-safe: used by the thread that owns the producer.
public final class AlertOutbox {
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var key: String
        public var value: [UInt8]
        public var emittedAt: EpochMillis
    }

    public let dir: String
    /// Alerts moved aside because they can never be produced.
    public var rejectedDir: String { dir + "/rejected" }
    /// The most files `rejected/` keeps.
    public static let maxRejected = 1_000
    private var sequence: UInt64 = 0
    private static let suffix = ".alert"
    /// A delivered alert whose crossing the last checkpoint may not record yet: kept as a marker so that
    /// a replay after a crash, which raises the same crossing again, does not publish it twice.
    private static let sentSuffix = ".sent"

    /// Opens (and creates) the folder and removes temporary files left by a crash mid-write.
    public init(dir: String) throws(FileError) {
        self.dir = dir
        try DurableFile.makeDirectories(dir)
        for name in try AlertOutbox.list(dir) where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            unlink(dir + "/" + name)
        }
    }

    public func path(for id: String) -> String { dir + "/" + id + AlertOutbox.suffix }

    /// Whether the alert is waiting for delivery or was delivered since the last checkpoint.
    public func contains(_ id: String) -> Bool {
        var st = stat()
        return stat(path(for: id), &st) == 0 || stat(dir + "/" + id + AlertOutbox.sentSuffix, &st) == 0
            || stat(rejectedDir + "/" + id + AlertOutbox.suffix, &st) == 0
    }

    /// Moves a pending alert that can never be produced to `rejected/`; returns false when `rejected/` is
    /// full and the alert was deleted instead.
    @discardableResult
    public func reject(_ id: String) throws(FileError) -> Bool {
        try DurableFile.makeDirectories(rejectedDir)
        let names = try AlertOutbox.list(rejectedDir)
        if names.count >= AlertOutbox.maxRejected && !names.contains(id + AlertOutbox.suffix) {
            try remove(id)
            return false
        }
        if rename(path(for: id), rejectedDir + "/" + id + AlertOutbox.suffix) != 0 && errno != ENOENT {
            throw FileError(operation: "rename", path: path(for: id), errno: errno)
        }
        return true
    }

    /// Writes the alert durably; returns false (and writes nothing) when its id is already there.
    @discardableResult
    public func add(_ alert: Alert) throws(FileError) -> Bool {
        try add(alert, syncDirectory: true)
    }

    /// Several alerts with one folder fsync at the end; returns those actually added (the others are
    /// pending or were delivered since the last checkpoint, and must not be produced again).
    @discardableResult
    public func add(_ alerts: [Alert]) throws(FileError) -> [Alert] {
        var added: [Alert] = []
        for a in alerts { if try add(a, syncDirectory: false) { added.append(a) } }
        if !added.isEmpty { try DurableFile.syncDirectory(dir) }
        return added
    }

    /// A delivered alert becomes a marker until the next checkpoint (`forgetSent`).
    public func markSent(_ id: String) throws(FileError) {
        if rename(path(for: id), dir + "/" + id + AlertOutbox.sentSuffix) != 0 && errno != ENOENT {
            throw FileError(operation: "rename", path: path(for: id), errno: errno)
        }
    }

    /// Called once a checkpoint records the delivered crossings as published: the markers can go.
    public func forgetSent() throws(FileError) {
        for name in try AlertOutbox.list(dir) where name.hasSuffix(AlertOutbox.sentSuffix) { unlink(dir + "/" + name) }
    }

    private func add(_ alert: Alert, syncDirectory: Bool) throws(FileError) -> Bool {
        guard !contains(alert.id) else { return false }
        sequence += 1
        let key = Array(alert.kafkaKey.utf8)
        // Header line: format, emitted_at, sequence (the order pending() returns), key length; then key, value.
        var bytes = Array("tmoutbox1 \(alert.emittedAt) \(sequence) \(key.count)\n".utf8)
        bytes += key
        bytes += alert.jsonBytes
        try DurableFile.write(bytes, to: path(for: alert.id), syncDirectory: syncDirectory)
        return true
    }

    /// Forgets a delivered alert. Removing an id that is not there is not an error.
    public func remove(_ id: String) throws(FileError) {
        if unlink(path(for: id)) != 0 && errno != ENOENT {
            throw FileError(operation: "unlink", path: path(for: id), errno: errno)
        }
    }

    /// Everything not yet delivered, oldest first (by emitted_at, then order of adding). A file that cannot
    /// be parsed is skipped and left in place for a human.
    public func pending() throws(FileError) -> [Entry] {
        var out: [(Entry, UInt64)] = []
        for name in try AlertOutbox.list(dir) where !name.hasPrefix(".") && name.hasSuffix(AlertOutbox.suffix) {
            guard let bytes = try DurableFile.read(dir + "/" + name),
                  let nl = bytes.firstIndex(of: 0x0A) else { continue }
            let header = String(decoding: bytes[..<nl], as: UTF8.self).split(separator: " ")
            guard header.count == 4, header[0] == "tmoutbox1", let emitted = Int64(header[1]),
                  let seq = UInt64(header[2]), let keyLen = Int(header[3]), nl + 1 + keyLen <= bytes.count else { continue }
            let key = String(decoding: bytes[(nl + 1)..<(nl + 1 + keyLen)], as: UTF8.self)
            let id = String(name.dropLast(AlertOutbox.suffix.count))
            out.append((Entry(id: id, key: key, value: Array(bytes[(nl + 1 + keyLen)...]), emittedAt: emitted), seq))
        }
        if let maxSeq = out.map(\.1).max() { sequence = max(sequence, maxSeq) }
        return out.sorted { a, b in
            a.0.emittedAt != b.0.emittedAt ? a.0.emittedAt < b.0.emittedAt : (a.1 != b.1 ? a.1 < b.1 : a.0.id < b.0.id)
        }.map(\.0)
    }

    public var count: Int { ((try? AlertOutbox.list(dir)) ?? []).filter { !$0.hasPrefix(".") && $0.hasSuffix(AlertOutbox.suffix) }.count }

    private static func list(_ dir: String) throws(FileError) -> [String] {
        guard let d = opendir(dir) else { throw FileError(operation: "opendir", path: dir, errno: errno) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: &e.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

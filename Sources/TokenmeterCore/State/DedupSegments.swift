#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// De-duplication ids on local disk, each written once: `<state.dir>/dedup/ids-<n>.seg`.
///
/// Why not in the checkpoint: ids are the bulk of the state (every id inside `dedup.window`: 7.2 million
/// at 2,000 events/s and a 1 h window) and never change once recorded, so rewriting them with every
/// checkpoint made the bytes written per event grow with the window instead of with the traffic. Here each
/// checkpoint appends only the ids recorded since the previous one, and a file is deleted as a whole once
/// all of its ids have left the window: what is written per event is one id, whatever the state holds.
///
/// Files split event time into spans (`dedup.window / 16`, at least a minute), so that a file's ids leave
/// the window together: the live files hold at most about 1/16 more than the live ids. Each record is
/// `"TMDS", sequence, length, CRC-32, then per partition: topic, partition, count, (hash, time) pairs`,
/// appended and fsynced before the checkpoint that names its sequence is written. On restore, records of a
/// sequence after the checkpoint's (written for a checkpoint that never completed: their events are
/// consumed again) and a torn tail are cut off, so the file only ever holds what a checkpoint vouches for.
///
/// A crash while expired files are being deleted leaves some of them behind: harmless, their ids are
/// outside the window and expire again at once after the restore. Used by the polling thread only.
public final class DedupSegments {
    public struct PartitionKey: Hashable, Sendable {
        public var topic: String
        public var partition: Int32
        public init(topic: String, partition: Int32) { self.topic = topic; self.partition = partition }
    }

    static let magic: UInt32 = 0x5344_4D54  // "TMDS"
    static let headerBytes = 20

    public let dir: String
    public let window: Int64
    /// Event-time span of one file, in milliseconds.
    public let span: Int64
    /// Per file (its span number), per partition, the latest id time in it: when the file may go.
    private var latest: [Int64: [PartitionKey: EpochMillis]] = [:]
    /// Per file, its length: where the next record goes, and where to cut back to after a failed write.
    private var lengths: [Int64: Int64] = [:]
    public private(set) var bytesWritten: Int64 = 0
    public private(set) var filesRemoved: Int64 = 0

    public init(stateDir: String, window: Int64) {
        dir = stateDir + "/dedup"
        self.window = window
        span = max(60_000, window / 16)
    }

    /// Files on disk and the bytes they hold.
    public var fileCount: Int { lengths.count }
    public var bytesHeld: Int64 { lengths.values.reduce(0, +) }

    func path(_ n: Int64) -> String { "\(dir)/ids-\(n).seg" }

    // MARK: Restore

    /// Reads every file and returns, per partition, the ids of records with a sequence up to `sequence`
    /// (the checkpoint restored), oldest first. Cuts each file after its last such record.
    public func restore(upTo sequence: UInt64) throws(FileError) -> [PartitionKey: [(UInt64, EpochMillis)]] {
        latest = [:]
        lengths = [:]
        var out: [PartitionKey: [(UInt64, EpochMillis)]] = [:]
        for n in try segmentNumbers() {
            let p = path(n)
            guard let bytes = try DurableFile.read(p) else { continue }
            var at = 0
            var files: [PartitionKey: EpochMillis] = [:]
            while let (recordSequence, end) = Self.validRecord(bytes, at: at), recordSequence <= sequence {
                var r = BinaryReader(Array(bytes[(at + Self.headerBytes)..<end]))
                do {
                    for _ in 0..<(try r.count()) {
                        let key = PartitionKey(topic: try r.string(), partition: try r.i32())
                        let count = try r.count()
                        var ids = out[key] ?? []
                        ids.reserveCapacity(ids.count + count)
                        var newest = files[key] ?? .min
                        for _ in 0..<count {
                            let h = try r.u64(), t = try r.i64()
                            ids.append((h, t))
                            newest = max(newest, t)
                        }
                        out[key] = ids
                        files[key] = newest
                    }
                } catch {
                    // The CRC matched: a record this code cannot read was written by other code. Stop here,
                    // as for a torn record, rather than guess.
                    break
                }
                at = end
            }
            if at < bytes.count { try cut(p, to: at) }
            if at == 0 {
                try remove(p)
                continue
            }
            latest[n] = files
            lengths[n] = Int64(at)
        }
        for k in out.keys { out[k]!.sort { $0.1 < $1.1 } }
        return out
    }

    /// The record at `at` if it is whole and its checksum matches: its sequence and where it ends.
    static func validRecord(_ bytes: [UInt8], at: Int) -> (UInt64, Int)? {
        guard bytes.count - at >= headerBytes else { return nil }
        var r = BinaryReader(Array(bytes[at..<(at + headerBytes)]))
        guard let magic = try? r.u32(), magic == Self.magic, let sequence = try? r.u64(),
              let length = try? r.u32(), let crc = try? r.u32() else { return nil }
        let end = at + headerBytes + Int(length)
        guard end <= bytes.count, CRC32.checksum(bytes[(at + headerBytes)..<end]) == crc else { return nil }
        return (sequence, end)
    }

    private func segmentNumbers() throws(FileError) -> [Int64] {
        guard let d = opendir(dir) else {
            if errno == ENOENT { return [] }
            throw FileError(operation: "opendir", path: dir, errno: errno)
        }
        defer { closedir(d) }
        var out: [Int64] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix("ids-"), name.hasSuffix(".seg"), let n = Int64(name.dropFirst(4).dropLast(4)) else { continue }
            out.append(n)
        }
        return out.sorted()
    }

    // MARK: Append

    /// Appends the ids of one checkpoint attempt (`sequence`), each to the file of its event time, and
    /// makes them durable. On failure nothing partial stays behind (a later record would be unreadable).
    public func append(_ parts: [(key: PartitionKey, ids: ArraySlice<(UInt64, EpochMillis)>)], sequence: UInt64) throws(FileError) {
        var bySpan: [Int64: [(key: PartitionKey, ids: [(UInt64, EpochMillis)])]] = [:]
        for part in parts where !part.ids.isEmpty {
            var split: [Int64: [(UInt64, EpochMillis)]] = [:]
            for e in part.ids { split[floorDiv(e.1, span), default: []].append(e) }
            for (n, ids) in split { bySpan[n, default: []].append((part.key, ids)) }
        }
        guard !bySpan.isEmpty else { return }
        try DurableFile.makeDirectories(dir)
        var created = false
        for n in bySpan.keys.sorted() {
            var body = BinaryWriter()
            let parts = bySpan[n]!
            body.count(parts.count)
            var files = latest[n] ?? [:]
            for (key, ids) in parts {
                body.string(key.topic)
                body.i32(key.partition)
                body.count(ids.count)
                var newest = files[key] ?? .min
                for (h, t) in ids { body.u64(h); body.i64(t); newest = max(newest, t) }
                files[key] = newest
            }
            var record = BinaryWriter()
            record.u32(Self.magic)
            record.u64(sequence)
            record.count(body.bytes.count)
            record.u32(CRC32.checksum(body.bytes))
            let bytes = record.bytes + body.bytes
            let length = lengths[n] ?? 0
            if length == 0 { created = true }
            try appendDurably(bytes, to: path(n), length: length)
            latest[n] = files
            lengths[n] = length + Int64(bytes.count)
            bytesWritten += Int64(bytes.count)
        }
        if created { try DurableFile.syncDirectory(dir) }
    }

    private func appendDurably(_ bytes: [UInt8], to p: String, length: Int64) throws(FileError) {
        let fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw FileError(operation: "open", path: p, errno: errno) }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(length) + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                _ = ftruncate(fd, off_t(length))
                throw FileError(operation: "write", path: p, errno: e)
            }
            done += n
        }
        guard fsync(fd) == 0 else {
            let e = errno
            _ = ftruncate(fd, off_t(length))
            throw FileError(operation: "fsync", path: p, errno: e)
        }
    }

    // MARK: Expiry

    /// Deletes the files whose ids have all left the window: for every partition with ids in the file,
    /// its latest id there is older than the partition's stream time minus the window (`streamTime` nil:
    /// this instance no longer keeps that partition's state, so nothing reads those ids). Call only after
    /// a checkpoint is durable, with the stream times it holds. `removing` runs before each deletion (a test
    /// stops the daemon there). Returns how many files went.
    @discardableResult
    public func removeExpired(streamTime: (PartitionKey) -> EpochMillis?,
                              removing: (Int64) throws -> Void = { _ in }) throws -> Int {
        var removed = 0
        for n in latest.keys.sorted() {
            let expired = latest[n]!.allSatisfy { key, newest in
                guard let st = streamTime(key) else { return true }
                return st != .min && newest < st &- window
            }
            guard expired else { continue }
            try removing(n)
            try remove(path(n))
            latest[n] = nil
            lengths[n] = nil
            removed += 1
            filesRemoved += 1
        }
        return removed
    }

    private func remove(_ p: String) throws(FileError) {
        if unlink(p) != 0 && errno != ENOENT { throw FileError(operation: "unlink", path: p, errno: errno) }
    }

    private func cut(_ p: String, to length: Int) throws(FileError) {
        let fd = open(p, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open", path: p, errno: errno) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(length)) == 0 else { throw FileError(operation: "truncate", path: p, errno: errno) }
        guard fsync(fd) == 0 else { throw FileError(operation: "fsync", path: p, errno: errno) }
    }
}

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
/// every id in it has left the set: what is written per event is one id, whatever the state holds.
///
/// Ids are kept in arrival order (files numbered in order, records appended in order, each record giving
/// per partition the arrival number of its first id), because that order is part of what the set decides:
/// it expires ids in arrival order, so an id that arrived before a late event's outlives its window
/// behind it, and a restore must reproduce that to count a repeat exactly as the uninterrupted run does.
/// A file is closed after `rollAppends` checkpoints or `rollBytes`, and deleted once, for every partition
/// in it, its last id is before the partition's `expiredThrough` (or the partition's state is no longer
/// kept here).
///
/// Each record is `"TMDS", sequence, length, CRC-32, then per partition: topic, partition, arrival number
/// of the first id, count, (hash, time) pairs`, appended and fsynced before the checkpoint that names its
/// sequence is written. On restore, records of a sequence after the checkpoint's (written for a checkpoint
/// that never completed: their events are consumed again) and a torn tail are cut off.
///
/// A crash while expired files are being deleted leaves some of them behind: harmless, their ids had all
/// left the set, and the restore drops them again (see `DedupSet.restore`). Used by the polling thread only.
public final class DedupSegments {
    public struct PartitionKey: Hashable, Sendable {
        public var topic: String
        public var partition: Int32
        public init(topic: String, partition: Int32) { self.topic = topic; self.partition = partition }
    }

    static let magic: UInt32 = 0x5344_4D54  // "TMDS"
    static let headerBytes = 20

    public let dir: String
    /// A file is closed after this many appends (64 checkpoints: about 5 minutes at 5 s) or bytes.
    public var rollAppends = 64
    public var rollBytes: Int64 = 4 << 20
    /// Per file (by number), per partition, the arrival number after its last id there: when the file may go.
    private var ends: [Int64: [PartitionKey: Int]] = [:]
    /// Per file, its length: where the next record goes, and where to cut back to after a failed write.
    private var lengths: [Int64: Int64] = [:]
    /// The file appended to, and how many records it has.
    private var current: Int64 = 0
    private var currentAppends = 0
    public private(set) var bytesWritten: Int64 = 0
    public private(set) var filesRemoved: Int64 = 0

    public init(stateDir: String) {
        dir = stateDir + "/dedup"
    }

    /// Ids of one partition in one record: the arrival number of the first, and the ids in arrival order.
    public struct Run: Sendable {
        public var from: Int
        public var ids: [(UInt64, EpochMillis)]
    }

    /// Files on disk.
    public var fileCount: Int { lengths.count }

    func path(_ n: Int64) -> String { "\(dir)/ids-\(n).seg" }

    // MARK: Restore

    /// Reads every file and returns, per partition, the runs of ids of records with a sequence up to
    /// `sequence` (the checkpoint restored), in arrival order (give them to `DedupSet.restore` in this
    /// order). Cuts each file after its last such record; later appends go to a new file.
    public func restore(upTo sequence: UInt64) throws(FileError) -> [PartitionKey: [Run]] {
        ends = [:]
        lengths = [:]
        var out: [PartitionKey: [Run]] = [:]
        let numbers = try segmentNumbers()
        for n in numbers {
            let p = path(n)
            guard let bytes = try DurableFile.read(p) else { continue }
            var at = 0
            var fileEnds: [PartitionKey: Int] = [:]
            records: while let (recordSequence, end) = Self.validRecord(bytes, at: at), recordSequence <= sequence {
                var r = BinaryReader(Array(bytes[(at + Self.headerBytes)..<end]))
                var runs: [(PartitionKey, Run)] = []
                do {
                    for _ in 0..<(try r.count()) {
                        let key = PartitionKey(topic: try r.string(), partition: try r.i32())
                        let from = Int(try r.i64())
                        let count = try r.count()
                        var ids: [(UInt64, EpochMillis)] = []
                        ids.reserveCapacity(count)
                        for _ in 0..<count { ids.append((try r.u64(), try r.i64())) }
                        runs.append((key, Run(from: from, ids: ids)))
                    }
                } catch {
                    // The CRC matched: a record this code cannot read was written by other code. Stop here,
                    // as for a torn record, rather than guess.
                    break records
                }
                for (key, run) in runs {
                    out[key, default: []].append(run)
                    fileEnds[key] = max(fileEnds[key] ?? 0, run.from + run.ids.count)
                }
                at = end
            }
            if at < bytes.count { try cut(p, to: at) }
            if at == 0 {
                try remove(p)
                continue
            }
            ends[n] = fileEnds
            lengths[n] = Int64(at)
        }
        current = (numbers.last ?? 0) + 1
        currentAppends = 0
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

    /// Appends the ids of one checkpoint attempt (`sequence`): per partition the ids recorded since its
    /// last save, with the arrival number of the first, and makes them durable. On failure nothing partial
    /// stays behind (a later record would be unreadable).
    public func append(_ parts: [(key: PartitionKey, from: Int, ids: ArraySlice<(UInt64, EpochMillis)>)], sequence: UInt64) throws(FileError) {
        let parts = parts.filter { !$0.ids.isEmpty }
        guard !parts.isEmpty else { return }
        try DurableFile.makeDirectories(dir)
        if currentAppends >= rollAppends || (lengths[current] ?? 0) >= rollBytes {
            current += 1
            currentAppends = 0
        }
        var body = BinaryWriter()
        body.count(parts.count)
        var fileEnds = ends[current] ?? [:]
        for (key, from, ids) in parts {
            body.string(key.topic)
            body.i32(key.partition)
            body.i64(Int64(from))
            body.count(ids.count)
            for (h, t) in ids { body.u64(h); body.i64(t) }
            fileEnds[key] = max(fileEnds[key] ?? 0, from + ids.count)
        }
        var record = BinaryWriter()
        record.u32(Self.magic)
        record.u64(sequence)
        record.count(body.bytes.count)
        record.u32(CRC32.checksum(body.bytes))
        let bytes = record.bytes + body.bytes
        let length = lengths[current] ?? 0
        try DurableFile.appendRecord(bytes, to: path(current), length: length)
        ends[current] = fileEnds
        lengths[current] = length + Int64(bytes.count)
        currentAppends += 1
        bytesWritten += Int64(bytes.count)
    }

    // MARK: Expiry

    /// Deletes the closed files whose ids have all left the set: for every partition with ids in the
    /// file, its last one there is before the partition's `expiredThrough` (nil: this instance no longer
    /// keeps that partition's state, so nothing reads those ids). Call only after a checkpoint is durable,
    /// with the sets it holds. `removing` runs before each deletion (a test stops the daemon there).
    /// Returns how many files went.
    @discardableResult
    public func removeExpired(expiredThrough: (PartitionKey) -> Int?,
                              removing: (Int64) throws -> Void = { _ in }) throws -> Int {
        var removed = 0
        for n in ends.keys.sorted() where n != current {
            let expired = ends[n]!.allSatisfy { key, end in
                guard let through = expiredThrough(key) else { return true }
                return end <= through
            }
            guard expired else { continue }
            try removing(n)
            try remove(path(n))
            ends[n] = nil
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

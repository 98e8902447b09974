/// One record of the changelog topic: the state of one usage partition (or of one alert shard) as of an
/// offset, plus the spend deltas that state sends to the alert shards. For a usage partition the record
/// holds the offsets, open windows and late buckets (`Checkpoint.encode` of the one partition, with a
/// sequence number), but not its de-duplication ids: those go once each into `DedupChunk` records under
/// keys of their own, and the restore puts the chunks of sequences up to the record's back (`idChunks`).
///
/// The spend deltas travel inside the record because the record is what a successor restores from: it
/// re-sends them (a shard drops a range it already applied), so a crash between the record and the deltas
/// loses nothing, and the ranges a shard sees never overlap.
///
/// A usage partition's records form chains, so that a checkpoint writes the rows that changed rather than
/// every open row: a base (under the partition's key, every open row, a new random `chain` number) and then
/// deltas (under `<partition key>/rows/<sequence>`, each the rows changed since the record before, see
/// `Checkpoint`), until the deltas have grown to the base's size and a new base starts a new chain (the
/// old chain's deltas are then deleted with tombstones). A restore takes the chain that reaches the
/// highest source offset and applies its deltas in order (`ChangelogStore.newest`).
public struct ChangelogRecord: Equatable, Sendable {
    static let magic: UInt32 = 0x4C43_4D54  // "TMCL"
    static let version: UInt8 = 2
    public static let deltaInfix = "/rows/"

    /// The next offset of the source (the usage partition, or the spend partition for a shard).
    public var nextOffset: Int64
    /// `Checkpoint.encode` of the one partition, or the shard's state.
    public var state: [UInt8]
    /// The spend range these deltas cover: offsets `(spendFrom, nextOffset]` of the usage partition.
    public var spendFrom: Int64
    /// Encoded deltas for alert shards (spend topic partitions), in the order they are sent; empty when
    /// nothing was counted. A shard may appear more than once (deltas of an earlier attempt to write).
    public var spend: [SpendOut]
    /// The chain of a usage partition's base and its deltas (0: a record of version 1, or a shard's).
    public var chain: UInt64 = 0
    /// Not encoded: the partition's id chunks found beside the record when the changelog was read.
    public var idChunks: [DedupChunk] = []
    /// Not encoded: for a base found by a restore, the deltas of its chain, in order.
    public var deltas: [ChangelogRecord] = []
    /// Not encoded: sequence numbers of the partition's deltas found outside the chain restored (a chain
    /// replaced by a newer base, whose deletion never landed): to delete.
    public var staleDeltas: [UInt64] = []

    /// The last record of the chain: the state restored, and the spend deltas to re-send.
    public var head: ChangelogRecord { deltas.last ?? self }

    public struct SpendOut: Equatable, Sendable {
        public var shard: Int32
        public var bytes: [UInt8]
        public init(shard: Int32, bytes: [UInt8]) { self.shard = shard; self.bytes = bytes }
    }

    public init(nextOffset: Int64, state: [UInt8], spendFrom: Int64 = -1, spend: [SpendOut] = []) {
        self.nextOffset = nextOffset; self.state = state; self.spendFrom = spendFrom; self.spend = spend
    }

    public func encode() -> [UInt8] {
        var w = BinaryWriter()
        w.header(magic: ChangelogRecord.magic, version: ChangelogRecord.version)
        w.i64(nextOffset)
        w.blob(state)
        w.i64(spendFrom)
        w.count(spend.count)
        for o in spend { w.i32(o.shard); w.blob(o.bytes) }
        w.u64(chain)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(CheckpointFormatError) -> ChangelogRecord {
        var r = BinaryReader(bytes)
        guard try r.u32() == magic else { throw CheckpointFormatError(reason: "not a tokenmeter changelog record") }
        let v = try r.u8()
        guard v == version || v == 1 else { throw CheckpointFormatError(reason: "changelog record version \(v), expected \(version)") }
        var rec = ChangelogRecord(nextOffset: try r.i64(), state: try r.blob())
        rec.spendFrom = try r.i64()
        for _ in 0..<(try r.count()) { rec.spend.append(SpendOut(shard: try r.i32(), bytes: try r.blob())) }
        if v >= 2 { rec.chain = try r.u64() }
        guard r.remaining == 0 else { throw CheckpointFormatError(reason: "\(r.remaining) trailing bytes in a changelog record") }
        return rec
    }

    /// The next offset alone, without decoding the state (choosing the newest of several records).
    public static func nextOffset(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard bytes.count >= 13, bytes.loadUnaligned(as: UInt32.self).littleEndian == magic else { return nil }
        return Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 5, as: Int64.self))
    }

    /// The changelog key of a usage partition, and of an alert shard.
    public static func key(topic: String, partition: Int32) -> String { "\(topic)/\(partition)" }
    public static func shardKey(_ shard: Int32) -> String { "spend/\(shard)" }
    /// The key of a usage partition's id chunk: the partition's key, `/ids/`, the chunk's sequence number.
    public static func idChunkKey(topic: String, partition: Int32, sequence: UInt64) -> String {
        "\(key(topic: topic, partition: partition))\(DedupChunk.keyInfix)\(sequence)"
    }
    /// The key of a usage partition's delta: the partition's key, `/rows/`, the delta's sequence number.
    public static func deltaKey(topic: String, partition: Int32, sequence: UInt64) -> String {
        "\(key(topic: topic, partition: partition))\(deltaInfix)\(sequence)"
    }
}

/// The de-duplication ids one usage partition recorded between two of its changelog records, in arrival
/// order, written once under `<partition key>/ids/<sequence>` (on the partition's changelog partition,
/// before the record of that sequence), with the arrival number of the first (see `DedupSet.restore`).
/// Deleted (a tombstone: compaction then drops the key) once all its ids have left the partition's set by
/// a record already written; so the live chunks hold about the live ids, and a restore reads about what the
/// window holds, not the partition's history.
public struct DedupChunk: Equatable, Sendable {
    static let magic: UInt32 = 0x4944_4D54  // "TMDI"
    static let version: UInt8 = 1
    public static let keyInfix = "/ids/"

    public var sequence: UInt64
    /// The arrival number of the first id.
    public var from: Int
    public var ids: [(UInt64, EpochMillis)]

    public init(sequence: UInt64, from: Int, ids: [(UInt64, EpochMillis)]) { self.sequence = sequence; self.from = from; self.ids = ids }

    /// The arrival number after the last id: the chunk may go once the set has expired through it.
    public var end: Int { from + ids.count }

    public static func encode<C: Collection>(sequence: UInt64, from: Int, ids: C) -> [UInt8] where C.Element == (UInt64, EpochMillis) {
        var w = BinaryWriter()
        w.header(magic: magic, version: version)
        w.u64(sequence)
        w.i64(Int64(from))
        w.count(ids.count)
        for (h, t) in ids { w.u64(h); w.i64(t) }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(CheckpointFormatError) -> DedupChunk {
        var r = BinaryReader(bytes)
        try r.expectHeader(magic: magic, version: version, "changelog id chunk")
        let sequence = try r.u64()
        let from = try r.i64()
        guard from >= 0 else { throw CheckpointFormatError(reason: "negative arrival number in a changelog id chunk") }
        let n = try r.count()
        var ids: [(UInt64, EpochMillis)] = []
        ids.reserveCapacity(n)
        for _ in 0..<n { ids.append((try r.u64(), try r.i64())) }
        guard r.remaining == 0 else { throw CheckpointFormatError(reason: "\(r.remaining) trailing bytes in a changelog id chunk") }
        return DedupChunk(sequence: sequence, from: Int(from), ids: ids)
    }

    public static func == (a: DedupChunk, b: DedupChunk) -> Bool {
        a.sequence == b.sequence && a.from == b.from && a.ids.count == b.ids.count && zip(a.ids, b.ids).allSatisfy { $0 == $1 }
    }
}

/// The checkpoint file: every assigned partition's resume offset, open windows, late buckets and dedup
/// memory, so that a restart continues exactly where the last durable flush left off.
///
/// Binary, versioned, CRC-checked. Names are stored as strings (ids are per process), each once, through
/// a local string table. Window sizes are stored by length, so a restart with a changed `rollups.windows`
/// restores the sizes that remain and reports the ones dropped.
///
/// De-duplication ids are the bulk of the state (every id inside `dedup.window`) and do not change once
/// recorded, so the daemon keeps them out of the checkpoint (`includeDedup: false`) and writes each id
/// once, elsewhere (`DedupSegments`, changelog id chunks); `sequence` numbers the checkpoints so that ids
/// written for a checkpoint that never completed are told apart. Version 2 (ids inline, no sequence) is
/// still read.
public enum Checkpoint {
    static let magic: [UInt8] = Array("TMCK".utf8)
    static let version: UInt32 = 3

    /// `alertState` is the alert engine's own encoding (totals, published crossings), stored as one blob.
    public static func encode(_ partitions: [PartitionState], dimensions d: Dimensions, alertState: [UInt8] = [],
                              sequence: UInt64 = 0, includeDedup: Bool = true) -> [UInt8] {
        var body = BinaryWriter()
        body.u64(sequence)
        var local: [UInt32: UInt32] = [:]
        var strings: [String] = []
        func ref(_ id: UInt32) -> UInt32 {
            if id == SeriesKey.none { return .max }
            if let r = local[id] { return r }
            let r = UInt32(strings.count)
            strings.append(d.names[id])
            local[id] = r
            return r
        }
        var records = BinaryWriter()
        records.count(partitions.count)
        for p in partitions {
            records.string(p.topic)
            records.i32(p.partition)
            records.i64(p.nextOffset)
            records.i64(p.windows.streamTime)
            records.i64(p.windows.watermark)
            records.count(p.windows.sizes.count)
            for (i, size) in p.windows.sizes.enumerated() {
                records.i64(size)
                records.count(p.windows.open[i].count)
                for w in p.windows.open[i] {
                    records.i64(w.start)
                    writeRows(&records, w.rows, d, ref)
                }
            }
            records.count(p.windows.late.count)
            for (k, rows) in p.windows.late {
                records.i64(p.windows.sizes[k.sizeIndex])
                records.i64(k.start)
                writeRows(&records, rows, d, ref)
            }
            if includeDedup {
                let dedup = p.dedup.entries
                records.count(dedup.count)
                for (h, t) in dedup { records.u64(h); records.i64(t) }
            } else {
                records.count(0)
            }
        }
        records.count(alertState.count)
        for b in alertState { records.u8(b) }
        body.count(strings.count)
        for s in strings { body.string(s) }
        var out = BinaryWriter()
        for b in magic { out.u8(b) }
        out.u32(version)
        let payload = body.bytes + records.bytes
        out.u64(UInt64(payload.count))
        out.u32(CRC32.checksum(payload))
        return out.bytes + payload
    }

    /// A row: name references, its tags, then the counters as zigzag varints (most are zero or small:
    /// about 20 bytes a row instead of 120 with fixed-width numbers).
    private static func writeRows(_ w: inout BinaryWriter, _ rows: RowTable, _ d: Dimensions,
                                  _ ref: (UInt32) -> UInt32) {
        w.count(rows.count)
        for (k, c) in rows {
            w.varint(UInt64(ref(k.workflow))); w.varint(UInt64(ref(k.owner))); w.varint(UInt64(ref(k.model))); w.varint(UInt64(ref(k.provider)))
            let tags = d.tagTuples[Int(k.tags)]
            let present = tags.enumerated().filter { $0.element != SeriesKey.none }
            w.varint(UInt64(present.count))
            for (i, v) in present { w.string(d.tagNames[i]); w.varint(UInt64(ref(v))) }
            w.zigzag(c.requests); w.zigzag(c.errors); w.zigzag(c.input); w.zigzag(c.cacheRead); w.zigzag(c.cacheWrite)
            w.zigzag(c.output); w.zigzag(c.reasoning); w.zigzag(c.cost.femtos); w.zigzag(c.unpricedRequests)
            w.zigzag(c.outcomeValue.femtos)
            w.varint(UInt64(c.outcomes.count))
            for o in c.outcomes { w.varint(UInt64(ref(o.name))); w.zigzag(o.count) }
        }
    }

    public struct Restored {
        public var partitions: [PartitionState]
        /// Window sizes (ms) present in the checkpoint but no longer configured: their open rows are dropped.
        public var droppedSizes: Set<Int64>
        /// The alert engine's state blob (see `AlertEngine.decodeState`).
        public var alertState: [UInt8]
        /// The checkpoint's sequence number (0 in version 2).
        public var sequence: UInt64 = 0
    }

    /// Decodes a checkpoint, interning its names into `d` and fitting it to the configured window sizes.
    /// `makeWindows` gives an empty `PartitionWindows` with the configured sizes and limits to restore into.
    public static func decode(_ bytes: [UInt8], dimensions d: inout Dimensions, makeWindows: () -> PartitionWindows,
                              dedupWindow: Int64) throws(CheckpointFormatError) -> Restored {
        let sizes = makeWindows().sizes
        var r = BinaryReader(bytes)
        for b in magic { guard try r.u8() == b else { throw CheckpointFormatError(reason: "not a tokenmeter checkpoint") } }
        let v = try r.u32()
        guard v == version || v == 2 else { throw CheckpointFormatError(reason: "version \(v), expected \(version)") }
        let length = try r.u64()
        let crc = try r.u32()
        guard UInt64(r.remaining) == length else { throw CheckpointFormatError(reason: "length \(r.remaining), expected \(length)") }
        guard CRC32.checksum(bytes[r.position...]) == crc else { throw CheckpointFormatError(reason: "checksum mismatch") }
        let sequence = v >= 3 ? try r.u64() : 0
        let stringCount = try r.count()
        var ids: [UInt32] = []
        ids.reserveCapacity(stringCount)
        for _ in 0..<stringCount { ids.append(d.names.intern(try r.string())) }
        func id(_ ref: UInt32) throws(CheckpointFormatError) -> UInt32 {
            if ref == .max { return SeriesKey.none }
            guard Int(ref) < ids.count else { throw CheckpointFormatError(reason: "bad string reference \(ref)") }
            return ids[Int(ref)]
        }
        var dropped = Set<Int64>()
        var out: [PartitionState] = []
        let partitionCount = try r.count()
        for _ in 0..<partitionCount {
            let topic = try r.string()
            let partition = try r.i32()
            let nextOffset = try r.i64()
            let streamTime = try r.i64()
            let watermark = try r.i64()
            var open: [[PartitionWindows.Window]] = Array(repeating: [], count: sizes.count)
            let sizeCount = try r.count()
            for _ in 0..<sizeCount {
                let size = try r.i64()
                let windowCount = try r.count()
                for _ in 0..<windowCount {
                    let start = try r.i64()
                    let rows = try readRows(&r, &d, id, compact: v >= 3)
                    if let i = sizes.firstIndex(of: size) {
                        open[i].append(PartitionWindows.Window(start: start, rows: rows))
                    } else {
                        dropped.insert(size)
                    }
                }
            }
            var late: [PartitionWindows.LateKey: [SeriesKey: RollupCounters]] = [:]
            let lateCount = try r.count()
            for _ in 0..<lateCount {
                let size = try r.i64()
                let start = try r.i64()
                let rows = try readRows(&r, &d, id, compact: v >= 3)
                if let i = sizes.firstIndex(of: size) {
                    late[PartitionWindows.LateKey(sizeIndex: i, start: start)] = rows
                } else {
                    dropped.insert(size)
                }
            }
            var dedup = DedupSet(window: dedupWindow)
            let dedupCount = try r.count()
            var entries: [(UInt64, EpochMillis)] = []
            entries.reserveCapacity(dedupCount)
            for _ in 0..<dedupCount { entries.append((try r.u64(), try r.i64())) }
            dedup.restore(entries, from: 0, saved: false)
            var windows = makeWindows()
            windows.restore(streamTime: streamTime, watermark: watermark, open: open, late: late)
            out.append(PartitionState(topic: topic, partition: partition, nextOffset: nextOffset, windows: windows,
                                      dedup: dedup, lastMessageWall: 0))
        }
        let alertCount = try r.count()
        var alertState: [UInt8] = []
        alertState.reserveCapacity(alertCount)
        for _ in 0..<alertCount { alertState.append(try r.u8()) }
        guard r.remaining == 0 else { throw CheckpointFormatError(reason: "\(r.remaining) trailing bytes") }
        return Restored(partitions: out, droppedSizes: dropped, alertState: alertState, sequence: sequence)
    }

    /// Rows as `writeRows` writes them (`compact`), or with fixed-width numbers (version 2).
    private static func readRows(_ r: inout BinaryReader, _ d: inout Dimensions,
                                 _ id: (UInt32) throws(CheckpointFormatError) -> UInt32,
                                 compact: Bool) throws(CheckpointFormatError) -> [SeriesKey: RollupCounters] {
        func ref() throws(CheckpointFormatError) -> UInt32 {
            guard compact else { return try id(try r.u32()) }
            let v = try r.varint()
            guard v <= UInt64(UInt32.max) else { throw CheckpointFormatError(reason: "bad string reference \(v)") }
            return try id(UInt32(v))
        }
        func number() throws(CheckpointFormatError) -> Int64 { compact ? try r.zigzag() : try r.i64() }
        func money() throws(CheckpointFormatError) -> Money { Money(femtos: compact ? try r.zigzag128() : try r.i128()) }
        func count() throws(CheckpointFormatError) -> Int {
            guard compact else { return try r.count() }
            let n = try r.varint()
            guard n <= UInt64(r.remaining) else { throw CheckpointFormatError(reason: "count \(n) exceeds the record at byte \(r.position)") }
            return Int(n)
        }
        let n = try r.count()
        var rows: [SeriesKey: RollupCounters] = [:]
        rows.reserveCapacity(n)
        for _ in 0..<n {
            let workflow = try ref(), owner = try ref()
            let model = try ref(), provider = try ref()
            let tagCount = try count()
            var tagPairs: [(String, UInt32)] = []
            for _ in 0..<tagCount { tagPairs.append((try r.string(), try ref())) }
            let tagNames = d.tagNames
            let tuple = d.internTags { values in
                for (name, v) in tagPairs { if let i = tagNames.firstIndex(of: name) { values[i] = v } }
            }
            var c = RollupCounters()
            c.requests = try number(); c.errors = try number(); c.input = try number(); c.cacheRead = try number()
            c.cacheWrite = try number(); c.output = try number(); c.reasoning = try number()
            c.cost = try money(); c.unpricedRequests = try number()
            c.outcomeValue = try money()
            let oc = try count()
            for _ in 0..<oc { c.outcomes.append(OutcomeCount(name: try ref(), count: try number())) }
            // Rows whose tag dimensions were dropped from the config merge into one.
            rows[SeriesKey(workflow: workflow, owner: owner, model: model, provider: provider, tags: tuple), default: RollupCounters()].merge(c)
        }
        return rows
    }
}

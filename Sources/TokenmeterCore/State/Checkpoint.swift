/// The checkpoint format: every partition's resume offset, open windows, late buckets (and, in the
/// in-memory round trips, dedup memory), so that a restart continues exactly where the last durable flush
/// left off.
///
/// Binary, versioned, CRC-checked. Names are stored as strings (ids are per process), each once, through
/// a local string table. Window sizes are stored by length, so a restart with a changed `rollups.windows`
/// restores the sizes that remain and reports the ones dropped.
///
/// Two kinds of record share the format. A base (`base` = 0) holds every partition whole. A delta names
/// its base's sequence number and holds only what changed since the record before it: per partition its
/// offsets and watermark, the start of every window and late bucket still open, and of each only the rows
/// that changed (a table created since is written whole and replaces any older one of the same start);
/// partitions that did not change are listed without content, and a partition not listed is gone. So a
/// checkpoint writes what changed, not everything held: a base is written only now and then (see
/// `LocalCheckpoint`, the changelog's chains), and a restore is the base with its deltas applied in order
/// (`Chain`), on the rows as stored, before they are fitted to the configuration.
///
/// De-duplication ids are the bulk of the state (every id inside `dedup.window`) and do not change once
/// recorded, so the daemon keeps them out of the checkpoint (`includeDedup: false`) and writes each id
/// once, elsewhere (`DedupSegments`, changelog id chunks); `sequence` numbers the records so that ids
/// written for a checkpoint that never completed are told apart. Versions 2 (ids inline, no sequence) and
/// 3 (no deltas) are still read.
public enum Checkpoint {
    static let magic: [UInt8] = Array("TMCK".utf8)
    static let version: UInt32 = 4
    /// magic, version, body length, CRC-32.
    public static let headerBytes = 20

    /// What a record says of one partition.
    public enum Entry: Sendable {
        /// Listed, as in the record before (its windows kept as they were).
        case unchanged
        /// Offsets, watermark, the open windows and late buckets, and their rows changed since the last save.
        case changes
        /// Everything (a base, or a partition the writer has not written since it was restored or assigned).
        case whole
    }

    /// A base of `partitions` (all whole). `alertState` is the alert engine's own encoding (totals,
    /// published crossings), stored as one blob.
    public static func encode(_ partitions: [PartitionState], dimensions d: Dimensions, alertState: [UInt8] = [],
                              sequence: UInt64 = 0, includeDedup: Bool = true) -> [UInt8] {
        encode(partitions.map { ($0, Entry.whole) }, dimensions: d, alertState: alertState, sequence: sequence,
               base: 0, includeDedup: includeDedup)
    }

    /// Byte buffers a record is encoded in, kept from one record to the next by a writer that encodes
    /// many (the daemon's pipeline). A record of a large state is tens of megabytes: in fresh arrays each
    /// time, the kernel zeroed that many new pages, and the arrays' doublings copied it again, on the
    /// polling thread at every checkpoint. The record returned shares the output buffer: once the caller
    /// has written it and let it go, the next record reuses the memory.
    public struct Buffers {
        var records: [UInt8] = []
        var output: [UInt8] = []
        public init() {}
        /// The memory the buffers hold between records.
        public var retainedBytes: Int { records.capacity + output.capacity }
    }

    /// A record of `parts`; `base` is the sequence of the base a delta builds on (0: this is a base, and
    /// every entry must be `.whole`).
    public static func encode(_ parts: [(state: PartitionState, entry: Entry)], dimensions d: Dimensions,
                              alertState: [UInt8], sequence: UInt64, base: UInt64, includeDedup: Bool) -> [UInt8] {
        var buffers = Buffers()
        return encode(parts, dimensions: d, alertState: alertState, sequence: sequence, base: base,
                      includeDedup: includeDedup, buffers: &buffers)
    }

    /// As above, in `buffers` (see `Buffers`).
    public static func encode(_ parts: [(state: PartitionState, entry: Entry)], dimensions d: Dimensions,
                              alertState: [UInt8], sequence: UInt64, base: UInt64, includeDedup: Bool,
                              buffers: inout Buffers) -> [UInt8] {
        var body = BinaryWriter()
        body.u64(sequence)
        body.u64(base)
        var rows = RowsWriter(d)
        var records = BinaryWriter(reusing: &buffers.records)
        records.count(parts.count)
        for (p, entry) in parts {
            records.string(p.topic)
            records.i32(p.partition)
            if case .unchanged = entry {
                records.u8(0)
                continue
            }
            records.u8(1)
            let whole = if case .whole = entry { true } else { false }
            records.i64(p.nextOffset)
            records.i64(p.windows.streamTime)
            records.i64(p.windows.watermark)
            records.count(p.windows.sizes.count)
            for (i, size) in p.windows.sizes.enumerated() {
                records.i64(size)
                records.count(p.windows.open[i].count)
                for w in p.windows.open[i] {
                    records.i64(w.start)
                    rows.table(w.rows, whole: whole, into: &records)
                }
            }
            records.count(p.windows.late.count)
            for (k, late) in p.windows.late.sorted(by: { ($0.key.sizeIndex, $0.key.start) < ($1.key.sizeIndex, $1.key.start) }) {
                records.i64(p.windows.sizes[k.sizeIndex])
                records.i64(k.start)
                rows.table(late, whole: whole, into: &records)
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
        records.raw(alertState)
        body.count(rows.refs.strings.count)
        for s in rows.refs.strings { body.string(s) }
        // Header, then the payload (body and records) with its length and checksum, copied once.
        var out = BinaryWriter(reusing: &buffers.output)
        out.reserve(headerBytes + body.bytes.count + records.bytes.count)
        for b in magic { out.u8(b) }
        out.u32(version)
        out.u64(UInt64(body.bytes.count + records.bytes.count))
        let crc = records.bytes.withUnsafeBytes { r in body.bytes.withUnsafeBytes { b in CRC32.update(CRC32.update(0, b), r) } }
        out.u32(crc)
        out.raw(body.bytes)
        out.raw(records.bytes)
        records.release(into: &buffers.records)
        let result = out.bytes
        out.release(into: &buffers.output)
        return result
    }

    /// The names a record refers to, numbered in order of first use and stored once in its header; a
    /// flat table by name id finds a name's number in one load (a dictionary cost a hash per reference).
    private struct NameRefs {
        let names: StringTable
        var number: [UInt32]
        var strings: [String] = []

        init(names: StringTable) {
            self.names = names
            number = Array(repeating: .max, count: names.count)
        }

        mutating func ref(_ id: UInt32) -> UInt32 {
            if id == SeriesKey.none { return .max }
            let i = Int(id)
            if i >= number.count { number.append(contentsOf: repeatElement(.max, count: i + 1 - number.count)) }
            if number[i] != .max { return number[i] }
            let r = UInt32(strings.count)
            strings.append(names[id])
            number[i] = r
            return r
        }
    }

    /// Writes the rows of a record's tables: their names numbered (`NameRefs`), their tags looked up in
    /// the tag tuples laid out flat (no array retained per row), each row read in place and written through
    /// a cursor into one block (appended to the record a block at a time). A type of its own rather than
    /// a local function capturing these as variables: captured variables are checked for exclusive access
    /// at run time, on every row (a sixth of the encoder's time in a profile).
    private struct RowsWriter: ~Copyable {
        var refs: NameRefs
        var block = BlockWriter()
        let width: Int
        let tagIds: [UInt32]
        let tagNames: [[UInt8]]

        init(_ d: Dimensions) {
            refs = NameRefs(names: d.names)
            width = d.tagNames.count
            tagIds = d.tagTuples.flatMap { $0 }
            tagNames = d.tagNames.map { name -> [UInt8] in
                var w = BinaryWriter()
                w.string(name)
                return w.bytes
            }
        }

        /// A table: whether it replaces an older one (all its rows), its row count, its rows.
        mutating func table(_ rows: RowTable, whole: Bool, into records: inout BinaryWriter) {
            let replace = whole || rows.isNew
            records.u8(replace ? 1 : 0)
            records.count(replace ? rows.count : rows.unsavedCount)
            rows.forEachRow(unsavedOnly: !replace) { row in write(row, into: &records) }
            records.flush(&block)
        }

        /// A row: name references, its tags, then the counters as zigzag varints (most are zero or small:
        /// about 20 bytes a row instead of 120 with fixed-width numbers), bounded by its longest encoding.
        private mutating func write(_ row: UnsafePointer<RowTable.Row>, into records: inout BinaryWriter) {
            let ref = leb128Bound(UInt32.self), i64 = leb128Bound(UInt64.self), i128 = leb128Bound(UInt128.self)
            let k = row.pointee.key
            let outcomes = row.pointee.counters.outcomes.count
            let first = Int(k.tags) * width
            var bound = 5 * ref + 8 * i64 + 2 * i128 + i64 + outcomes * (ref + i64)
            var present: UInt32 = 0
            for i in 0..<width where tagIds[first + i] != SeriesKey.none {
                bound += tagNames[i].count + ref
                present += 1
            }
            records.write(through: &block, bound: bound) { out in
                writeLEB128(refs.ref(k.workflow), to: &out); writeLEB128(refs.ref(k.owner), to: &out)
                writeLEB128(refs.ref(k.model), to: &out); writeLEB128(refs.ref(k.provider), to: &out)
                writeLEB128(present, to: &out)
                for i in 0..<width where tagIds[first + i] != SeriesKey.none {
                    tagNames[i].withUnsafeBytes { out.put($0) }
                    writeLEB128(refs.ref(tagIds[first + i]), to: &out)
                }
                // Through the pointer, field by field: a copy of the counters would retain their outcomes.
                writeZigzag(row.pointee.counters.requests, to: &out); writeZigzag(row.pointee.counters.errors, to: &out)
                writeZigzag(row.pointee.counters.input, to: &out); writeZigzag(row.pointee.counters.cacheRead, to: &out)
                writeZigzag(row.pointee.counters.cacheWrite, to: &out); writeZigzag(row.pointee.counters.output, to: &out)
                writeZigzag(row.pointee.counters.reasoning, to: &out); writeZigzag(row.pointee.counters.cost.femtos, to: &out)
                writeZigzag(row.pointee.counters.unpricedRequests, to: &out)
                writeZigzag(row.pointee.counters.outcomeValue.femtos, to: &out)
                writeLEB128(UInt64(outcomes), to: &out)
                if outcomes > 0 {
                    for o in row.pointee.counters.outcomes { writeLEB128(refs.ref(o.name), to: &out); writeZigzag(o.count, to: &out) }
                }
            }
        }
    }

    // MARK: Reading

    /// A row's key as stored: names interned, tags by name (fitted to the configured tag dimensions last,
    /// so that deltas apply to the rows they were written for even when the tags configured changed).
    public struct StoredKey: Hashable, Sendable {
        var workflow: UInt32, owner: UInt32, model: UInt32, provider: UInt32
        var tags: [StoredTag]
    }

    public struct StoredTag: Hashable, Sendable {
        var name: String
        var value: UInt32
    }

    /// A window or late bucket as stored.
    public struct StoredTable: Sendable {
        public var size: Int64
        public var start: EpochMillis
        /// Replaces any older table of the same size and start (else its rows are added to it, row by row).
        var replace: Bool
        var rows: [StoredKey: RollupCounters]
    }

    /// One partition as stored.
    public struct StoredPartition: Sendable {
        public var topic: String
        public var partition: Int32
        /// Nil: listed unchanged.
        public var state: StoredState?
    }

    public struct StoredState: Sendable {
        public var nextOffset: Int64
        var streamTime: EpochMillis
        var watermark: EpochMillis
        var open: [StoredTable]
        var late: [StoredTable]
        var dedup: [(UInt64, EpochMillis)]
        var rowCount: Int { open.reduce(0) { $0 + $1.rows.count } + late.reduce(0) { $0 + $1.rows.count } }
    }

    /// A record as read, names interned into the `Dimensions` given to `parse`.
    public struct Parsed: Sendable {
        public var sequence: UInt64
        /// The base's sequence for a delta, 0 for a base.
        public var base: UInt64
        public var partitions: [StoredPartition]
        public var alertState: [UInt8]
        public var isBase: Bool { base == 0 }
    }

    /// A base with deltas applied: the state as of the last record applied.
    public struct Chain: Sendable {
        public private(set) var state: Parsed
        public let baseSequence: UInt64
        /// The sequence of the last record applied.
        public var sequence: UInt64 { state.sequence }

        public init(base: Parsed) throws(CheckpointFormatError) {
            guard base.isBase else { throw CheckpointFormatError(reason: "record \(base.sequence) is a delta, not a base") }
            guard base.partitions.allSatisfy({ $0.state != nil && $0.state!.open.allSatisfy(\.replace) && $0.state!.late.allSatisfy(\.replace) }) else {
                throw CheckpointFormatError(reason: "base \(base.sequence) holds a partition in part")
            }
            state = base
            baseSequence = base.sequence
        }

        /// Whether `delta` is the next record of this chain.
        public func follows(_ delta: Parsed) -> Bool {
            !delta.isBase && delta.base == baseSequence && delta.sequence == state.sequence + 1
        }

        /// Applies the next delta: its partitions replace the list (a partition not listed is gone), each
        /// listed one as it was (unchanged) or with its offsets and tables as the delta says.
        public mutating func apply(_ delta: Parsed) throws(CheckpointFormatError) {
            guard follows(delta) else {
                throw CheckpointFormatError(reason: "record \(delta.sequence) (base \(delta.base)) does not follow \(state.sequence) of base \(baseSequence)")
            }
            var before: [String: StoredState] = [:]
            for p in state.partitions { before["\(p.topic)/\(p.partition)"] = p.state }
            var out: [StoredPartition] = []
            out.reserveCapacity(delta.partitions.count)
            for p in delta.partitions {
                let old = before["\(p.topic)/\(p.partition)"]
                guard let change = p.state else {
                    guard let old else { throw CheckpointFormatError(reason: "record \(delta.sequence) keeps \(p.topic)[\(p.partition)] unchanged, but it has no state") }
                    out.append(StoredPartition(topic: p.topic, partition: p.partition, state: old))
                    continue
                }
                func merged(_ tables: [StoredTable], onto olds: [StoredTable]) throws(CheckpointFormatError) -> [StoredTable] {
                    var byStart: [Int64: [Int64: StoredTable]] = [:]
                    for t in olds { byStart[t.size, default: [:]][t.start] = t }
                    var result: [StoredTable] = []
                    for t in tables {
                        if t.replace { result.append(t); continue }
                        guard var o = byStart[t.size]?[t.start] else {
                            throw CheckpointFormatError(reason: "record \(delta.sequence) changes rows of a window \(p.topic)[\(p.partition)] does not hold")
                        }
                        for (k, c) in t.rows { o.rows[k] = c }
                        result.append(o)
                    }
                    return result
                }
                var next = change
                next.open = try merged(change.open, onto: old?.open ?? [])
                next.late = try merged(change.late, onto: old?.late ?? [])
                if next.dedup.isEmpty, let old { next.dedup = old.dedup }
                out.append(StoredPartition(topic: p.topic, partition: p.partition, state: next))
            }
            state = Parsed(sequence: delta.sequence, base: 0, partitions: out, alertState: delta.alertState)
        }
    }

    public struct Restored {
        public var partitions: [PartitionState]
        /// Window sizes (ms) present in the checkpoint but no longer configured: their open rows are dropped.
        public var droppedSizes: Set<Int64>
        /// The alert engine's state blob (see `AlertEngine.decodeState`).
        public var alertState: [UInt8]
        /// The sequence number of the last record restored (0 in version 2).
        public var sequence: UInt64 = 0
    }

    /// Decodes a base, interning its names into `d` and fitting it to the configured window sizes.
    /// `makeWindows` gives an empty `PartitionWindows` with the configured sizes and limits to restore into.
    public static func decode(_ bytes: [UInt8], dimensions d: inout Dimensions, makeWindows: () -> PartitionWindows,
                              dedupWindow: Int64) throws(CheckpointFormatError) -> Restored {
        let chain = try Chain(base: try parse(bytes, dimensions: &d))
        return fit(chain, dimensions: &d, makeWindows: makeWindows, dedupWindow: dedupWindow)
    }

    /// The length of the record at the start of `bytes` (header included), nil when `bytes` does not
    /// start with a whole record (a torn tail of a log).
    public static func recordLength(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= headerBytes, bytes.prefix(4).elementsEqual(magic) else { return nil }
        var r = BinaryReader(Array(bytes.prefix(headerBytes)))
        guard (try? r.u64()) != nil, let length = try? r.u64(), let crc = try? r.u32(),
              length <= UInt64(bytes.count - headerBytes) else { return nil }
        let end = bytes.startIndex + headerBytes + Int(length)
        guard CRC32.checksum(bytes[(bytes.startIndex + headerBytes)..<end]) == crc else { return nil }
        return headerBytes + Int(length)
    }

    /// A record's sequence and its base's (0 for a base) from the header alone, without checking the body.
    public static func sequences(_ bytes: [UInt8]) -> (sequence: UInt64, base: UInt64)? {
        var r = BinaryReader(bytes)
        guard bytes.starts(with: magic), (try? r.u32()) != nil, let v = try? r.u32(), (try? r.u64()) != nil, (try? r.u32()) != nil else { return nil }
        let sequence = v >= 3 ? (try? r.u64()) ?? 0 : 0
        let base = v >= 4 ? (try? r.u64()) ?? 0 : 0
        return (sequence, base)
    }

    /// Reads a record (any version) as stored.
    public static func parse(_ bytes: [UInt8], dimensions d: inout Dimensions) throws(CheckpointFormatError) -> Parsed {
        var r = BinaryReader(bytes)
        for b in magic { guard try r.u8() == b else { throw CheckpointFormatError(reason: "not a tokenmeter checkpoint") } }
        let v = try r.u32()
        guard v == version || v == 3 || v == 2 else { throw CheckpointFormatError(reason: "version \(v), expected \(version)") }
        let length = try r.u64()
        let crc = try r.u32()
        guard UInt64(r.remaining) == length else { throw CheckpointFormatError(reason: "length \(r.remaining), expected \(length)") }
        guard CRC32.checksum(bytes[r.position...]) == crc else { throw CheckpointFormatError(reason: "checksum mismatch") }
        let sequence = v >= 3 ? try r.u64() : 0
        let base = v >= 4 ? try r.u64() : 0
        let stringCount = try r.count()
        var ids: [UInt32] = []
        ids.reserveCapacity(stringCount)
        for _ in 0..<stringCount { ids.append(d.names.intern(try r.string())) }
        func id(_ ref: UInt32) throws(CheckpointFormatError) -> UInt32 {
            if ref == .max { return SeriesKey.none }
            guard Int(ref) < ids.count else { throw CheckpointFormatError(reason: "bad string reference \(ref)") }
            return ids[Int(ref)]
        }
        func table(size: Int64, start: Int64) throws(CheckpointFormatError) -> StoredTable {
            let replace = v >= 4 ? try r.u8() != 0 : true
            return StoredTable(size: size, start: start, replace: replace, rows: try readRows(&r, id, compact: v >= 3))
        }
        var out: [StoredPartition] = []
        let partitionCount = try r.count()
        for _ in 0..<partitionCount {
            let topic = try r.string()
            let partition = try r.i32()
            if v >= 4 {
                switch try r.u8() {
                case 0:
                    out.append(StoredPartition(topic: topic, partition: partition, state: nil))
                    continue
                case 1: break
                case let k: throw CheckpointFormatError(reason: "unknown partition entry \(k)")
                }
            }
            let nextOffset = try r.i64()
            let streamTime = try r.i64()
            let watermark = try r.i64()
            var open: [StoredTable] = []
            let sizeCount = try r.count()
            for _ in 0..<sizeCount {
                let size = try r.i64()
                let windowCount = try r.count()
                for _ in 0..<windowCount { open.append(try table(size: size, start: try r.i64())) }
            }
            var late: [StoredTable] = []
            let lateCount = try r.count()
            for _ in 0..<lateCount {
                let size = try r.i64()
                late.append(try table(size: size, start: try r.i64()))
            }
            let dedupCount = try r.count()
            var dedup: [(UInt64, EpochMillis)] = []
            dedup.reserveCapacity(dedupCount)
            for _ in 0..<dedupCount { dedup.append((try r.u64(), try r.i64())) }
            out.append(StoredPartition(topic: topic, partition: partition,
                                       state: StoredState(nextOffset: nextOffset, streamTime: streamTime, watermark: watermark,
                                                          open: open, late: late, dedup: dedup)))
        }
        let alertCount = try r.count()
        var alertState: [UInt8] = []
        alertState.reserveCapacity(alertCount)
        for _ in 0..<alertCount { alertState.append(try r.u8()) }
        guard r.remaining == 0 else { throw CheckpointFormatError(reason: "\(r.remaining) trailing bytes") }
        return Parsed(sequence: sequence, base: base, partitions: out, alertState: alertState)
    }

    /// The chain's state fitted to the configuration: window sizes no longer configured dropped (and
    /// reported), rows whose tag dimensions were dropped merged into one.
    public static func fit(_ chain: Chain, dimensions d: inout Dimensions, makeWindows: () -> PartitionWindows,
                           dedupWindow: Int64) -> Restored {
        let sizes = makeWindows().sizes
        var dropped = Set<Int64>()
        var out: [PartitionState] = []
        for p in chain.state.partitions {
            guard let st = p.state else { continue }  // a base lists every partition with its state
            func rows(_ t: StoredTable) -> [SeriesKey: RollupCounters] {
                var rows: [SeriesKey: RollupCounters] = [:]
                rows.reserveCapacity(t.rows.count)
                let tagNames = d.tagNames
                for (k, c) in t.rows {
                    let tuple = d.internTags { values in
                        for tag in k.tags { if let i = tagNames.firstIndex(of: tag.name) { values[i] = tag.value } }
                    }
                    rows[SeriesKey(workflow: k.workflow, owner: k.owner, model: k.model, provider: k.provider, tags: tuple), default: RollupCounters()].merge(c)
                }
                return rows
            }
            var open: [[PartitionWindows.Window]] = Array(repeating: [], count: sizes.count)
            for t in st.open {
                if let i = sizes.firstIndex(of: t.size) {
                    open[i].append(PartitionWindows.Window(start: t.start, rows: rows(t)))
                } else {
                    dropped.insert(t.size)
                }
            }
            for i in open.indices { open[i].sort { $0.start < $1.start } }
            var late: [PartitionWindows.LateKey: [SeriesKey: RollupCounters]] = [:]
            for t in st.late {
                if let i = sizes.firstIndex(of: t.size) {
                    late[PartitionWindows.LateKey(sizeIndex: i, start: t.start)] = rows(t)
                } else {
                    dropped.insert(t.size)
                }
            }
            var dedup = DedupSet(window: dedupWindow)
            dedup.restore(st.dedup, from: 0, saved: false)
            var windows = makeWindows()
            windows.restore(streamTime: st.streamTime, watermark: st.watermark, open: open, late: late)
            out.append(PartitionState(topic: p.topic, partition: p.partition, nextOffset: st.nextOffset, windows: windows,
                                      dedup: dedup, lastMessageWall: 0))
        }
        return Restored(partitions: out, droppedSizes: dropped, alertState: chain.state.alertState, sequence: chain.sequence)
    }

    /// Rows as `writeRow` writes them (`compact`), or with fixed-width numbers (version 2).
    private static func readRows(_ r: inout BinaryReader, _ id: (UInt32) throws(CheckpointFormatError) -> UInt32,
                                 compact: Bool) throws(CheckpointFormatError) -> [StoredKey: RollupCounters] {
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
        var rows: [StoredKey: RollupCounters] = [:]
        rows.reserveCapacity(n)
        for _ in 0..<n {
            let workflow = try ref(), owner = try ref()
            let model = try ref(), provider = try ref()
            let tagCount = try count()
            var tags: [StoredTag] = []
            for _ in 0..<tagCount { tags.append(StoredTag(name: try r.string(), value: try ref())) }
            var c = RollupCounters()
            c.requests = try number(); c.errors = try number(); c.input = try number(); c.cacheRead = try number()
            c.cacheWrite = try number(); c.output = try number(); c.reasoning = try number()
            c.cost = try money(); c.unpricedRequests = try number()
            c.outcomeValue = try money()
            let oc = try count()
            for _ in 0..<oc { c.outcomes.append(OutcomeCount(name: try ref(), count: try number())) }
            rows[StoredKey(workflow: workflow, owner: owner, model: model, provider: provider, tags: tags), default: RollupCounters()].merge(c)
        }
        return rows
    }
}

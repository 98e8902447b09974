/// Little-endian binary writer/reader for the checkpoint file.
public struct BinaryWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    /// A writer into `buffer`'s memory: emptied, its capacity kept (`buffer` is empty until `release`).
    public init(reusing buffer: inout [UInt8]) {
        swap(&bytes, &buffer)
        bytes.removeAll(keepingCapacity: true)
    }
    /// Hands the written bytes' memory back to `buffer` (which the next `init(reusing:)` takes again).
    public mutating func release(into buffer: inout [UInt8]) { swap(&bytes, &buffer) }
    /// Room for `count` bytes in all, allocated at once.
    public mutating func reserve(_ count: Int) { bytes.reserveCapacity(count) }
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    public mutating func i128(_ v: Int128) {
        u64(UInt64(truncatingIfNeeded: v))
        u64(UInt64(truncatingIfNeeded: v >> 64))
    }
    public mutating func count(_ n: Int) { u32(UInt32(n)) }
    /// LEB128: 7 bits a byte, small numbers in one byte (most of a row's counters are small or zero).
    public mutating func varint(_ v: UInt64) { writeLEB128(v, to: &bytes) }
    /// Zigzag then LEB128: small negative numbers stay short too.
    public mutating func zigzag(_ v: Int64) { writeZigzag(v, to: &bytes) }
    public mutating func zigzag(_ v: Int128) { writeZigzag(v, to: &bytes) }

    /// Up to `bound` bytes written by `body` through a cursor into `block`, which appends to these bytes a
    /// block at a time (`flush` when the records end): a checkpoint row is some twenty varints, and
    /// appending them byte by byte to the array (a capacity and uniqueness check each) was most of the
    /// checkpoint encoder's time.
    mutating func write(through block: inout BlockWriter, bound: Int, _ body: (inout ByteCursor) -> Void) {
        block.write(bound: bound, flushingInto: &bytes, body)
    }
    /// What `block` still holds, appended.
    mutating func flush(_ block: inout BlockWriter) { block.flush(into: &bytes) }
    public mutating func string(_ s: String) {
        count(s.utf8.count)
        bytes += s.utf8
    }
    /// A record's magic number and format version (see `BinaryReader.expectHeader`).
    public mutating func header(magic: UInt32, version: UInt8) {
        u32(magic)
        u8(version)
    }
    /// Bytes as they are (no length).
    public mutating func raw(_ b: [UInt8]) { bytes += b }
    /// A length-prefixed byte blob.
    public mutating func blob(_ b: [UInt8]) {
        count(b.count)
        bytes += b
    }
}

/// LEB128: 7 bits a byte, low bits first; at most `leb128Bound(T.self)` bytes.
@inline(__always)
func writeLEB128<T: FixedWidthInteger & UnsignedInteger, S: ByteSink>(_ v: T, to out: inout S) {
    var v = v
    while v >= 0x80 { out.put(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
    out.put(UInt8(v))
}

/// Zigzag then LEB128: small negative numbers stay short too.
@inline(__always)
func writeZigzag<S: ByteSink>(_ v: Int64, to out: inout S) { writeLEB128(UInt64(bitPattern: (v << 1) ^ (v >> 63)), to: &out) }
@inline(__always)
func writeZigzag<S: ByteSink>(_ v: Int128, to out: inout S) { writeLEB128(UInt128(bitPattern: (v << 1) ^ (v >> 127)), to: &out) }

/// The most bytes `writeLEB128` writes for a `T`: 7 bits a byte.
func leb128Bound<T: FixedWidthInteger>(_: T.Type) -> Int { (T.bitWidth + 6) / 7 }

public struct CheckpointFormatError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { "checkpoint unreadable: \(reason)" }
}

public struct BinaryReader {
    private let bytes: [UInt8]
    public private(set) var position = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var remaining: Int { bytes.count - position }

    private mutating func take(_ n: Int) throws(CheckpointFormatError) -> ArraySlice<UInt8> {
        guard n >= 0, position + n <= bytes.count else { throw CheckpointFormatError(reason: "truncated at byte \(position)") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }
    public mutating func u8() throws(CheckpointFormatError) -> UInt8 { try take(1).first! }
    public mutating func u32() throws(CheckpointFormatError) -> UInt32 {
        try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
    public mutating func u64() throws(CheckpointFormatError) -> UInt64 {
        try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    public mutating func i32() throws(CheckpointFormatError) -> Int32 { Int32(bitPattern: try u32()) }
    public mutating func i64() throws(CheckpointFormatError) -> Int64 { Int64(bitPattern: try u64()) }
    public mutating func i128() throws(CheckpointFormatError) -> Int128 {
        let lo = try u64(), hi = try u64()
        return Int128(Int64(bitPattern: hi)) << 64 | Int128(lo)
    }
    public mutating func varint() throws(CheckpointFormatError) -> UInt64 { try leb128() }
    public mutating func zigzag() throws(CheckpointFormatError) -> Int64 {
        let z: UInt64 = try leb128()
        return Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
    }
    public mutating func zigzag128() throws(CheckpointFormatError) -> Int128 {
        let z: UInt128 = try leb128()
        return Int128(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
    }

    /// What `BinaryWriter.leb128` wrote; refuses an encoding longer than `T` holds.
    private mutating func leb128<T: FixedWidthInteger & UnsignedInteger>() throws(CheckpointFormatError) -> T {
        var v: T = 0, shift = 0
        while true {
            let b = try u8()
            // The last byte that fits may only carry the bits left in `T`.
            guard shift < T.bitWidth, T.bitWidth - shift >= 7 || Int(b) >> (T.bitWidth - shift) == 0 else {
                throw CheckpointFormatError(reason: "varint too long at byte \(position)")
            }
            v |= T(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }
    public mutating func count() throws(CheckpointFormatError) -> Int {
        let n = Int(try u32())
        guard n <= remaining else { throw CheckpointFormatError(reason: "count \(n) exceeds the file at byte \(position)") }
        return n
    }
    public mutating func string() throws(CheckpointFormatError) -> String {
        let n = try count()
        return String(decoding: try take(n), as: UTF8.self)
    }
    /// Reads what `BinaryWriter.header` wrote; `what` names the record in the error.
    public mutating func expectHeader(magic: UInt32, version: UInt8, _ what: String) throws(CheckpointFormatError) {
        guard try u32() == magic else { throw CheckpointFormatError(reason: "not a tokenmeter \(what)") }
        let v = try u8()
        guard v == version else { throw CheckpointFormatError(reason: "\(what) version \(v), expected \(version)") }
    }
    public mutating func blob() throws(CheckpointFormatError) -> [UInt8] {
        let n = try count()
        return Array(try take(n))
    }
}

/// CRC-32 (IEEE), to refuse a checkpoint damaged on disk instead of restoring wrong totals.
public enum CRC32 {
    /// Slicing-by-8 tables, flat: entry `k * 256 + b` is the CRC of byte `b` followed by `k` zero bytes,
    /// so eight bytes cost eight loads instead of eight dependent steps (a checkpoint of a million rows
    /// is tens of megabytes, checked on every write and read).
    private static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    /// The CRC-32 (IEEE 802.3, as zlib's `crc32`) of `bytes`.
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ update(0, UnsafeRawBufferPointer($0)) }) { return crc }
        return Array(bytes).withUnsafeBytes { update(0, $0) }
    }

    /// Continues `crc` (a checksum so far; 0 to start) over `bytes`: `update(update(0, a), b)` is the
    /// checksum of `a` followed by `b`.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        tables.withUnsafeBufferPointer { t in
            var c = ~crc
            var i = 0
            let n = bytes.count
            while i + 8 <= n {
                let lo = bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ c
                let hi = bytes.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
            return ~c
        }
    }
}

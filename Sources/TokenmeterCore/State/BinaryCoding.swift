/// Little-endian binary writer/reader for the checkpoint file.
public struct BinaryWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
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
    public mutating func varint(_ v: UInt64) { leb128(v) }
    /// Zigzag then LEB128: small negative numbers stay short too.
    public mutating func zigzag(_ v: Int64) { leb128(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    public mutating func zigzag(_ v: Int128) { leb128(UInt128(bitPattern: (v << 1) ^ (v >> 127))) }

    private mutating func leb128<T: FixedWidthInteger & UnsignedInteger>(_ v: T) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    public mutating func string(_ s: String) {
        count(s.utf8.count)
        bytes += s.utf8
    }
    /// A record's magic number and format version (see `BinaryReader.expectHeader`).
    public mutating func header(magic: UInt32, version: UInt8) {
        u32(magic)
        u8(version)
    }
    /// A length-prefixed byte blob.
    public mutating func blob(_ b: [UInt8]) {
        count(b.count)
        bytes += b
    }
}

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
    private static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

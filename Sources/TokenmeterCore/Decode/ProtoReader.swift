/// A reader of the protobuf wire format over bytes it does not own: field by field, no allocation, no
/// generated code. It knows only the wire format (varints, 64- and 32-bit fixed values, length-delimited
/// bytes); what a field means is the caller's (`TraceMessage`).
///
/// Strict: a varint longer than 10 bytes or running past the end, a length past the end of its message,
/// field number 0, and the group wire types (3, 4: never written by proto3) are all malformed. A message
/// with any of these is unreadable as a whole; the caller does not guess.
///
/// Examples (bytes in hex):
/// - `08 96 01`: field 1, varint 150.
/// - `12 03 61 62 63`: field 2, length-delimited, the 3 bytes `abc`.
/// - `41 00 00 00 00 00 00 f0 3f`: field 8, fixed 64-bit (the double 1.0).
/// - `12 05 61 62`: malformed (a length of 5 with 2 bytes left).
/// - `08 ff ff ff ff ff ff ff ff ff ff 01`: malformed (an 11-byte varint).
struct ProtoReader {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5

        var name: String {
            switch self {
            case .varint: "varint"
            case .fixed64: "fixed64"
            case .lengthDelimited: "length-delimited"
            case .fixed32: "fixed32"
            }
        }
    }

    /// What was wrong, and at which byte of the whole message.
    struct Malformed: Error, Equatable {
        var problem: StaticString
        var offset: Int
        /// A string that is not UTF-8 (the message is `invalid_utf8` rather than `invalid_protobuf`).
        var utf8 = false
        static func == (a: Malformed, b: Malformed) -> Bool {
            a.offset == b.offset && a.utf8 == b.utf8 && a.problem.description == b.problem.description
        }
    }

    let buffer: UnsafeRawBufferPointer
    /// Where the next field starts (an offset into `buffer`).
    private(set) var position: Int
    let end: Int

    init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
        self.position = 0
        self.end = buffer.count
    }

    /// A reader of the bytes `range` of `buffer` (an embedded message), offsets still counted from the start
    /// of the whole message, so that problems name a place in it.
    init(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) {
        self.buffer = buffer
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    var isAtEnd: Bool { position >= end }

    /// The next field's number and wire type, nil at the end of the message.
    @inline(__always)
    mutating func nextField() throws(Malformed) -> (number: UInt32, wireType: WireType)? {
        if position >= end { return nil }
        let at = position
        let tag = try readVarint()
        guard let wire = WireType(rawValue: UInt8(tag & 7)) else {
            throw Malformed(problem: tag & 7 == 3 || tag & 7 == 4 ? "a group (wire types 3 and 4 are not proto3)"
                            : "an unknown wire type (6 or 7)", offset: at)
        }
        let number = tag >> 3
        guard number > 0, number <= 0x1FFF_FFFF else { throw Malformed(problem: "a field number out of range", offset: at) }
        return (UInt32(truncatingIfNeeded: number), wire)
    }

    @inline(__always)
    mutating func readVarint() throws(Malformed) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < end else { throw Malformed(problem: "a varint running past the end", offset: start) }
            let byte = buffer[position]
            position += 1
            // The 10th byte may hold only the top bit of a 64-bit value.
            if shift == 63 && byte > 1 { throw Malformed(problem: "a varint over 64 bits", offset: start) }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inline(__always)
    mutating func readFixed64() throws(Malformed) -> UInt64 {
        guard end - position >= 8 else { throw Malformed(problem: "a fixed64 running past the end", offset: position) }
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(littleEndian: v)
    }

    @inline(__always)
    mutating func readFixed32() throws(Malformed) -> UInt32 {
        guard end - position >= 4 else { throw Malformed(problem: "a fixed32 running past the end", offset: position) }
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    /// A length-delimited value: the range of its bytes in `buffer`.
    @inline(__always)
    mutating func readLengthDelimited() throws(Malformed) -> Range<Int> {
        let at = position
        let length = try readVarint()
        guard length <= UInt64(end - position) else { throw Malformed(problem: "a length past the end of its message", offset: at) }
        let start = position
        position += Int(length)
        return start..<position
    }

    /// Skips a field's value (an unknown field, or a known one not needed).
    @inline(__always)
    mutating func skip(_ wire: WireType) throws(Malformed) {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        }
    }

    /// Throws unless a known field came with the wire type its schema gives it.
    @inline(__always)
    func expect(_ wire: WireType, _ wanted: WireType, field: StaticString) throws(Malformed) {
        if wire != wanted { throw Malformed(problem: field, offset: position) }
    }

    @inline(__always)
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[range]) }
}

import Testing
@testable import TokenmeterCore

/// The checksum of every checkpoint, changelog record and id segment: the eight-bytes-at-a-time loop
/// must give what the byte-at-a-time definition gives, or stored state stops reading back.
@Suite struct CRC32Tests {
    /// The definition, one byte at a time (reflected polynomial 0xEDB88320, as zlib).
    static func reference(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }

    @Test func theStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func everyLengthAndAlignmentMatchesTheDefinition() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let data: [UInt8] = (0..<300).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for start in 0..<9 {
            for end in stride(from: start, through: data.count, by: 7) {
                let slice = data[start..<end]
                #expect(CRC32.checksum(slice) == Self.reference(Array(slice)), "bytes \(start)..<\(end)")
            }
        }
    }

    @Test func updateContinuesAChecksum() {
        let a = Array("tokenmeter checkpoint ".utf8), b = Array("records and id segments".utf8)
        let joined = a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in CRC32.update(CRC32.update(0, pa), pb) } }
        #expect(joined == CRC32.checksum(a + b))
        #expect(joined == Self.reference(a + b))
    }
}
